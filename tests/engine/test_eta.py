"""The ETA: the measured pace of steps plus the end-of-epoch work still to come; start-up is not in it."""
from __future__ import annotations

import time

import pytest
import torch

from sslcore.data import load_dataset
from sslcore.engine.callbacks import Callback
from sslcore.engine.state import TrainState
from sslcore.engine.trainer import Trainer
from sslcore.tasks.build import build_task
from tests.conftest import tiny_config


def test_a_slow_start_does_not_inflate_the_first_estimate() -> None:
    state = TrainState(epochs=5, steps_per_epoch=10, batch_size=32)
    state.session_start = time.time() - 600.0  # ten minutes of imports, data loading and the epoch-0 evaluation
    state.close_epoch_pace(epoch_end_seconds=4.0)  # the epoch-0 evaluation + checkpoint took 4 s
    state.reset_epoch()
    assert state.eta_seconds() is None  # no step measured yet
    state.step, state.batch_in_epoch, state.epoch_train_seconds = 2, 2, 1.0  # two steps of 0.5 s
    assert state.eta_seconds() == pytest.approx(0.5 * 48 + 5 * 4.0)


def test_the_estimate_follows_the_current_pace() -> None:
    state = TrainState(epochs=2, steps_per_epoch=10, batch_size=32)
    state.step, state.batch_in_epoch, state.epoch_train_seconds = 10, 0, 5.0  # epoch 1 just ended
    state.epoch = 1
    state.close_epoch_pace(epoch_end_seconds=2.0)
    state.reset_epoch()
    assert state.eta_seconds() == pytest.approx(0.5 * 10 + 1 * 2.0)  # the last epoch's pace until a step is timed
    state.step, state.batch_in_epoch, state.epoch_train_seconds = 12, 2, 4.0  # the machine got busy: 2 s a step
    assert state.eta_seconds() == pytest.approx(2.0 * 8 + 1 * 2.0)


def test_epoch_ends_of_unequal_cost_count_at_their_mean() -> None:
    """With train.monitor_every > 1, measured and unmeasured epoch ends alternate: the estimate must not jump
    between the two costs at each epoch."""
    state = TrainState(epochs=6, steps_per_epoch=10, batch_size=32)
    etas = []
    for epoch, end_seconds in enumerate([2.0, 0.2, 2.0, 0.2], start=1):
        state.epoch, state.step, state.batch_in_epoch, state.epoch_train_seconds = epoch, epoch * 10, 0, 5.0
        state.close_epoch_pace(epoch_end_seconds=end_seconds)
        state.reset_epoch()
        etas.append(state.eta_seconds())
    steps_left = [50, 40, 30, 20]
    assert etas == pytest.approx([0.5 * n + (6 - e) * mean for n, e, mean in
                                  zip(steps_left, [1, 2, 3, 4], [2.0, 1.1, 1.4, 1.1], strict=True)])


class Etas(Callback):
    def __init__(self) -> None:
        self.at_epoch_end: list[float | None] = []

    def on_epoch_end(self, state: TrainState) -> None:
        self.at_epoch_end.append(state.eta_seconds())


def test_a_real_run_counts_its_epoch_end_work_and_ends_at_zero() -> None:
    config = tiny_config(**{"train.epochs": 2, "train.knn_k": 5})
    data = load_dataset("digits")
    etas = Etas()
    trainer = Trainer.create(config, build_task(config, data), data, torch.device("cpu"), [etas])
    assert trainer.fit() == "completed"
    before_training, after_first, after_last = etas.at_epoch_end
    assert before_training is None  # epoch 0: nothing measured yet
    s = trainer.state
    assert s.epoch_end_seconds is not None and s.epoch_end_seconds > 0.0
    assert after_first is not None and after_first > 0.0
    assert after_last == 0.0  # the last epoch record: no step and no epoch end left
