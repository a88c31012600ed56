"""AppTest fixtures: the app on an isolated runs folder, and a job manager to wait on and clean up runs."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from sslcore.runs.process_manager import JobManager
from tests.runs.jobs_support import stop_all

APP = Path(__file__).resolve().parents[2] / "app.py"
TIMEOUT = 120  # seconds per script run: the first Train page run imports torch and loads a dataset


@pytest.fixture(autouse=True)
def _no_warm_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    # A spare worker per test's app would import torch next to every test; tests/runs/test_warm_worker.py covers it.
    monkeypatch.setenv("SSL_WARM_WORKER", "0")


@pytest.fixture
def jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobManager]:
    """Points the app at empty runs and data folders; yields a manager on the same runs folder.

    The app's own (cached) manager is keyed by these settings, so each test gets a fresh one. Every
    worker still alive at the end is stopped.
    """
    runs = (tmp_path / "runs").resolve()
    monkeypatch.setenv("SSL_RUNS_DIR", str(runs))
    monkeypatch.setenv("SSL_DATA_ROOT", str(tmp_path / "data"))  # empty: torchvision datasets are missing
    monkeypatch.setenv("SSL_MAX_JOBS", "2")
    manager = JobManager(runs, max_concurrent=2)
    yield manager
    stop_all(manager)


def open_page(page: str, run_id: str | None = None) -> AppTest:
    """The app, run once, switched to ``page`` (e.g. 'app_pages/train.py') with ``?run=<run_id>``."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    if run_id is not None:
        at.query_params["run"] = run_id
    at.run()
    return at.switch_page(page).run()


def shown(markdown: str) -> str:
    """The text a Markdown element shows: its backslash escapes undone (``ui.plain_text.plain`` adds them)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def live_charts(at: AppTest) -> dict[str, dict]:
    """The Train page's live charts (the chart component's arguments), as plotly figures by chart name."""
    [component] = at.get("component_instance")
    return {c["name"]: json.loads(c["figure"]) for c in json.loads(component.proto.json_args)["charts"]}
