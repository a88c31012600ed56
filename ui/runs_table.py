"""The Runs page's table: one summary row per run, filters over it, and how its columns are shown.

A page with a few hundred runs reruns on every click, so a run's row is computed from its folder only
when one of its files changed: the summary is cached (in memory, shared by every session) under the
run's path plus (mtime, size) of ``status.json``, ``metrics.jsonl``, ``progress.json`` and ``eval.json``.
A rerun with nothing new costs a few ``stat`` calls per run (``benchmarks/bench_runs_table.py``).
"""
from __future__ import annotations

import functools
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import streamlit as st

from sslcore.runs import ACTIVE_STATES, Run
from sslcore.runs.files import read_json, read_jsonl
from ui.runs import RUN_PARAM

#: Files whose change changes a run's row; their (mtime, size) form the cache key.
SUMMARY_FILES = ("status.json", "metrics.jsonl", "progress.json", "eval.json")
#: Columns a person can narrow the table by, with a multiselect each.
FILTER_COLUMNS = ("dataset", "task", "encoder", "status")
#: The table's columns, in display order (``id`` and ``open`` first: the run and a link to watch it).
COLUMNS = ["id", "open", "name", "tags", "dataset", "task", "encoder", "status", "progress", "epochs",
           "final loss", "best k-NN", "probe acc", "duration", "created"]
_EPOCH_MARK = '"kind":"epoch"'  # metrics.jsonl is written compactly (sslcore.runs.files.append_jsonl)


def file_stamps(run_path: Path) -> tuple[tuple[int, int] | None, ...]:
    """(mtime in ns, size) of each of SUMMARY_FILES, None for a missing one: the summary's cache key."""
    stamps = []
    for name in SUMMARY_FILES:
        try:
            stat = os.stat(run_path / name)
        except FileNotFoundError:
            stamps.append(None)
            continue
        stamps.append((stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)


def changes_of(run_paths: Iterable[Path]) -> tuple[tuple[tuple[int, int] | None, ...], ...]:
    """The summary files' stamps of each run: equal tuples mean no table cell of these runs has changed."""
    return tuple(file_stamps(path) for path in run_paths)


def epoch_records(path: Path) -> list[dict[str, Any]]:
    """The per-epoch records of a metrics.jsonl, without decoding its (far more numerous) step lines."""
    return [r for r in read_jsonl(path, containing=_EPOCH_MARK) if r.get("kind") == "epoch"]


def probe_accuracy(evaluation: dict[str, Any] | None) -> float | None:
    """Linear-probe test accuracy from eval.json: with all labels, else with the largest budget evaluated."""
    rows = [r for r in (evaluation or {}).get("results", []) if r.get("method") == "linear_probe"]
    if not rows:
        return None
    best = max(rows, key=lambda r: float("inf") if r.get("labels_per_class") == "all" else r.get("labels_per_class", 0))
    return best.get("accuracy_mean")


def _duration(status: dict[str, Any], progress: dict[str, Any], epochs: list[dict[str, Any]]) -> float | None:
    """Training seconds: the latest heartbeat or epoch record (both survive a resume), else the status times."""
    candidates = [progress.get("elapsed_s"), epochs[-1].get("elapsed") if epochs else None]
    known = [float(c) for c in candidates if isinstance(c, (int, float))]
    if known:
        return max(known)
    started, ended = status.get("started"), status.get("ended")
    return float(ended - started) if started and ended and ended >= started else None


def summarize_run(run_path: Path) -> dict[str, Any]:
    """One table row for the run folder ``run_path`` (read from disk; see :func:`cached_summary`)."""
    run = Run(run_path)
    status = run.status()
    # The raw JSON, not run.config(): an old run whose task was since renamed must still be listed.
    config = read_json(run_path / "config.json", default={})
    epochs = epoch_records(run.metrics_path)
    losses = [r["loss"] for r in epochs if isinstance(r.get("loss"), (int, float))]
    # Epoch 0 is the untrained baseline: the best score must be one the training reached.
    knn = [r["knn_acc"] for r in epochs if r.get("epoch", 0) >= 1 and isinstance(r.get("knn_acc"), (int, float))]
    done = max((int(r.get("epoch", 0)) for r in epochs), default=0)
    planned = status.get("epochs") or config.get("train", {}).get("epochs") or 0
    duration = _duration(status, run.progress(), epochs)
    return {
        "id": run.id,
        "open": f"train?{RUN_PARAM}={run.id}",
        "name": status.get("name", run.id),
        "tags": list(status.get("tags") or []),
        "dataset": config.get("data", {}).get("dataset", "?"),
        "task": config.get("task", {}).get("name", "?"),
        "encoder": config.get("encoder", {}).get("name", "?"),
        "status": status.get("state", "unknown"),
        "progress": done / planned if planned else None,
        "epochs": f"{done}/{planned or '?'}",
        "final loss": losses[-1] if losses else None,
        "best k-NN": max(knn) if knn else None,
        "probe acc": probe_accuracy(run.eval_results()),
        "duration": pd.Timedelta(seconds=duration) if duration is not None else pd.NaT,
        "created": datetime.fromtimestamp(status.get("created") or 0.0),
    }


@functools.lru_cache(maxsize=4096)
def _cached_summary(run_path: str, stamps: tuple[tuple[int, int] | None, ...]) -> dict[str, Any]:
    # stamps is only the cache key: any write to the files it covers makes a new entry. An lru_cache, not
    # st.cache_data: that one pickles every hit (~0.5 ms a row, 180 ms for 300 runs in the benchmark), this
    # one hands back the same dict, which callers only read. It is shared by all sessions, like the files.
    return summarize_run(Path(run_path))


def cached_summary(run: Run) -> dict[str, Any]:
    """The run's row (read-only), recomputed only when one of its SUMMARY_FILES changed."""
    return _cached_summary(str(run.path), file_stamps(run.path))


def runs_frame(runs: Iterable[Run]) -> pd.DataFrame:
    """The table of ``runs`` (one row each, in the given order), built from cached summaries."""
    return pd.DataFrame([cached_summary(run) for run in runs], columns=COLUMNS)


def filter_frame(frame: pd.DataFrame, query: str = "", chosen: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Rows whose name, id or tags contain ``query`` (any case) and whose FILTER_COLUMNS values are among
    ``chosen[column]`` (an empty or missing list means no restriction)."""
    keep = pd.Series(True, index=frame.index)
    needle = query.strip().lower()
    if needle:
        text = frame["name"].str.lower() + " " + frame["id"].str.lower() + " " + frame["tags"].map(" ".join).str.lower()
        keep &= text.str.contains(needle, regex=False)
    for column, values in (chosen or {}).items():
        if values:
            keep &= frame[column].isin(values)
    return frame[keep].reset_index(drop=True)


def active_ids(frame: pd.DataFrame) -> list[str]:
    """Ids of the rows that are queued or running."""
    if not len(frame):
        return []
    return frame.loc[frame["status"].isin(ACTIVE_STATES), "id"].tolist()


def active_count(frame: pd.DataFrame) -> int:
    """How many rows are queued or running."""
    return int(frame["status"].isin(ACTIVE_STATES).sum()) if len(frame) else 0


def column_config() -> dict[str, Any]:
    """How st.dataframe shows the table's columns (sorting is the table's own: click a header)."""
    cc = st.column_config
    return {
        "id": cc.TextColumn("run id", width="small"),
        "open": cc.LinkColumn("", display_text="Open", width="small", help="Watch the run on the Train page"),
        "name": cc.TextColumn("name", width="medium"),
        "tags": cc.ListColumn("tags"),
        "progress": cc.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent",
                                      help="Epochs done out of those planned"),
        "epochs": cc.TextColumn("epochs", help="done / planned"),
        "final loss": cc.NumberColumn("final loss", format="%.4f", help="Mean training loss of the last epoch"),
        "best k-NN": cc.NumberColumn("best k-NN", format="percent",
                                     help="Best online k-NN test accuracy over the trained epochs "
                                          "(the feature-quality monitor)"),
        "probe acc": cc.NumberColumn("probe acc", format="percent",
                                     help="Linear-probe test accuracy from the Evaluate page, with all labels "
                                          "(or the largest label budget evaluated); empty if not evaluated"),
        "duration": cc.NumberColumn("duration", format="compact", help="Training time (hh:mm:ss)"),
        "created": cc.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
    }


def filter_options(frame: pd.DataFrame) -> dict[str, list[str]]:
    """The distinct values of each FILTER_COLUMNS column, sorted, for the filter widgets."""
    return {column: sorted(frame[column].dropna().unique().tolist()) for column in FILTER_COLUMNS}
