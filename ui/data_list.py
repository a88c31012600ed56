"""The datasets the user added, on the Data page: facts, labels added later, and Remove (asks first).

Remove and label run as button callbacks, before the page is drawn, so the list below never shows a
dataset that is gone. Removal is refused while a run that uses the dataset is queued, training or being
evaluated; finished runs keep their results and say what is missing.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from sslcore.userdata import store, summary
from sslcore.userdata.labels import apply_labels, read_label_csv
from sslcore.userdata.sources import ImportRefused
from sslcore.userdata.usage import DatasetInUseError, remove_dataset, runs_using
from ui.flash import Flash, Kind
from ui.plain_text import escape_markdown

CONFIRM_KEY = "data.confirm_remove"
#: What the last Remove, Label or Store did, shown at the top of the next page run.
FLASH = Flash("data.flash")


def flash(kind: Kind, text: str) -> None:
    """A plain-text message (names and errors as they are) for the top of the next page run."""
    FLASH.set(kind, escape_markdown(text))


def _remove(name: str, root: Path, runs_dir: Path) -> None:
    st.session_state.pop(CONFIRM_KEY, None)
    try:
        idle = remove_dataset(name, root, runs_dir)
    except (ValueError, DatasetInUseError, OSError) as error:
        flash("error", f"{name} was not removed: {error}")
        return
    kept = f"; {len(idle)} finished run(s) trained on it keep their results" if idle else ""
    flash("success", f"Removed dataset {name}{kept}.")


def _label(name: str, root: Path, key: str) -> None:
    upload = st.session_state.get(key)
    if upload is None:
        return
    try:
        result = apply_labels(root, name, read_label_csv(upload.getvalue(), upload.name), upload.name)
    except (ImportRefused, ValueError, OSError) as error:
        flash("error", f"The labels of {upload.name} were not added: {error}")
        return
    missed = f"; {len(result['unmatched'])} names matched no image" if result["unmatched"] else ""
    classes = len(result["class_names"])
    flash("success", f"Labelled {result['matched']:,} images of {name} in {classes} classes{missed}.")


def confirm_box(name: str, root: Path, runs_dir: Path) -> None:
    busy, idle = runs_using(name, runs_dir)
    with st.container(border=True):
        if busy:
            st.error(f"{len(busy)} run(s) use this dataset now (queued, training or being evaluated): stop them or "
                     "let them finish before removing it.", icon=":material/block:")
        else:
            kept = (f" {len(idle)} finished run(s) trained on it keep their results, but cannot be evaluated, "
                    "resumed or mapped until the same images are added again.") if idle else ""
            st.warning(f"Remove this dataset? Its stored images are deleted.{kept}", icon=":material/warning:")
        yes, no = st.columns(2)
        yes.button("Remove", key=f"data.remove.yes.{name}", type="primary", disabled=bool(busy),
                   on_click=_remove, args=(name, root, runs_dir), icon=":material/delete:")
        no.button("Cancel", key=f"data.remove.no.{name}", on_click=st.session_state.pop, args=(CONFIRM_KEY, None))


def dataset_card(folder: Path, root: Path, runs_dir: Path) -> None:
    name = folder.name
    with st.container(border=True):
        try:
            manifest = store.read_manifest(folder)
            _, labels, strata = store.load_arrays(folder, manifest)
        except store.DatasetDamagedError as error:
            st.error(escape_markdown(f"{name}: damaged ({error}). Remove it and add it again."))
            manifest = None
        if manifest is not None:
            st.markdown(f"**{name}** · " + escape_markdown(summary.headline(manifest, labels, strata)))
            st.text(f"{summary.skipped_line(manifest)}\nfrom {manifest['source'].get('name')} · content "
                    f"{manifest['content_hash'][7:19]}…")
            if manifest["class_names"]:
                st.text("classes: " + " · ".join(summary.class_lines(manifest)[:12]))
            key = f"data.labels.{name}"
            st.file_uploader("Add labels: a CSV of file,label rows", type="csv", key=key, on_change=_label,
                             args=(name, root, key), help="Files are matched by their name in the dataset (or "
                             "the bare file name). The train/test split does not change.")
        st.button("Remove…", key=f"data.remove.{name}", icon=":material/delete:",
                  on_click=st.session_state.__setitem__, args=(CONFIRM_KEY, name))
        if st.session_state.get(CONFIRM_KEY) == name:
            confirm_box(name, root, runs_dir)


def stored_datasets(root: Path, runs_dir: Path) -> None:
    """Every dataset in the store, by name; a note when there is none."""
    folders = store.dataset_folders(root)
    if not folders:
        st.info("No datasets of your own yet: add a zip or a folder of images, or a CSV table, above.")
        return
    for folder in folders:
        dataset_card(folder, root, runs_dir)
