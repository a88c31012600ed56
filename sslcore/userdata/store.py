"""The user's datasets on disk: ``<data root>/user/<name>/``, one folder each, written all at once.

A dataset folder holds ``samples.npy`` (uint8 images (N, C, H, W), or float32 table rows (N, F)),
``labels.npy`` (int64 (N,), -1 = no label; after labels are added later, ``labels-<hash>.npy``),
optionally ``strata.npy`` (the labels at import, which the train/test split keeps following once labels
change) and ``manifest.json``: kind, dtype, sample shape, count, class names, file names, content hash,
source, options, skipped files and why, created. Arrays are read with ``allow_pickle=False``.

A dataset is built in a hidden ``.staging-*`` folder and becomes visible in one rename; a removal renames
it to a hidden ``.removing-*`` folder first. So the store never shows a half-written or half-removed
dataset, and a crash leaves only hidden folders, swept by :func:`sweep_stale`.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from sslcore.atomic import write_atomic

STORE_FOLDER = "user"
MANIFEST = "manifest.json"
SAMPLES = "samples.npy"
STRATA = "strata.npy"
FORMAT = 1
#: The kinds a stored dataset may be, and the dtype of its samples.
DTYPES = {"image": "uint8", "table": "float32"}
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
_STALE_SECONDS = 24 * 3600
DATA_ROOT_ENV = "SSL_DATA_ROOT"


def default_data_root() -> str:
    """``$SSL_DATA_ROOT``, else ``data``: where the app and the ``data`` commands keep datasets."""
    return os.environ.get(DATA_ROOT_ENV, "data")


class DatasetDamagedError(ValueError):
    """A stored dataset whose files do not match its manifest; the message names the folder and the file."""


def store_dir(root: str | Path) -> Path:
    return Path(root) / STORE_FOLDER


def check_name(name: str, taken: Iterable[str]) -> str:
    """``name`` if it can name a new dataset; ValueError saying why not (path characters, clash)."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"dataset name {name!r} is not allowed: expected 1 to 40 letters, digits, '_' or '-', "
                         "starting with a letter or digit (no spaces, dots or path characters)")
    clash = next((t for t in taken if t.lower() == name.lower()), None)
    if clash is not None:
        raise ValueError(f"dataset name {name!r} is taken (by the dataset {clash!r}): choose another name")
    return name


def array_hash(array: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes: the content hash runs record."""
    digest = hashlib.sha256(f"{array.dtype.str}|{array.shape}|".encode())
    digest.update(np.ascontiguousarray(array).reshape(-1).view(np.uint8).data)  # the raw bytes, no copy
    return "sha256:" + digest.hexdigest()


def _save(path: Path, array: np.ndarray) -> None:
    with open(path, "xb") as f:
        np.save(f, array, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())


def write_json(path: Path, obj: Any) -> None:
    text = json.dumps(obj, indent=1, ensure_ascii=False)
    write_atomic(path, lambda f: f.write(text.encode()), durable=True)


def stage(root: str | Path, samples: np.ndarray, labels: np.ndarray, manifest: dict[str, Any]) -> Path:
    """Write a dataset into a new hidden staging folder of the store; returns the folder.

    ``manifest`` gets the format, kind checks, count, hashes and file names of the arrays added.
    """
    kind = manifest["kind"]
    if DTYPES.get(kind) != samples.dtype.name or labels.dtype != np.int64 or labels.shape != samples.shape[:1]:
        raise ValueError(f"a {kind} dataset needs {DTYPES.get(kind)} samples and int64 labels (N,), got "
                         f"{samples.dtype} {samples.shape} and {labels.dtype} {labels.shape}")
    folder = store_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder))
    try:
        _save(staging / SAMPLES, samples)
        _save(staging / "labels.npy", labels)
        manifest = {"format": FORMAT, **manifest, "dtype": samples.dtype.name,
                    "sample_shape": list(samples.shape[1:]), "count": int(samples.shape[0]), "samples_file": SAMPLES,
                    "labels_file": "labels.npy", "content_hash": array_hash(samples), "labels_hash": array_hash(labels)}
        write_json(staging / MANIFEST, manifest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging


def commit(staging: Path, name: str, taken: Iterable[str]) -> Path:
    """Name a staged dataset and move it into the store in one rename; returns its folder."""
    check_name(name, taken)
    manifest = read_manifest(staging)
    write_json(staging / MANIFEST, {**manifest, "name": name, "created": time.time()})
    target = staging.parent / name
    try:
        os.rename(staging, target)  # fails if the folder exists (and is not empty): no overwrite, no race
    except OSError:
        raise ValueError(f"dataset name {name!r} is taken: {target} exists; choose another name") from None
    return target


def discard(staging: Path) -> None:
    """Remove a staged dataset that was not stored (only hidden staging folders of a store)."""
    if staging.name.startswith(".staging-") and staging.parent.name == STORE_FOLDER:
        shutil.rmtree(staging, ignore_errors=True)


def remove(folder: Path) -> None:
    """Delete a stored dataset: renamed to a hidden name first, so no half-removed dataset is ever listed."""
    doomed = folder.parent / f".removing-{folder.name}-{secrets.token_hex(4)}"
    os.rename(folder, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def sweep_stale(root: str | Path, older_than: float = _STALE_SECONDS) -> None:
    """Delete hidden staging/removal folders and uploaded zips left by a crash (older than ``older_than`` s)."""
    folder = store_dir(root)
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.name.startswith((".staging-", ".removing-", ".upload-")):
            try:
                if time.time() - path.stat().st_mtime > older_than:
                    shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink()
            except OSError:
                pass  # gone already, or not removable now: the next sweep tries again


def dataset_folders(root: str | Path) -> list[Path]:
    """The stored datasets' folders (visible names only), sorted by name."""
    folder = store_dir(root)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if NAME_PATTERN.fullmatch(p.name) and (p / MANIFEST).is_file())


def read_manifest(folder: Path) -> dict[str, Any]:
    """The folder's manifest, checked for the fields every reader relies on; DatasetDamagedError if not."""
    try:
        manifest = json.loads((folder / MANIFEST).read_bytes())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetDamagedError(f"dataset folder {folder}: {MANIFEST} is unreadable ({e})") from None
    problem = _manifest_problem(manifest)
    if problem:
        raise DatasetDamagedError(f"dataset folder {folder}: {MANIFEST} {problem}")
    return manifest


def _manifest_problem(m: Any) -> str | None:
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        return f"is not a format-{FORMAT} manifest"
    if m.get("kind") not in DTYPES or m.get("dtype") != DTYPES[m["kind"]]:
        return f"has kind {m.get('kind')!r} / dtype {m.get('dtype')!r}, expected one of {DTYPES}"
    shape, count = m.get("sample_shape"), m.get("count")
    if not isinstance(shape, list) or not all(isinstance(s, int) and s > 0 for s in shape) or len(shape) not in (1, 3):
        return f"has sample_shape {shape!r}"
    names, files = m.get("class_names"), m.get("files")
    if not isinstance(count, int) or not isinstance(names, list) or not all(isinstance(c, str) for c in names):
        return "lacks its count or class names"
    if not isinstance(files, list) or len(files) != count:
        return "lists a different number of files than it has samples"
    for key in ("samples_file", "labels_file"):
        if not isinstance(m.get(key), str) or not re.fullmatch(r"[a-z0-9-]+\.npy", m[key]):
            return f"has a bad {key} {m.get(key)!r}"
    return None


def load_arrays(folder: Path, manifest: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(samples, labels, strata or None) as the manifest describes them; DatasetDamagedError on any mismatch."""
    try:
        samples = np.load(folder / manifest["samples_file"], allow_pickle=False)
        labels = np.load(folder / manifest["labels_file"], allow_pickle=False)
        strata = np.load(folder / STRATA, allow_pickle=False) if (folder / STRATA).exists() else None
    except (OSError, ValueError, EOFError) as e:
        raise DatasetDamagedError(f"dataset folder {folder}: an array file is missing or unreadable ({e})") from None
    count, shape = manifest["count"], tuple(manifest["sample_shape"])
    if samples.dtype.name != manifest["dtype"] or samples.shape != (count, *shape):
        raise DatasetDamagedError(f"dataset folder {folder}: {manifest['samples_file']} is {samples.dtype} "
                                  f"{samples.shape}, the manifest says {manifest['dtype']} {(count, *shape)}")
    for name, array in (("labels", labels), ("strata", strata)):
        if array is None:
            continue
        if array.dtype != np.int64 or array.shape != (count,):
            raise DatasetDamagedError(f"dataset folder {folder}: its {name} are {array.dtype} {array.shape}, "
                                      f"expected int64 ({count},)")
        if name == "labels" and array.size and (array.min() < -1 or array.max() >= len(manifest["class_names"])):
            top = len(manifest["class_names"]) - 1
            raise DatasetDamagedError(f"dataset folder {folder}: its {name} are outside -1..{top}")
    return samples, labels, strata
