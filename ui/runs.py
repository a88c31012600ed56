"""Which run a page shows (``?run=<id>`` in the URL) and cached reads of run folders.

The run id lives in the query string, not in session memory, so a reload, a second tab or a shared
link shows the same run. Everything shown is read from the run folder; reads of the append-only
metrics file are cached by its modification time and size, so a poll that finds nothing new costs a
``stat``.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pandas as pd
import streamlit as st

from sslcore.runs import DAMAGED, Run, RunNotFoundError, RunStore

RUN_PARAM = "run"
#: The Train page fills its form from the config of the run named by this query parameter.
FROM_PARAM = "from"
#: Session memory of the last run shown, for when in-app navigation drops the query string.
_LAST_RUN_KEY = "ui.runs.last_run"


def selected_run_id() -> str | None:
    """The run id in the URL, if any."""
    return st.query_params.get(RUN_PARAM) or None


def show_run(run_id: str) -> None:
    """Put ``run_id`` in the URL so every page that shows a run, and every reload, shows this one."""
    st.query_params[RUN_PARAM] = run_id
    st.session_state[_LAST_RUN_KEY] = run_id


def run_label(run: Run) -> str:
    """'Quick demo · 20261129-021557-simclr-mnist5k-8be0' (no state: the label is not redrawn while polling);
    'damaged · <id>' for a run whose status cannot be read."""
    status = run.status()
    name = "damaged" if status.get("state") == DAMAGED else status.get("name", run.id)
    return f"{name} · {run.id}"


def _sync_query_param(key: str) -> None:
    chosen = st.session_state.get(key)
    if chosen:
        show_run(chosen)
    else:
        forget_run()


def forget_run() -> None:
    """No run selected: drop it from the URL and from this session's memory."""
    st.query_params.pop(RUN_PARAM, None)
    st.session_state.pop(_LAST_RUN_KEY, None)


def find_run(store: RunStore, run_id: str) -> Run:
    """The run called ``run_id`` directly inside the store's folder.

    Stricter than ``RunStore.get`` (which also takes paths, for the CLI): an id from a URL must not
    reach folders outside the runs folder. Raises RunNotFoundError.
    """
    if not run_id or Path(run_id).name != run_id or run_id in (".", ".."):
        raise RunNotFoundError(f"{run_id!r} is not a run id")
    run = Run(store.root / run_id)
    if not (run.path / "config.json").exists():
        raise RunNotFoundError(f"no run {run_id!r} in {store.root}/")
    return run


def run_picker(store: RunStore, *, key: str = "run_picker", limit: int = 200,
               newest_by_default: bool = False, default: str | None = None) -> Run | None:
    """A select box of runs (newest first) bound to ``?run=<id>``; returns the chosen run or None.

    Choosing a run writes its id into the URL; an id arriving in the URL (reload, link, another page)
    selects it. Without one, the run this session showed last comes back (the sidebar's page links drop
    the query string), else the run ``default`` names, else, with ``newest_by_default``, the newest run.
    An unknown id is reported, not guessed at.
    """
    runs = store.list()[:limit]
    wanted = selected_run_id() or st.session_state.get(_LAST_RUN_KEY) or default
    if wanted is None and newest_by_default and runs:
        wanted = runs[0].id
    if wanted and wanted not in {r.id for r in runs}:
        try:
            runs.insert(0, find_run(store, wanted))  # older than the list shows, but asked for by name
        except RunNotFoundError as error:
            st.warning(str(error))
            forget_run()
            wanted = None
    if not runs:
        return None
    labels = {r.id: run_label(r) for r in runs}
    if wanted:
        show_run(wanted)  # back in the URL if the sidebar navigation dropped it
        st.session_state[key] = wanted  # the URL wins over the last choice in this session
    chosen = st.selectbox("Run", list(labels), index=None, format_func=labels.__getitem__, key=key,
                          placeholder="Choose a run to watch", on_change=_sync_query_param, args=(key,))
    return find_run(store, chosen) if chosen else None


class RunMetrics(NamedTuple):
    """A run's metrics.jsonl as two tables: one row per logged step and one per epoch (epoch 0 = untrained)."""

    steps: pd.DataFrame
    epochs: pd.DataFrame


def metrics_stamp(run: Run) -> tuple[int, int] | None:
    """(mtime in ns, size) of the run's metrics.jsonl, or None before its first line: a cache key for reads."""
    try:
        stat = run.metrics_path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size


def run_metrics(run: Run) -> RunMetrics:
    """The run's metrics, re-read only when metrics.jsonl has changed since the last read."""
    stamp = metrics_stamp(run)
    if stamp is None:
        return RunMetrics(pd.DataFrame(), pd.DataFrame())
    return _read_metrics(str(run.path), *stamp)


@st.cache_data(max_entries=64, show_spinner=False)
def _read_metrics(run_path: str, mtime_ns: int, size: int) -> RunMetrics:
    # mtime_ns and size are only the cache key: a rewrite (resume trims the log) or an append changes them.
    records = Run(Path(run_path)).metrics()
    steps = pd.DataFrame([r for r in records if r.get("kind") == "step"])
    epochs = pd.DataFrame([r for r in records if r.get("kind") == "epoch"])
    return RunMetrics(steps, epochs)


def log_tail(run: Run, lines: int = 40) -> str:
    """The last ``lines`` lines of the job's output (log.txt), or '' if there is none."""
    try:
        text = run.log_path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
