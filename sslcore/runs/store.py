"""The embedded run store: one plain folder per run, no server.

``runs/<run-id>/`` holds ``config.json``, ``status.json`` (replaced atomically), ``progress.json`` (the
heartbeat: rewritten about once a second while a job lives), ``metrics.jsonl`` (append-only),
``checkpoints/``, ``snapshots/``, ``eval.json`` and ``log.txt`` (the job's output).
"""
from __future__ import annotations

import builtins
import contextlib
import fcntl
import os
import re
import reprlib
import secrets
import shutil
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sslcore.config import ConfigError, RunConfig, config_from_dict
from sslcore.runs.files import DamagedFileError, append_jsonl, read_json_object, read_jsonl, write_json_atomic
from sslcore.runs.liveness import pid_alive, process_identity, worker_alive  # noqa: F401 - pid_alive re-exported

ACTIVE_STATES = ("queued", "running")
FINAL_STATES = ("completed", "failed", "cancelled")
#: The state shown for a run whose status.json cannot be read; the reason is in the status's ``damaged``.
DAMAGED = "damaged"
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
        shown = reprlib.repr(name) + (f" ({len(name):,} characters)" if len(name) > MAX_NAME_CHARS else "")
        raise ValueError(f"run name {shown} is not allowed: expected 1 to {MAX_NAME_CHARS} printable characters")
    return clean


class RunNotFoundError(LookupError):
    """No run with that id (or path) exists in the store."""


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
        """The validated config; ConfigError (one line) if config.json is missing, damaged or invalid.

        Its dataset may be missing here (a user dataset removed since): see ``config_from_dict``'s ``stored``.
        """
        try:
            data = read_json_object(self.path / "config.json")
        except DamagedFileError as e:
            raise ConfigError(f"run {self.id} is damaged: {e}") from None
        if data is None:
            raise ConfigError(f"run {self.id} has no config.json")
        return config_from_dict(data, stored=True)

    def config_dict(self) -> dict[str, dict[str, Any]]:
        """config.json as stored, for display only: its sections that are objects; {} if damaged or missing.

        Not :meth:`config`: an old run whose task was since renamed must still be listed and shown.
        """
        try:
            data = read_json_object(self.path / "config.json", default={}) or {}
        except DamagedFileError:
            return {}
        return {k: v for k, v in data.items() if isinstance(v, dict)}

    def status(self) -> dict[str, Any]:
        """status.json; for a damaged one ``{"state": "damaged", "damaged": reason}``, so a listing never fails."""
        try:
            status = read_json_object(self.path / "status.json", default={"state": "unknown"})
        except DamagedFileError as e:
            return {"state": DAMAGED, "damaged": str(e)}
        return status if isinstance(status.get("state", ""), str) else {**status, "state": "unknown"}

    @property
    def state(self) -> str:
        return self.status().get("state", "unknown")

    def update_status(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into status.json (atomically replaced).

        The job writes its state here while a person may rename or tag the run from another process, so
        the read-merge-write holds an exclusive lock: neither can undo the other's change.
        Setting ``pid`` also records that process's identity, so a reused pid is never taken for the job.
        A damaged status.json is refused (DamagedFileError), not silently replaced by these fields alone.
        """
        if "pid" in fields:
            fields["pid_identity"] = process_identity(fields["pid"])
        with self._status_lock():
            current = read_json_object(self.path / "status.json", default={}) or {}
            status = {**current, **fields}
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
        """The latest heartbeat: epoch, step, total_steps, loss, eta_s, time; {} before the first (or if damaged)."""
        try:
            return read_json_object(self.path / "progress.json", default={}) or {}
        except DamagedFileError:
            return {}

    def heartbeat_time(self) -> float | None:
        """When the job last beat (seconds since the epoch), or None."""
        beat = self.progress().get("time")
        return float(beat) if isinstance(beat, (int, float)) and not isinstance(beat, bool) else None

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
        """Whether the process recorded in status.json may still work on the run (see :mod:`.liveness`)."""
        return worker_alive(self.status(), self.heartbeat_time)

    def job_may_be_live(self) -> bool:
        """Whether a job process may still write to the run: alive, or queued and about to start."""
        status = self.status()
        if status.get("state") not in ACTIVE_STATES:
            return False
        if status.get("pid") is None:  # a worker that was just started has not written its pid yet
            return _waiting_since(status) > time.time() - STARTUP_GRACE_SECONDS
        return worker_alive(status, self.heartbeat_time)

    def eval_results(self) -> dict[str, Any] | None:
        """eval.json as stored, or None if never evaluated; DamagedFileError if it cannot be read.

        For typed access use :func:`sslcore.runs.eval_results.read_eval_results`.
        """
        return read_json_object(self.path / "eval.json")

    def snapshot_files(self) -> list[Path]:
        """Snapshot files in epoch order (``snapshots/epoch_0000.npz`` ...)."""
        return sorted(self.snapshot_dir.glob("epoch_*.npz"))


def _waiting_since(status: dict[str, Any]) -> float:
    # queued_at: a resumed run is queued again long after it was created
    times = [t for t in (status.get("created"), status.get("queued_at")) if isinstance(t, (int, float))]
    return max(times, default=0.0)


def new_run_id(config: RunConfig) -> str:
    """A fresh, sortable, filesystem-safe run id: ``20250101-120000-simclr-mnist5k-3f9a``."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{config.task.name}-{config.data.dataset}-{secrets.token_hex(2)}"


class RunStore:
    """All runs under one root folder."""

    def __init__(self, root: str | Path = "runs") -> None:
        self.root = Path(root)

    def create(self, config: RunConfig, name: str | None = None) -> Run:
        """A new run folder in state 'queued' with the full resolved config.

        ``name`` follows :func:`clean_run_name` (ValueError before anything is written).
        """
        name = clean_run_name(name) if name is not None else f"{config.task.name} on {config.data.dataset}"
        self.root.mkdir(parents=True, exist_ok=True)
        run = Run(self.root / new_run_id(config))
        run.path.mkdir()
        write_json_atomic(run.path / "config.json", config.to_dict())
        run.update_status(state="queued", created=time.time(), name=name, epochs=config.train.epochs)
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
        return sorted(runs, key=_created, reverse=True)

    # builtins.list: in this class body ``list`` is the method above.
    def reconcile(self, exclude: Collection[Path] = ()) -> builtins.list[Run]:
        """Mark runs whose job process is gone but which still say queued/running as failed ("interrupted").

        Such runs keep their checkpoints and can be resumed. The runs whose folders are in ``exclude`` are
        left alone (a job manager judges its own children by their exit status). See :func:`reconcile_run`.
        """
        skip = {Path(p) for p in exclude}
        return [run for run in self.list() if run.path not in skip and reconcile_run(run)]

    def delete(self, run: Run) -> None:
        """Remove the run's folder. It is first renamed to a hidden name, so an interrupted delete never
        leaves a half-removed run in the listing."""
        doomed = self.root / f".deleting-{run.id}-{secrets.token_hex(4)}"
        os.rename(run.path, doomed)
        shutil.rmtree(doomed)


def _created(run: Run) -> float:
    """A run's creation time for sorting; the folder's time for a run whose status.json is damaged."""
    created = run.status().get("created")
    if isinstance(created, (int, float)) and not isinstance(created, bool):
        return float(created)
    with contextlib.suppress(OSError):
        return run.path.stat().st_mtime
    return 0.0


def reconcile_run(run: Run) -> bool:
    """If ``run`` says queued/running but its process is gone, record it as failed ("interrupted"); True if so.

    Called wherever runs are read (listings in the app and the CLI, the job manager), so all agree on a run
    whose process was killed. Whether the process is gone is decided by :func:`sslcore.runs.liveness.worker_alive`
    (pid + start identity, or the heartbeat's age for a run of another machine). A run queued in the last
    minute whose worker has not written its pid yet is left alone.
    """
    if run.state not in ACTIVE_STATES or run.job_may_be_live():
        return False
    with run._status_lock():  # the job may record its own end right now: decide on what it last wrote
        try:
            status = read_json_object(run.path / "status.json", default={}) or {}
        except DamagedFileError:
            return False
        if status.get("state") not in ACTIVE_STATES or run.job_may_be_live():
            return False
        write_json_atomic(run.path / "status.json", {**status, "state": "failed", "error": INTERRUPTED_REASON,
                                                     "ended": time.time()})
    return True
