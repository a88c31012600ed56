"""The training loop. Everything that is not optimisation (logging, checkpoints, snapshots, stop
requests, the NaN guard, the online k-NN monitor) is a callback reading the typed ``TrainState``."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from sslcore.config import RunConfig
from sslcore.data import DatasetSplit, ImageDataset
from sslcore.engine.callbacks import Callback, CallbackList
from sslcore.engine.device import autocast, use_bf16
from sslcore.engine.schedule import SchedulePlan, plan_schedule
from sslcore.engine.state import TrainState
from sslcore.models import build_encoder
from sslcore.tasks import TASKS, PretextTask


def build_task(config: RunConfig, data: DatasetSplit) -> PretextTask:
    """Encoder + task for ``config``, sized for ``data`` and normalised with its train-split statistics."""
    mean, std = data.train.input_stats(data.train.samples)
    e = config.encoder
    encoder = build_encoder(e.name, data.sample_shape, width=e.width, depth=e.depth, norm=e.norm, mean=mean, std=std)
    return TASKS.get(config.task.name)(encoder, config.task, data.sample_shape)


def build_optimizer(model: torch.nn.Module, config: RunConfig) -> torch.optim.Optimizer:
    """AdamW or SGD; no weight decay on biases and norm parameters (standard practice since BYOL/MoCo v3)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.train.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if config.train.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.train.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=config.train.lr)


def step_seed(seed: int, step: int) -> int:
    """Seed of the augmentation generator at ``step``: a pure function, so a resumed run draws the same views."""
    return (seed * 1_000_003 + step * 7919 + 1) % (2**63 - 1)


@dataclass
class Trainer:
    """Trains ``task`` on ``data.train`` (raw samples already on ``device``: uint8 images or float rows)."""

    config: RunConfig
    task: PretextTask
    optimizer: torch.optim.Optimizer
    train_images: torch.Tensor  # the raw samples on device: uint8 (N, C, H, W) images or float32 (N, F) rows
    device: torch.device
    callbacks: CallbackList
    state: TrainState
    to_input: Callable[[torch.Tensor], torch.Tensor] = ImageDataset.to_input  # the data kind's per-batch conversion

    @classmethod
    def create(cls, config: RunConfig, task: PretextTask, data: DatasetSplit, device: torch.device,
               callbacks: Sequence[Callback] = (), checkpoint: dict[str, Any] | None = None) -> "Trainer":
        """A trainer ready to ``fit``; with ``checkpoint`` it continues where that checkpoint stopped."""
        task.to(device)
        optimizer = build_optimizer(task, config)
        plan = plan_schedule(config.train, len(data.train))
        state = TrainState(epochs=config.train.epochs, steps_per_epoch=plan.steps_per_epoch, batch_size=plan.batch_size)
        if checkpoint is not None:
            task.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            state = TrainState.from_checkpoint(checkpoint["state"], epochs=config.train.epochs)
        return cls(config, task, optimizer, data.train.samples.to(device), device, CallbackList(list(callbacks)), state,
                   data.train.to_input)

    @property
    def plan(self) -> SchedulePlan:
        """The run's step layout and learning-rate schedule (the Train page plots the same plan)."""
        return plan_schedule(self.config.train, self.train_images.shape[0])

    def learning_rate(self, step: int) -> float:
        return self.plan.lr(step)

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """The shuffled sample order of ``epoch`` (int64 (N,)), a pure function of (seed, epoch)."""
        g = torch.Generator().manual_seed(self.config.train.seed * 10_007 + epoch)
        return torch.randperm(self.train_images.shape[0], generator=g).to(self.device)

    def fit(self) -> str:
        """Train until all epochs are done or a callback sets ``stop_reason``; returns 'completed' or that reason."""
        s, cb = self.state, self.callbacks
        bf16 = use_bf16(self.device, self.config.train.precision)
        generator = torch.Generator(device=self.device)
        self.task.train()
        cb.on_fit_start(s, self)
        if s.step == 0:  # an "epoch 0" record, snapshot and checkpoint: the untrained baseline to compare with
            cb.on_epoch_end(s)
            s.reset_epoch()
        while s.epoch < s.epochs and s.stop_reason is None:
            order = self.epoch_order(s.epoch)
            while s.batch_in_epoch < s.steps_per_epoch and s.stop_reason is None:
                index = order[s.batch_in_epoch * s.batch_size:(s.batch_in_epoch + 1) * s.batch_size]
                self.train_step(self.to_input(self.train_images[index]), generator, bf16)
                cb.on_step_end(s)
            if s.stop_reason is None:
                s.epoch, s.batch_in_epoch = s.epoch + 1, 0
                cb.on_epoch_end(s)
                s.reset_epoch()
        outcome = s.stop_reason or "completed"
        cb.on_fit_end(s, outcome)
        return outcome

    def train_step(self, images: torch.Tensor, generator: torch.Generator, bf16: bool) -> None:
        """One optimisation step on a model-input batch (images (B, C, H, W) in [0, 1] or rows (B, F)); updates ``state``."""
        s = self.state
        started = time.perf_counter()
        s.lr = self.learning_rate(s.step)
        for group in self.optimizer.param_groups:
            group["lr"] = s.lr
        generator.manual_seed(step_seed(self.config.train.seed, s.step))
        with autocast(self.device, bf16):
            out = self.task.training_step(images, generator)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        self.optimizer.step()
        self.task.after_optimizer_step(s.step, s.total_steps)
        s.step += 1
        s.batch_in_epoch += 1
        s.loss = float(out.loss.detach())
        s.step_metrics = {k: float(v.detach()) for k, v in out.metrics.items()}
        s.epoch_loss_sum += s.loss
        s.epoch_loss_count += 1
        s.epoch_train_seconds += time.perf_counter() - started

    def checkpoint_payload(self) -> dict[str, Any]:
        return {"model": self.task.state_dict(), "optimizer": self.optimizer.state_dict(),
                "state": self.state.to_checkpoint(), "config": self.config.to_dict()}
