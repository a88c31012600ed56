"""Frozen-feature probes as scikit-learn estimators: linear probe, cosine k-NN and the raw-pixel baseline.

All three follow scikit-learn's rules (``fit`` returns self, learned attributes end in ``_``, parameters
are plain ``__init__`` arguments, so ``clone`` and ``get_params`` work). They take numpy arrays:
``X`` float features (N, D) from :func:`sslcore.evaluation.extract_features` (or, for
:class:`RawPixelProbe`, uint8 images (N, C, H, W)) and integer labels ``y`` (N,).

The linear probe is the standard SSL protocol (Chen et al. 2020, SimCLR §B.6; Goyal et al. 2019):
standardise the frozen features, then L2-regularised multinomial logistic regression. The k-NN probe
is the weighted cosine vote of Wu et al. 2018 / DINO, shared with the online monitor.
"""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from sslcore.evaluation.knn import knn_predict

DEFAULT_CS: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)


@contextlib.contextmanager
def _small_problem() -> Iterator[None]:
    """Single-threaded BLAS, convergence warnings off, for the duration of a probe's fit or predict.

    Why one thread: these are small GEMMs (N x D with D <= 512), and OpenBLAS's thread pool next to
    torch's spinning OpenMP threads oversubscribes the cores; on 2 shared cores a 4000 x 128 probe fit
    measured 4-7 s multi-threaded against 0.1-0.2 s single-threaded. Why no warnings: a probe stopped at
    ``max_iter`` is still a valid, if slightly under-fitted, probe; the cap keeps evaluation time bounded,
    so the warning would only be noise in the CLI and the job log.
    """
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _as_labels(y: Any) -> np.ndarray:
    """Integer labels (N,) as numpy, from a list, numpy array or torch tensor."""
    labels = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D (N,), got shape {labels.shape}")
    return labels


class LinearProbe(ClassifierMixin, BaseEstimator):
    """StandardScaler + L2 logistic regression (lbfgs) on frozen features X (N, D).

    C: inverse regularisation strength, or None to pick it from ``Cs`` by stratified ``cv``-fold
    cross-validation on the training data only (ties go to the smaller C, i.e. stronger regularisation);
    when some class has fewer than 2 samples there is nothing to cross-validate and ``fallback_C`` is used.
    The default is a fixed C = 1: on standardised SSL features C hardly matters (mnist5k SimCLR features,
    C from 0.1 to 10: within 0.5 points at 1, 4, 10 and all labels per class, 10 subsets each) while
    cross-validation costs about ten fits, and with a few labels per class its folds are too small to
    choose reliably.
    standardize: scale each feature to zero mean and unit variance first (fitted on the training data).

    Learned attributes: ``classes_``, ``C_`` (the C used), ``cv_scores_`` ({C: mean CV accuracy}, empty
    without CV), ``pipeline_`` (the fitted scikit-learn pipeline), ``n_features_in_``.
    """

    def __init__(self, C: float | None = 1.0, *, Cs: Sequence[float] = DEFAULT_CS, cv: int = 3,
                 fallback_C: float = 1.0, standardize: bool = True, max_iter: int = 1000,
                 random_state: int = 0) -> None:
        self.C = C
        self.Cs = Cs
        self.cv = cv
        self.fallback_C = fallback_C
        self.standardize = standardize
        self.max_iter = max_iter
        self.random_state = random_state

    def _features(self, X: Any) -> np.ndarray:
        """The model's input (N, D) float; subclasses turn other inputs (e.g. images) into features."""
        features = np.asarray(X.cpu() if isinstance(X, torch.Tensor) else X, dtype=np.float32)
        if features.ndim != 2:
            raise ValueError(f"{type(self).__name__} expects features of shape (N, D), got {features.shape}")
        return features

    def _pipeline(self, C: float) -> Pipeline:
        steps: list[Any] = [StandardScaler()] if self.standardize else []
        steps.append(LogisticRegression(C=C, max_iter=self.max_iter, random_state=self.random_state))
        return make_pipeline(*steps)

    def _select_C(self, X: np.ndarray, y: np.ndarray) -> float:
        """C from ``Cs`` by stratified CV on (X, y) (training data only); ``fallback_C`` if impossible."""
        self.cv_scores_: dict[float, float] = {}
        if self.C is not None:
            return float(self.C)
        folds = min(self.cv, int(np.unique(y, return_counts=True)[1].min()))
        if folds < 2:
            return float(self.fallback_C)
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.random_state)
        for c in sorted(self.Cs):
            self.cv_scores_[float(c)] = float(cross_val_score(self._pipeline(c), X, y, cv=splitter).mean())
        return max(self.cv_scores_, key=lambda c: (self.cv_scores_[c], -c))

    def fit(self, X: Any, y: Any) -> LinearProbe:
        """Fit on X (N, D) (or what ``_features`` accepts) and labels y (N,); returns self."""
        features, labels = self._features(X), _as_labels(y)
        self.classes_ = np.unique(labels)
        self.n_features_in_ = features.shape[1]
        with _small_problem():
            self.C_ = self._select_C(features, labels)
            self.pipeline_ = self._pipeline(self.C_).fit(features, labels)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Class scores (N, n_classes) (or (N,) for two classes, as scikit-learn)."""
        with _small_problem():
            return self.pipeline_.decision_function(self._features(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (N, n_classes)."""
        with _small_problem():
            return self.pipeline_.predict_proba(self._features(X))

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (N,), values from ``classes_``."""
        with _small_problem():
            return self.pipeline_.predict(self._features(X))


class RawPixelProbe(LinearProbe):
    """The raw-pixel baseline: logistic regression on flattened pixels / 255.

    X: uint8 images (N, C, H, W) (numpy or torch) or already flattened (N, C*H*W). Same parameters
    and learned attributes as :class:`LinearProbe`, with two other defaults. ``standardize=False``:
    pixels already share one [0, 1] scale, and standardising divides near-constant border pixels by a
    tiny std, so a stray stroke among few labelled images gets a huge weight (on mnist5k with 4 labels
    per class that costs about 4 points of accuracy). ``C=0.1``: 784 raw inputs need more regularisation
    than standardised features; 3-fold cross-validation on the mnist5k training split alone picks 0.1
    over 0.01, 1 and 10, and with 4 labels per class any C in that range gives the same accuracy.
    """

    def __init__(self, C: float | None = 0.1, *, Cs: Sequence[float] = DEFAULT_CS, cv: int = 3,
                 fallback_C: float = 1.0, standardize: bool = False, max_iter: int = 1000,
                 random_state: int = 0) -> None:
        super().__init__(C, Cs=Cs, cv=cv, fallback_C=fallback_C, standardize=standardize,
                         max_iter=max_iter, random_state=random_state)

    def _features(self, X: Any) -> np.ndarray:
        pixels = np.asarray(X.cpu() if isinstance(X, torch.Tensor) else X)
        return pixels.reshape(pixels.shape[0], -1).astype(np.float32) / np.float32(255.0)


class KNNProbe(ClassifierMixin, BaseEstimator):
    """Weighted k-NN on cosine similarity over frozen features X (N, D) (Wu et al. 2018; DINO).

    The k most similar training features vote for their label with weight exp(similarity /
    temperature); k is capped at the number of training samples (``k_ = min(n_neighbors, N)``).

    Learned attributes: ``classes_``, ``k_``, ``n_features_in_``, ``train_features_`` (N, D) float32,
    ``train_labels_`` (N,) int64 positions in ``classes_``.
    """

    def __init__(self, n_neighbors: int = 20, *, temperature: float = 0.07, random_state: int = 0) -> None:
        self.n_neighbors = n_neighbors
        self.temperature = temperature
        self.random_state = random_state  # unused (k-NN is deterministic); kept for a uniform interface

    def fit(self, X: Any, y: Any) -> KNNProbe:
        """Store features X (N, D) and labels y (N,); returns self."""
        features = np.asarray(X, dtype=np.float32)
        if features.ndim != 2:
            raise ValueError(f"KNNProbe expects features of shape (N, D), got {features.shape}")
        self.classes_, labels = np.unique(_as_labels(y), return_inverse=True)
        self.train_features_ = features
        self.train_labels_ = labels.astype(np.int64)
        self.n_features_in_ = features.shape[1]
        self.k_ = max(1, min(self.n_neighbors, features.shape[0]))
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (Q,) for query features X (Q, D)."""
        query = torch.from_numpy(np.asarray(X, dtype=np.float32))
        index = knn_predict(torch.from_numpy(self.train_features_), torch.from_numpy(self.train_labels_),
                            query, len(self.classes_), k=self.k_, temperature=self.temperature)
        return self.classes_[index.numpy()]
