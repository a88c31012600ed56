"""Helpers for tests that start real worker processes: wait for a condition, stop every worker."""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from sslcore.runs import ACTIVE_STATES, Run
from sslcore.runs.eval_manager import EvalJobManager, read_job
from sslcore.runs.process_manager import JobManager

TIMEOUT = 90.0


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT, what: str = "condition") -> None:
    """Poll ``condition`` every 0.1 s; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def stop_all(manager: JobManager) -> None:
    """Cancel every active run of the manager's store, wait for each to end, and kill what does not.

    Workers run in their own session, so nothing else would stop them when a test ends.
    """
    # Every queued or running run, alive or not: a worker that has not started yet has no pid to check,
    # and the STOP file that cancel() leaves makes it end as soon as it does start.
    runs = [r for r in manager.store.list() if r.state in ACTIVE_STATES or r.is_alive()]
    _stop_each(runs, manager.cancel, manager.wait, lambda run: run.status().get("pid"))
    manager.reap()


def stop_all_evaluations(manager: EvalJobManager) -> None:
    """Cancel every active evaluation job in the manager's runs folder; kill one that does not end."""
    runs = manager.active(manager.store.list())
    _stop_each(runs, manager.cancel, manager.wait, lambda run: read_job(run).get("pid"))
    manager.reap()


def _stop_each(runs: list[Run], cancel: Callable[[Run], None], wait: Callable[..., str],
               pid_of: Callable[[Run], int | None]) -> None:
    """Ask every job to stop first (they wind down in parallel), then wait for each; SIGKILL after 60 s."""
    for run in runs:
        cancel(run)
    for run in runs:
        try:
            wait(run, timeout=60)
        except TimeoutError:
            pid = pid_of(run)
            if pid:
                os.kill(pid, signal.SIGKILL)
