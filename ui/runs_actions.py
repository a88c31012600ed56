"""What a person can do to one run from the Runs page: resume, stop, train again (as is or edited),
export, rename and tag, and delete after a confirmation.

Training never happens here: resume and train-again ask the job manager for a worker process and open
the Train page to watch it. Actions that change which runs exist (delete) run as button callbacks,
before the page is drawn, so the table and the run choice below never show a run that is gone.
"""
from __future__ import annotations

import functools
import tempfile
from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from sslcore.config import ConfigError
from sslcore.runs import ACTIVE_STATES, Run, RunNotFoundError
from sslcore.runs.actions import RunBusyError, delete_run, describe, resume_blocker
from sslcore.runs.archive import export_run
from sslcore.runs.process_manager import JobManager
from sslcore.runs.store import MAX_NAME_CHARS, clean_run_name
from sslcore.runs.summary import summary_stamps
from sslcore.runs.weights import ENCODER_FILE
from ui.flash import Flash
from ui.forms import PREFILLED_KEY
from ui.plain_text import escape_markdown
from ui.runs import FROM_PARAM, RUN_PARAM, find_run, forget_run, selected_run_id
from ui.runs_damaged import damaged_panel
from ui.runs_table import cached_summary
from ui.server import job_manager, submit_or_explain

TRAIN_PAGE = "app_pages/train.py"
#: Session keys: the runs chosen on the page, a delete awaiting confirmation, a message for the next run.
CHOSEN_KEY = "runs.chosen"
CONFIRM_KEY = "runs.confirm_delete"
#: What the last action on a run did (Markdown: names and errors escaped where the text is made).
FLASH = Flash("runs.flash")
flash = FLASH.set
_AGAIN = " (again)"


def again_name(name: str) -> str:
    """The display name of a run trained again from one called ``name`` (within the name length limit)."""
    base = name[: -len(_AGAIN)] if name.endswith(_AGAIN) else name
    return base[: MAX_NAME_CHARS - len(_AGAIN)] + _AGAIN


def export_blocker(run: Run) -> str | None:
    """Why ``run`` cannot be exported now (checked before offering a download); None if it can."""
    if (damage := cached_summary(run).damaged) is not None:
        return f"run {run.id} is damaged: {damage}"
    if run.state in ACTIVE_STATES and run.is_alive():
        return f"run {run.id} is still {run.state}; stop it or let it finish before exporting"
    if not ((run.checkpoint_dir / "last.pt").exists() or (run.checkpoint_dir / ENCODER_FILE).exists()):
        return f"run {run.id} has no weights yet: it stopped before its first checkpoint"
    return None


def export_bytes(run: Run) -> bytes:
    """The run as one zip (see ``sslcore.runs.archive``), rebuilt only when the run's files changed."""
    last = run.checkpoint_dir / "last.pt"
    checkpoint = last.stat().st_mtime_ns if last.exists() else None
    return _export_bytes(str(run.path), summary_stamps(run), checkpoint)


@functools.lru_cache(maxsize=2)
def _export_bytes(run_path: str, stamps: tuple, checkpoint_mtime: int | None) -> bytes:
    # stamps and checkpoint_mtime are only the cache key. Streamlit calls this on click, in a thread without
    # a script context, so a plain lru_cache (the last two exports, shared by sessions) rather than st.cache_data.
    with tempfile.TemporaryDirectory() as tmp:
        return export_run(Run(Path(run_path)), Path(tmp) / "run.zip").read_bytes()


# -- callbacks (run before the page is drawn) --------------------------------------------------------

def _ask_delete(run_id: str) -> None:
    st.session_state[CONFIRM_KEY] = run_id


def _keep(run_id: str) -> None:
    st.session_state.pop(CONFIRM_KEY, None)


def _really_delete(run_id: str) -> None:
    st.session_state.pop(CONFIRM_KEY, None)
    store = job_manager().store
    try:
        run = find_run(store, run_id)
        name = run.status().get("name", run_id)
        delete_run(store, run)  # a queued or running job is stopped first
    except (RunNotFoundError, RunBusyError, ValueError, OSError) as error:
        flash("error", f"Nothing was deleted: {escape_markdown(error)}")
        return
    st.session_state[CHOSEN_KEY] = [i for i in st.session_state.get(CHOSEN_KEY, []) if i != run_id]
    if selected_run_id() == run_id:
        forget_run()
    flash("success", f"Deleted **{escape_markdown(name)}** ({escape_markdown(run_id)}).")


def _stop(run_id: str) -> None:
    manager = job_manager()
    try:
        manager.cancel(find_run(manager.store, run_id))
    except RunNotFoundError as error:
        flash("error", escape_markdown(error))
        return
    flash("success", "Asked the run to stop; it ends as cancelled after a final checkpoint.")


# -- drawing -------------------------------------------------------------------------------------------

def actions_panel(manager: JobManager, run: Run, known_tags: Sequence[str] = ()) -> None:
    """Buttons and the name/tags form for ``run``; ``known_tags`` are offered in the tag picker."""
    if damaged_panel(run, key="runs.actions"):  # only Delete makes sense
        return
    name = run.status().get("name", run.id)
    st.markdown(f"#### {escape_markdown(name)}")
    st.caption(f"{escape_markdown(run.id)} · {escape_markdown(describe(run))}")
    buttons = st.columns(5)
    if run.state in ACTIVE_STATES and run.is_alive():
        buttons[0].button("Stop", icon=":material/stop:", key="runs.stop", on_click=_stop, args=(run.id,),
                          width="stretch")
    else:
        blocker = resume_blocker(run)
        if buttons[0].button("Resume", icon=":material/play_arrow:", key="runs.resume", disabled=blocker is not None,
                             help=blocker or "Continue from the last checkpoint: same run, same metric log",
                             width="stretch"):
            _resume(manager, run)
    if buttons[1].button("Train again", icon=":material/replay:", key="runs.again", width="stretch",
                         help="A new run with exactly this config"):
        _train_again(manager, run, name)
    if buttons[2].button("Edit and train again", icon=":material/tune:", key="runs.edit", width="stretch",
                         help="Open the Train page with its form filled in from this run's config"):
        st.session_state.pop(PREFILLED_KEY, None)  # fill it again even if this run filled it before
        st.switch_page(TRAIN_PAGE, query_params={FROM_PARAM: run.id})
    reason = export_blocker(run)
    buttons[3].download_button("Export .zip", data=lambda: export_bytes(run), file_name=f"{run.id}.zip",
                               mime="application/zip", on_click="ignore", icon=":material/download:",
                               disabled=reason is not None, width="stretch", key="runs.export",
                               help=reason or "config, metrics (JSON lines and CSV), encoder weights "
                                              "(safetensors), evaluation and a README with a loading snippet")
    buttons[4].button("Delete", icon=":material/delete:", key="runs.delete", on_click=_ask_delete, args=(run.id,),
                      width="stretch")
    if st.session_state.get(CONFIRM_KEY) == run.id:
        _confirm_delete(manager, run, name)
    _edit_form(run, name, known_tags)


def _resume(manager: JobManager, run: Run) -> None:
    try:
        manager.resume(run)
    except RuntimeError as error:
        st.error(f"Could not resume: {escape_markdown(error)}")
        return
    st.switch_page(TRAIN_PAGE, query_params={RUN_PARAM: run.id})


def _train_again(manager: JobManager, run: Run, name: str) -> None:
    try:
        config = run.config()
    except ConfigError as error:  # a run from an older sslcore whose config no longer validates
        st.error(f"Cannot train {escape_markdown(run.id)} again as is: {escape_markdown(error)}. "
                 "Use **Edit and train again**.")
        return
    new = submit_or_explain(config, name=again_name(name))
    if new is not None:
        st.switch_page(TRAIN_PAGE, query_params={RUN_PARAM: new.id})


def _confirm_delete(manager: JobManager, run: Run, name: str) -> None:
    stopping = " Its job is stopped first." if run.state in ACTIVE_STATES else ""
    shown = escape_markdown(name)
    st.warning(f"Delete **{shown}** ({escape_markdown(describe(run))})? Its folder, with checkpoints, metrics, "
               f"snapshots and evaluation, is removed for good.{stopping}", icon=":material/warning:")
    really, keep = st.columns([2, 1])
    really.button(f"Really delete {shown}", type="primary", key="runs.delete.confirm", on_click=_really_delete,
                  args=(run.id,), width="stretch")
    keep.button("Keep it", key="runs.delete.keep", on_click=_keep, args=(run.id,), width="stretch")


def _edit_form(run: Run, name: str, known_tags: Sequence[str]) -> None:
    """Rename and tag in one form: both are checked before either is written."""
    current = run.tags()
    with st.form(f"runs.edit.{run.id}", border=False):
        left, right = st.columns(2)
        new_name = left.text_input("Name", value=name, max_chars=MAX_NAME_CHARS, key=f"runs.name.{run.id}")
        tags = right.multiselect("Tags", sorted({*known_tags, *current}), default=current, accept_new_options=True,
                                 key=f"runs.tags.{run.id}", placeholder="Type a tag and press Enter")
        if not st.form_submit_button("Save name and tags", icon=":material/save:"):
            return
    try:
        clean = clean_run_name(new_name)  # checked first, so a bad tag below leaves the name unchanged too
        if tags != current:
            run.set_tags(tags)
        if clean != name:
            run.rename(clean)
    except ValueError as error:
        st.error(escape_markdown(error))
        return
    tagged = f" · tags {escape_markdown(', '.join(tags))}" if tags else " · no tags"
    flash("success", f"Saved: **{escape_markdown(clean)}**{tagged}")
    st.rerun()  # redraw the table with the new name
