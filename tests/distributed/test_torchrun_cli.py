"""``torchrun --nproc-per-node 2 -m sslcore train``: one run, trained by two gloo processes, written by rank 0."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sslcore.runs import RunStore

ROOT = Path(__file__).resolve().parents[2]


def torchrun_train(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """2 epochs of SimCLR on digits by `torchrun --nproc-per-node 2`, each rank under
    tests/distributed/rank_harness.py."""
    (tmp_path / "reports").mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(ROOT / "tests" / "distributed" / "rank_harness.py"), str(tmp_path / "reports"),
           "train", "--dataset", "digits", "--epochs", "2", "--batch-size", "64", "--runs-dir", str(tmp_path / "runs"),
           "--set", "encoder.width=8", "--set", "train.threads=1", "--set", "train.knn_k=5"]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", **env})


@pytest.mark.slow
def test_two_processes_train_one_run_that_only_rank_0_writes(tmp_path: Path) -> None:
    result = torchrun_train(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    reports = tmp_path / "reports"
    [run] = RunStore(tmp_path / "runs").list()
    assert result.stdout.strip().splitlines()[-1] == str(run.path)  # printed once, by rank 0
    status = run.status()
    assert status["state"] == "completed" and status["world_size"] == 2 and status["devices"] == ["cpu", "cpu"]
    assert [r["rank"] for r in status["ranks"]] == [0, 1] and status["pid"] == status["ranks"][0]["pid"]
    assert [r["epoch"] for r in run.metrics("epoch")] == [0, 1, 2]
    assert sorted(p.name for p in run.checkpoint_dir.iterdir()) == [
        "encoder_epoch_0000.safetensors", "encoder_epoch_0001.safetensors", "encoder_epoch_0002.safetensors", "last.pt"]

    rank0, rank1 = (json.loads((reports / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank0["checksums"] == rank1["checksums"]  # DDP kept the two copies of the model bit-identical
    assert any(str(run.path / "status.json") in w for w in rank0["writes"])  # the audit sees rank 0's writes ...
    assert [w for w in rank1["writes"] if str(tmp_path) in w] == []  # ... and none at all by rank 1


@pytest.mark.slow
def test_an_error_on_rank_1_ends_the_run_failed_with_rank_1s_reason(tmp_path: Path) -> None:
    result = torchrun_train(tmp_path, FAIL_RANK="1")
    assert result.returncode != 0
    [run] = RunStore(tmp_path / "runs").list()
    status = run.status()
    assert status["state"] == "failed", status
    assert status["error"] == "rank 1 of 2 failed: RuntimeError: boom on rank 1"
    assert "Traceback" in status["traceback"] and "RuntimeError: boom on rank 1" in status["traceback"]  # its own
