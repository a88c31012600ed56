"""The one job manager of this server, and the settings the app reads from its environment.

``SSL_RUNS_DIR`` (default ``runs``): where run folders live. ``SSL_MAX_JOBS`` (default 2): runs that
train at once; more wait as 'queued'. ``SSL_DATA_ROOT`` (default ``data``): the only folder datasets are
read from (the browser never chooses a path). ``SSL_WARM_WORKER`` (default 1): keep a spare worker that has
imported torch waiting, so a click on Train shows its first loss seconds sooner (0: start each worker cold).
"""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from sslcore.config import ConfigError, RunConfig
from sslcore.os_errors import describe_os_error
from sslcore.runs import Run
from sslcore.runs.process_manager import JobManager

RUNS_DIR_ENV = "SSL_RUNS_DIR"
MAX_JOBS_ENV = "SSL_MAX_JOBS"
DATA_ROOT_ENV = "SSL_DATA_ROOT"
WARM_WORKER_ENV = "SSL_WARM_WORKER"


def runs_dir() -> Path:
    """The runs folder, absolute, so workers and pages agree whatever their working directory."""
    return Path(os.environ.get(RUNS_DIR_ENV, "runs")).expanduser().resolve()


def data_root() -> str:
    return os.environ.get(DATA_ROOT_ENV, "data")


def max_jobs() -> int:
    """How many runs may train at once (``SSL_MAX_JOBS``), validated with a message naming the variable."""
    raw = os.environ.get(MAX_JOBS_ENV, "2")
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{MAX_JOBS_ENV} = {raw!r} is not allowed: expected an integer >= 1")
    return value


def warm_worker() -> bool:
    return os.environ.get(WARM_WORKER_ENV, "1").strip() not in ("0", "false", "no", "off", "")


@st.cache_resource(show_spinner=False)
def _manager(root: Path, max_concurrent: int, warm: bool) -> JobManager:
    manager = JobManager(root, max_concurrent=max_concurrent, warm=warm)
    # Runs left 'running' by an earlier server or a killed worker become 'failed' (resumable) once, here.
    manager.reconcile()
    return manager


def job_manager() -> JobManager:
    """The job manager shared by every browser session of this server (keyed by the settings it uses).

    It keeps no state that matters: a cleared cache or a code edit builds a new one that reads the same
    run folders. Its finished workers are reaped first, so a worker that died is recorded with the reason its
    exit status gives before any listing's reconcile records the generic "interrupted".
    """
    manager = _manager(runs_dir(), max_jobs(), warm_worker())
    manager.reap()
    return manager


def submit_or_explain(config: RunConfig, name: str | None = None, processes: int = 1) -> Run | None:
    """Start a run of ``config`` (on ``processes`` processes); if it is refused, show why in one line and
    return None.

    Refusals come before any run folder exists: data files missing, a device this machine lacks
    (``RunRefusedError``, a ConfigError), or a runs folder that cannot be written (an OSError).
    """
    try:
        return job_manager().submit(config, name=name, processes=processes)
    except ConfigError as refused:
        st.error(f"This run cannot start: {refused}", icon=":material/error:")
    except OSError as error:
        st.error(f"This run cannot start: {describe_os_error(error)}", icon=":material/error:")
    return None
