"""The training loop. Everything that is not optimisation (logging, checkpoints, snapshots, stop
requests, the NaN guard, the online k-NN monitor) is a callback reading the typed ``TrainState``."""
from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from sslcore import distributed
from sslcore.config import RunConfig
from sslcore.data import DatasetSplit, ImageDataset
from sslcore.engine import ddp
from sslcore.engine.callbacks import Callback, CallbackList
from sslcore.engine.device import autocast, use_bf16
from sslcore.engine.optim import SGD, AdamW, Optimizer
from sslcore.engine.schedule import SchedulePlan, plan_schedule
from sslcore.engine.state import TrainState
from sslcore.models.layout import match_state_layout, to_conv_layout
from sslcore.tasks import PretextTask, StepOutput
from sslcore.tasks.build import build_task as build_task  # re-exported: its home was this module


def build_optimizer(model: torch.nn.Module, config: RunConfig) -> Optimizer:
    """AdamW or SGD; no weight decay on biases and norm parameters (standard practice since BYOL/MoCo v3)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.train.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if config.train.optimizer == "sgd":
        return SGD(groups, lr=config.train.lr, momentum=0.9, nesterov=True)
    return AdamW(groups, lr=config.train.lr)


def step_seed(seed: int, step: int, rank: int = 0) -> int:
    """Seed of the augmentation generator at ``step`` on process ``rank``: a pure function, so a resumed run
    draws the same views, and each process draws its own views of its own slice of the batch."""
    return (seed * 1_000_003 + step * 7919 + rank * 104_729 + 1) % (2**63 - 1)


@dataclass(frozen=True)
class StartPoint:
    """What a fresh run looked like before its first step (weights, optimiser, state), kept so the epoch-0
    baseline of the untrained model can be recorded just after the first steps, not before them."""

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    state: TrainState


class LossTally:
    """Step losses summed on the training device and read back to the CPU (a device sync) only when asked;
    with several processes, read back as their mean over ranks (one small all-reduce)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total: torch.Tensor | None = None  # scalar: sum of the losses since the last read
        self.count = 0
        self.last: dict[str, torch.Tensor] = {}  # the last step's loss and metrics, detached scalars

    def add(self, out: StepOutput) -> None:
        self.last = {"loss": out.loss.detach().float(), **{k: v.detach().float() for k, v in out.metrics.items()}}
        self.total = self.last["loss"] if self.total is None else self.total + self.last["loss"]
        self.count += 1

    def read_into(self, state: TrainState) -> None:
        """Last step's loss and metrics, and the sum since the last read, into ``state`` (every rank at once)."""
        if self.total is None:
            return
        names = sorted(self.last)
        values = distributed.mean_over_ranks(torch.stack([self.total, *(self.last[k] for k in names)])).tolist()
        state.epoch_loss_sum += values[0]
        state.epoch_loss_count += self.count
        last = dict(zip(names, values[1:], strict=True))
        state.loss = last.pop("loss")
        state.step_metrics = last
        self.reset()


@dataclass
class Trainer:
    """Trains ``task`` on ``data.train`` (raw samples already on ``device``: uint8 images or float rows).

    ``model`` is what a step calls: the task itself, or DistributedDataParallel around it with several processes.
    """

    config: RunConfig
    task: PretextTask
    model: nn.Module
    optimizer: Optimizer
    train_images: torch.Tensor  # the raw samples on device: uint8 (N, C, H, W) images or float32 (N, F) rows
    device: torch.device
    callbacks: CallbackList
    state: TrainState
    tally: LossTally = field(default_factory=LossTally)
    bf16: bool = False  # steps in bf16 autocast (engine.device.use_bf16); the epoch-end evaluators follow it
    to_input: Callable[[torch.Tensor], torch.Tensor] = ImageDataset.to_input  # the data kind's per-batch conversion

    @classmethod
    def create(cls, config: RunConfig, task: PretextTask, data: DatasetSplit, device: torch.device,
               callbacks: Sequence[Callback] = (), checkpoint: dict[str, Any] | None = None) -> Trainer:
        """A trainer ready to ``fit``; with ``checkpoint`` it continues where that checkpoint stopped."""
        task.to(device)
        to_conv_layout(task)  # before the optimizer and DDP see the parameters
        model = ddp.wrap(task, device, sync_bn=config.train.sync_bn)
        optimizer = build_optimizer(task, config)
        plan = plan_schedule(config.train, len(data.train))
        distributed.check_global_batch(plan.batch_size)
        state = TrainState(epochs=config.train.epochs, steps_per_epoch=plan.steps_per_epoch, batch_size=plan.batch_size)
        if checkpoint is not None:
            task.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            match_state_layout(optimizer)  # the file holds contiguous moments; the parameters are channels-last
            state = TrainState.from_checkpoint(checkpoint["state"], epochs=config.train.epochs)
        return cls(config, task, model, optimizer, data.train.samples.to(device), device, CallbackList(list(callbacks)),
                   state, bf16=use_bf16(device, config.train.precision, task), to_input=data.train.to_input)

    @property
    def plan(self) -> SchedulePlan:
        """The run's step layout and learning-rate schedule (the Train page plots the same plan)."""
        return plan_schedule(self.config.train, self.train_images.shape[0])

    def learning_rate(self, step: int) -> float:
        return self.plan.lr(step)

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """The shuffled sample order of ``epoch`` (int64 (N,)), a pure function of (seed, epoch)."""
        g = torch.Generator().manual_seed(self.config.train.seed * 10_007 + epoch)  # the same on every rank
        return torch.randperm(self.train_images.shape[0], generator=g).to(self.device)

    def fit(self) -> str:
        """Train until all epochs are done or a callback sets ``stop_reason``; returns 'completed' or that reason."""
        s, cb = self.state, self.callbacks
        generator = torch.Generator(device=self.device)
        self.task.train()
        cb.on_fit_start(s, self)
        # The "epoch 0" record, snapshot and checkpoint of the untrained model (the baseline to compare with) are
        # taken after the first step, from a copy of the start: the first loss point comes seconds sooner.
        start = self.start_point() if s.step == 0 else None
        while s.epoch < s.epochs and s.stop_reason is None:
            order = self.epoch_order(s.epoch)
            while s.batch_in_epoch < s.steps_per_epoch and s.stop_reason is None:
                index = order[s.batch_in_epoch * s.batch_size:(s.batch_in_epoch + 1) * s.batch_size]
                index = distributed.local_share(index)  # this process's slice of the global batch
                self.train_step(self.to_input(self.train_images[index]), generator, self.bf16)
                cb.on_step_end(s)
                if start is not None:
                    self.record_start(start)
                    start = None
            if s.stop_reason is None:
                s.epoch, s.batch_in_epoch = s.epoch + 1, 0
                self.end_epoch()
        if start is not None:  # stopped before the first step: the baseline is still the current model
            self.end_epoch()
        self.tally.read_into(s)  # what a stop between two read-backs left on the device
        outcome = s.stop_reason or "completed"
        cb.on_fit_end(s, outcome)
        return outcome

    def start_point(self) -> StartPoint:
        """A copy of the model, optimiser and state as they are now (before the first step)."""
        state = copy.deepcopy(self.state)
        return StartPoint({k: v.detach().clone() for k, v in self.task.state_dict().items()},
                          copy.deepcopy(self.optimizer.state_dict()), state)

    def record_start(self, start: StartPoint) -> None:
        """Run the epoch-end callbacks on the model as it was at ``start`` (the epoch-0 baseline), then go on
        from where training is now; the time it took counts as end-of-epoch work for the ETA."""
        with self._rewound_to(start):
            self.end_epoch()
        self.state.epoch_end_seconds = start.state.epoch_end_seconds
        self.state.epoch_ends_timed = start.state.epoch_ends_timed

    @contextlib.contextmanager
    def _rewound_to(self, start: StartPoint) -> Iterator[None]:
        """Within: the task's weights, the optimiser and ``self.state`` are those of ``start``; after: today's."""
        live = StartPoint({k: v.detach().clone() for k, v in self.task.state_dict().items()},
                          copy.deepcopy(self.optimizer.state_dict()), self.state)
        self.task.load_state_dict(start.model)
        self.optimizer.load_state_dict(start.optimizer)
        self.state = start.state
        try:
            yield
        finally:
            self.task.load_state_dict(live.model)
            self.optimizer.load_state_dict(live.optimizer)
            self.state = live.state

    def end_epoch(self) -> None:
        """The epoch-end callbacks (evaluation, snapshot, checkpoint), timed: the ETA counts them in."""
        started = time.perf_counter()
        self.callbacks.on_epoch_end(self.state)
        self.state.close_epoch_pace(time.perf_counter() - started)
        self.state.reset_epoch()

    def train_step(self, images: torch.Tensor, generator: torch.Generator, bf16: bool) -> None:
        """One optimisation step on a model-input batch (images (B, C, H, W) in [0, 1] or rows (B, F));
        updates ``state``."""
        s = self.state
        started = time.perf_counter()
        s.lr = self.learning_rate(s.step)
        for group in self.optimizer.param_groups:
            group["lr"] = s.lr
        generator.manual_seed(step_seed(self.config.train.seed, s.step, distributed.rank()))
        with autocast(self.device, bf16), distributed.spanning_ranks():
            out = self.model(images, generator)
        self.optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        self.optimizer.step()
        self.task.after_optimizer_step(s.step, s.total_steps)
        s.step += 1
        s.batch_in_epoch += 1
        self.tally.add(out)
        if s.step % self.config.train.log_every == 0 or s.batch_in_epoch == s.steps_per_epoch:
            self.tally.read_into(s)
        s.epoch_train_seconds += time.perf_counter() - started

    def checkpoint_payload(self) -> dict[str, Any]:
        return {"model": self.task.state_dict(), "optimizer": self.optimizer.state_dict(),
                "state": self.state.to_checkpoint(), "config": self.config.to_dict()}
