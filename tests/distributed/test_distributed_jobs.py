"""The job manager with runs on 2 processes (torchrun, gloo): slots, stop on any rank, a killed rank, resume."""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from sslcore.runs import Run, process_manager
from sslcore.runs.process_manager import JobManager, try_slots
from tests.conftest import tiny_config
from tests.runs.jobs_support import TIMEOUT, stop_all, wait_until

ENDLESS = {"train.epochs": 500, "train.knn_k": 0, "train.snapshot_images": 0}


@pytest.fixture
def manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobManager]:
    monkeypatch.setattr(process_manager, "cpu_count", lambda: 2)  # 2 processes fit whatever this machine has
    jm = JobManager(tmp_path / "runs", max_concurrent=2)
    yield jm
    stop_all(jm)


def processes_of(run: Run) -> list[int]:
    """Pids of every live process whose command line names the run (the worker, torchrun's ranks)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
                state = (entry / "stat").read_text().rsplit(") ", 1)[-1][0]
            except OSError:
                continue
            if str(run.path).encode() in cmdline and state != "Z":
                pids.append(int(entry.name))
    return pids


def training_on_two_ranks(run: Run) -> bool:
    return run.state == "running" and len(run.status().get("ranks", [])) == 2 and bool(run.metrics("step"))


def test_processes_must_fit_the_machine_the_slots_and_the_batch(manager: JobManager) -> None:
    with pytest.raises(ValueError, match=r"processes = 3 is not allowed: expected 1 to 2"):
        manager.submit(tiny_config(), processes=3)
    with pytest.raises(ValueError, match=r"train.batch_size = 33 is not allowed with 2 processes"):
        manager.submit(tiny_config(**{"train.batch_size": 33}), processes=2)
    assert manager.store.list() == []  # nothing was created for a refused request


def test_slots_are_taken_all_or_nothing(tmp_path: Path) -> None:
    first = try_slots(tmp_path, slots=3, count=2)
    assert first is not None and len(first) == 2
    assert try_slots(tmp_path, slots=3, count=2) is None  # one is free, two are needed: none is held
    [third] = try_slots(tmp_path, slots=3, count=1) or []
    for f in [*first, third]:
        f.close()


@pytest.mark.slow
def test_a_stop_on_one_rank_cancels_every_rank_with_a_final_checkpoint(manager: JobManager) -> None:
    run = manager.submit(tiny_config(**ENDLESS), processes=2)
    wait_until(lambda: training_on_two_ranks(run), what="both ranks to train")
    os.kill(run.status()["ranks"][1]["pid"], signal.SIGTERM)  # rank 1 only; rank 0 must stop too
    wait_until(lambda: run.state == "cancelled", timeout=30, what="the run to be cancelled")
    assert run.status()["error"] is None
    checkpoint = torch.load(run.checkpoint_dir / "last.pt", weights_only=True)
    assert checkpoint["state"]["step"] == run.progress()["step"] > 0  # saved at the exact step it stopped
    wait_until(lambda: not processes_of(run), timeout=30, what="every process of the run to end")


@pytest.mark.slow
def test_a_killed_rank_fails_the_run_which_resumes_on_one_process(manager: JobManager) -> None:
    run = manager.submit(tiny_config(**{"train.epochs": 4, "train.batch_size": 16, "train.knn_k": 0,
                                        "train.snapshot_images": 0}), processes=2)
    wait_until(lambda: training_on_two_ranks(run), what="both ranks to train")
    killed = time.monotonic()
    os.kill(run.status()["ranks"][1]["pid"], signal.SIGKILL)  # what the out-of-memory killer does
    wait_until(lambda: run.state == "failed", timeout=30, what="the run to fail")
    error = run.status()["error"]
    assert "rank 1 of 2" in error and "killed" in error, error
    wait_until(lambda: not processes_of(run), timeout=max(1.0, 30 - (time.monotonic() - killed)),
               what="every process of the run to end")

    manager.resume(run, processes=1)
    assert manager.wait(run, TIMEOUT) == "completed", run.status().get("error")
    status = run.status()
    assert status["world_size"] == 1 and status["processes"] == 1
    assert [r["epoch"] for r in run.metrics("epoch")] == [0, 1, 2, 3, 4]
    steps = [r["step"] for r in run.metrics("step")]
    assert steps == list(range(1, steps[-1] + 1))  # one log across the two process counts: no gap, no duplicate
