"""Gradient-boosted trees on the raw columns: the baseline a tabular SSL method has to beat.

scikit-learn's ``HistGradientBoostingClassifier`` is the standard strong model for tables (Grinsztajn et
al. 2022 found tree ensembles ahead of deep models on most medium-sized tables). It is used with its
defaults, with one exception: the smallest leaf. The default of 20 rows per leaf is sized for thousands
of rows; with a few labels per class it allows hardly any split (40 labelled rows: one), which would make
the trees look worse than they are. Here a leaf needs ``min(20, max(2, n // 10))`` rows, so the default
holds from 200 labelled rows on and a small subset still gets trees of a few splits.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits


def min_leaf(n_rows: int) -> int:
    """Rows per leaf for ``n_rows`` labelled rows: the default 20 from 200 rows on, fewer (>= 2) below."""
    return min(20, max(2, n_rows // 10))


#: OpenMP threads for fitting and predicting. One: on 2 shared cores a 480-row fit measured 0.3 s of CPU with one
#: thread and 10-20 s with two (OpenMP threads spin at every tree's barriers while the other is descheduled),
#: and these are small problems (at most tens of thousands of rows).
THREADS = 1


class GradientBoostingBaseline(ClassifierMixin, BaseEstimator):
    """HistGradientBoostingClassifier on rows X (N, F), on :data:`THREADS` OpenMP thread(s).

    Learned attributes: ``classes_``, ``model_`` (the fitted classifier), ``min_samples_leaf_``,
    ``n_iter_`` (boosting rounds run; early stopping is scikit-learn's "auto": on above 10,000 rows, on a
    validation part of the training rows only).
    """

    def __init__(self, max_iter: int = 100, learning_rate: float = 0.1, random_state: int = 0) -> None:
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> GradientBoostingBaseline:
        """Fit on rows X (N, F) and integer labels y (N,); returns self."""
        rows, labels = np.asarray(X, dtype=np.float32), np.asarray(y)
        self.classes_ = np.unique(labels)
        self.min_samples_leaf_ = min_leaf(len(rows))
        self.model_ = HistGradientBoostingClassifier(max_iter=self.max_iter, learning_rate=self.learning_rate,
                                                     min_samples_leaf=self.min_samples_leaf_,
                                                     random_state=self.random_state)
        with threadpool_limits(limits=THREADS, user_api="openmp"):
            self.model_.fit(rows, labels)
        self.n_iter_ = int(self.model_.n_iter_)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (N,) for rows X (N, F)."""
        with threadpool_limits(limits=THREADS, user_api="openmp"):
            return self.model_.predict(np.asarray(X, dtype=np.float32))

    def details(self) -> dict[str, Any]:
        """What eval.json records of a fit."""
        return {"min_samples_leaf": self.min_samples_leaf_, "n_iter": self.n_iter_}
