"""Learning-rate schedules as pure functions of the step, so the UI can plot them before a run.

:func:`plan_schedule` is the one place that turns a run's config and training-set size into its step
layout (batch, steps per epoch, warm-up steps) and learning rate per step: the trainer follows it and the
Train page plots it before the run starts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from sslcore.config_schema import TrainConfig


def warmup_cosine(step: int, total_steps: int, peak: float, warmup_steps: int, final: float) -> float:
    """Linear warm-up from ~0 to ``peak`` over ``warmup_steps``, then cosine decay to ``final`` at ``total_steps``.

    (DINO's ``cosine_scheduler`` as a function instead of a precomputed array.)
    """
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return final + 0.5 * (peak - final) * (1.0 + math.cos(math.pi * progress))


def schedule_curve(total_steps: int, peak: float, warmup_steps: int, final: float) -> list[float]:
    """The whole schedule, one value per step (for plots)."""
    return [warmup_cosine(s, total_steps, peak, warmup_steps, final) for s in range(total_steps)]


@dataclass(frozen=True)
class SchedulePlan:
    """A run's steps and learning rate: batches of ``batch_size``, whole batches only, ``steps_per_epoch``
    per epoch; linear warm-up over ``warmup_steps`` to ``peak``, then cosine decay to ``final``."""

    batch_size: int
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    peak: float
    final: float

    def lr(self, step: int) -> float:
        """The learning rate of optimiser step ``step`` (0-based)."""
        return warmup_cosine(step, self.total_steps, self.peak, self.warmup_steps, self.final)

    def sample(self, points: int = 300) -> tuple[list[int], list[float]]:
        """(steps, learning rates) at up to ``points`` evenly spread steps from the first to the last."""
        last = self.total_steps - 1
        steps = sorted({round(i * last / max(1, points - 1)) for i in range(points)})
        return steps, [self.lr(s) for s in steps]


def plan_schedule(train: TrainConfig, train_size: int) -> SchedulePlan:
    """The plan of a run with config ``train`` on ``train_size`` training images.

    A batch never exceeds the training set; a last partial batch is dropped (every step sees a full batch).
    """
    batch_size = max(1, min(train.batch_size, train_size))
    steps_per_epoch = max(1, train_size // batch_size)
    return SchedulePlan(batch_size, steps_per_epoch, train.epochs * steps_per_epoch,
                        round(train.warmup_epochs * steps_per_epoch), train.lr, train.lr * train.min_lr_ratio)


def cosine_momentum(step: int, total_steps: int, base: float, final: float = 1.0) -> float:
    """BYOL's target momentum: ``base`` at step 0, rising along a half cosine to ``final`` at ``total_steps``.

    m = final - (final - base) * (cos(pi * step / total_steps) + 1) / 2 (Grill et al. 2020): the target
    moves fast while the online network changes fast, then freezes as training settles.
    """
    progress = min(1.0, max(0.0, step / max(1, total_steps)))
    return final - (final - base) * (math.cos(math.pi * progress) + 1.0) / 2.0
