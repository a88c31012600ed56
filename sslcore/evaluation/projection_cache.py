"""2-D maps cached in the run folder, and t-SNE computed in a background process.

A map is keyed by (source: epoch or raw pixels, split, max_points, method, full parameters, version of the
source checkpoint) and stored atomically as ``<run>/embeddings/proj_<method>_<source>_<split>_<hash>.npy``,
so it is computed once for all sessions and recomputed only when the checkpoint is rewritten.

Why a process and not a thread for the background job: scikit-learn's t-SNE runs its 750 optimisation
steps as a Python loop around numpy and Cython calls, so a thread would hold the GIL for much of ~10 s
and slow every Streamlit session in the server; a process also survives a script rerun, cannot take the
app down with it, runs at a lower priority, and its memory is returned when it ends. It is started as
``python -m sslcore.evaluation.projection_cache`` (``subprocess``, not multiprocessing: spawning from
a Streamlit script would re-import the page as ``__main__``).

A lock file ``<stem>.lock`` (created with O_EXCL, holding the worker's pid and start identity) stops two
sessions from starting the same job. A failed job leaves ``<stem>.error.json`` with the reason; a lock
whose process is gone without a result (killed, out of memory) also counts as failed, so a page that
polls does not restart a doomed job forever. The worker's output goes to ``<stem>.log``, kept on failure.
"""
from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

import sslcore
from sslcore.evaluation.embeddings import (
    PIXELS,
    Source,
    Split,
    embeddings_dir,
    pca_2d,
    run_data,
    run_features,
    run_points,
    save_npy_atomic,
    source_fingerprint,
    tsne_2d,
)
from sslcore.process_exit import exit_without_teardown
from sslcore.runs import Run
from sslcore.runs.files import read_json, write_json_atomic
from sslcore.runs.store import pid_alive, process_identity

#: Projection methods by name; their keyword parameters (and defaults) are the parameters a map is keyed by.
PROJECTIONS: dict[str, Callable[..., np.ndarray]] = {"pca": pca_2d, "tsne": tsne_2d}
#: Bump when a method's output changes for the same parameters, so old cached maps are not served.
CACHE_VERSION = 1
#: Added to the worker's niceness: enough for the server to win the CPU when it needs it, not so much
#: that the map starves behind a training job.
WORKER_NICENESS = 5
#: Run as ``python -m`` for a background job (spelled out: in the worker itself ``__name__`` is "__main__").
WORKER_MODULE = "sslcore.evaluation.projection_cache"
Status = Literal["ready", "running", "failed", "missing"]


def resolve_params(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """``params`` completed with the method's defaults, so ``{}`` and ``{"perplexity": 30}`` share one map."""
    if method not in PROJECTIONS:
        raise ValueError(f"unknown projection method {method!r}; choose one of {sorted(PROJECTIONS)}")
    defaults = {name: p.default for name, p in inspect.signature(PROJECTIONS[method]).parameters.items()
                if p.default is not inspect.Parameter.empty}
    unknown = set(params or {}) - set(defaults)
    if unknown:
        raise ValueError(f"{method} has no parameter(s) {sorted(unknown)}; its parameters are {sorted(defaults)}")
    return {**defaults, **(params or {})}


def project(features: np.ndarray, method: str, params: dict[str, Any]) -> np.ndarray:
    """features (N, D) -> float32 (N, 2) with projection ``method`` (the one place maps are computed)."""
    return PROJECTIONS[method](features, **params)


class ProjectionCache:
    """2-D maps of one run's features, computed once and kept in ``<run>/embeddings/``.

    ``epoch`` is an epoch with saved encoder weights or ``"pixels"`` (raw pixels of the same points);
    ``max_points`` is the cap on shown points passed to :func:`run_features`.
    """

    def __init__(self, run: Run, max_points: int = 5000) -> None:
        self.run, self.max_points = run, max_points

    def stem(self, epoch: Source, split: Split, method: str, params: dict[str, Any] | None = None) -> str:
        """The file name (without suffix) of this map: readable prefix + a stable hash of everything it depends on."""
        key = {"version": CACHE_VERSION, "source": epoch if epoch == PIXELS else int(epoch), "split": split,
               "max_points": self.max_points, "method": method, "params": resolve_params(method, params),
               "fingerprint": source_fingerprint(self.run, epoch)}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        source = PIXELS if epoch == PIXELS else f"e{int(epoch):04d}"
        return f"proj_{method}_{source}_{split}_{digest}"

    def path(self, epoch: Source, split: Split, method: str, params: dict[str, Any] | None = None) -> Path:
        return embeddings_dir(self.run) / f"{self.stem(epoch, split, method, params)}.npy"

    def get(self, epoch: Source, split: Split, method: str, params: dict[str, Any] | None = None
            ) -> np.ndarray | None:
        """The cached map, float32 (N, 2) in the order of :func:`run_features`, or None if not computed yet."""
        path = self.path(epoch, split, method, params)
        return np.load(path) if path.exists() else None

    def compute(self, epoch: Source, split: Split, method: str, params: dict[str, Any] | None = None
                ) -> np.ndarray:
        """Compute the map now (features from :func:`run_features`, itself cached), store it, return (N, 2)."""
        full = resolve_params(method, params)
        path = self.path(epoch, split, method, full)  # before the features: the checkpoint version they come from
        features, _, _ = run_features(self.run, epoch, split, self.max_points)
        coords = project(features, method, full)
        save_npy_atomic(path, coords)
        return coords

    def get_or_compute(self, epoch: Source, split: Split, method: str, params: dict[str, Any] | None = None
                       ) -> np.ndarray:
        """The cached map, computed first (in this process, blocking) if needed: for PCA, which takes well under 1 s."""
        cached = self.get(epoch, split, method, params)
        return cached if cached is not None else self.compute(epoch, split, method, params)


# ---------------------------------------------------------------------------------------------- background jobs


def _job_files(cache: ProjectionCache, epoch: Source, split: Split, method: str,
               params: dict[str, Any] | None) -> tuple[Path, Path, Path]:
    """(result .npy, lock file, error file) of one map; the worker's output goes to the lock's ``.log``."""
    stem = embeddings_dir(cache.run) / cache.stem(epoch, split, method, params)
    return stem.with_suffix(".npy"), stem.with_suffix(".lock"), stem.with_suffix(".error.json")


def _lock_state(lock: Path) -> Literal["none", "alive", "stale"]:
    """Whether a job holds ``lock``: 'stale' when its process is gone (killed, crashed, machine restarted)."""
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return "none"
    holder = read_json_quietly(lock)
    if holder is None:  # created but not written yet (a few microseconds), or torn by a crash long ago
        return "alive" if age < 10.0 else "stale"
    return "alive" if pid_alive(holder.get("pid"), holder.get("pid_identity")) else "stale"


def read_json_quietly(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None if missing, empty or unreadable."""
    try:
        value = read_json(path)
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def projection_status(run: Run, epoch: Source, split: Split, method: str, params: dict[str, Any] | None = None,
                      max_points: int = 5000) -> Status:
    """'ready' (cached), 'running' (a live job is computing it), 'failed' (the last job failed or died: see
    :func:`projection_error`) or 'missing'. Cheap (a few stat calls): fit for polling every second."""
    result, lock, error = _job_files(ProjectionCache(run, max_points), epoch, split, method, params)
    if result.exists():
        return "ready"
    state = _lock_state(lock)
    if state == "alive":
        return "running"
    # A stale lock is a job that died without a word (killed, or it could not even start): failed, so
    # a page polling every second does not start it again and again.
    return "failed" if state == "stale" or error.exists() else "missing"


def projection_error(run: Run, epoch: Source, split: Split, method: str, params: dict[str, Any] | None = None,
                     max_points: int = 5000) -> str | None:
    """Why the last background job for this map failed, or None if it did not."""
    if projection_status(run, epoch, split, method, params, max_points) != "failed":
        return None
    _, lock, error = _job_files(ProjectionCache(run, max_points), epoch, split, method, params)
    record = read_json_quietly(error)
    if record is not None:
        return str(record.get("error"))
    try:
        tail = lock.with_suffix(".log").read_text().strip().splitlines()[-1:]
    except OSError:
        tail = []
    return "the background job ended without a result (killed, or out of memory)" + "".join(f": {t}" for t in tail)


def _take_lock(lock: Path) -> bool:
    """Create ``lock`` exclusively (holding this process's pid until the worker's is known); False if taken."""
    if _lock_state(lock) == "stale":
        # Stale. Two sessions clearing the same stale lock at once could both start the job: harmless,
        # both write the same map atomically.
        lock.unlink(missing_ok=True)
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump(_holder(os.getpid()), f)
    return True


def _holder(pid: int) -> dict[str, Any]:
    return {"pid": pid, "pid_identity": process_identity(pid), "started": time.time()}


def start_background_projection(run: Run, epoch: Source, split: Split, method: str = "tsne",
                                params: dict[str, Any] | None = None, max_points: int = 5000,
                                retry_failed: bool = False, warm: bool = False,
                                thumb_scale: int = 1) -> subprocess.Popen | None:
    """Start computing a map in a separate process; returns at once. With ``warm``, the job also fills the
    other caches a first visit of the Embeddings page reads (:func:`warm_page_caches`, thumbnails of
    ``thumb_scale``).

    Returns the worker's handle, or None when there is nothing to start: the map is cached, another
    session's job is computing it, or (unless ``retry_failed``) the last job failed. Poll
    :func:`projection_status`; read the result with ``ProjectionCache(run, max_points).get(...)``.
    """
    full = resolve_params(method, params)  # bad parameters fail here, in the caller, not in the worker
    status = projection_status(run, epoch, split, method, full, max_points)
    if status in ("ready", "running") or (status == "failed" and not retry_failed):
        return None
    _, lock, error = _job_files(ProjectionCache(run, max_points), epoch, split, method, full)
    if not _take_lock(lock):
        return None
    error.unlink(missing_ok=True)
    args = [str(run.path), str(epoch), split, method, json.dumps(full), "--max-points", str(max_points)]
    args += ["--warm", "--thumb-scale", str(thumb_scale)] if warm else []
    try:
        worker = _spawn_worker(args, lock)
    except BaseException:
        lock.unlink(missing_ok=True)
        raise
    write_json_atomic(lock, _holder(worker.pid))
    return worker


def _spawn_worker(args: list[str], lock: Path) -> subprocess.Popen:
    """``python -m sslcore.evaluation.projection_cache ARGS --lock LOCK``, its output in the lock's ``.log``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_package_root(), os.environ.get("PYTHONPATH")]))}
    # Idle OpenMP threads sleep instead of spinning: with the cores shared (the app, a training job),
    # spinning threads stall t-SNE's per-step barriers; measured 3x slower on 2 busy cores.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    with open(lock.with_suffix(".log"), "w") as log:
        return subprocess.Popen([sys.executable, "-m", WORKER_MODULE, *args, "--lock", str(lock)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)


def _package_root() -> str:
    """The folder holding the ``sslcore`` package, so the worker imports this very copy (installed or not)."""
    return str(Path(sslcore.__file__).resolve().parents[1])


def warm_page_caches(run: Run, source: Source, split: Split, max_points: int, thumb_scale: int = 1) -> None:
    """Compute and keep what the Embeddings page reads beside a map: the map quality of ``source`` (labelled data),
    and with the raw pixels' job, the thumbnails of the shown images (each cached on disk by its own function)."""
    # Imported here: scikit-learn's metrics would slow every t-SNE worker's start for nothing.
    from sslcore.evaluation.embedding_quality import run_quality
    from sslcore.evaluation.thumbnails import run_thumbnails

    _, labels, _ = run_points(run, split, max_points)
    if (labels >= 0).any():
        run_quality(run, source, split, max_points)
    if source == PIXELS and run_data(run).kind == "image":
        run_thumbnails(run, split, max_points, thumb_scale)


def _run_job(run: Run, epoch: Source, split: Split, method: str, params: dict[str, Any], max_points: int,
             lock: Path, warm: bool = False, thumb_scale: int = 1) -> int:
    """The worker's body: compute and store the map; on failure, write the reason. Exit status 0 or 1.

    The error and log files are named after ``lock`` (same stem), so a failure is reported even when
    the map's key itself cannot be made (say, the checkpoint was deleted).
    """
    try:
        ProjectionCache(run, max_points).compute(epoch, split, method, params)
        if warm:
            warm_page_caches(run, epoch, split, max_points, thumb_scale)
        code = 0
    except Exception as e:  # noqa: BLE001 - the page must be able to say why the map never came
        write_json_atomic(lock.with_suffix(".error.json"), {"error": f"{type(e).__name__}: {e}",
                                                            "traceback": traceback.format_exc(), "time": time.time()})
        code = 1
    holder = read_json_quietly(lock)
    if holder is not None and holder.get("pid") == os.getpid():  # never remove a lock another job took since
        lock.unlink(missing_ok=True)
    if code == 0:
        lock.with_suffix(".log").unlink(missing_ok=True)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compute one 2-D map of a run's features into its embeddings/ cache.")
    parser.add_argument("run", help="run folder")
    parser.add_argument("epoch", help="an epoch with saved encoder weights, or 'pixels'")
    parser.add_argument("split", choices=["test", "train"])
    parser.add_argument("method", choices=sorted(PROJECTIONS))
    parser.add_argument("params", help="the method's parameters as a JSON object")
    parser.add_argument("--max-points", type=int, default=5000)
    parser.add_argument("--lock", type=Path, required=True, help="lock file to remove when done")
    parser.add_argument("--warm", action="store_true", help="also fill the page's quality and thumbnail caches")
    parser.add_argument("--thumb-scale", type=int, default=1, help="with --warm: the thumbnails' scale")
    args = parser.parse_args(argv)
    # A lower priority: the dashboard's own requests (and a training job) come before a background map.
    os.nice(WORKER_NICENESS)
    # The starter writes this same pid after spawning us; writing it here too means the lock names this
    # process whichever write comes last, so it is removed at the end even if the starter was slow.
    write_json_atomic(args.lock, _holder(os.getpid()))
    epoch: Source = PIXELS if args.epoch == PIXELS else int(args.epoch)
    return _run_job(Run(Path(args.run)), epoch, args.split, args.method, json.loads(args.params),
                    args.max_points, args.lock, args.warm, args.thumb_scale)


if __name__ == "__main__":
    exit_without_teardown(main())
