"""The evaluation methods of the label-efficiency protocol, each fitted on one labelled subset.

Every method is a function ``(inputs, indices, repeat) -> (test predictions (T,), details)``: it fits on
the training samples at ``indices`` (sorted int64 (M,)) only, then predicts the whole test split. The
protocol derives the accuracy from the predictions, and keeps them for the confusion matrix.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import numpy as np
import torch

from sslcore.config import RunConfig
from sslcore.data import DatasetSplit
from sslcore.evaluation.features import extract_features
from sslcore.evaluation.finetune import FineTuned
from sslcore.evaluation.probes import KNNProbe, LinearProbe, RawPixelProbe
from sslcore.evaluation.supervised import SupervisedBaseline

#: The methods run by default, in display order.
METHODS: tuple[str, ...] = ("linear_probe", "knn", "supervised", "raw_pixels")
#: Slow methods a person opts into (fine-tuning trains a network per subset, like the supervised baseline).
OPTIONAL_METHODS: tuple[str, ...] = ("finetune",)
ALL_METHODS: tuple[str, ...] = METHODS + OPTIONAL_METHODS
#: Methods whose result depends on the labelled subset only (their random_state is fixed to ``seed``), so
#: a subset that repeats (budget "all") is fitted once and its result reused for the other repeats.
DETERMINISTIC = frozenset({"linear_probe", "knn", "raw_pixels"})
#: Rough relative cost, so the progress fraction moves about evenly in time.
COST = {"linear_probe": 1, "knn": 1, "raw_pixels": 2, "supervised": 12, "finetune": 12}

Predictions = np.ndarray  # (T,) int64 predicted class of every test image


class Inputs:
    """Everything the methods need, computed once: the split, frozen features (N, D) / (T, D), the encoder."""

    def __init__(self, config: RunConfig, data: DatasetSplit, encoder: torch.nn.Module, device: torch.device,
                 supervised: dict[str, Any], seed: int) -> None:
        self.config, self.data, self.device, self.supervised, self.seed = config, data, device, supervised, seed
        self.encoder = encoder
        self.train_features = extract_features(encoder, data.train.images)
        self.test_features = extract_features(encoder, data.test.images)
        self.train_labels, self.test_labels = data.train.labels.numpy(), data.test.labels.numpy()


def _linear_probe(x: Inputs, idx: np.ndarray, repeat: int) -> tuple[Predictions, dict[str, Any]]:
    probe = LinearProbe(random_state=x.seed).fit(x.train_features[idx], x.train_labels[idx])
    return probe.predict(x.test_features), {"C": probe.C_}


def _knn(x: Inputs, idx: np.ndarray, repeat: int) -> tuple[Predictions, dict[str, Any]]:
    probe = KNNProbe(random_state=x.seed).fit(x.train_features[idx], x.train_labels[idx])
    return probe.predict(x.test_features), {"k": probe.k_}


def _raw_pixels(x: Inputs, idx: np.ndarray, repeat: int) -> tuple[Predictions, dict[str, Any]]:
    probe = RawPixelProbe(random_state=x.seed).fit(x.data.train.images.numpy()[idx], x.train_labels[idx])
    return probe.predict(x.data.test.images.numpy()), {"C": probe.C_}


def _fit_network(model: SupervisedBaseline, x: Inputs, idx: np.ndarray) -> tuple[Predictions, dict[str, Any]]:
    # Only the labelled subset goes in: the test split is predicted after fit, never used inside it.
    chosen = torch.from_numpy(idx)
    model.fit(x.data.train.images[chosen], x.data.train.labels[chosen])
    details = {"early_stopping": model.early_stopping_, "train_size": len(model.train_indices_),
               "holdout_size": len(model.holdout_indices_), "steps": model.n_steps_,
               "best_step": model.best_step_, "holdout_accuracy": model.holdout_accuracy_}
    return model.predict(x.data.test.images), details


def _supervised(x: Inputs, idx: np.ndarray, repeat: int) -> tuple[Predictions, dict[str, Any]]:
    return _fit_network(supervised_baseline(x.config, x.data, x.supervised, x.seed + repeat, x.device), x, idx)


def _finetune(x: Inputs, idx: np.ndarray, repeat: int) -> tuple[Predictions, dict[str, Any]]:
    # A copy per fit: every repeat starts again from the SSL weights.
    state = {k: v.detach().cpu().clone() for k, v in copy.deepcopy(x.encoder.state_dict()).items()}
    model = FineTuned(state, x.config.encoder.name, x.config.encoder.width, x.data.image_shape,
                      device=str(x.device), random_state=x.seed + repeat, **x.supervised)
    return _fit_network(model, x, idx)


RUNNERS: dict[str, Callable[[Inputs, np.ndarray, int], tuple[Predictions, dict[str, Any]]]] = {
    "linear_probe": _linear_probe, "knn": _knn, "raw_pixels": _raw_pixels, "supervised": _supervised,
    "finetune": _finetune}


def supervised_baseline(config: RunConfig, data: DatasetSplit, overrides: dict[str, Any], random_state: int,
                        device: torch.device | str = "auto") -> SupervisedBaseline:
    """The run's encoder architecture as an untrained :class:`SupervisedBaseline` with ``overrides``."""
    return SupervisedBaseline(config.encoder.name, config.encoder.width, data.image_shape, device=str(device),
                              random_state=random_state, **overrides)


def check_methods(methods: Any) -> list[str]:
    """``methods`` without duplicates, in the given order; ValueError naming an unknown one (or none given)."""
    methods = list(methods)
    if not methods:
        raise ValueError(f"no evaluation method chosen: choose at least one of {', '.join(ALL_METHODS)}")
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        raise ValueError(f"unknown evaluation method {unknown[0]!r}; choose from {', '.join(ALL_METHODS)}")
    return list(dict.fromkeys(methods))
