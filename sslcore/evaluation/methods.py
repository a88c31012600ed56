"""The evaluation methods of the label-efficiency protocol, each fitted on one labelled subset.

Every method is a function ``(inputs, indices, repeat) -> (test predictions (T,), details)``: it fits on
the training samples at ``indices`` (sorted int64 (M,)) only, then predicts the whole test split. The
protocol derives the accuracy from the predictions, and keeps them for the confusion matrix.

Which baselines make sense depends on the kind of data: images are compared with logistic regression on
raw pixels, tables with logistic regression on the raw columns and with gradient-boosted trees on them
(the standard strong baseline for tables). The SSL probes, training from scratch and fine-tuning apply to both.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from sslcore.config import RunConfig
from sslcore.data import DatasetSplit
from sslcore.evaluation.features import extract_features
from sslcore.evaluation.finetune import FineTuned
from sslcore.evaluation.probes import KNNProbe, LinearProbe, RawPixelProbe
from sslcore.evaluation.supervised import SupervisedBaseline
from sslcore.evaluation.trees import GradientBoostingBaseline

#: The methods run by default on images, in display order.
METHODS: tuple[str, ...] = ("linear_probe", "knn", "supervised", "raw_pixels")
#: The methods run by default on tables, in display order.
TABLE_METHODS: tuple[str, ...] = ("linear_probe", "knn", "supervised", "raw_columns", "gradient_boosting")
#: Slow methods a person opts into (fine-tuning trains a network per subset, like the supervised baseline).
OPTIONAL_METHODS: tuple[str, ...] = ("finetune",)
#: Every method for images; for tables, :data:`ALL_TABLE_METHODS`.
ALL_METHODS: tuple[str, ...] = METHODS + OPTIONAL_METHODS
ALL_TABLE_METHODS: tuple[str, ...] = TABLE_METHODS + OPTIONAL_METHODS
#: Methods that only make sense for one kind of data.
METHOD_KINDS = {"raw_pixels": "image", "raw_columns": "table", "gradient_boosting": "table"}
#: Methods whose result depends on the labelled subset only (their random_state is fixed to ``seed``), so
#: a subset that repeats (budget "all") is fitted once and its result reused for the other repeats.
DETERMINISTIC = frozenset({"linear_probe", "knn", "raw_pixels", "raw_columns", "gradient_boosting"})
#: Rough relative cost, so the progress fraction moves about evenly in time.
COST = {"linear_probe": 1, "knn": 1, "raw_pixels": 2, "raw_columns": 1, "gradient_boosting": 3, "supervised": 12,
        "finetune": 12}

Predictions = np.ndarray  # (T,) int64 predicted class of every test sample


class FitInputs:
    """What the network methods need: the split (images or table rows, read as ``samples``), the run's config,
    the device, the networks' settings (``supervised`` overrides), the seed, and the SSL encoder's weights
    (``encoder_state``, a CPU state_dict, where fine-tuning starts). Picklable: fits may run in other processes
    (:mod:`sslcore.evaluation.parallel_fits`)."""

    def __init__(self, config: RunConfig, data: DatasetSplit, device: torch.device, supervised: dict[str, Any],
                 seed: int, encoder_state: dict[str, torch.Tensor]) -> None:
        self.config, self.data, self.device, self.supervised, self.seed = config, data, device, supervised, seed
        self.encoder_state = encoder_state
        self.train_labels, self.test_labels = data.train.labels.numpy(), data.test.labels.numpy()


class Inputs(FitInputs):
    """Everything the methods need, computed once: :class:`FitInputs`, the encoder and its frozen features of the
    training and test samples (N, D) / (T, D)."""

    def __init__(self, config: RunConfig, data: DatasetSplit, encoder: torch.nn.Module, device: torch.device,
                 supervised: dict[str, Any], seed: int) -> None:
        state = {k: v.detach().cpu().clone() for k, v in encoder.state_dict().items()}
        super().__init__(config, data, device, supervised, seed, state)
        self.encoder = encoder
        self.train_features = extract_features(encoder, data.train.samples)
        self.test_features = extract_features(encoder, data.test.samples)


def _linear_probe(x: Inputs, idx: np.ndarray, repeat: int) -> tuple[Predictions, dict[str, Any]]:
    probe = LinearProbe(random_state=x.seed).fit(x.train_features[idx], x.train_labels[idx])
    return probe.predict(x.test_features), {"C": probe.C_}


def _knn(x: Inputs, idx: np.ndarray, repeat: int) -> tuple[Predictions, dict[str, Any]]:
    probe = KNNProbe(random_state=x.seed).fit(x.train_features[idx], x.train_labels[idx])
    return probe.predict(x.test_features), {"k": probe.k_}


def _raw_pixels(x: Inputs, idx: np.ndarray, repeat: int) -> tuple[Predictions, dict[str, Any]]:
    probe = RawPixelProbe(random_state=x.seed).fit(x.data.train.samples.numpy()[idx], x.train_labels[idx])
    return probe.predict(x.data.test.samples.numpy()), {"C": probe.C_}


def _raw_columns(x: Inputs, idx: np.ndarray, repeat: int) -> tuple[Predictions, dict[str, Any]]:
    # The same probe as on the SSL features (standardised on the labelled rows, L2 logistic regression, C = 1),
    # on the table's own columns: the difference between the two is what the features add.
    probe = LinearProbe(random_state=x.seed).fit(x.data.train.samples.numpy()[idx], x.train_labels[idx])
    return probe.predict(x.data.test.samples.numpy()), {"C": probe.C_}


def _gradient_boosting(x: Inputs, idx: np.ndarray, repeat: int) -> tuple[Predictions, dict[str, Any]]:
    model = GradientBoostingBaseline(random_state=x.seed).fit(x.data.train.samples.numpy()[idx], x.train_labels[idx])
    return model.predict(x.data.test.samples.numpy()), model.details()


def _fit_network(model: SupervisedBaseline, x: FitInputs, idx: np.ndarray) -> tuple[Predictions, dict[str, Any]]:
    # Only the labelled subset goes in: the test split is predicted after fit, never used inside it.
    chosen = torch.from_numpy(idx)
    model.fit(x.data.train.samples[chosen], x.data.train.labels[chosen])
    details = {"early_stopping": model.early_stopping_, "train_size": len(model.train_indices_),
               "holdout_size": len(model.holdout_indices_), "steps": model.n_steps_,
               "best_step": model.best_step_, "holdout_accuracy": model.holdout_accuracy_,
               "precision": "bf16" if model.bf16_ else "fp32"}
    return model.predict(x.data.test.samples), details


def _supervised(x: FitInputs, idx: np.ndarray, repeat: int) -> tuple[Predictions, dict[str, Any]]:
    return _fit_network(supervised_baseline(x.config, x.data, x.supervised, x.seed + repeat, x.device), x, idx)


def _finetune(x: FitInputs, idx: np.ndarray, repeat: int) -> tuple[Predictions, dict[str, Any]]:
    # Every repeat starts again from the SSL weights: the model loads a copy of them (load_state_dict copies).
    e = x.config.encoder
    model = FineTuned(x.encoder_state, e.name, e.width, x.data.sample_shape, depth=e.depth, norm=e.norm,
                      patch_size=e.patch_size, device=str(x.device), random_state=x.seed + repeat, **x.supervised)
    return _fit_network(model, x, idx)


#: The methods that train a network per labelled subset; they need only :class:`FitInputs`.
NETWORK_RUNNERS: dict[str, Callable[[FitInputs, np.ndarray, int], tuple[Predictions, dict[str, Any]]]] = {
    "supervised": _supervised, "finetune": _finetune}
RUNNERS: dict[str, Callable[[Inputs, np.ndarray, int], tuple[Predictions, dict[str, Any]]]] = {
    "linear_probe": _linear_probe, "knn": _knn, "raw_pixels": _raw_pixels, "raw_columns": _raw_columns,
    "gradient_boosting": _gradient_boosting, "supervised": _supervised, "finetune": _finetune}


def supervised_baseline(config: RunConfig, data: DatasetSplit, overrides: dict[str, Any], random_state: int,
                        device: torch.device | str = "auto") -> SupervisedBaseline:
    """The run's encoder architecture as an untrained :class:`SupervisedBaseline` with ``overrides``."""
    e = config.encoder
    return SupervisedBaseline(e.name, e.width, data.sample_shape, depth=e.depth, norm=e.norm,
                              patch_size=e.patch_size, device=str(device), random_state=random_state, **overrides)


def default_methods(kind: str) -> tuple[str, ...]:
    """The methods run when none are chosen, for data of ``kind`` ("image" or "table")."""
    return TABLE_METHODS if kind == "table" else METHODS


def available_methods(kind: str) -> tuple[str, ...]:
    """Every method that applies to data of ``kind``, defaults first."""
    return ALL_TABLE_METHODS if kind == "table" else ALL_METHODS


def check_methods(methods: Any, kind: str | None = None) -> list[str]:
    """``methods`` without duplicates, in the given order; ValueError naming an unknown one (or none given),
    or, with ``kind``, one that does not apply to that kind of data (the message names those that do)."""
    methods = list(methods)
    known = tuple(dict.fromkeys(ALL_METHODS + ALL_TABLE_METHODS))
    allowed = known if kind is None else available_methods(kind)
    if not methods:
        raise ValueError(f"no evaluation method chosen: choose at least one of {', '.join(allowed)}")
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise ValueError(f"unknown evaluation method {unknown[0]!r}; choose from {', '.join(allowed)}")
    wrong = [m for m in methods if m not in allowed]
    if wrong:
        raise ValueError(f"evaluation method {wrong[0]!r} needs {METHOD_KINDS[wrong[0]]} data, and this run's data "
                         f"is {kind} data; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(methods))
