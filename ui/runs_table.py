"""Tables of runs (the Runs page's, Home's recent runs): one row per run from ``sslcore.runs.summary``, filters
over them, and how their columns are shown.

A page with a few hundred runs reruns on every click, so a run's summary is computed from its folder only
when one of its files changed: it is cached (in memory, shared by every session) under the run's path plus
(mtime, size) of the files it reads (``sslcore.runs.summary.summary_stamps``). A rerun with nothing new costs
a few ``stat`` calls per run (``benchmarks/bench_runs_table.py``). A run that says queued or running is checked
for a live process at every read, so a killed job shows as failed here exactly as in ``sslcore list``.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from sslcore.runs import ACTIVE_STATES, Run
from sslcore.runs.store import reconcile_run
from sslcore.runs.summary import (
    KNN_BEST_HELP,
    KNN_BEST_LABEL,
    KNN_LAST_HELP,
    KNN_LAST_LABEL,
    PROBE_HELP,
    RunSummary,
    Stamps,
    summarize,
    summary_stamps,
)
from ui.runs import RUN_PARAM

#: Columns a person can narrow the table by, with a multiselect each.
FILTER_COLUMNS = ("dataset", "task", "encoder", "status")
#: The table's columns, in display order: a link that opens the run, then what tells runs apart, so it is all in
#: view on a 1280-pixel screen beside the sidebar; the details (the whole run id among them) follow to the right.
COLUMNS = ["open", "name", "status", "epochs", KNN_LAST_LABEL, KNN_BEST_LABEL, "probe acc", "imported", "final loss",
           "task", "dataset", "id", "encoder", "tags", "progress", "duration", "created", "problem"]
#: What an empty cell reads (a run not evaluated has no probe accuracy; a failed one, no final loss): Streamlit
#: would print "None".
MISSING = "—"
#: Home's recent runs: the same figures under the same labels, fewer columns.
RECENT_COLUMNS = ["open", "name", "status", "epochs", KNN_LAST_LABEL, KNN_BEST_LABEL, "final loss", "task",
                  "dataset", "created"]


def changes_of(run_paths: Iterable[Path]) -> tuple[Stamps, ...]:
    """The summary files' stamps of each run: equal tuples mean no table cell of these runs has changed."""
    return tuple(summary_stamps(Run(Path(path))) for path in run_paths)


def row_of(summary: RunSummary) -> dict[str, Any]:
    """One table row (column -> value) for a run's summary."""
    return {
        "id": summary.id,
        "open": f"train?{RUN_PARAM}={summary.id}",
        "name": summary.name,
        "status": summary.state,
        "imported": summary.imported_from is not None,
        "task": summary.task,
        "dataset": summary.dataset,
        "epochs": f"{summary.epochs_done}/{summary.epochs_planned or '?'}",
        "final loss": summary.final_loss,
        KNN_LAST_LABEL: summary.knn_last,
        KNN_BEST_LABEL: summary.knn_best,
        "probe acc": summary.probe_acc,
        "encoder": summary.encoder,
        "tags": list(summary.tags),
        "progress": summary.progress,
        "duration": pd.Timedelta(seconds=summary.duration_s) if summary.duration_s is not None else pd.NaT,
        "created": datetime.fromtimestamp(summary.created or 0.0),
        "problem": summary.damaged or "",
    }


@functools.lru_cache(maxsize=4096)
def _cached(run_path: str, stamps: Stamps) -> tuple[RunSummary, dict[str, Any]]:
    # stamps is only the cache key: any write to the files it covers makes a new entry. An lru_cache, not
    # st.cache_data: that one pickles every hit (~0.5 ms a row, 180 ms for 300 runs in the benchmark), this
    # one hands back the same objects, which callers only read. It is shared by all sessions, like the files.
    summary = summarize(Run(Path(run_path)), reconcile=False)
    return summary, row_of(summary)


def _cached_entry(run: Run) -> tuple[RunSummary, dict[str, Any]]:
    entry = _cached(str(run.path), summary_stamps(run))
    # A dead job changes no file: ask at every read whether its process still lives (a /proc lookup).
    if entry[0].active and reconcile_run(run):
        entry = _cached(str(run.path), summary_stamps(run))
    return entry


def cached_summary(run: Run) -> RunSummary:
    """The run's summary, recomputed only when one of its SUMMARY_FILES changed (or its process died)."""
    return _cached_entry(run)[0]


def runs_frame(runs: Iterable[Run], columns: list[str] = COLUMNS) -> pd.DataFrame:
    """The table of ``runs`` (one row each, in the given order), built from cached summaries."""
    return pd.DataFrame([_cached_entry(run)[1] for run in runs], columns=columns)


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


def id_width(ids: Iterable[str]) -> int:
    """Pixels that show the longest run id whole (ASCII, about 7 px a character in the table's font)."""
    return min(480, 24 + 7 * max((len(i) for i in ids), default=20))


def column_config(ids: Iterable[str] = ()) -> dict[str, Any]:
    """How st.dataframe shows the columns (sorting is the table's own: click a header).

    Widths are set so that the link, name, status and the figures fit 1280 pixels beside the sidebar, and the
    run id column is as wide as the longest id (never cut).
    """
    cc = st.column_config
    return {
        "open": cc.LinkColumn("", display_text="Open", width=52, pinned=True, help="Watch the run on the Train page"),
        "name": cc.TextColumn("name", width=150),
        "status": cc.TextColumn("status", width=84),
        "epochs": cc.TextColumn("epochs", width=62, help="done / planned"),
        KNN_LAST_LABEL: cc.NumberColumn(KNN_LAST_LABEL, format="percent", width=122, help=KNN_LAST_HELP),
        KNN_BEST_LABEL: cc.NumberColumn(KNN_BEST_LABEL, format="percent", width=158, help=KNN_BEST_HELP),
        "probe acc": cc.NumberColumn("probe acc", format="percent", width=80, help=PROBE_HELP),
        "imported": cc.CheckboxColumn("imported", width=74,
                                      help="Imported from an exported .zip (a copy; the original lives elsewhere)"),
        "final loss": cc.NumberColumn("final loss", format="%.4f", help="Mean training loss of the last epoch"),
        "id": cc.TextColumn("run id", width=id_width(ids)),
        "tags": cc.ListColumn("tags"),
        "progress": cc.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent",
                                      help="Epochs done out of those planned"),
        "duration": cc.NumberColumn("duration", format="compact", help="Training time (hh:mm:ss)"),
        "created": cc.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
        "problem": cc.TextColumn("problem", help="Why a file of this run cannot be read (see the note above)"),
    }


def filter_options(frame: pd.DataFrame) -> dict[str, list[str]]:
    """The distinct values of each FILTER_COLUMNS column, sorted, for the filter widgets."""
    return {column: sorted(frame[column].dropna().unique().tolist()) for column in FILTER_COLUMNS}
