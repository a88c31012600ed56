"""Confusion matrices from stored test predictions: per-class accuracy and the most-confused pairs.

Pure numpy on class indices: ``truth`` and ``predicted`` are int arrays (T,) with values in
[0, n_classes). Several repeats are combined by adding their matrices (each row then sums to
repeats x the class's test count), so row-normalised values are the average over repeats.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ConfusedPair:  # not a NamedTuple: its field ``count`` would shadow tuple.count
    true_class: int
    predicted_class: int
    count: int
    rate: float  # count / (test images of true_class, over the combined repeats)


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) int64 counts: row = true class, column = predicted class."""
    truth, predicted = np.asarray(truth, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    if truth.shape != predicted.shape or truth.ndim != 1:
        raise ValueError(f"truth and predictions must be matching 1-D arrays, got {truth.shape} and {predicted.shape}")
    if truth.size and (min(truth.min(), predicted.min()) < 0 or max(truth.max(), predicted.max()) >= n_classes):
        raise ValueError(f"class indices must lie in [0, {n_classes})")
    return np.bincount(truth * n_classes + predicted, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def combined_confusion(truth: np.ndarray, predictions: Sequence[np.ndarray], n_classes: int) -> np.ndarray:
    """The sum of the confusion matrices of several prediction arrays (T,) against the same ``truth`` (T,)."""
    return sum((confusion_matrix(truth, p, n_classes) for p in predictions),
               np.zeros((n_classes, n_classes), dtype=np.int64))


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """Accuracy of each true class (n_classes,) float; NaN for a class with no test images."""
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(matrix) / np.maximum(totals, 1), np.nan)


def most_confused(matrix: np.ndarray, top: int = 3) -> list[ConfusedPair]:
    """The ``top`` off-diagonal cells with the most errors (ties by class order); cells with 0 are left out."""
    off = matrix.astype(np.int64).copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:top]
    totals = matrix.sum(axis=1)
    pairs = []
    for flat in order:
        a, b = divmod(int(flat), matrix.shape[1])
        if off[a, b] > 0:
            pairs.append(ConfusedPair(a, b, int(off[a, b]), float(off[a, b] / max(1, totals[a]))))
    return pairs


def pair_examples(truth: np.ndarray, predictions: Sequence[np.ndarray], true_class: int, predicted_class: int,
                  limit: int = 6) -> np.ndarray:
    """Test indices (<= limit,) of images of ``true_class`` predicted as ``predicted_class``, those confused in
    the most repeats first (then by index)."""
    hits = sum(((np.asarray(truth) == true_class) & (np.asarray(p) == predicted_class)).astype(np.int64)
               for p in predictions)
    candidates = np.flatnonzero(hits)
    order = np.lexsort((candidates, -hits[candidates]))
    return candidates[order][:limit]
