"""The typed state a training loop shares with its callbacks (instead of callbacks poking at the trainer)."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class TrainState:
    """Where training stands. Saved in checkpoints, so a resumed run continues at the exact batch."""

    epochs: int
    steps_per_epoch: int
    batch_size: int
    epoch: int = 0                # epochs fully completed
    step: int = 0                 # optimiser steps taken, over all sessions
    batch_in_epoch: int = 0       # batches of the current epoch already done
    loss: float = float("nan")    # last step's loss
    lr: float = 0.0
    step_metrics: dict[str, float] = field(default_factory=dict)
    epoch_loss_sum: float = 0.0   # running sums for the epoch's mean loss
    epoch_loss_count: int = 0
    epoch_train_seconds: float = 0.0  # time spent in optimisation steps this epoch (for images/s)
    epoch_metrics: dict[str, float] = field(default_factory=dict)  # filled by evaluators at epoch end
    elapsed_before: float = 0.0   # training seconds of earlier sessions (resume keeps the clock)
    session_start: float = field(default_factory=time.time)
    session_start_step: int = 0
    stop_reason: str | None = None  # set by a callback to end the run early ("cancelled")
    # The pace the ETA is made of, measured in this session (not checkpointed: a resumed run may be elsewhere).
    # Mean wall time of this session's epoch ends (evaluation, snapshot, checkpoint): a mean, not the last one,
    # because with train.monitor_every > 1 measured and unmeasured epochs alternate (0.2 s against 0.02 s).
    epoch_end_seconds: float | None = None
    epoch_ends_timed: int = 0
    last_step_seconds: float | None = None  # seconds per step over the previous epoch

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def epoch_images_per_second(self) -> float | None:
        if self.epoch_train_seconds <= 0:
            return None
        return self.epoch_loss_count * self.batch_size / self.epoch_train_seconds

    def epoch_mean_loss(self) -> float | None:
        return self.epoch_loss_sum / self.epoch_loss_count if self.epoch_loss_count else None

    def reset_epoch(self) -> None:
        self.epoch_loss_sum, self.epoch_loss_count, self.epoch_train_seconds = 0.0, 0, 0.0
        self.epoch_metrics = {}

    @property
    def elapsed(self) -> float:
        return self.elapsed_before + (time.time() - self.session_start)

    def seconds_per_step(self) -> float | None:
        """Wall seconds per optimisation step: this epoch's so far, else the previous epoch's; None before any.

        Counted by batches (always current), not by logged losses (those are read back from the device in
        batches); at an epoch's end (``batch_in_epoch`` back to 0) the whole epoch's steps.
        """
        if self.epoch_train_seconds > 0:
            return self.epoch_train_seconds / (self.batch_in_epoch or self.steps_per_epoch)
        return self.last_step_seconds

    def eta_seconds(self) -> float | None:
        """Remaining wall time: the steps left at the measured pace, plus the end-of-epoch work still to come
        (one per epoch left) at its mean measured duration; None before the first step.

        Start-up (imports, data, the untrained epoch-0 evaluation) is left out of the pace, so the first
        estimate is not inflated by it; and the pace is this epoch's, so it follows the machine's load.
        """
        per_step = self.seconds_per_step()
        if per_step is None:
            return None
        epoch_ends = self.epochs - self.epoch  # each epoch still running ends with its evaluation and checkpoint
        return per_step * (self.total_steps - self.step) + epoch_ends * (self.epoch_end_seconds or 0.0)

    def close_epoch_pace(self, epoch_end_seconds: float) -> None:
        """Remember the finished epoch's pace and fold how long its end work took into the mean (called once
        that work is done)."""
        if self.epoch_train_seconds > 0:
            self.last_step_seconds = self.seconds_per_step()
        total = (self.epoch_end_seconds or 0.0) * self.epoch_ends_timed + epoch_end_seconds
        self.epoch_ends_timed += 1
        self.epoch_end_seconds = total / self.epoch_ends_timed

    def to_checkpoint(self) -> dict[str, Any]:
        """Plain values only, so checkpoints load with ``torch.load(weights_only=True)``."""
        saved = asdict(self)
        saved["elapsed_before"] = self.elapsed
        for transient in ("session_start", "session_start_step", "stop_reason", "step_metrics", "epoch_metrics",
                          "epoch_end_seconds", "epoch_ends_timed", "last_step_seconds"):
            saved.pop(transient)
        return saved

    @classmethod
    def from_checkpoint(cls, saved: dict[str, Any], epochs: int) -> TrainState:
        state = cls(**{**saved, "epochs": epochs})
        state.session_start_step = state.step
        return state
