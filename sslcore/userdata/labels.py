"""Labels added to a stored dataset after its import: a CSV of file name -> label, or a folder of class folders.

A typical case: a pile of unlabelled images trained on, then a few labelled to evaluate the features. Files
are matched by their name in the dataset (as the manifest lists it: ``cats/x.jpg`` or ``x.jpg``), or by the
bare file name when that is unique. Given labels replace earlier ones for those files; the rest keep theirs
(-1: none). The train/test split does not move: the labels at import are kept as ``strata.npy`` the first
time labels change, and the split follows them. The new labels are written to a new file and the manifest
is replaced atomically, so a reader sees the old labels or the new ones, never a mix.
"""
from __future__ import annotations

import csv
import io
import time
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from sslcore.atomic import write_atomic
from sslcore.userdata import store
from sslcore.userdata.importer import MAX_CLASS_NAME, MIN_PER_CLASS
from sslcore.userdata.sources import ImportRefused

MAX_CSV_BYTES = 16 * 1024 * 1024


def read_label_csv(data: bytes, source: str) -> dict[str, str]:
    """``file,label`` rows (a header row naming no file is allowed) -> {file: label}; ImportRefused if malformed."""
    if len(data) > MAX_CSV_BYTES:
        raise ImportRefused(f"{source} is {len(data) / 2**20:.1f} MiB, over the {MAX_CSV_BYTES // 2**20} MiB a label "
                            "file may have")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ImportRefused(f"{source} is not UTF-8 text (byte {e.start})") from None
    mapping: dict[str, str] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise ImportRefused(f"{source} line {number}: expected 2 columns (file, label), got {len(row)}")
        name, label = row[0].strip(), row[1].strip()
        if number == 1 and name.lower() in ("file", "filename", "file_name", "name", "path", "image"):
            continue  # a header
        if not label or len(label) > MAX_CLASS_NAME or not label.isprintable():
            raise ImportRefused(f"{source} line {number}: label {label!r} is not allowed: expected 1 to "
                                f"{MAX_CLASS_NAME} printable characters")
        mapping[name] = label
    if not mapping:
        raise ImportRefused(f"{source} holds no file,label rows")
    return mapping


def labels_from_folder(folder: Path, data_root: Path) -> dict[str, str]:
    """{file name: class folder} for the images in ``folder``'s sub-folders (a folder inside the data root)."""
    root, path = data_root.resolve(), folder.resolve()
    if not path.is_dir() or not path.is_relative_to(root) or path == root:
        raise ImportRefused(f"{folder} is refused: labels from folders must come from a folder inside {root}/")
    mapping = {}
    for class_dir in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for file in sorted(class_dir.rglob("*")):
            if file.is_file() and not file.is_symlink() and not file.name.startswith("."):
                mapping[file.name] = class_dir.name
    if not mapping:
        raise ImportRefused(f"{folder} has no files inside class folders")
    return mapping


def _match(files: list[str], mapping: dict[str, str]) -> tuple[dict[int, str], list[str]]:
    """{file index: label} and the mapping's names that match no file (or more than one by bare name)."""
    index = {name: i for i, name in enumerate(files)}
    by_base: dict[str, list[int]] = {}
    for i, name in enumerate(files):
        by_base.setdefault(PurePosixPath(name).name, []).append(i)
    matched, unmatched = {}, []
    for name, label in mapping.items():
        if name in index:
            matched[index[name]] = label
        elif len(by_base.get(PurePosixPath(name).name, [])) == 1:
            matched[by_base[PurePosixPath(name).name][0]] = label
        else:
            unmatched.append(name)
    return matched, unmatched


def apply_labels(root: str | Path, name: str, mapping: dict[str, str], source: str) -> dict[str, Any]:
    """Give the files of stored dataset ``name`` the labels in ``mapping``; returns the new manifest plus
    ``matched``/``unmatched`` counts. ImportRefused if nothing matches or the labelled classes are too small."""
    folder = store.store_dir(root) / name
    manifest = store.read_manifest(folder)
    _, labels, strata = store.load_arrays(folder, manifest)
    matched, unmatched = _match(manifest["files"], mapping)
    if not matched:
        raise ImportRefused(f"none of the {len(mapping)} names in {source} is a file of dataset {name!r} "
                            f"(its files are named like {manifest['files'][0]!r})")
    names = [manifest["class_names"][v] if v >= 0 else None for v in labels.tolist()]
    for i, label in matched.items():
        names[i] = label
    class_names = sorted({n for n in names if n is not None})
    position = {c: i for i, c in enumerate(class_names)}
    new = np.array([position[n] if n is not None else -1 for n in names], dtype=np.int64)
    counts = np.bincount(new[new >= 0], minlength=len(class_names))
    small = [f"{c!r} has {n}" for c, n in zip(class_names, counts, strict=True) if n < MIN_PER_CLASS]
    if len(class_names) < 2 or small:
        detail = ", ".join(small[:5]) if small else f"only {class_names}"
        raise ImportRefused(f"labels need at least 2 classes of at least {MIN_PER_CLASS} images each: {detail}")
    if strata is None:  # the first change: keep the import's labels as the split's groups
        write_atomic(folder / store.STRATA, lambda f: np.save(f, labels, allow_pickle=False), durable=True)
    labels_hash = store.array_hash(new)
    labels_file = f"labels-{labels_hash[7:19]}.npy"
    write_atomic(folder / labels_file, lambda f: np.save(f, new, allow_pickle=False), durable=True)
    old_file = manifest["labels_file"]
    manifest = {**manifest, "class_names": class_names, "class_counts": counts.tolist(), "labels_file": labels_file,
                "labels_hash": labels_hash, "labels_source": {"name": source, "added": time.time(),
                                                              "matched": len(matched), "unmatched": len(unmatched)}}
    store.write_json(folder / store.MANIFEST, manifest)
    if old_file != labels_file:
        (folder / old_file).unlink(missing_ok=True)
    return {**manifest, "matched": len(matched), "unmatched": unmatched[:20]}
