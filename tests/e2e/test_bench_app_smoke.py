"""`benchmarks/bench_app.py --smoke` runs end to end and prints its three figures."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, require_browser

pytestmark = pytest.mark.e2e


def test_bench_app_smoke_prints_the_three_figures_and_cleans_up(tmp_path: Path) -> None:
    require_browser()
    done = subprocess.run([sys.executable, "benchmarks/bench_app.py", "--smoke"], cwd=ROOT, capture_output=True,
                          text=True, timeout=400, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert re.search(r"home page interactive after [\d.]+ s", out), out
    assert re.search(r"click Train -> first loss point on the chart: [\d.]+ s", out), out
    assert re.search(r"app server CPU while a browser watches the run: [\d.]+% of one core", out), out
    assert not list(tmp_path.glob("bench-app-*")), "the app's runs folder and log were left behind"
