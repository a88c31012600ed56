"""Epoch-end evaluators: the live signals that features are getting better."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from sslcore.data import DatasetSplit
from sslcore.engine.callbacks import Callback
from sslcore.engine.state import TrainState
from sslcore.evaluation.features import encode
from sslcore.evaluation.knn import knn_accuracy

if TYPE_CHECKING:
    from sslcore.engine.trainer import Trainer
    from sslcore.tasks import PretextTask


class EpochEvaluator(Callback):
    """Each epoch: online k-NN accuracy of the encoder's features (train -> test split) and the task's own
    held-out metrics (e.g. test reconstruction error), written into ``state.epoch_metrics``.

    ``max_images`` caps the images encoded so the monitor stays a small fraction of an epoch on big datasets.
    """

    def __init__(self, data: DatasetSplit, knn_k: int, seed: int, max_images: int = 10_000) -> None:
        self.data, self.knn_k, self.seed, self.max_images = data, knn_k, seed, max_images
        self.task: PretextTask | None = None

    def on_fit_start(self, state: TrainState, trainer: "Trainer") -> None:
        self.task = trainer.task
        device = trainer.device
        g = torch.Generator().manual_seed(self.seed)
        train_idx = torch.randperm(len(self.data.train), generator=g)[: self.max_images]
        test_idx = torch.randperm(len(self.data.test), generator=g)[: self.max_images // 4]
        self.train_images = self.data.train.images[train_idx].to(device)
        self.train_labels = self.data.train.labels[train_idx].to(device)
        self.test_images = self.data.test.images[test_idx].to(device)
        self.test_labels = self.data.test.labels[test_idx].to(device)
        self.device = device

    def on_epoch_end(self, state: TrainState) -> None:
        assert self.task is not None
        task = self.task
        if self.knn_k > 0:
            train_f = encode(task.encoder, self.train_images)
            test_f = encode(task.encoder, self.test_images)
            state.epoch_metrics["knn_acc"] = knn_accuracy(train_f, self.train_labels, test_f, self.test_labels,
                                                          self.data.train.num_classes, self.knn_k)
        was_training = task.training
        task.eval()
        try:
            generator = torch.Generator(device=self.device).manual_seed(self.seed)
            with torch.no_grad():
                state.epoch_metrics.update(task.evaluate(self.test_images.float().div(255.0), generator))
        finally:
            task.train(was_training)
