"""Callbacks: every side effect of training, each reading the typed ``TrainState``.

The order of a CallbackList matters at epoch end: evaluators fill ``state.epoch_metrics`` before the
logger writes them, and the checkpoint is written last.
"""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from sslcore import distributed
from sslcore.engine.state import TrainState

if TYPE_CHECKING:
    from sslcore.engine.trainer import Trainer


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message says at which step and what to try."""


class Callback:
    """No-op hooks; override the ones you need. ``on_fit_start`` receives the trainer to take references from."""

    def on_fit_start(self, state: TrainState, trainer: Trainer) -> None:
        """Called once before the first step of this session (fresh or resumed)."""

    def on_step_end(self, state: TrainState) -> None:
        """Called after every optimiser step."""

    def on_epoch_end(self, state: TrainState) -> None:
        """Called after each completed epoch, and once at epoch 0 before training starts."""

    def on_fit_end(self, state: TrainState, outcome: str) -> None:
        """Called when the loop ends: outcome is 'completed' or the stop reason ('cancelled')."""


class CallbackList(Callback):
    def __init__(self, callbacks: list[Callback]) -> None:
        self.callbacks = callbacks

    def on_fit_start(self, state: TrainState, trainer: Trainer) -> None:
        for c in self.callbacks:
            c.on_fit_start(state, trainer)

    def on_step_end(self, state: TrainState) -> None:
        for c in self.callbacks:
            c.on_step_end(state)

    def on_epoch_end(self, state: TrainState) -> None:
        for c in self.callbacks:
            c.on_epoch_end(state)

    def on_fit_end(self, state: TrainState, outcome: str) -> None:
        for c in self.callbacks:
            c.on_fit_end(state, outcome)


class NaNGuard(Callback):
    """Stops training the moment the loss is not finite, before the bad weights are ever checkpointed."""

    def on_step_end(self, state: TrainState) -> None:
        if not math.isfinite(state.loss):
            raise NonFiniteLossError(
                f"the loss became {state.loss} at step {state.step} (epoch {state.epoch + 1}, lr {state.lr:.3g}); "
                "training diverged. Try a lower learning rate (train.lr) or fp32 precision.")


class WaitForMain(Callback):
    """With several processes: every rank waits here at the end of an epoch while rank 0 evaluates, snapshots
    and checkpoints (callbacks before this one), so none runs ahead into a collective that rank 0 is late for.
    The wait is a barrier on the CPU with a long timeout (see :mod:`sslcore.distributed`)."""

    def on_epoch_end(self, state: TrainState) -> None:
        distributed.barrier()


def epoch_record(state: TrainState) -> dict[str, Any]:
    """The per-epoch metrics line: mean loss, lr, images/s, elapsed, ETA and whatever evaluators added."""
    record: dict[str, Any] = {"kind": "epoch", "epoch": state.epoch, "step": state.step, "time": time.time(),
                              "elapsed": round(state.elapsed, 3)}
    if state.epoch_loss_count:
        eta = state.eta_seconds()
        record.update(loss=state.epoch_mean_loss(), lr=state.lr, images_per_s=state.epoch_images_per_second(),
                      eta=None if eta is None else round(eta, 1))
    record.update(state.epoch_metrics)
    return record


class ConsoleProgress(Callback):
    """A one-line progress display for the terminal: epoch, loss, samples/s, ETA (rewritten in place).

    ``per_second``: how the speed is labelled ("img/s", or "rows/s" for a table)."""

    def __init__(self, stream: Any, interactive: bool, per_second: str = "img/s") -> None:
        self.stream, self.interactive, self.per_second, self._last = stream, interactive, per_second, 0.0

    def on_step_end(self, state: TrainState) -> None:
        if self.interactive and time.monotonic() - self._last > 0.2:
            self._last = time.monotonic()
            self.stream.write("\r" + self.line(state))
            self.stream.flush()

    def on_epoch_end(self, state: TrainState) -> None:
        if state.epoch == 0:
            return
        # the process's CPU and memory (sys_*) are for the charts and the record, not this line
        extras = "  ".join(f"{k} {v:.4g}" for k, v in state.epoch_metrics.items() if not k.startswith("sys_"))
        self.stream.write(("\r" if self.interactive else "") + self.line(state, state.epoch) + f"  {extras}\n")
        self.stream.flush()

    def line(self, state: TrainState, epoch: int | None = None) -> str:
        """The progress line of epoch ``epoch`` (1-based); by default the epoch in progress (``state.epoch``
        counts the epochs done, so the one at an epoch end is ``state.epoch`` itself)."""
        done = state.step / max(1, state.total_steps)
        bar = "#" * int(24 * done) + "." * (24 - int(24 * done))
        ips = state.epoch_images_per_second()
        eta = state.eta_seconds()
        epoch = min(state.epoch + 1, state.epochs) if epoch is None else epoch
        return (f"epoch {epoch}/{state.epochs} [{bar}] loss {state.loss:.4f}  "
                f"{(ips or 0):,.0f} {self.per_second}  ETA {format_duration(eta)}")


def format_duration(seconds: float | None, unknown: str = "--") -> str:
    """'1:02:03', '2:05' or ``unknown`` (None, NaN, infinite)."""
    if seconds is None or not math.isfinite(seconds):
        return unknown
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"
