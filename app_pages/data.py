"""Data: bring your own images (a zip, or a folder inside the data root), preview them, store them, manage them.

Before anything is stored the page shows the image count per class, a sample grid, the skipped files and
why, the size in memory and the split. A stored dataset appears wherever the built-in ones do (Train,
Embeddings, Evaluate, ``sslcore datasets``). Decoding runs in its own process (see ``ui.data_import``).
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from sslcore.config import ConfigError
from sslcore.data import DATASETS
from sslcore.userdata import store
from sslcore.userdata.discovery import refresh_user_datasets
from sslcore.userdata.importer import ImportOptions, import_options
from ui import data_import, data_list, forms
from ui.jobs import data_root, runs_dir
from ui.plain_text import escape_markdown

UPLOAD, FOLDER = "Upload a zip", "A folder in the data root"

root = Path(data_root())
store.sweep_stale(root)
refresh_user_datasets(root)
st.title("Data")
st.caption("Your own pictures, as a zip or a folder: sub-folders are classes (cats/…, dogs/…), a flat folder is "
           "an unlabelled set. PNG, JPEG, WebP, BMP and GIF; every image is resized to one square size.")
data_list.show_flash()


def choose_source() -> tuple[Path | None, bytes | None, str]:
    """(folder, None, name) or (None, zip bytes, name) or (None, None, '') when nothing is chosen yet."""
    kind = st.radio("Images from", [UPLOAD, FOLDER], horizontal=True, key="data.source")
    if kind == UPLOAD:
        cap = data_import.upload_cap_bytes()
        upload = st.file_uploader("Zip of images", type="zip", key="data.upload",
                                  help=f"At most {cap // 2**20} MB (the server's upload limit).")
        if upload is None:
            return None, None, ""
        data = upload.getvalue()
        if len(data) > cap:
            st.error(f"The zip is {len(data) / 2**20:.1f} MB, over the {cap // 2**20} MB upload limit.")
            return None, None, ""
        return None, data, Path(upload.name).stem
    folders = data_import.folder_choices(root)
    if not folders:
        st.info(f"No folders in the data root ({root.resolve()}): copy a folder of images there, or upload a zip.")
        return None, None, ""
    folder = st.selectbox("Folder", folders, key="data.folder", help=f"Folders inside {root.resolve()}")
    return root / folder, None, folder


def preview(folder: Path | None, upload: bytes | None, source: str, options: ImportOptions) -> None:
    """Decode the chosen images into a staging folder (replacing an earlier preview)."""
    data_import.forget_staged()
    path = folder if folder is not None else data_import.save_upload(root, upload or b"")
    try:
        with st.spinner("Decoding the images…"):
            staging, error = data_import.stage(path, root, options)
    finally:
        if folder is None:
            path.unlink(missing_ok=True)
    if error:
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


st.subheader("Add images")
folder, upload, source = choose_source()
try:
    options = import_options(**forms.section_form(ImportOptions, "import", key_prefix="data.options"))
except ConfigError as error:
    st.error(str(error))
    options = None
if st.button("Preview", type="primary", icon=":material/preview:",
             disabled=options is None or (folder is None and upload is None)):
    preview(folder, upload, source, options)

current = data_import.staged()
if current is not None:
    st.subheader("Preview")
    st.caption("Nothing is stored yet. Check the classes, the pictures and what was skipped, then store it.")
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
