"""The supervised baseline: the SSL run's encoder architecture, trained from scratch on the labelled subset only.

Unlike the probes in :mod:`sslcore.evaluation.probes`, which take numpy features, this estimator takes
**raw samples**: ``fit(images, labels)`` with uint8 images (N, C, H, W) or float32 table rows (N, F) (torch
tensor or numpy array) and integer labels (N,). It answers the question a label-efficiency plot asks: do the
self-supervised features beat what the same network learns from the same few labels on its own?

Fairness rules kept here: the same architecture, width (and, for MLPs and ViTs, depth, norm, patch size) as the SSL
encoder, the same batched view augmentations for images (``default_view_augment``) unless
``augment=False`` (table rows have no standard augmentation, so they are used as they are), and model selection
(early stopping) on a stratified held-out part of the labelled subset, never on the test split. When some class has a
single label there is nothing to hold out, so training runs a fixed ``steps_without_holdout`` steps.
Training is sized for CPUs: in-memory tensors, a step budget, AdamW with warm-up + cosine decay.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn

from sslcore.augment import default_view_augment
from sslcore.data.base import dataset_type
from sslcore.data.split import stratified_split
from sslcore.engine.device import autocast, pick_device, use_bf16
from sslcore.engine.optim import AdamW
from sslcore.engine.schedule import warmup_cosine
from sslcore.evaluation.features import encode
from sslcore.models import build_encoder, linear_classifier
from sslcore.models.layout import to_conv_layout


def _as_images(images: Any) -> torch.Tensor:
    """uint8 images (N, C, H, W) or float32 rows (N, F) as a CPU torch tensor (numpy arrays are wrapped, not
    copied; float64 rows are cast)."""
    x = torch.as_tensor(images)
    if x.dtype == torch.float64 and x.ndim == 2:
        x = x.float()
    if not ((x.dtype == torch.uint8 and x.ndim == 4) or (x.dtype == torch.float32 and x.ndim == 2)):
        raise ValueError(f"images must be uint8 (N, C, H, W) (or table rows float32 (N, F)), "
                         f"got {x.dtype} {tuple(x.shape)}")
    return x.cpu()


#: The networks' ``precision`` settings: "auto" trains in bf16 autocast exactly where the SSL trainer does
#: (:func:`sslcore.engine.device.use_bf16`: GPUs with bf16, convolutional models on CPUs with native bf16).
PRECISIONS = ("auto", "bf16", "fp32")


def trains_in_bf16(device: torch.device, model: nn.Module, precision: str = "auto") -> bool:
    """Whether a supervised network (or fine-tuning) of ``model``'s architecture trains in bf16 autocast on
    ``device`` with ``precision`` ("auto": where the SSL trainer does; "bf16"; "fp32").

    On CPUs with native bf16 "auto" means bf16 for convolutional networks: the networks learn as much in it as in
    fp32. Paired fits on mnist5k (same labelled subset and seed each way, one thread each, 2-core AMD EPYC with
    avx512_bf16), fp32 against bf16 test accuracy (mean paired difference, standard error): 1 label per class
    44.1 against 44.3 (12 pairs; +0.18, 0.16), 4 per class 69.5 against 68.6 (36; -0.87, 0.64), 10 per class 87.0
    against 87.8 (12; +0.79, 0.46), 100 per class 96.0 against 95.9 (12; -0.12, 0.28), all 96.3 against 96.4
    (6; +0.10, 0.27); each fit 1.5x faster from 4 labels per class up (`benchmarks/bench_network_precision.py`).
    (An earlier reading of 3 repeats, 10 per class 83.7 against 88.0, was within the spread of so few fits.)
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return use_bf16(device, precision, model)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases and norm parameters (as the SSL trainer does)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _epoch_batches(n: int, batch: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless int64 index batches (batch,) into range(n): a fresh shuffle per epoch, short tail dropped
    (as in the SSL trainer, so BatchNorm never sees a tiny last batch)."""
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch + 1, batch):
            yield order[start:start + batch]


def _optimizer_step(model: nn.Module, optimizer: AdamW, lr: float, images: torch.Tensor,
              labels: torch.Tensor, bf16: bool) -> None:
    """One cross-entropy step on a model-input batch (images in [0, 1] or rows) and class indices (B,)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    with autocast(images.device, bf16):
        logits = model(images)
    loss = F.cross_entropy(logits.float(), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


class _EarlyStopping:
    """Remembers the best held-out score (accuracy, -loss) and its weights; says when patience ran out."""

    def __init__(self, patience: int) -> None:
        self.patience, self.waited = patience, 0
        self.best: tuple[float, float] = (-1.0, -math.inf)
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_step = 0

    def update(self, score: tuple[float, float], step: int, model: nn.Module) -> bool:
        """Record the evaluation at ``step``; True when training should stop."""
        if score > self.best:
            self.best, self.best_step, self.waited = score, step, 0
            self.best_state = copy.deepcopy(model.state_dict())
            return False
        self.waited += 1
        return self.waited >= self.patience


class SupervisedBaseline(ClassifierMixin, BaseEstimator):
    """Encoder ``encoder_name`` (width ``width``) + linear head, trained with cross-entropy from scratch.

    Parameters: ``image_shape``: the sample shape, (C, H, W) or a table's (F,), or None to take it from the
    data; ``depth``/``norm``/``patch_size``: of an MLP or ViT encoder (others ignore them); ``augment`` applies
    ``default_view_augment`` to every batch of images (rows are not augmented); ``max_steps`` is the step budget
    (the cosine schedule spans it; early stopping may end sooner), fixed whatever the subset size, so the
    cost of a fit is bounded: ~ max_steps * min(batch_size, N) images; ``holdout_fraction`` of the
    subset (stratified, >= 1 per class) is held out for early stopping, evaluated every ``eval_every``
    steps with ``patience`` evaluations without improvement; ``precision`` "auto" trains in bf16 autocast where
    the SSL trainer would (:func:`trains_in_bf16`), "bf16" or "fp32" force it; ``device`` "auto" picks cuda > mps
    > cpu. The defaults were sized on mnist5k (4,000 training images, 2 shared CPU cores, one thread): 300 steps
    of 64 images (about 6 epochs of the 3,200 non-held-out images) reach 96.5% on the test split in
    ~20 s of CPU per fit; 200 steps of 128 cost ~20% more for ~0.4 points, 150 steps of 128 lose ~0.5.
    A cap on epochs for small subsets was tried and not kept: 4 labels per class (30 training images) capped
    at 100 epochs gave 68.8 ± 2.2 on mnist5k's 3 protocol subsets against 70.7 ± 2.5 uncapped (early stopping
    already ends those fits at 175-225 steps), 50 epochs gave 63.1; the saving is a small share of the protocol.

    Learned attributes: ``classes_``, ``image_shape_``, ``model_`` (encoder + head, on ``device_``),
    ``train_indices_`` / ``holdout_indices_`` (positions in the fitted data), ``early_stopping_``, ``bf16_``
    (trained in bf16 autocast), ``n_steps_`` (steps run), ``best_step_`` (the step whose weights are kept),
    ``holdout_accuracy_`` (None without a held-out part), ``history_`` (held-out accuracy/loss per evaluation),
    ``fit_seconds_``.
    """

    def __init__(self, encoder_name: str = "convnet", width: int = 32,
                 image_shape: tuple[int, ...] | None = None, *, depth: int = 2, norm: str = "batch",
                 patch_size: int = 4, augment: bool = True, max_steps: int = 300, batch_size: int = 64,
                 lr: float = 2e-3, weight_decay: float = 5e-4, holdout_fraction: float = 0.2, eval_every: int = 25,
                 patience: int = 4, steps_without_holdout: int = 100, precision: str = "auto",
                 device: str = "auto", random_state: int = 0) -> None:
        self.encoder_name = encoder_name
        self.width = width
        self.image_shape = image_shape
        self.depth = depth
        self.norm = norm
        self.patch_size = patch_size
        self.augment = augment
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.holdout_fraction = holdout_fraction
        self.eval_every = eval_every
        self.patience = patience
        self.steps_without_holdout = steps_without_holdout
        self.precision = precision
        self.device = device
        self.random_state = random_state

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, images: Any, labels: Any) -> SupervisedBaseline:
        """Train on uint8 images (N, C, H, W) (or float32 rows (N, F)) and integer labels (N,); returns self."""
        started = time.perf_counter()
        x = _as_images(images)
        y_raw = np.asarray(torch.as_tensor(labels).cpu())
        self.classes_, y_index = np.unique(y_raw, return_inverse=True)
        y = torch.from_numpy(y_index.astype(np.int64))
        self.image_shape_ = tuple(int(s) for s in x.shape[1:])
        if self.image_shape is not None and tuple(self.image_shape) != self.image_shape_:
            raise ValueError(f"image_shape={tuple(self.image_shape)} but the images are {self.image_shape_}")
        self._split_holdout(y)
        if len(self.train_indices_) < 2:
            raise ValueError("the supervised baseline needs at least 2 training images")
        self.device_ = pick_device(self.device)
        self.model_ = self._build_model(x[self.train_indices_])
        self._train(x, y)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _split_holdout(self, y: torch.Tensor) -> None:
        """Stratified held-out part for early stopping, or none when a class has a single label."""
        counts = torch.bincount(y)
        self.early_stopping_ = bool(self.holdout_fraction > 0 and int(counts.min()) >= 2)
        if self.early_stopping_:
            train_idx, holdout_idx = stratified_split(y, self.holdout_fraction, self.random_state)
        else:
            train_idx, holdout_idx = torch.arange(len(y)), torch.zeros(0, dtype=torch.int64)
        self.train_indices_, self.holdout_indices_ = train_idx.numpy(), holdout_idx.numpy()

    def _build_model(self, train_images: torch.Tensor) -> nn.Sequential:
        """Encoder normalised with the training part's statistics (never the test split's) + linear head."""
        mean, std = dataset_type(train_images).input_stats(train_images)
        # A private RNG stream: the initial weights depend on random_state only, and the caller's
        # global torch RNG is left untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            encoder = build_encoder(self.encoder_name, self.image_shape_, width=self.width, depth=self.depth,
                                    norm=self.norm, patch_size=self.patch_size, mean=mean, std=std)
            head = linear_classifier(encoder.feature_dim, len(self.classes_))
        return nn.Sequential(encoder, head).to(self.device_)

    def _train(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """The optimisation loop; keeps the weights of the best held-out evaluation (early stopping)."""
        dev = self.device_
        train_x, train_y = x[self.train_indices_].to(dev), y[self.train_indices_].to(dev)
        batch = min(self.batch_size, len(train_y))
        total = self.max_steps if self.early_stopping_ else self.steps_without_holdout
        # channels_last for conv nets (sslcore.models.layout): on a 2-core AVX2 EPYC (one thread) a batch-64
        # step of the 28x28 convnet measured ~11% faster (batch 30: ~19%).
        layout = to_conv_layout(self.model_)
        optimizer = AdamW(_param_groups(self.model_, self.weight_decay), lr=self.lr)
        to_input = dataset_type(x).to_input
        is_image = len(self.image_shape_) == 3  # table rows have no standard augmentation
        view = default_view_augment(self.image_shape_[0], self.image_shape_[1]) if self.augment and is_image else None
        aug_gen = torch.Generator(device=dev).manual_seed(self.random_state)
        batches = _epoch_batches(len(train_y), batch, torch.Generator().manual_seed(self.random_state + 1))
        self.history_: list[dict[str, float]] = []
        self.bf16_ = trains_in_bf16(dev, self.model_, self.precision)
        stopper, step = _EarlyStopping(self.patience), 0
        self.model_.train()
        while step < total:
            index = next(batches).to(dev)
            images = to_input(train_x[index])
            images = view(images, aug_gen) if view is not None else images
            images = images.contiguous(memory_format=layout)
            lr = warmup_cosine(step, total, self.lr, max(1, total // 20), self.lr * 0.01)
            _optimizer_step(self.model_, optimizer, lr, images, train_y[index], self.bf16_)
            step += 1
            if self.early_stopping_ and (step % self.eval_every == 0 or step == total):
                if stopper.update(self._evaluate_holdout(x, y, step), step, self.model_):
                    break
        self.n_steps_ = step
        self.best_step_ = stopper.best_step if stopper.best_state is not None else step
        if stopper.best_state is not None:
            self.model_.load_state_dict(stopper.best_state)
        self.holdout_accuracy_ = stopper.best[0] if self.early_stopping_ else None
        self.model_.eval()

    def _evaluate_holdout(self, x: torch.Tensor, y: torch.Tensor, step: int) -> tuple[float, float]:
        """(accuracy, -mean loss) on the held-out part; loss breaks ties of a small held-out part. In the precision
        the network trains in (bf16 halved this evaluation's cost, 17% of a bf16 fit on all of mnist5k's labels);
        the test split's predictions stay fp32."""
        with autocast(self.device_, self.bf16_):
            logits = encode(self.model_, x[self.holdout_indices_]).float()
        target = y[self.holdout_indices_].to(logits.device)
        accuracy = float((logits.argmax(1) == target).float().mean())
        loss = float(F.cross_entropy(logits, target))
        self.history_.append({"step": step, "holdout_accuracy": accuracy, "holdout_loss": loss})
        return accuracy, -loss

    # -- prediction -----------------------------------------------------------------------------
    def decision_function(self, images: Any) -> np.ndarray:
        """Class logits (N, n_classes) for uint8 images (N, C, H, W)."""
        return encode(self.model_, _as_images(images)).float().cpu().numpy()

    def predict(self, images: Any) -> np.ndarray:
        """Predicted labels (N,) (values from ``classes_``) for uint8 images (N, C, H, W)."""
        return self.classes_[self.decision_function(images).argmax(axis=1)]

    def score(self, images: Any, labels: Any, sample_weight: Any = None) -> float:
        """Accuracy on uint8 images (N, C, H, W) with integer labels (N,)."""
        truth = np.asarray(torch.as_tensor(labels).cpu())
        return float(np.average(self.predict(images) == truth, weights=sample_weight))
