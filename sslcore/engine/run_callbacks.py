"""Callbacks that write a run folder: metrics, heartbeat, snapshots, checkpoints, stop requests."""
from __future__ import annotations

import signal
import threading
import time
from typing import TYPE_CHECKING, Any

import torch

from sslcore import distributed
from sslcore.engine.callbacks import Callback, epoch_record
from sslcore.engine.checkpoint import BackgroundWriter, cpu_copy, save_checkpoint, save_weights
from sslcore.engine.snapshots import write_snapshot
from sslcore.engine.state import TrainState
from sslcore.runs import Run

if TYPE_CHECKING:
    from sslcore.data.base import Dataset
    from sslcore.engine.trainer import Trainer


class StopRequest(Callback):
    """Ends training as 'cancelled' on SIGTERM/SIGINT or when the run's STOP file appears.

    With several processes, a request seen by any rank stops every rank at the same step: the flag is
    all-reduced after every step (on the CPU, so a GPU is never made to wait for it).
    """

    def __init__(self, run: Run) -> None:
        self.run = run
        self.signalled = False
        self.requested = False
        self._last_check = 0.0

    def on_fit_start(self, state: TrainState, trainer: Trainer) -> None:
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)

    def on_fit_end(self, state: TrainState, outcome: str) -> None:
        # Give the signals back: a process that goes on after training (a benchmark, a notebook) must stay killable.
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        # Only set a flag: the loop stops at the end of the current step and checkpoints cleanly.
        self.signalled = True

    def on_step_end(self, state: TrainState) -> None:
        now = time.monotonic()
        if not self.requested and now - self._last_check > 0.5:  # a stat() every half second, not every step
            self._last_check = now
            self.requested = self.run.stop_requested()
        if distributed.any_rank(self.signalled or self.requested):
            state.stop_reason = "cancelled"


class MetricsWriter(Callback):
    """Appends step losses (buffered, flushed about once a second) and one record per epoch to metrics.jsonl.

    The session's first step record is written at once: the chart's first point is the user's first feedback.
    """

    def __init__(self, run: Run, log_every: int = 1, flush_seconds: float = 1.0) -> None:
        self.run, self.log_every, self.flush_seconds = run, log_every, flush_seconds
        self.buffer: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        self._steps_written = False

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.log_every == 0:
            self.buffer.append({"kind": "step", "step": state.step, "epoch": state.epoch, "loss": state.loss,
                                "lr": state.lr, "time": time.time(), **state.step_metrics})
        if time.monotonic() - self._last_flush > self.flush_seconds or (self.buffer and not self._steps_written):
            self._steps_written = bool(self.buffer)
            self.flush()

    def on_epoch_end(self, state: TrainState) -> None:
        self.buffer.append(epoch_record(state))
        self.flush()

    def on_fit_end(self, state: TrainState, outcome: str) -> None:
        self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.run.append_metrics(*self.buffer)
            self.buffer = []
        self._last_flush = time.monotonic()


class Heartbeat(Callback):
    """Rewrites progress.json about once a second: liveness plus what a progress bar needs.

    Progress never goes back: the epoch-0 baseline, recorded after the first step with the start's state
    (step 0), leaves the file at the step training has reached.
    """

    def __init__(self, run: Run, every_seconds: float = 1.0) -> None:
        self.run, self.every = run, every_seconds
        self._last = 0.0
        self._step = -1

    def beat(self, state: TrainState, phase: str) -> None:
        if state.step < self._step:
            return
        self._last, self._step = time.monotonic(), state.step
        self.run.write_progress({"time": time.time(), "phase": phase, "epoch": state.epoch, "epochs": state.epochs,
                                 "step": state.step, "total_steps": state.total_steps, "loss": state.loss,
                                 "lr": state.lr, "eta_s": state.eta_seconds(), "elapsed_s": state.elapsed,
                                 "images_per_s": state.epoch_images_per_second()})

    def on_fit_start(self, state: TrainState, trainer: Trainer) -> None:
        self.beat(state, "starting")

    def on_step_end(self, state: TrainState) -> None:
        if time.monotonic() - self._last > self.every:
            self.beat(state, "training")

    def on_epoch_end(self, state: TrainState) -> None:
        self.beat(state, "training")

    def on_fit_end(self, state: TrainState, outcome: str) -> None:
        self.beat(state, outcome)


def pick_snapshot_indices(data: Dataset, count: int, seed: int) -> torch.Tensor:
    """``count`` fixed test samples (images or rows), cycling through the classes so every class shows up early
    (samples without a label, -1, are one more group: an unlabelled dataset is one group)."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data), generator=g)
    per_class = [order[data.labels[order] == c] for c in torch.unique(data.labels).tolist()]
    groups = len(per_class)
    if groups == 0:
        return torch.zeros(0, dtype=torch.int64)
    picked = [per_class[i % groups][i // groups] for i in range(count) if i // groups < len(per_class[i % groups])]
    return torch.stack(picked) if picked else torch.zeros(0, dtype=torch.int64)


class Snapshotter(Callback):
    """Saves what the task shows of a fixed set of test samples, at epoch 0 and after every epoch.

    File: ``snapshots/epoch_0003.npz``, in the format :mod:`sslcore.engine.snapshots` owns.
    """

    def __init__(self, run: Run, test: Dataset, count: int, seed: int) -> None:
        self.run, self.seed, self.to_input = run, seed, test.to_input
        self.indices = pick_snapshot_indices(test, count, seed)
        self.images, self.labels = test.samples[self.indices], test.labels[self.indices]

    def on_fit_start(self, state: TrainState, trainer: Trainer) -> None:
        self.task, self.device = trainer.task, trainer.device

    def on_epoch_end(self, state: TrainState) -> None:
        if len(self.indices) == 0:
            return
        task = self.task
        was_training = task.training
        task.eval()
        try:
            generator = torch.Generator(device=self.device).manual_seed(self.seed)
            with torch.no_grad():
                arrays = task.snapshot(self.to_input(self.images.to(self.device)), generator)
        finally:
            task.train(was_training)
        write_snapshot(self.run.snapshot_dir / f"epoch_{state.epoch:04d}.npz", task.name, state.epoch,
                       self.labels.numpy(), self.indices.numpy(), arrays)


class Checkpointer(Callback):
    """Each epoch: the full checkpoint (``checkpoints/last.pt``) and the encoder's weights for that epoch
    (``checkpoints/encoder_epoch_0003.safetensors``, for embedding maps by epoch). On a stop, a final
    checkpoint at the exact step, so a resume loses nothing.

    The epoch's files are written from one CPU copy of the weights and optimiser state, on a background
    thread while training goes on (each file replaced atomically, so a killed run keeps the previous
    checkpoint or the new one, whole). The run ends only once every file is on disk.
    """

    def __init__(self, run: Run) -> None:
        self.run = run
        self.writer = BackgroundWriter()

    def on_fit_start(self, state: TrainState, trainer: Trainer) -> None:
        self.trainer = trainer

    def save(self, state: TrainState) -> None:
        # cpu_copy also puts the tensors in the standard layout, as every checkpoint file has them
        save_checkpoint(self.run.checkpoint_dir / "last.pt", cpu_copy(self.trainer.checkpoint_payload()))

    def on_epoch_end(self, state: TrainState) -> None:
        payload = cpu_copy(self.trainer.checkpoint_payload())  # the one copy: training changes the weights next
        prefix = "encoder."
        encoder = {k[len(prefix):]: v for k, v in payload["model"].items() if k.startswith(prefix)}
        folder, epoch = self.run.checkpoint_dir, state.epoch

        def write() -> None:
            save_checkpoint(folder / "last.pt", payload)
            save_weights(folder / f"encoder_epoch_{epoch:04d}.safetensors", encoder)

        self.writer.submit(write)

    def on_fit_end(self, state: TrainState, outcome: str) -> None:
        self.writer.wait()
        if outcome != "completed":
            self.save(state)
