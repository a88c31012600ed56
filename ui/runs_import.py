"""Importing a run from a zip uploaded in the browser (an export of this or another SSL Studio).

The upload is written to a private temporary folder and handed to ``sslcore.runs.archive.import_run``,
which checks every member before anything enters the runs folder; a refusal is shown as the engine
words it. Each uploaded file is imported once, however often the page reruns while it stays in the box.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from sslcore.runs import RunStore
from sslcore.runs.archive import ArchiveError, import_run
from sslcore.userdata.usage import dataset_problem
from ui.plain_text import escape_markdown
from ui.runs import RUN_PARAM

IMPORT_KEY = "runs.import"
_DONE_KEY = "runs.import.done"  # uploaded file id -> (True, run id) or (False, why it was refused)
_FALLBACK_NAME = "upload.zip"


def upload_file_name(name: str) -> str:
    """The uploaded file's own name (no folders), as recorded in the imported run; a safe stand-in if odd."""
    base = Path(name).name
    ok = base.lower().endswith(".zip") and base.isprintable() and 4 < len(base) <= 100 and not base.startswith(".")
    return base if ok else _FALLBACK_NAME


def import_upload(store: RunStore, name: str, data: bytes) -> tuple[bool, str]:
    """Import the zip ``data`` (uploaded as ``name``) into ``store``: (True, run id) or (False, the reason)."""
    with tempfile.TemporaryDirectory(prefix="ssl-import-") as tmp:
        path = Path(tmp) / upload_file_name(name)
        path.write_bytes(data)
        try:
            run = import_run(path, store)
        except ArchiveError as error:
            return False, str(error)
    return True, run.id


def import_box(store: RunStore) -> str | None:
    """An upload box for run zips; returns the id of a run imported in this page run, else None."""
    upload = st.file_uploader("Import a run exported as .zip", type="zip", key=IMPORT_KEY,
                              help="An export from the Runs page or `sslcore export`. It is checked before "
                                   "anything is added: expected files only, sizes capped, weights that fit the config.")
    if upload is None:
        return None
    done: dict[str, tuple[bool, str]] = st.session_state.setdefault(_DONE_KEY, {})
    fresh = upload.file_id not in done
    if fresh:
        with st.spinner(f"Checking {escape_markdown(upload.name)}…"):
            done[upload.file_id] = import_upload(store, upload.name, upload.getvalue())
    ok, detail = done[upload.file_id]
    if not ok:
        st.error(f"**{escape_markdown(upload.name)}** was not imported: {escape_markdown(detail)}",
                 icon=":material/block:")
        return None
    st.success(f"Imported **{escape_markdown(upload.name)}** as run {escape_markdown(detail)}.",
               icon=":material/check_circle:")
    problem = dataset_problem(store.get(detail))
    if problem:
        st.warning(escape_markdown(f"Run {detail}: {problem}."), icon=":material/image_not_supported:")
    st.page_link("app_pages/train.py", label="Open it on the Train page", query_params={RUN_PARAM: detail},
                 icon=":material/open_in_new:")
    return detail if fresh else None
