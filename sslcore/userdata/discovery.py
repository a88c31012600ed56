"""The user's stored datasets as entries of ``sslcore.data.DATASETS``, so they appear wherever built-in ones do.

Built-in datasets register when ``sslcore.data`` is imported; the user's come and go at run time, so
:func:`refresh_user_datasets` (called by the CLI, by the app on every page run, and by ``find_dataset`` when a
name is not registered) brings the registry in line with the store under a data root: new and changed
datasets are (re)registered, removed ones dropped. Only manifests whose file changed are read again, so a
refresh costs a directory listing and a ``stat`` per dataset. A built-in name is never shadowed.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from sslcore.data.base import DatasetUnavailableError, ImageDataset
from sslcore.data.registry import DATASETS, DatasetSpec, Loaded
from sslcore.userdata import store

_lock = threading.Lock()  # Streamlit sessions are threads; a refresh swaps entries as one step
_seen: dict[str, tuple[Path, int]] = {}  # registered user dataset -> (manifest path, its mtime_ns)


def describe(manifest: dict[str, Any]) -> str:
    """One line for listings: '1,200 colour 32×32 images, 3 classes (cats, dogs, owls); from pets.zip'."""
    if manifest["kind"] == "table":
        names = manifest["class_names"]
        labels = f"{len(names)} classes" if names else "unlabelled"
        source = manifest.get("source", {}).get("name", "?")
        return (f"{manifest['count']:,} table rows × {manifest['sample_shape'][0]} columns, {labels}; "
                f"yours, from {source}")
    if manifest["kind"] != "image":
        return f"{manifest['count']:,} samples of kind {manifest['kind']}; yours"
    c, h, w = manifest["sample_shape"]
    names = manifest["class_names"]
    shown = ", ".join(names[:4]) + (", …" if len(names) > 4 else "")
    labels = f"{len(names)} classes ({shown})" if names else "unlabelled"
    labelled = sum(manifest.get("class_counts") or []) if names else 0
    if names and manifest.get("labels_source") and labelled < manifest["count"]:
        labels += f", {labelled:,} labelled"
    source = manifest.get("source", {}).get("name", "?")
    return f"{manifest['count']:,} {'colour' if c == 3 else 'grey'} {h}×{w} images, {labels}; yours, from {source}"


def _image_dataset(name: str, folder: Path) -> ImageDataset:
    manifest = store.read_manifest(folder)
    samples, labels, strata = store.load_arrays(folder, manifest)
    return ImageDataset(name, torch.from_numpy(samples), torch.from_numpy(labels), tuple(manifest["class_names"]),
                        None if strata is None else torch.from_numpy(strata))


def _table(name: str, folder: Path) -> Loaded:
    from sslcore.userdata.csv_import import stored_table  # late: the CSV module is only needed for tables

    manifest = store.read_manifest(folder)
    samples, labels, _ = store.load_arrays(folder, manifest)
    return stored_table(name, samples, labels, manifest)


#: How each stored kind becomes an in-memory dataset: images as they are, a table raw (split fits the rest).
READERS: dict[str, Callable[[str, Path], Loaded]] = {"image": _image_dataset, "table": _table}


def _loader(name: str, kind: str) -> Callable[[Path, bool], Loaded]:
    def load(root: Path, download: bool) -> Loaded:
        folder = store.store_dir(root) / name
        if not (folder / store.MANIFEST).is_file():
            raise DatasetUnavailableError(f"dataset {name!r} is not in {store.store_dir(root)}/ (it was removed, or "
                                          "added under another data root); add it again with `sslcore data add`")
        if kind not in READERS:
            raise DatasetUnavailableError(f"dataset {name!r} holds {kind} data, which this version cannot read")
        try:
            return READERS[kind](name, folder)
        except store.DatasetDamagedError as e:
            raise DatasetUnavailableError(f"dataset {name!r} is damaged: {e}; remove it and add it again") from None

    return load


def _register(name: str, manifest: dict[str, Any]) -> None:
    # A table's stored columns are not its model columns (one-hot levels and missing-indicators are added
    # when a run splits it), so its sample shape is unknown until then.
    shape = tuple(manifest["sample_shape"]) if manifest["kind"] == "image" else None
    spec = DatasetSpec(_loader(name, manifest["kind"]), embedded=False, official_split=False, kind=manifest["kind"],
                       sample_shape=shape, user=True,
                       version=f"{manifest['content_hash']}|{manifest['labels_hash']}")
    DATASETS.replace(name, describe(manifest), spec)


def refresh_user_datasets(root: str | Path) -> list[str]:
    """Register the datasets stored under ``root``, and drop registered user datasets whose folder is gone;
    returns the names found under ``root``.

    Datasets registered from another data root stay while their folders exist (a config names its root, and
    its loader reads from there). A damaged manifest is skipped here (``sslcore data list`` and the Data
    page show why).
    """
    folders = store.dataset_folders(root)
    with _lock:
        present = []
        for folder in folders:
            name = folder.name
            if name in DATASETS and not DATASETS.get(name).user:
                continue  # a folder named like a built-in dataset (made by hand): never shadows it
            path = (folder / store.MANIFEST).resolve()
            try:
                mtime = path.stat().st_mtime_ns
                if _seen.get(name) != (path, mtime) or name not in DATASETS:
                    _register(name, store.read_manifest(folder))
                    _seen[name] = (path, mtime)
            except (OSError, store.DatasetDamagedError):
                DATASETS.unregister(name)
                _seen.pop(name, None)
                continue
            present.append(name)
        for entry in list(DATASETS):
            if entry.obj.user and entry.name not in present and not _seen.get(entry.name, (Path(), 0))[0].is_file():
                DATASETS.unregister(entry.name)
                _seen.pop(entry.name, None)
    return present
