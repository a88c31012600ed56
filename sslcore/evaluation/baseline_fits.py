"""Baseline fits kept between evaluations, so the second run evaluated on a dataset does not train them again.

The baselines (the network trained from scratch, logistic regression on raw pixels or columns, gradient-boosted
trees) never see a run's features: a fit depends on the labelled subset, the protocol's settings, its random
state, the device and the library versions, and on nothing the run trained. On 2 CPU cores the supervised
network is about nine tenths of the default protocol (15 networks, ~100 s of ~110 s); a later evaluation of
another run on the same data reads each fit's test predictions back instead: what fitting again on this
machine gives, up to the floating-point summation order of another thread count.

Stored beside the runs, ``<store>/.baseline_fits/<key>.npz`` (``predictions`` int64 (T,) and the fit's details
as JSON text), written atomically. A file that cannot be read is ignored and the fit is made again; ``force``
on an evaluation fits everything afresh (and refreshes the files). The folder is a bounded cache: a fit read
back is marked as used (its modification time), and past :data:`MAX_KEPT` files the least recently used go.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import torch

from sslcore.atomic import write_atomic

FOLDER = ".baseline_fits"
#: Fits kept at most (a few KB each: the test predictions): about 130 default evaluations of 15 baseline fits.
MAX_KEPT = 2000


def fit_key(method: str, protocol: dict[str, Any], indices_sha256: str, seed: int, repeat: int, device: str) -> str:
    """A hash of everything that defines one baseline fit's result (hex, 64 characters).

    ``protocol`` is the evaluation's protocol record: its dataset section (name, root, split, limits), split
    sizes, data version for the user's datasets and the method's own settings; ``seed`` and ``repeat`` fix
    the fit's random state whichever way the method derives it; ``device``: "cpu", "cuda"... (numerics
    differ between them).
    """
    identity = {
        "method": method, "dataset": protocol["dataset"], "data_version": protocol.get("data_version"),
        "sizes": [protocol["train_size"], protocol["test_size"], protocol["num_classes"]],
        "settings": protocol.get(method),
        "holdout": protocol.get("supervised_holdout") if method == "supervised" else None,
        "indices_sha256": indices_sha256, "seed": seed, "repeat": repeat, "device": device,
        "versions": [torch.__version__, np.__version__, sklearn.__version__],
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def kept_count(results: dict[str, Any]) -> int:
    """How many fits of an evaluation's results (eval.json) were read back rather than made (a repeat that
    reuses its own run's fit of the same subset is not counted again)."""
    return sum("kept_fit" in d and "reused_from_repeat" not in d
               for row in results.get("results", []) for d in row.get("details", []))


def _plain(value: Any) -> Any:
    """numpy scalars in a fit's details as Python numbers."""
    return value.item() if hasattr(value, "item") else str(value)


class BaselineFits:
    """The kept fits of one run store (``root``: the folder holding the runs)."""

    def __init__(self, root: Path, max_kept: int = MAX_KEPT) -> None:
        self.folder = Path(root) / FOLDER
        self.max_kept = max_kept

    def load(self, key: str) -> tuple[np.ndarray, dict[str, Any]] | None:
        """(test predictions (T,), details) of the fit ``key``, or None if none is kept or it cannot be read."""
        path = self.folder / f"{key}.npz"
        try:
            with np.load(path, allow_pickle=False) as stored:
                predictions = stored["predictions"].astype(np.int64)
                details = json.loads(str(stored["details"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
            return None  # damaged: the fit is made again and the file replaced
        if predictions.ndim != 1 or not isinstance(details, dict):
            return None
        with contextlib.suppress(OSError):  # a read-only store still reads back
            os.utime(path)  # used now: the last to be evicted
        return predictions, details

    def save(self, key: str, predictions: np.ndarray, details: dict[str, Any]) -> None:
        """Keep a fit's test predictions (T,) and details; best effort (a full disk only costs the reuse)."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            text = json.dumps(details, default=_plain)
            write_atomic(self.folder / f"{key}.npz", lambda f: np.savez_compressed(
                f, predictions=np.asarray(predictions, dtype=np.int64), details=np.array(text)))
            self._evict()
        except OSError:
            pass  # the evaluation's own results are what must be written; this is a cache

    def _evict(self) -> None:
        """Remove the least recently used fits beyond ``max_kept`` (two evaluations may evict at once)."""
        kept: list[tuple[float, Path]] = []
        for path in self.folder.glob("*.npz"):
            try:
                kept.append((path.stat().st_mtime, path))
            except FileNotFoundError:
                continue  # evicted by another evaluation meanwhile
        kept.sort()
        for _, path in kept[:max(0, len(kept) - self.max_kept)]:
            path.unlink(missing_ok=True)
