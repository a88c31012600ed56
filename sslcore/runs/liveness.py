"""Is a run's process still working on it? One rule for every reader: pid + process start identity + heartbeat.

A status file records the pid of the process training (or queued to train) the run, and that process's
identity: this machine's boot id plus the process's start time. On the machine (and boot) that wrote it, the
pid and identity answer exactly, at once: a pid that no longer exists, or that now belongs to another process,
is not the job. A run written on another machine (a run folder on a shared path) or by a system without
``/proc`` cannot be judged by pid; there the heartbeat (``progress.json``'s ``time``, rewritten about once a
second while the job lives) decides: silent for HEARTBEAT_STALE_SECONDS means gone.
"""
from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: A heartbeat older than this means the job is gone, where its pid cannot be checked. Generous: a job
#: beats about once a second while training, but loading a large dataset or an epoch-end k-NN on many
#: images can be silent for minutes.
HEARTBEAT_STALE_SECONDS = 600.0


@functools.lru_cache(maxsize=1)
def boot_id() -> str | None:
    """This machine's boot id (Linux), or None where there is none."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def process_identity(pid: int | None) -> str | None:
    """Boot id + start time of process ``pid`` (Linux only; None elsewhere or if it does not exist).

    A pid alone is not a process: after a restart (or enough process churn) the number belongs to
    someone else, and a run would look alive forever. Status files record this identity next to the pid.
    """
    if not pid or boot_id() is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(") ", 1)[-1].split()  # after "pid (comm) ", so fields[0] is field 3 of proc(5)
    return f"{boot_id()}:{fields[19]}" if len(fields) > 19 else None  # field 22: start time in clock ticks


def _is_zombie(pid: int) -> bool:
    with contextlib.suppress(FileNotFoundError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] == "Z"
    return False


def pid_alive(pid: int | None, identity: str | None = None) -> bool:
    """Whether process ``pid`` exists (and is not a zombie we forgot to reap).

    With ``identity`` (from :func:`process_identity`), a live process with that pid but another start
    time or boot (a reused pid) does not count.
    """
    if not pid:
        return False
    try:
        with contextlib.suppress(PermissionError):  # another user's process: it exists all the same
            os.kill(pid, 0)
    except ProcessLookupError:
        return False
    if _is_zombie(pid):  # a finished child that has not been reaped still answers kill(0)
        return False
    if identity is not None:
        current = process_identity(pid)
        return current is None or current == identity
    return True


def judged_here(identity: str | None) -> bool:
    """Whether the pid recorded with ``identity`` can be checked on this machine (same machine, same boot).

    No identity (a system without ``/proc``, or a pid that was gone when recorded): the pid is all there is.
    """
    return identity is None or identity.partition(":")[0] == boot_id()


def worker_alive(status: dict[str, Any], heartbeat_time: Callable[[], float | None]) -> bool:
    """Whether the process recorded in ``status`` (``pid``, ``pid_identity``) may still be working.

    heartbeat_time: returns the job's last heartbeat (seconds since the epoch) or None; read only when the
    pid cannot be judged here.
    """
    pid, identity = status.get("pid"), status.get("pid_identity")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if judged_here(identity):
        return pid_alive(pid, identity)
    beat = heartbeat_time()
    return beat is not None and time.time() - beat < HEARTBEAT_STALE_SECONDS
