"""One process trains a run at a time: an exclusive file lock in the run folder, held while it trains.

Checking "is it running?" and then starting is a race: two resumes a moment apart (two terminals, two
browser tabs) would both see a stopped run and both train it into the same folder. So whoever trains a run
(``sslcore train`` / ``resume``, a job manager's worker) holds ``<run>/.train.lock``, and whoever wants to
start it (a resume) takes the lock before looking at the run's state. The kernel releases the lock when the
holder exits for any reason, so a killed process never leaves a run locked.
"""
from __future__ import annotations

import contextlib
import fcntl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

LOCK_FILE = ".train.lock"


class RunInUseError(RuntimeError):
    """Another process holds the run's training lock: it is training the run, or starting to."""


def acquire(run_path: Path, wait: float = 0.0) -> IO:
    """The open, exclusively locked lock file of the run at ``run_path``; close it to release.

    wait: seconds to keep trying (a process that holds the lock only to check and start a job lets go
    within moments). RunInUseError if the lock is still taken after that.
    """
    handle = open(run_path / LOCK_FILE, "a")
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() >= deadline:
                handle.close()
                raise RunInUseError(f"run {run_path.name} is being trained by another process right now; "
                                    "wait for it to end or stop it first") from None
            time.sleep(0.05)


@contextlib.contextmanager
def training_lock(run_path: Path, wait: float = 0.0) -> Iterator[None]:
    """Hold the run's training lock for the ``with`` block (see :func:`acquire`)."""
    handle = acquire(run_path, wait)
    try:
        yield
    finally:
        handle.close()


def is_locked(run_path: Path) -> bool:
    """Whether some process holds the run's training lock now (a snapshot: it may change at once)."""
    if not (run_path / LOCK_FILE).exists():
        return False
    try:
        acquire(run_path).close()
    except RunInUseError:
        return True
    return False
