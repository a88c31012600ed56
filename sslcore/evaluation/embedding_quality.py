"""How well a run's features separate its classes: nearest neighbours, leave-one-out k-NN, silhouette.

Numpy in, numpy out; :func:`run_quality` caches its figures in ``<run>/embeddings/`` (see
:mod:`.embeddings` for the files).
"""
from __future__ import annotations

import json

import numpy as np
from sklearn.metrics import silhouette_score

from sslcore.atomic import write_atomic
from sslcore.evaluation.embeddings import (
    PIXELS,
    Source,
    Split,
    embeddings_dir,
    run_features,
    source_fingerprint,
    unit_rows,
)
from sslcore.runs import Run

#: The temperature of the online k-NN monitor's vote weights, so both report the same kind of accuracy.
KNN_TEMPERATURE = 0.07


def nearest_neighbours(features: np.ndarray, query_index: int, k: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``features`` (N, D) closest to row ``query_index`` in cosine distance, itself excluded.

    Returns indices int64 (k,) and cosine distances float32 (k,) (1 - cosine similarity, in [0, 2]),
    nearest first; ties in index order. ``k`` is capped at N - 1.
    """
    x = unit_rows(features)
    distances = 1.0 - x @ x[query_index]
    distances[query_index] = np.inf
    order = np.lexsort((np.arange(len(x)), distances))[:min(k, len(x) - 1)]  # by distance, then index
    return order.astype(np.int64), distances[order].astype(np.float32)


def knn_leave_one_out(features: np.ndarray, labels: np.ndarray, k: int = 20, chunk: int = 1024) -> float:
    """Accuracy of a weighted k-NN vote (cosine, exp(sim / 0.07) weights) predicting each point from the others."""
    x, labels = unit_rows(features), np.asarray(labels)
    k = min(k, len(x) - 1)
    classes, y = np.unique(labels, return_inverse=True)
    correct = 0
    for start in range(0, len(x), chunk):  # chunks: a 5,000 x 5,000 similarity matrix would be 100 MB
        sim = x[start:start + chunk] @ x.T  # (c, N)
        rows = np.arange(sim.shape[0])
        sim[rows, start + rows] = -np.inf  # leave the point itself out
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]  # (c, k)
        votes = np.zeros((sim.shape[0], len(classes)))
        # exp((s - 1) / T): the monitor's weights over a constant factor (same vote), never overflowing.
        weights = np.exp((np.take_along_axis(sim, top, 1) - 1.0) / KNN_TEMPERATURE)
        np.add.at(votes, (rows[:, None], y[top]), weights)
        correct += int((votes.argmax(axis=1) == y[start:start + chunk]).sum())
    return correct / len(x)


def embedding_quality(features: np.ndarray, labels: np.ndarray, k: int = 20, silhouette_points: int = 2000,
                      random_state: int = 0) -> dict[str, float]:
    """How well ``features`` (N, D) separate ``labels`` (N,): ``{"knn_acc": ..., "silhouette": ...}``.

    knn_acc: leave-one-out weighted k-NN accuracy on cosine similarity, in [0, 1] (chance = 1 / classes).
    silhouette: mean cosine silhouette (Rousseeuw 1987) of the labels as clusters, in [-1, 1], on at most
    ``silhouette_points`` points drawn with ``random_state`` (it is quadratic in N); NaN with one class.
    Only labelled points count (label -1 = none: the user's unlabelled images); both are NaN without labels.
    """
    labels = np.asarray(labels)
    if (labels < 0).any():
        features, labels = np.asarray(features)[labels >= 0], labels[labels >= 0]
    knn = knn_leave_one_out(features, labels, k) if len(labels) > 1 else float("nan")
    if not 2 <= len(np.unique(labels)) < len(labels):
        return {"knn_acc": knn, "silhouette": float("nan")}
    sample = silhouette_points if len(labels) > silhouette_points else None
    silhouette = silhouette_score(features, labels, metric="cosine", sample_size=sample, random_state=random_state)
    return {"knn_acc": float(knn), "silhouette": float(silhouette)}


def run_quality(run: Run, source: Source, split: Split = "test", max_points: int = 5000) -> dict[str, float]:
    """:func:`embedding_quality` of :func:`run_features`; cached per (source, split, max_points, checkpoint version).

    On 4,000 points it takes about a second (the leave-one-out k-NN is quadratic), so it is computed once.
    """
    tag = PIXELS if source == PIXELS else f"e{int(source):04d}"
    prefix = f"quality_{tag}_{split}_n{max_points}_"
    path = embeddings_dir(run) / f"{prefix}{source_fingerprint(run, source)}.json"
    if path.exists():
        return json.loads(path.read_text())
    features, labels, _ = run_features(run, source, split, max_points)
    quality = embedding_quality(features, labels)
    for stale in path.parent.glob(f"{prefix}*.json"):  # from an older version of this checkpoint
        stale.unlink(missing_ok=True)
    write_atomic(path, lambda f: f.write(json.dumps(quality).encode()))  # NaN (one class) is kept as NaN
    return quality
