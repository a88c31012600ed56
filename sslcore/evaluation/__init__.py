"""Evaluation of frozen features: extraction, scikit-learn-style probes, baselines and the label-budget protocol.

Probes (:class:`LinearProbe`, :class:`KNNProbe`, :class:`RawPixelProbe`) take numpy features or pixels;
:class:`SupervisedBaseline` takes uint8 images and trains the encoder architecture from scratch;
:func:`evaluate_run` runs them all on the same labelled subsets of a run and writes ``eval.json``.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sslcore.evaluation.features import encode, extract_features
from sslcore.evaluation.knn import knn_accuracy, knn_predict

if TYPE_CHECKING:
    from sslcore.evaluation.probes import KNNProbe, LinearProbe, RawPixelProbe
    from sslcore.evaluation.protocol import (
        METHODS,
        Budget,
        check_budgets,
        evaluate_run,
        format_results_table,
        indices_hash,
        label_subsets,
        supervised_baseline,
    )
    from sslcore.evaluation.supervised import SupervisedBaseline

# Loaded on first use (PEP 562): every training job imports ``features`` for its online k-NN monitor,
# and importing scikit-learn eagerly here would add about 1.4 s to each job's start.
_LAZY = {
    "LinearProbe": "probes", "KNNProbe": "probes", "RawPixelProbe": "probes",
    "SupervisedBaseline": "supervised",
    "METHODS": "protocol", "Budget": "protocol", "check_budgets": "protocol", "label_subsets": "protocol",
    "indices_hash": "protocol", "evaluate_run": "protocol", "format_results_table": "protocol",
    "supervised_baseline": "protocol",
}

# Spelled out (not ``*_LAZY``) so linters and type checkers see the lazy names as this package's exports.
__all__ = [
    "encode", "extract_features", "knn_predict", "knn_accuracy",
    "LinearProbe", "KNNProbe", "RawPixelProbe", "SupervisedBaseline",
    "METHODS", "Budget", "check_budgets", "label_subsets", "indices_hash", "evaluate_run", "format_results_table",
    "supervised_baseline",
]
assert set(__all__) == {"encode", "extract_features", "knn_predict", "knn_accuracy", *_LAZY}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
