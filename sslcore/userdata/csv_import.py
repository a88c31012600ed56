"""A person's CSV file as a stored table dataset: parsed by :mod:`sslcore.data.csv_table`, kept raw.

The store keeps the columns as read (numeric values with NaN where a cell is missing, a categorical column
as its level codes with -1 where missing), float32 (N, F), with the column names, types and levels in the
manifest. Imputation, missing-indicators, one-hot columns and standardisation are fitted when a run splits
the table (train split only), never at import: the stored data do not depend on any split.

A refused file leaves nothing behind: the CSV is parsed and checked before anything is written, and the
arrays then go into a hidden staging folder that becomes visible only when it is committed under a name.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sslcore.data.csv_table import MAX_BYTES, CSVError, read_csv_table
from sslcore.data.table import RawTable
from sslcore.userdata import store
from sslcore.userdata.sources import ImportRefused

#: Rows per class a labelled table needs (one to train on, one to test on).
MIN_PER_CLASS = 2


def stage_csv(source: Path, root: str | Path, *, target: str | None = None, categorical: Iterable[str] = (),
              numeric: Iterable[str] = (), drop: Iterable[str] = (), max_bytes: int = MAX_BYTES) -> Path:
    """Parse the CSV ``source`` and write it into a hidden staging folder of the store under ``root``; returns
    the folder (see :func:`sslcore.userdata.store.commit`). ImportRefused, one line, if the file cannot be used."""
    categorical, numeric, drop = sorted(categorical), sorted(numeric), sorted(drop)
    options = {"target": target, "categorical": categorical, "numeric": numeric, "drop": drop}
    try:
        parsed = read_csv_table(source, name=source.stem, target=target, categorical=categorical,
                                numeric=numeric, drop=drop, max_bytes=max_bytes)
    except CSVError as e:
        raise ImportRefused(f"{source.name}: {e}") from None
    table = parsed.table
    labels = table.labels.numpy()
    counts = np.bincount(labels[labels >= 0], minlength=len(table.class_names))
    small = [f"{name!r} has {n}" for name, n in zip(table.class_names, counts, strict=True) if n < MIN_PER_CLASS]
    if small:
        raise ImportRefused(f"{source.name}: each class of {target!r} needs at least {MIN_PER_CLASS} rows (one to "
                            f"train, one to test): {', '.join(small[:5])}")
    samples = np.concatenate([table.numeric, table.codes().astype(np.float64)], axis=1).astype(np.float32)
    columns = ([{"name": n, "type": "numeric"} for n in table.numeric_names]
               + [{"name": n, "type": "categorical", "levels": list(levels)}
                  for n, levels in zip(table.categorical_names, table.levels, strict=True)])
    manifest = {"kind": "table", "name": None, "class_names": list(table.class_names),
                "class_counts": counts.tolist(), "files": [f"line {n}" for n in parsed.lines],
                "source": {"name": source.name, "bytes": source.stat().st_size}, "created": time.time(),
                "options": options, "columns": columns, "notes": parsed.notes, "skipped": {}, "skipped_files": [],
                "ignored": 0}
    return store.stage(root, samples, labels, manifest)


def stored_table(name: str, samples: np.ndarray, labels: np.ndarray, manifest: dict[str, Any]) -> RawTable:
    """The stored arrays (float32 (N, F), int64 (N,)) and manifest back as the table a run splits."""
    columns = manifest.get("columns")
    if not isinstance(columns, list) or len(columns) != samples.shape[1]:
        raise store.DatasetDamagedError(f"dataset {name!r}: its manifest does not describe its {samples.shape[1]} "
                                        "columns")
    numeric = [j for j, c in enumerate(columns) if c.get("type") == "numeric"]
    categorical = [j for j, c in enumerate(columns) if c.get("type") == "categorical"]
    codes = samples[:, categorical].astype(np.int64)
    levels = tuple(tuple(str(v) for v in columns[j].get("levels", [])) for j in categorical)
    if any(codes[:, k].max(initial=-1) >= len(levels[k]) for k in range(len(categorical))):
        raise store.DatasetDamagedError(f"dataset {name!r}: a category code is beyond its column's levels")
    return RawTable(name, samples[:, numeric].astype(np.float64), tuple(columns[j]["name"] for j in numeric),
                    torch.from_numpy(labels), tuple(manifest["class_names"]), codes if categorical else None,
                    tuple(columns[j]["name"] for j in categorical), levels)
