"""Adding images on the Data page: choose a zip or a folder, preview what would be stored, then store it.

Decoding runs in a separate process (``python -m sslcore data stage``, the CLI's own import), never in the
Streamlit server: its pool of decoding processes forks, which is only safe from a single-threaded process,
and the memory it used goes back to the system when it ends. It leaves a hidden staging folder under the
datasets folder, which the preview reads and **Store** renames into place (nothing is visible before). An
uploaded zip is written inside the datasets folder too, and deleted once decoded: nothing is written
anywhere else.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from sslcore.userdata import store, summary
from sslcore.userdata.importer import ImportOptions
from ui.images import image_grid
from ui.plain_text import escape_markdown

STAGED_KEY = "data.staged"
STAGE_TIMEOUT_S = 900
SAMPLES_PER_CLASS, MAX_CLASSES = 3, 10


@dataclass(frozen=True)
class Staged:
    """A previewed import: its hidden folder, and what it came from (for the default name)."""

    path: str
    source: str


def upload_cap_bytes() -> int:
    """The server's upload cap (``server.maxUploadSize``, MB): the same number the browser enforces."""
    return int(st.get_option("server.maxUploadSize")) * 1024 * 1024


def folder_choices(root: Path) -> list[str]:
    """Folders directly inside the data root that could be imported (not the stored datasets, not hidden)."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and not p.is_symlink() and p.name != store.STORE_FOLDER and not p.name.startswith("."))


def save_upload(root: Path, data: bytes, suffix: str = ".zip") -> Path:
    """Write an uploaded zip (or CSV) inside the datasets folder (hidden, swept if left behind); returns its path."""
    folder = store.store_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".upload-{secrets.token_hex(6)}{suffix}"
    path.write_bytes(data)
    return path


def stage(source: Path, root: Path, options: ImportOptions | None,
          table_args: list[str] | None = None) -> tuple[str | None, str | None]:
    """Run the import worker on ``source``: (staging folder, None) or (None, the reason it was refused).

    ``options``: how images are imported; for a CSV table, None and ``table_args`` (its target and overrides).
    """
    cmd = [sys.executable, "-m", "sslcore", "data", "stage", str(source), "--data-root", str(root),
           "--max-upload-mb", str(upload_cap_bytes() // 2**20)]
    if options is not None:
        cmd += ["--size", str(options.size)] + {"grey": ["--grey"], "rgb": ["--rgb"]}.get(options.mode, [])
        cmd += ["--unlabelled"] if options.labels == "none" else []
    cmd += table_args or []
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=STAGE_TIMEOUT_S, cwd=os.getcwd(),
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, f"decoding took longer than {STAGE_TIMEOUT_S // 60} minutes; import fewer images at a time"
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        answer = {}
    if "staging" in answer:
        return answer["staging"], None
    tail = " ".join(done.stderr.strip().splitlines()[-1:]) or f"exit status {done.returncode}"
    return None, answer.get("error") or f"the import process failed ({tail})"


def staged() -> Staged | None:
    """The import being previewed in this session, if its folder still exists."""
    current = st.session_state.get(STAGED_KEY)
    if current is None or not (Path(current.path) / store.MANIFEST).is_file():
        st.session_state.pop(STAGED_KEY, None)
        return None
    return current


def forget_staged() -> None:
    current = st.session_state.pop(STAGED_KEY, None)
    if current is not None:
        store.discard(Path(current.path))


def sample_pictures(samples: np.ndarray, labels: np.ndarray, class_names: list[str]) -> np.ndarray:
    """A grid: one column per class (up to 10), 3 images each; without labels the first 30, 10 a row."""
    if not class_names:
        count = min(len(samples), SAMPLES_PER_CLASS * MAX_CLASSES)
        return image_grid(np.asarray(samples[:count]), columns=min(count, MAX_CLASSES))
    firsts = [np.flatnonzero(labels == c)[:SAMPLES_PER_CLASS] for c in range(min(len(class_names), MAX_CLASSES))]
    order = [idx[r] for r in range(SAMPLES_PER_CLASS) for idx in firsts if r < len(idx)]
    return image_grid(np.asarray(samples[order]), columns=len(firsts))


def class_table(manifest: dict[str, Any], labels: np.ndarray, strata: np.ndarray | None) -> dict[str, list]:
    """Per class: images, and how many go to train and test under the default split (user text: a dataframe)."""
    import torch

    from sslcore.data import stratified_split  # torch: only once there is something to preview

    groups = labels if strata is None else strata
    train_idx, _ = stratified_split(torch.from_numpy(groups), 0.2, 0)
    in_train = np.zeros(len(labels), bool)
    in_train[train_idx.numpy()] = True
    names = list(manifest["class_names"]) + (["(no label)"] if (labels < 0).any() else [])
    values = list(range(len(manifest["class_names"]))) + ([-1] if (labels < 0).any() else [])
    unit = summary.unit(manifest)
    rows: dict[str, list] = {"class": [], unit: [], "train": [], "test": []}
    for name, value in zip(names, values, strict=True):
        mask = labels == value
        rows["class"].append(name)
        rows[unit].append(int(mask.sum()))
        rows["train"].append(int((mask & in_train).sum()))
        rows["test"].append(int((mask & ~in_train).sum()))
    return rows


def show_preview(folder: Path) -> dict[str, Any]:
    """Counts per class, a sample grid, skipped files and why, size in memory and the split; returns the manifest."""
    manifest = store.read_manifest(folder)
    samples, labels, strata = store.load_arrays(folder, manifest)
    st.markdown(escape_markdown(summary.headline(manifest, labels, strata)))
    left, right = st.columns([2, 3])
    left.dataframe(class_table(manifest, labels, strata), hide_index=True)
    right.image(sample_pictures(samples, labels, manifest["class_names"]), output_format="PNG",
                caption="One class per column" if manifest["class_names"] else "The first images")
    st.markdown(escape_markdown(summary.skipped_line(manifest)))
    if manifest.get("skipped_files"):
        rows = manifest["skipped_files"]
        st.dataframe({"file": [r[0] for r in rows], "reason": [r[1] for r in rows], "detail": [r[2] for r in rows]},
                     hide_index=True, height=min(300, 38 + 35 * len(rows)))
    return manifest
