"""Runs: every run in one table (search, filter, sort), the curves and configs of several side by side, and
what can be done to one: resume, train again, export, rename and tag, delete; plus importing an export.

Which runs are chosen lives in one place, the "Selected runs" box: ticking rows in the table fills it,
and it can also be edited directly (it keeps runs the filters hide). One chosen run goes into
``?run=<id>``, so the other pages open on it.
"""
import hashlib
from pathlib import Path

import pandas as pd
import streamlit as st

from sslcore.runs import Run, RunStore
from ui import runs_table as table
from ui.plain_text import counted
from ui.polling import polling_fragment
from ui.runs import selected_run_id, show_run
from ui.runs_actions import CHOSEN_KEY, FLASH, actions_panel
from ui.runs_compare import compare
from ui.runs_damaged import damaged_notice
from ui.runs_import import import_box
from ui.server import job_manager

_SEEN_KEY = "runs.table.seen"  # (table key, run ids ticked in it) as of the last page run
_URL_KEY = "runs.url_adopted"  # the ?run= id already turned into a choice once
_ACTIVE_STAMPS_KEY = "runs.active_stamps"  # file stamps of the queued and running runs, as last drawn

manager = job_manager()
store = manager.store


def has_runs(store: RunStore) -> bool:
    """Whether any run folder exists (cheaper than listing: stops at the first)."""
    return store.root.is_dir() and any((p / "config.json").exists() for p in store.root.iterdir())


def keep_valid(key: str, allowed: set[str]) -> None:
    """Drop values of widget ``key`` that are no longer options (a deleted run, a filter value now unused)."""
    if key in st.session_state:
        st.session_state[key] = [v for v in st.session_state[key] if v in allowed]


def filters(frame: pd.DataFrame) -> pd.DataFrame:
    """Search and filter widgets above the table; returns the rows they keep."""
    options = table.filter_options(frame)
    search, *pickers = st.columns([2, 1, 1, 1, 1])
    query = search.text_input("Search", key="runs.filter.query", placeholder="name, tag or run id")
    chosen = {}
    for column, cell in zip(table.FILTER_COLUMNS, pickers, strict=True):
        keep_valid(f"runs.filter.{column}", set(options[column]))
        chosen[column] = cell.multiselect(column, options[column], key=f"runs.filter.{column}", placeholder="all")
    return table.filter_frame(frame, query, chosen)


def runs_table(shown: pd.DataFrame) -> None:
    """The table; rows ticked in it become the chosen runs."""
    ids = shown["id"].tolist()
    # A new key whenever the rows change: a tick must never move to another run when a filter changes.
    key = "runs.table." + hashlib.sha1("\n".join(ids).encode()).hexdigest()[:12]
    event = st.dataframe(shown, key=key, on_select="rerun", selection_mode="multi-row", hide_index=True,
                         width="stretch", column_config=table.column_config(ids), placeholder=table.MISSING)
    ticked = [ids[i] for i in event.selection.rows if 0 <= i < len(ids)]
    seen_key, seen = st.session_state.get(_SEEN_KEY, (None, []))
    if seen_key == key and ticked != seen:  # the person ticked or unticked rows since the last page run
        st.session_state[CHOSEN_KEY] = ticked
    st.session_state[_SEEN_KEY] = (key, ticked)


def adopt_url_run(known: set[str]) -> None:
    """A run named in the URL (a link from another page) starts out chosen, once, if nothing else is."""
    wanted = selected_run_id()
    if wanted in known and st.session_state.get(_URL_KEY) != wanted:
        st.session_state[_URL_KEY] = wanted
        if not st.session_state.get(CHOSEN_KEY):
            st.session_state[CHOSEN_KEY] = [wanted]


def follow_active_runs(active_paths: list[str]) -> None:
    """While runs are queued or running, redraw the page when one of them writes news (every few seconds).

    A fragment compares the active runs' file stamps and asks for a full rerun only when they changed, so
    the table's progress, loss and status keep up with training without a Refresh click; with nothing
    active no timer runs at all.
    """
    if not active_paths:
        st.session_state.pop(_ACTIVE_STAMPS_KEY, None)
        return

    def watch() -> None:
        stamps = table.changes_of(Path(p) for p in active_paths)
        seen = st.session_state.get(_ACTIVE_STAMPS_KEY)
        st.session_state[_ACTIVE_STAMPS_KEY] = stamps
        if seen is not None and seen != stamps:
            st.rerun()

    polling_fragment(watch, active=True)


st.title("Runs")
FLASH.show()
with st.expander("Import a run (.zip)", icon=":material/upload:", expanded=not has_runs(store)):
    imported = import_box(store)
if imported:
    st.session_state[CHOSEN_KEY] = [imported]

runs = store.list()
damaged_notice(store, key="runs", runs=runs)
if not runs:
    st.info("No runs yet: train one on the Train page, or import an exported run above.")
    st.stop()

frame = table.runs_frame(runs)
by_id: dict[str, Run] = {run.id: run for run in runs}
active = table.active_count(frame)
caption, refresh = st.columns([6, 1], vertical_alignment="center")
caption.caption(f"{counted(len(runs), 'run')} in `{store.root}` · {active} queued or running · click a header to sort; "
                "tick rows to compare them or to act on one")
refresh.button("Refresh", icon=":material/refresh:", key="runs.refresh", width="stretch",
               help="Read every run folder's latest state (a training run changes while you look)")

follow_active_runs([str(by_id[run_id].path) for run_id in table.active_ids(frame)])  # states already read
shown = filters(frame)
runs_table(shown)
if len(shown) < len(frame):
    st.caption(f"{len(shown)} of {len(frame)} runs match the filters.")

adopt_url_run(set(by_id))
keep_valid(CHOSEN_KEY, set(by_id))
labels = dict(zip(frame["id"], frame["name"] + " · " + frame["id"], strict=True))
chosen = st.multiselect("Selected runs", list(by_id), key=CHOSEN_KEY, format_func=labels.__getitem__,
                        placeholder="Tick rows in the table, or pick runs here")
if len(chosen) == 1:
    show_run(chosen[0])  # the other pages open on the run chosen here

if len(chosen) >= 2:
    st.subheader("Compare")
    compare([by_id[run_id] for run_id in chosen])

if chosen:
    st.subheader("Actions")
    target = chosen[0]
    if len(chosen) > 1:
        if st.session_state.get("runs.act_on") not in chosen:
            st.session_state.pop("runs.act_on", None)
        target = st.selectbox("Act on", chosen, key="runs.act_on", format_func=labels.__getitem__) or chosen[0]
    known_tags = sorted({tag for tags in frame["tags"] for tag in tags})
    actions_panel(manager, by_id[target], known_tags)
