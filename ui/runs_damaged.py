"""Damaged runs on every page that lists runs: which run has a file that cannot be read, why, and a way to
delete it (after a confirmation). Every other run stays listed and usable.

A file is damaged when it is not UTF-8, not JSON or not the object it should be (a hand edit, a foreign
folder, a crash on another file system): see ``sslcore.runs.summary``. Deleting runs as a button callback,
before the page is drawn, so nothing below shows a run that is gone.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import streamlit as st

from sslcore.runs import DAMAGED, Run, RunNotFoundError, RunStore
from sslcore.runs.actions import RunBusyError, delete_run
from sslcore.runs.summary import RunSummary
from ui.flash import Flash
from ui.plain_text import escape_markdown
from ui.runs import find_run, forget_run, selected_run_id
from ui.runs_table import cached_summary
from ui.server import job_manager

_CONFIRM_KEY = "runs.damaged.confirm"  # the id of the damaged run whose deletion awaits a confirmation
_FLASH = Flash("runs.damaged.flash")  # what the last delete did, shown once


def damaged_runs(runs: Iterable[Run]) -> list[RunSummary]:
    """Summaries of those of ``runs`` with a damaged file (cached: a few ``stat`` calls per run)."""
    return [s for s in (cached_summary(run) for run in runs) if s.damaged]


def _ask(run_id: str) -> None:
    st.session_state[_CONFIRM_KEY] = run_id


def _keep() -> None:
    st.session_state.pop(_CONFIRM_KEY, None)


def _delete(run_id: str) -> None:
    st.session_state.pop(_CONFIRM_KEY, None)
    store = job_manager().store
    try:
        delete_run(store, find_run(store, run_id))
    except (RunNotFoundError, RunBusyError, ValueError, OSError) as error:
        _FLASH.set("error", f"Nothing was deleted: {escape_markdown(error)}")
        return
    if selected_run_id() == run_id:
        forget_run()
    _FLASH.set("success", f"Deleted the damaged run {escape_markdown(run_id)}.")


def delete_controls(summary: RunSummary, key: str) -> None:
    """A Delete button for a damaged run; pressed, it asks for a confirmation first."""
    if st.session_state.get(_CONFIRM_KEY) != summary.id:
        st.button("Delete", key=f"{key}.delete.{summary.id}", icon=":material/delete:", on_click=_ask,
                  args=(summary.id,), help="Remove this run's folder for good")
        return
    really, keep = st.columns(2)
    really.button("Really delete", type="primary", key=f"{key}.really.{summary.id}", on_click=_delete,
                  args=(summary.id,))
    keep.button("Keep it", key=f"{key}.keep.{summary.id}", on_click=_keep)


def damaged_panel(run: Run, key: str) -> bool:
    """For a run that cannot be used (status or config unreadable): the reason and a Delete button; True if so."""
    summary = cached_summary(run)
    if summary.state != DAMAGED:
        return False
    st.error(f"Run {escape_markdown(run.id)} is damaged: {escape_markdown(summary.damaged)}. It cannot be shown, "
             "resumed or evaluated; the other runs are not affected.", icon=":material/error:")
    delete_controls(summary, key)
    return True


def damaged_notice(store: RunStore, key: str, runs: Sequence[Run] | None = None) -> None:
    """A warning naming each damaged run of ``store`` with the reason and a Delete button; nothing if none.

    key: a prefix for the widgets, unique on the page; runs: ``store.list()`` if the page has it already.
    """
    _FLASH.show()
    damaged = damaged_runs(store.list() if runs is None else runs)
    if not damaged:
        return
    with st.container(border=True):
        st.warning(f"{len(damaged)} run{'s' if len(damaged) > 1 else ''} with a file that cannot be read. The "
                   "other runs are not affected.", icon=":material/warning:")
        for summary in damaged:
            text, action = st.columns([5, 2], vertical_alignment="center")
            usable = "" if summary.state == DAMAGED else " (the run itself can still be used)"
            name, run_id = escape_markdown(summary.name), escape_markdown(summary.id)
            text.markdown(f"**{name}** · {run_id}: {escape_markdown(summary.damaged)}{usable}")
            with action:
                delete_controls(summary, key)
