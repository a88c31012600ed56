"""The warm spare worker: it becomes the next run's worker, is replaced after use, and never outlives its manager."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sslcore.runs.process_manager import JobManager
from tests.conftest import tiny_config
from tests.runs.jobs_support import stop_all, wait_until

ROOT = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].startswith("Z")  # a zombie has ended


def test_a_warm_spare_runs_the_next_job_and_is_replaced(tmp_path: Path) -> None:
    manager = JobManager(tmp_path / "runs", max_concurrent=1, warm=True)
    try:
        assert manager.spare is not None
        manager.spare.refill_delay = 0.5
        assert manager.spare.wait_ready(timeout=120)
        spare_pid = manager.spare._process.pid
        run = manager.submit(tiny_config(**{"train.epochs": 1}), name="warm")
        assert manager.wait(run, timeout=120) == "completed"
        assert run.status()["pid"] == spare_pid  # the spare trained it: no new interpreter was started
        assert "epoch 1/1" in run.log_path.read_text()  # its console went to the run's log, as a cold worker's
        assert len(run.metrics("epoch")) == 2
        wait_until(lambda: manager.spare._process is not None, what="a new spare")
        assert manager.spare._process.pid != spare_pid and manager.spare.wait_ready(timeout=120)
        replacement = manager.spare._process
    finally:
        stop_all(manager)
        manager.close()
    assert replacement.poll() is not None  # close() ended the spare


def test_a_run_handed_to_a_spare_still_importing_trains(tmp_path: Path) -> None:
    """The click that comes before the spare is ready (a Quick demo right after the app starts): the manager
    stops listening for "ready", and the spare must still become the run's worker, not die writing it."""
    manager = JobManager(tmp_path / "runs", max_concurrent=1, warm=True)
    try:
        assert manager.spare is not None
        manager.spare.refill_delay = 3600  # no replacement during the test
        spare_pid = manager.spare._process.pid
        run = manager.submit(tiny_config(**{"train.epochs": 1}), name="early")  # at once: still importing
        assert manager.wait(run, timeout=180) == "completed", run.status().get("error")
        assert run.status()["pid"] == spare_pid
        assert "ready" not in run.log_path.read_text().split()  # nothing of the hand-over leaks into the log
    finally:
        stop_all(manager)
        manager.close()


def test_a_spare_exits_when_its_managers_process_dies(tmp_path: Path) -> None:
    script = ("import os, sys; from sslcore.runs.process_manager import JobManager; "
              f"m = JobManager({str(tmp_path)!r}, warm=True); m.spare.wait_ready(120); "
              "print(m.spare._process.pid, flush=True); os._exit(0)")  # no close(), no clean-up: as if killed
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True).stdout
    pid = int(out.split()[0])
    wait_until(lambda: not alive(pid), timeout=60, what=f"spare {pid} to exit")
