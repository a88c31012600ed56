"""Every benchmark script runs end to end in its --smoke form and prints its figures.

The figures themselves are not asserted (shared, noisy machines); that the scripts keep working is.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script, expected", [
    ("bench_augment.py", "img/s"),
    ("bench_recipe.py", "pixel-mean guess"),
    ("bench_eval.py --compare", "channels_last / NCHW"),  # --compare: the layout switch it patches still exists
    ("bench_eval.py --fp32-too", "against fp32, side by side"),  # the networks' precision setting still exists
    ("bench_eval.py --sequential-too --threads 2", "networks side by side / one by one"),  # both ways of fitting
    ("bench_embeddings.py", "t-SNE"),
    ("bench_runs_table.py", "table, warm"),
    ("bench_data_import.py", "imported 32x32 colour"),
    ("bench_tabular.py", "gradient-boosted trees"),
    ("bench_gpu.py", "img/s" if torch.cuda.is_available() else "CUDA is not available"),
    ("bench_faults.py", "fault sweep:"),
    ("bench_overhead.py", "wall / steps"),
    ("bench_throughput.py", "of the fp32 peak"),
    ("bench_throughput.py --emulate-avx2", "oneDNN capped at AVX2, fast bf16: False"),  # started again, capped
    ("bench_big_datasets.py", "Embeddings page on the"),
    ("bench_network_precision.py", "paired difference"),
])
def test_benchmark_smoke_run_prints_figures(script: str, expected: str, tmp_path: Path) -> None:
    name, *options = script.split()
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *options, "--smoke"], capture_output=True,
                            text=True, cwd=tmp_path, timeout=300,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert expected in result.stdout, result.stdout[-3000:]
