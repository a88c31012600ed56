"""Resuming one run twice at once trains it once: the run's training lock decides, not timing."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sslcore.cli import main
from sslcore.engine import training_run
from sslcore.engine.callbacks import Callback
from sslcore.engine.training_run import execute_run
from sslcore.runs import Run, RunStore
from sslcore.runs.process_manager import JobManager
from sslcore.runs.training_lock import RunInUseError, training_lock
from tests.conftest import tiny_config
from tests.runs.jobs_support import TIMEOUT, stop_all

ROOT = Path(__file__).resolve().parents[2]
QUICK = {"train.epochs": 3, "train.knn_k": 0, "train.snapshot_images": 0, "data.train_limit": 512}


class StopAt(Callback):
    """Stops training right after ``step`` (what the STOP file does, at an exact point)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, state) -> None:  # noqa: ANN001
        if state.step == self.step:
            state.stop_reason = "cancelled"


@pytest.fixture
def stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """A run cancelled after 2 of its 12 steps, with a checkpoint to resume from."""
    run = RunStore(tmp_path / "runs").create(tiny_config(**QUICK))
    original = training_run.run_callbacks
    monkeypatch.setattr(training_run, "run_callbacks", lambda *a, **k: [StopAt(2), *original(*a, **k)])
    assert execute_run(run) == "cancelled"
    monkeypatch.setattr(training_run, "run_callbacks", original)
    return run


@pytest.fixture
def manager(stopped: Run) -> Iterator[JobManager]:
    jm = JobManager(stopped.path.parent, max_concurrent=2)
    yield jm
    stop_all(jm)


def steps_once(run: Run) -> bool:
    steps = [r["step"] for r in run.metrics("step")]
    return steps == list(range(1, len(steps) + 1))


def test_a_resume_is_refused_while_another_process_holds_the_run(stopped: Run, manager: JobManager,
                                                                capsys: pytest.CaptureFixture) -> None:
    with training_lock(stopped.path):  # what a process training this run holds
        assert main(["resume", stopped.id, "--runs-dir", str(stopped.path.parent)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "is being trained by another process right now" in err
        with pytest.raises(RunInUseError):
            manager.resume(stopped)
    assert stopped.state == "cancelled", "a refused resume changes nothing"
    assert main(["resume", stopped.id, "--runs-dir", str(stopped.path.parent)]) == 0  # free again
    assert stopped.state == "completed" and steps_once(stopped)


def test_two_resumes_at_once_start_one_worker(stopped: Run, manager: JobManager) -> None:
    barrier, outcomes = threading.Barrier(2), []

    def resume() -> None:
        barrier.wait()  # both ask at the same moment (two browser tabs)
        try:
            manager.resume(stopped)
            outcomes.append("started")
        except RuntimeError as refused:
            outcomes.append(str(refused))

    threads = [threading.Thread(target=resume) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("started") == 1, outcomes
    assert manager.wait(stopped, TIMEOUT) == "completed"
    assert steps_once(stopped), "one worker trained it: no step twice"


def test_two_cli_resumes_at_once_train_the_run_once(stopped: Run) -> None:
    cmd = [sys.executable, "-m", "sslcore", "resume", stopped.id, "--runs-dir", str(stopped.path.parent)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    results = [p.communicate(timeout=TIMEOUT) for p in processes]
    codes = sorted(p.returncode for p in processes)
    assert codes == [0, 2], results
    refused = next(err for p, (_, err) in zip(processes, results, strict=True) if p.returncode == 2)
    # Refused by the lock while the other trains, or, if it came late, told that the run has completed.
    assert "being trained by another process" in refused or "has completed all its epochs" in refused
    assert stopped.state == "completed" and steps_once(stopped)
