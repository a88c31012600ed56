"""The job manager: a subprocess per run, a bounded queue served in order, stop, crash, and dead workers.

Every test trains real (tiny) runs in real worker processes on the embedded digits dataset; the
fixture stops whatever is still alive at the end, so no worker outlives its test.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sslcore.runs import Run, RunStore, process_manager
from sslcore.runs.process_manager import JobManager, exit_reason
from sslcore.runs.store import INTERRUPTED_REASON, pid_alive, process_identity
from tests.conftest import tiny_config
from tests.runs.jobs_support import TIMEOUT, stop_all, wait_until

# Long enough to still be training whenever a test looks; the tests stop it.
ENDLESS = {"train.epochs": 500, "train.knn_k": 0, "train.snapshot_images": 0}


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[JobManager]:
    jm = JobManager(tmp_path / "runs", max_concurrent=2)
    yield jm
    stop_all(jm)


def started_training(run: Run) -> bool:
    return run.state == "running" and bool(run.metrics("step"))


def test_submitted_run_trains_in_its_own_process_and_completes(manager: JobManager) -> None:
    run = manager.submit(tiny_config(**{"train.epochs": 1}), name="tiny")
    assert run.state == "queued" and run.status()["name"] == "tiny"
    assert manager.wait(run, TIMEOUT) == "completed"
    status = run.status()
    assert status["pid"] != os.getpid()
    wait_until(lambda: not pid_alive(status["pid"]), timeout=30, what="the worker to exit")
    assert [r["epoch"] for r in run.metrics("epoch")] == [0, 1]
    assert (run.checkpoint_dir / "last.pt").exists()
    assert "epoch 1/1" in run.log_path.read_text()  # the worker's console output went to the job log
    assert manager.active() == []


def test_runs_past_the_limit_wait_queued_and_start_in_order(tmp_path: Path) -> None:
    manager = JobManager(tmp_path / "runs", max_concurrent=1)
    try:
        first, second, third = (manager.submit(tiny_config(**ENDLESS), name=n) for n in ("a", "b", "c"))
        wait_until(lambda: started_training(first), what="the first run to train")
        wait_until(lambda: second.is_alive() and third.is_alive(), what="the other workers to start")
        time.sleep(1.0)  # several queue polls: a free slot would have been taken by now
        assert (second.state, third.state) == ("queued", "queued")
        assert [r.id for r in manager.active()] == [first.id, second.id, third.id]
        assert second.progress()["phase"] == "queued"  # queued workers keep a heartbeat

        manager.cancel(first)
        wait_until(lambda: second.state == "running", what="the second run to take the free slot")
        assert third.state == "queued" and first.state == "cancelled"
        manager.cancel(second)
        wait_until(lambda: third.state == "running", what="the third run to start")
        assert first.status()["ended"] <= second.status()["started"] < third.status()["started"]
    finally:
        stop_all(manager)


def test_threads_are_shared_among_concurrent_jobs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(process_manager, "cpu_count", lambda: 8)
    assert JobManager(tmp_path, max_concurrent=2).threads_per_job() == 4
    assert JobManager(tmp_path, max_concurrent=3).threads_per_job() == 2
    monkeypatch.setattr(process_manager, "cpu_count", lambda: 1)
    assert JobManager(tmp_path, max_concurrent=2).threads_per_job() == 1
    with pytest.raises(ValueError, match="max_concurrent = 0"):
        JobManager(tmp_path, max_concurrent=0)


def test_cancel_ends_a_running_job_cancelled_with_its_checkpoint(manager: JobManager) -> None:
    run = manager.submit(tiny_config(**ENDLESS))
    wait_until(lambda: started_training(run), what="training to start")
    manager.cancel(run)
    assert manager.wait(run, TIMEOUT) == "cancelled"
    status = run.status()
    assert status["error"] is None and status["ended"] >= status["started"]
    assert (run.checkpoint_dir / "last.pt").exists()
    assert run.progress()["phase"] == "cancelled"


def test_cancelled_run_resumes_in_a_new_worker_and_completes(manager: JobManager) -> None:
    run = manager.submit(tiny_config(**{"train.epochs": 2, "train.batch_size": 32}))
    wait_until(lambda: len(run.metrics("step")) >= 3, what="a few steps")
    manager.cancel(run)
    assert manager.wait(run, TIMEOUT) == "cancelled"
    first_pid = run.status()["pid"]
    manager.resume(run)
    assert run.state == "queued"
    assert manager.wait(run, TIMEOUT) == "completed"
    assert run.status()["pid"] != first_pid
    steps = [r["step"] for r in run.metrics("step")]
    assert steps == list(range(1, steps[-1] + 1))  # one log, no gap and no duplicate across the resume


def test_a_crashing_job_fails_with_a_plain_reason_and_traceback(manager: JobManager, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # MNIST's files are not under this empty data root, and downloading is off. submit() refuses that up front
    # (next test); here the files vanish between the check and the worker's start, and the job must fail cleanly.
    monkeypatch.setattr("sslcore.engine.training_run.check_inputs", lambda config: None)
    run = manager.submit(tiny_config(**{"data.dataset": "mnist", "data.root": str(tmp_path / "no-data")}))
    assert manager.wait(run, TIMEOUT) == "failed"
    status = run.status()
    assert "MNIST is not available" in status["error"] and "--download" in status["error"]
    assert "Traceback" in status["traceback"] and "DatasetUnavailableError" in status["traceback"]


@pytest.mark.parametrize("overrides, message", [
    ({"data.dataset": "mnist", "data.root": "/nonexistent/no-data"}, "MNIST is not available"),
    ({"train.device": "mps"}, "train.device = 'mps' but Apple's MPS backend is not available"),
])
def test_a_run_that_cannot_start_here_is_refused_before_it_has_a_folder(manager: JobManager, overrides: dict,
                                                                         message: str) -> None:
    from sslcore.engine.training_run import RunRefusedError

    with pytest.raises(RunRefusedError, match=message):
        manager.submit(tiny_config(**overrides))
    assert manager.store.list() == [] and not manager.store.root.exists()


def test_a_killed_worker_fails_its_run_with_the_signal_in_plain_words(manager: JobManager) -> None:
    run = manager.submit(tiny_config(**ENDLESS))
    wait_until(lambda: started_training(run), what="training to start")
    os.kill(run.status()["pid"], signal.SIGKILL)  # what both kill -9 and the kernel's out-of-memory killer send
    assert manager.wait(run, TIMEOUT) == "failed"
    error = run.status()["error"]
    assert "killed (SIGKILL)" in error
    # The exit status cannot tell a manual kill from the out-of-memory killer: the reason names both, guesses neither.
    assert "kill -9" in error and "out-of-memory killer" in error and "cannot tell" in error
    assert "most likely" not in error


def test_exit_reasons_are_plain_words() -> None:
    assert "crashed (SIGSEGV)" in exit_reason(-signal.SIGSEGV)
    assert "exited with code 3" in exit_reason(3)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_reconcile_fails_runs_whose_process_is_gone_and_only_those(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    dead = store.create(tiny_config(), name="dead")
    dead.update_status(state="running", pid=_dead_pid())
    reused = store.create(tiny_config(), name="pid reused by another process")
    reused.update_status(state="running", pid=os.getpid())
    reused.update_status(pid_identity="another-boot:12345")  # the pid now belongs to someone else
    alive = store.create(tiny_config(), name="alive")
    alive.update_status(state="running", pid=os.getpid())
    starting = store.create(tiny_config(), name="worker still starting")  # queued, no pid yet
    finished = store.create(tiny_config(), name="finished")
    finished.update_status(state="completed", pid=_dead_pid())

    failed = JobManager(tmp_path).reconcile()  # what the app does when it starts

    assert sorted(r.id for r in failed) == sorted([dead.id, reused.id])
    for run in (dead, reused):
        assert run.state == "failed" and run.status()["error"] == INTERRUPTED_REASON
    assert (alive.state, starting.state, finished.state) == ("running", "queued", "completed")


def test_process_identity_tells_a_live_process_from_a_reused_pid() -> None:
    me = process_identity(os.getpid())
    if me is None:
        pytest.skip("process start times need /proc (Linux)")
    assert pid_alive(os.getpid(), me)
    assert not pid_alive(os.getpid(), me + "0")
    assert not pid_alive(_dead_pid(), None)
