"""Test-split predictions of every fit, kept beside eval.json for confusion matrices.

``<run>/eval_predictions.npz`` holds ``test_labels`` (T,) and one int16 array (T,) per (method, budget,
repeat) under the key :func:`prediction_key`. It is written atomically before eval.json, whose
``predictions`` entry records its sha256: a missing or different file makes the stored results stale.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sslcore.atomic import write_atomic

PREDICTIONS_FILE = "eval_predictions.npz"
Budget = int | str


def prediction_key(method: str, budget: Budget, repeat: int) -> str:
    """'linear_probe__4__0': the npz key of one fit's predictions (no '/' : npz keys are zip member names)."""
    return f"{method}__{budget}__{repeat}"


def save_predictions(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` (each (T,) class indices) compressed to ``path``, atomically (temp file + replace)."""
    # int16: class indices of at most a few hundred classes; a fifth of the size of int64.
    compact: dict[str, Any] = {k: np.asarray(v).astype(np.int16) for k, v in arrays.items()}  # Any: see savez
    write_atomic(path, lambda f: np.savez_compressed(f, **compact), durable=True)


def load_predictions(path: Path) -> dict[str, np.ndarray]:
    """Every array of a predictions file as int64 (T,); {} if the file does not exist."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k].astype(np.int64) for k in data.files}
    except FileNotFoundError:
        return {}
