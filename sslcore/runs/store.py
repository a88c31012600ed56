"""The embedded run store: one plain folder per run, no server.

``runs/<run-id>/`` holds ``config.json``, ``status.json`` (replaced atomically), ``progress.json`` (the
heartbeat: rewritten about once a second while a job lives), ``metrics.jsonl`` (append-only),
``checkpoints/``, ``snapshots/``, ``eval.json`` and ``log.txt`` (the job's output).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Iterator, Sequence

from sslcore.config import RunConfig, config_from_dict
from sslcore.runs.files import append_jsonl, read_json, read_jsonl, write_json_atomic

ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("completed", "failed", "cancelled")
#: How long a queued run may go without a worker pid before reconcile calls it interrupted (worker start-up).
STARTUP_GRACE_SECONDS = 60.0
INTERRUPTED_REASON = ("interrupted: the training process ended without saying why (killed, or the machine "
                      "restarted); resume to continue from the last checkpoint")


#: Limits on what a person may call a run or tag it with (shown in listings and the dashboard).
MAX_NAME_CHARS = 100
MAX_TAG_CHARS = 40
MAX_TAGS = 20
TAG_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+-]*")


def clean_run_name(name: str) -> str:
    """``name`` trimmed; ValueError unless it has 1-100 printable characters (no newlines or control codes)."""
    clean = name.strip()
    if not clean or len(clean) > MAX_NAME_CHARS or not clean.isprintable():
        raise ValueError(f"run name {name!r} is not allowed: expected 1 to {MAX_NAME_CHARS} printable characters")
    return clean


class RunNotFoundError(LookupError):
    """No run with that id (or path) exists in the store."""


def process_identity(pid: int | None) -> str | None:
    """Boot id + start time of process ``pid`` (Linux only; None elsewhere or if it does not exist).

    A pid alone is not a process: after a restart (or enough process churn) the number belongs to
    someone else, and a run would look alive forever. Status files record this identity next to the pid.
    """
    if not pid:
        return None
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(") ", 1)[-1].split()  # after "pid (comm) ", so fields[0] is field 3 of proc(5)
    return f"{boot_id}:{fields[19]}" if len(fields) > 19 else None  # field 22: start time in clock ticks


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


@dataclass(frozen=True)
class Run:
    """A handle on one run folder; every read goes to disk, so it is always current."""

    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    # -- files --------------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def snapshot_dir(self) -> Path:
        return self.path / "snapshots"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def log_path(self) -> Path:
        return self.path / "log.txt"

    @property
    def stop_path(self) -> Path:
        return self.path / "STOP"

    # -- config and status ---------------------------------------------------------------------
    def config(self) -> RunConfig:
        """The run's config; its dataset may be missing here (a user dataset removed since), see ``stored``."""
        return config_from_dict(read_json(self.path / "config.json"), stored=True)

    def status(self) -> dict[str, Any]:
        return read_json(self.path / "status.json", default={"state": "unknown"})

    @property
    def state(self) -> str:
        return self.status().get("state", "unknown")

    def update_status(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into status.json (atomically replaced).

        The job writes its state here while a person may rename or tag the run from another process, so
        the read-merge-write holds an exclusive lock: neither can undo the other's change.
        Setting ``pid`` also records that process's identity, so a reused pid is never taken for the job.
        """
        if "pid" in fields:
            fields["pid_identity"] = process_identity(fields["pid"])
        with self._status_lock():
            status = {**self.status(), **fields}
            write_json_atomic(self.path / "status.json", status)
        return status

    @contextlib.contextmanager
    def _status_lock(self) -> Iterator[None]:
        # A lock file beside status.json, not status.json itself: that file is replaced, never rewritten.
        with open(self.path / ".status.lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    def rename(self, name: str) -> str:
        """Give the run a new display name (see :func:`clean_run_name`); returns it."""
        clean = clean_run_name(name)
        self.update_status(name=clean)
        return clean

    def tags(self) -> list[str]:
        return list(self.status().get("tags") or [])

    def set_tags(self, tags: Sequence[str]) -> list[str]:
        """Replace the run's tags (duplicates dropped, order kept); returns them.

        A tag is a short word (letters, digits and ``_ . : + -``), so it reads unambiguously in a listing.
        """
        clean = list(dict.fromkeys(t.strip() for t in tags))
        for tag in clean:
            if len(tag) > MAX_TAG_CHARS or not TAG_PATTERN.fullmatch(tag):
                raise ValueError(f"tag {tag!r} is not allowed: expected 1 to {MAX_TAG_CHARS} letters, digits or "
                                 "_ . : + - (starting with a letter or digit)")
        if len(clean) > MAX_TAGS:
            raise ValueError(f"{len(clean)} tags are too many: a run may have at most {MAX_TAGS}")
        self.update_status(tags=clean)
        return clean

    def progress(self) -> dict[str, Any]:
        """The latest heartbeat: epoch, step, total_steps, loss, eta_s, time; {} before the first."""
        return read_json(self.path / "progress.json", default={})

    def write_progress(self, progress: dict[str, Any]) -> None:
        write_json_atomic(self.path / "progress.json", progress)

    # -- metrics ---------------------------------------------------------------------------------
    def append_metrics(self, *records: dict[str, Any]) -> None:
        append_jsonl(self.metrics_path, records)

    def metrics(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Metric records (``kind`` 'step' or 'epoch' to filter); a torn last line is ignored."""
        records = read_jsonl(self.metrics_path)
        return records if kind is None else [r for r in records if r.get("kind") == kind]

    # -- control ---------------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask the job to stop; it ends as 'cancelled' after a final checkpoint."""
        self.stop_path.touch()

    def stop_requested(self) -> bool:
        return self.stop_path.exists()

    def is_alive(self) -> bool:
        status = self.status()
        return pid_alive(status.get("pid"), status.get("pid_identity"))

    def eval_results(self) -> dict[str, Any] | None:
        return read_json(self.path / "eval.json")

    def snapshot_files(self) -> list[Path]:
        """Snapshot files in epoch order (``snapshots/epoch_0000.npz`` ...)."""
        return sorted(self.snapshot_dir.glob("epoch_*.npz"))


def new_run_id(config: RunConfig) -> str:
    """A fresh, sortable, filesystem-safe run id: ``20250101-120000-simclr-mnist5k-3f9a``."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{config.task.name}-{config.data.dataset}-{secrets.token_hex(2)}"


class RunStore:
    """All runs under one root folder."""

    def __init__(self, root: str | Path = "runs") -> None:
        self.root = Path(root)

    def create(self, config: RunConfig, name: str | None = None) -> Run:
        """A new run folder in state 'queued' with the full resolved config."""
        self.root.mkdir(parents=True, exist_ok=True)
        run = Run(self.root / new_run_id(config))
        run.path.mkdir()
        write_json_atomic(run.path / "config.json", config.to_dict())
        run.update_status(state="queued", created=time.time(), name=name or f"{config.task.name} on {config.data.dataset}",
                          epochs=config.train.epochs)
        return run

    def get(self, run_id: str | Path) -> Run:
        """The run with this id, or at this path; RunNotFoundError otherwise."""
        candidate = Path(run_id)
        path = candidate if (candidate / "config.json").exists() else self.root / str(run_id)
        if not (path / "config.json").exists():
            raise RunNotFoundError(f"no run {str(run_id)!r} in {self.root}/ (list them with `python -m sslcore list`)")
        return Run(path)

    def list(self) -> list[Run]:
        """All runs, newest first."""
        if not self.root.exists():
            return []
        runs = [Run(p) for p in self.root.iterdir() if (p / "config.json").exists()]
        return sorted(runs, key=lambda r: r.status().get("created", 0.0), reverse=True)

    def reconcile(self, exclude: Collection[Path] = ()) -> list[Run]:
        """Mark runs whose job process is gone but which still say queued/running as failed ("interrupted").

        Called when the app starts; such runs keep their checkpoints and can be resumed. A run queued in
        the last minute whose worker has not written its pid yet is left alone, and so are the runs whose
        folders are in ``exclude`` (a job manager judges its own children by their exit status).
        """
        interrupted = []
        skip = {Path(p) for p in exclude}
        for run in self.list():
            status = run.status()
            if status.get("state") not in ACTIVE_STATES or run.path in skip:
                continue
            # queued_at: a resumed run is queued again long after it was created
            waiting_since = max(status.get("created", 0.0), status.get("queued_at") or 0.0)
            just_queued = status.get("pid") is None and time.time() - waiting_since < STARTUP_GRACE_SECONDS
            if just_queued or pid_alive(status.get("pid"), status.get("pid_identity")):
                continue
            # Read again now that the process is known to be gone: it may have recorded its end just before.
            if run.state in ACTIVE_STATES:
                run.update_status(state="failed", error=INTERRUPTED_REASON, ended=time.time())
                interrupted.append(run)
        return interrupted

    def delete(self, run: Run) -> None:
        """Remove the run's folder. It is first renamed to a hidden name, so an interrupted delete never
        leaves a half-removed run in the listing."""
        doomed = self.root / f".deleting-{run.id}-{secrets.token_hex(4)}"
        os.rename(run.path, doomed)
        shutil.rmtree(doomed)
