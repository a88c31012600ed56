"""Evaluation as a background job: one subprocess per run, its state in ``<run>/eval_job.json``.

A job is ``python -m sslcore eval-worker RUN_DIR ...`` (see :mod:`sslcore.runs.eval_worker`). It waits
for one of the training slots (``<runs>/.slots/`` file locks, shared with training jobs, so evaluation
never oversubscribes the cores), then runs :func:`~sslcore.evaluation.protocol.evaluate_run`, writing
its progress into ``eval_job.json`` (atomically replaced): ``state`` (queued | running | completed |
failed | cancelled), ``fraction``, ``message``, ``pid`` + ``pid_identity``, ``queued_at``/``started``/
``ended``, ``error``/``traceback``, the ``request`` and ``rows``: the results rows finished so far (figures
only), so the page shows the first ones while the slower methods still run. Every reader sees the same file,
so a refresh or a second tab shows the same progress; a worker that died without a word is reported as failed.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sslcore.runs.files import read_json, write_json_atomic
from sslcore.runs.store import ACTIVE_STATES, STARTUP_GRACE_SECONDS, Run, RunStore, pid_alive, process_identity

if TYPE_CHECKING:
    from sslcore.evaluation.protocol import Budget

JOB_FILE = "eval_job.json"
STOP_FILE = "EVAL_STOP"
LOG_FILE = "eval_log.txt"
_LOCK_FILE = ".eval_job.lock"
DEFAULT_BUDGETS: tuple[Budget, ...] = (1, 4, 10, 100, "all")
MAX_REPEATS = 20
DEAD_REASON = "the evaluation process ended without a result (killed, or out of memory); see eval_log.txt"


class EvalBusyError(RuntimeError):
    """The run already has a live evaluation job (or is still training)."""


@dataclass(frozen=True)
class EvalRequest:
    """What to evaluate: label budgets, repeats, seed, methods and overrides of the supervised baseline."""

    budgets: tuple[Budget, ...] = DEFAULT_BUDGETS
    repeats: int = 3
    seed: int = 0
    methods: tuple[str, ...] = ("linear_probe", "knn", "supervised", "raw_pixels")
    supervised: dict[str, Any] = field(default_factory=dict)
    force: bool = False

    def checked(self) -> EvalRequest:
        """This request normalised; ValueError naming the bad value (budget, method, repeats, override)."""
        from sslcore.evaluation.methods import check_methods
        from sslcore.evaluation.protocol import check_budgets
        from sslcore.evaluation.supervised import SupervisedBaseline

        if not 1 <= int(self.repeats) <= MAX_REPEATS:
            raise ValueError(f"repeats = {self.repeats} is not allowed: expected 1 to {MAX_REPEATS}")
        allowed = set(SupervisedBaseline().get_params()) - {"encoder_name", "width", "image_shape", "depth", "norm",
                                                            "patch_size", "device", "random_state"}
        unknown = sorted(set(self.supervised) - allowed)
        if unknown:
            raise ValueError(f"supervised override {unknown[0]!r} is not allowed: expected some of {sorted(allowed)}")
        budgets = check_budgets(list(self.budgets))
        if not budgets:
            raise ValueError("no label budget given: expected e.g. 1,4,10,100,all")
        return EvalRequest(tuple(budgets), int(self.repeats), int(self.seed), tuple(check_methods(self.methods)),
                           dict(self.supervised), bool(self.force))

    def to_args(self) -> list[str]:
        """The worker's command-line arguments for this request."""
        return ["--budgets", ",".join(str(b) for b in self.budgets), "--repeats", str(self.repeats),
                "--seed", str(self.seed), "--methods", ",".join(self.methods),
                "--supervised", json.dumps(self.supervised, sort_keys=True)] + (["--force"] if self.force else [])


@contextlib.contextmanager
def _job_lock(run: Run) -> Iterator[None]:
    """Exclusive access to eval_job.json's read-merge-write (and to starting a job) across processes."""
    with open(run.path / _LOCK_FILE, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def read_job(run: Run) -> dict[str, Any]:
    """eval_job.json as stored ({} when the run was never evaluated as a job)."""
    try:
        value = read_json(run.path / JOB_FILE, default={})
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _merge(run: Run, fields: dict[str, Any]) -> dict[str, Any]:
    if "pid" in fields:
        fields["pid_identity"] = process_identity(fields["pid"])
    job = {**read_job(run), **fields}
    write_json_atomic(run.path / JOB_FILE, job)
    return job


def update_job(run: Run, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into eval_job.json under the job lock; returns the new state."""
    with _job_lock(run):
        return _merge(run, fields)


def _dead(job: dict[str, Any]) -> bool:
    """Whether an active job's worker is gone (a worker still starting up gets a grace period)."""
    if job.get("state") not in ACTIVE_STATES:
        return False
    if job.get("pid") is None:
        return time.time() - (job.get("queued_at") or 0.0) > STARTUP_GRACE_SECONDS
    return not pid_alive(job.get("pid"), job.get("pid_identity"))


def job_status(run: Run) -> dict[str, Any]:
    """The run's evaluation job; a queued/running job whose worker died is recorded as failed first.

    Cheap (one small file and a /proc lookup): fit for polling every second.
    """
    job = read_job(run)
    if not _dead(job):
        return job
    with _job_lock(run):
        job = read_job(run)  # again, under the lock: the worker may have recorded its end meanwhile
        if _dead(job):
            job = _merge(run, {"state": "failed", "error": DEAD_REASON, "ended": time.time()})
    return job


class EvalJobManager:
    """Starts, cancels and watches evaluation jobs of the runs in one folder.

    Holds nothing that matters (all truth is in the run folders), only the handles of its children so
    they are reaped. Methods may be called from several threads (Streamlit sessions) at once.
    """

    def __init__(self, runs_dir: str | Path = "runs", max_concurrent: int = 2) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent = {max_concurrent} is not allowed: expected at least 1")
        self.store, self.max_concurrent = RunStore(runs_dir), max_concurrent
        self._children: list[subprocess.Popen] = []
        self._lock = threading.Lock()

    def start(self, run: Run, request: EvalRequest) -> dict[str, Any]:
        """Queue an evaluation of ``run``; returns its job state at once. EvalBusyError if one is active."""
        from sslcore.evaluation.encoder_source import weights_path

        request = request.checked()
        if run.state in ACTIVE_STATES and run.is_alive():
            raise EvalBusyError(f"run {run.id} is still {run.state}; evaluate it when training has ended")
        weights_path(run)  # FileNotFoundError: nothing to evaluate yet
        self.reap()
        with _job_lock(run):
            job = read_job(run)
            if job.get("state") in ACTIVE_STATES and not _dead(job):
                raise EvalBusyError(f"run {run.id} is already being evaluated")
            (run.path / STOP_FILE).unlink(missing_ok=True)
            write_json_atomic(run.path / JOB_FILE, {"state": "queued", "fraction": 0.0, "queued_at": time.time(),
                                                    "message": "waiting for a free slot", "pid": None,
                                                    "request": asdict(request)})
            process = self._spawn(run, request)
            job = _merge(run, {"pid": process.pid})
        return job

    def _spawn(self, run: Run, request: EvalRequest) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "sslcore", "eval-worker", str(run.path), "--slots", str(self.max_concurrent),
               *request.to_args()]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(run.path / LOG_FILE, "w") as log:
            # A new session: the job outlives an app restart and the terminal's Ctrl-C (as training jobs do).
            process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True, env=env, cwd=os.getcwd())
        with self._lock:
            self._children.append(process)
        return process

    def status(self, run: Run) -> dict[str, Any]:
        """The run's job state (see :func:`job_status`); reaps finished children first."""
        self.reap()
        return job_status(run)

    def cancel(self, run: Run) -> None:
        """Ask the run's job to stop: it ends 'cancelled' and writes nothing (eval.json stays as it was)."""
        (run.path / STOP_FILE).touch()  # also reaches a worker that has not recorded its pid yet
        job = read_job(run)
        if job.get("state") in ACTIVE_STATES and pid_alive(job.get("pid"), job.get("pid_identity")):
            with contextlib.suppress(ProcessLookupError):
                os.kill(job["pid"], signal.SIGTERM)

    def wait(self, run: Run, timeout: float | None = None, poll: float = 0.25) -> str:
        """Block until the run's job ends; returns its final state. TimeoutError after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (state := self.status(run).get("state")) in ACTIVE_STATES:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"the evaluation of run {run.id} is still {state} after {timeout:g} s")
            time.sleep(poll)
        return str(state)

    def active(self, runs: Sequence[Run]) -> list[Run]:
        """Those of ``runs`` with a queued or running evaluation."""
        return [r for r in runs if self.status(r).get("state") in ACTIVE_STATES]

    def reap(self) -> None:
        """Collect finished children (no zombies)."""
        with self._lock:
            self._children = [p for p in self._children if p.poll() is None]
