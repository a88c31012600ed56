"""Data: bring your own images (a zip, or a folder inside the data root) or a CSV table, preview them, store them,
manage them.

Before anything is stored the page shows the image count per class, a sample grid, the skipped files and
why, the size in memory and the split (for a table: rows per class, the column types and the first rows).
A stored dataset appears wherever the built-in ones do (Train, Embeddings, Evaluate, ``sslcore datasets``).
Decoding runs in its own process (see ``ui.data_import``).
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from sslcore.config import ConfigError
from sslcore.data import DATASETS
from sslcore.userdata import store
from sslcore.userdata.discovery import refresh_user_datasets
from sslcore.userdata.importer import ImportOptions, import_options
from ui import data_import, data_list, data_table, forms
from ui.plain_text import escape_markdown
from ui.server import data_root, runs_dir

UPLOAD, FOLDER, TABLE = "Upload a zip", "A folder in the data root", "Upload a CSV table"

root = Path(data_root())
store.sweep_stale(root)
refresh_user_datasets(root)
st.title("Data")
st.caption("Your own pictures, as a zip or a folder: sub-folders are classes (cats/…, dogs/…), a flat folder is "
           "an unlabelled set. PNG, JPEG, WebP, BMP and GIF; every image is resized to one square size. Or a CSV "
           "table: one row per sample, numeric and categorical columns, and a target column for the classes.")
data_list.FLASH.show()


def pick_upload(label: str, kind: str, key: str) -> tuple[bytes | None, str]:
    """An uploaded file's bytes and name stem, or (None, '') when none is chosen or it is over the cap."""
    cap = data_import.upload_cap_bytes()
    chosen = st.file_uploader(label, type=kind, key=key, help=f"At most {cap // 2**20} MB (the server's upload limit).")
    if chosen is None:
        return None, ""
    data = chosen.getvalue()
    if len(data) > cap:
        st.error(f"The {kind} file is {len(data) / 2**20:.1f} MB, over the {cap // 2**20} MB upload limit.")
        return None, ""
    return data, Path(chosen.name).stem


def choose_source(kind: str) -> tuple[Path | None, bytes | None, str]:
    """(folder, None, name) or (None, zip/CSV bytes, name) or (None, None, '') when nothing is chosen yet."""
    if kind in (UPLOAD, TABLE):
        data, name = pick_upload("Zip of images", "zip", "data.upload") if kind == UPLOAD else \
            pick_upload("CSV table", "csv", "data.csv")
        return None, data, name
    folders = data_import.folder_choices(root)
    if not folders:
        st.info(f"No folders in the data root ({root.resolve()}): copy a folder of images there, or upload a zip.")
        return None, None, ""
    folder = st.selectbox("Folder", folders, key="data.folder", help=f"Folders inside {root.resolve()}")
    return (root / folder, None, folder) if folder is not None else (None, None, "")


def preview(folder: Path | None, upload: bytes | None, source: str, options: ImportOptions | None,
            table: data_table.TableChoices | None = None) -> None:
    """Decode the chosen images (or parse the CSV) into a staging folder (replacing an earlier preview)."""
    data_import.forget_staged()
    suffix = ".csv" if table is not None else ".zip"
    path = folder if folder is not None else data_import.save_upload(root, upload or b"", suffix)
    try:
        with st.spinner("Reading the table…" if table is not None else "Decoding the images…"):
            staging, error = data_import.stage(path, root, options, table.args() if table is not None else None)
    finally:
        if folder is None:
            path.unlink(missing_ok=True)
    if error or staging is None:  # the import gives a staging folder or the reason it refused
        st.error(escape_markdown(f"Nothing was stored: {error}"), icon=":material/block:")
        return
    st.session_state[data_import.STAGED_KEY] = data_import.Staged(staging, source)


def store_staged(staged: data_import.Staged, name: str) -> None:
    try:
        folder = store.commit(Path(staged.path), name.strip(), DATASETS.names())
    except ValueError as error:
        st.error(escape_markdown(str(error)), icon=":material/block:")
        return
    st.session_state.pop(data_import.STAGED_KEY, None)
    refresh_user_datasets(root)
    data_list.flash("success", f"Stored dataset {folder.name}: pick it on the Train page.")
    st.rerun()


st.subheader("Add images or a table")
kind = st.radio("From", [UPLOAD, FOLDER, TABLE], horizontal=True, key="data.source") or UPLOAD
folder, upload, source = choose_source(kind)
options, table, ready = None, None, folder is not None or upload is not None
if kind == TABLE:
    columns, problem = data_table.header_columns(upload) if upload is not None else ([], None)
    if problem:
        st.error(f"This CSV cannot be read: {problem}.")
    table = data_table.choose_columns(columns) if columns else None
    ready = table is not None
else:
    try:
        options = import_options(**forms.section_form(ImportOptions, "import", key_prefix="data.options"))
    except ConfigError as error:
        st.error(str(error))
        ready = False
if st.button("Preview", type="primary", icon=":material/preview:", disabled=not ready):
    preview(folder, upload, source, options, table)

current = data_import.staged()
if current is not None:
    st.subheader("Preview")
    st.caption("Nothing is stored yet. Check the classes, the pictures and what was skipped, then store it.")
    if store.read_manifest(Path(current.path))["kind"] == "table":
        data_table.show_table_preview(Path(current.path))
    else:
        data_import.show_preview(Path(current.path))
    default = "".join(c if c.isalnum() or c in "_-" else "_" for c in current.source).strip("_")[:40] or "my_images"
    name = st.text_input("Name", value=default, key="data.name", max_chars=40,
                         help="Letters, digits, _ and -; it must differ from every other dataset's name.")
    keep, drop = st.columns(2)
    if keep.button("Store", type="primary", icon=":material/save:"):
        store_staged(current, name)
    if drop.button("Discard", icon=":material/close:"):
        data_import.forget_staged()
        st.rerun()

st.subheader("Your datasets")
data_list.stored_datasets(root, runs_dir())
