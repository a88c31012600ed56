"""Alone (no torchrun), the distributed helpers change nothing; seeds per rank; loss read-back every log_every."""
from __future__ import annotations

import math

import pytest
import torch

from sslcore import distributed
from sslcore.data import load_dataset
from sslcore.engine.callbacks import Callback
from sslcore.engine.state import TrainState
from sslcore.engine.trainer import Trainer, step_seed
from sslcore.tasks.build import build_task
from tests.conftest import tiny_config


def test_alone_every_helper_is_the_identity_or_a_no_op() -> None:
    assert distributed.env_world() == distributed.World(0, 1, 0, 1) and not distributed.active()
    assert distributed.join("cpu") == torch.device("cpu") and not distributed.active()
    x = torch.randn(6, 3, requires_grad=True)
    with distributed.spanning_ranks():
        assert distributed.gather(x) is x
        assert torch.equal(distributed.local_rows(6, x.device), torch.arange(6))
    index = torch.arange(10)
    assert distributed.local_share(index) is index
    assert distributed.any_rank(True) and not distributed.any_rank(False)
    assert distributed.from_main(lambda: "made") == distributed.main_first(lambda: "made") == "made"
    assert distributed.gather_objects({"a": 1}) == [{"a": 1}]
    distributed.check_global_batch(7)
    distributed.barrier()
    distributed.finish()
    assert distributed.peer_failure(wait_seconds=0.0) is None


def test_the_world_comes_from_torchruns_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)
    world = distributed.env_world()
    assert ((world.rank, world.world_size, world.local_rank, world.local_world_size, world.is_main)
            == (3, 4, 1, 2, False))


def test_each_rank_draws_its_own_augmentations_reproducibly() -> None:
    assert step_seed(3, 10) == step_seed(3, 10, rank=0) == (3 * 1_000_003 + 10 * 7919 + 1)  # one process: as before
    assert len({step_seed(3, 10, rank=r) for r in range(8)}) == 8
    assert len({step_seed(3, s, rank=r) for s in range(50) for r in range(4)}) == 200


class RecordLosses(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []
        self.epoch_mean = math.nan

    def on_step_end(self, state: TrainState) -> None:
        self.losses.append(state.loss)

    def on_epoch_end(self, state: TrainState) -> None:
        self.epoch_mean = state.epoch_mean_loss() or math.nan


def train_one_epoch(log_every: int) -> tuple[list[float], float, list[float]]:
    """(loss seen after each step, the epoch's mean loss, every step's own loss) of one epoch on digits."""
    config = tiny_config("rotation", **{"train.epochs": 1, "train.log_every": log_every, "train.knn_k": 0})
    data = load_dataset("digits")
    torch.manual_seed(0)
    record, own = RecordLosses(), []
    trainer = Trainer.create(config, build_task(config, data), data, torch.device("cpu"), [record])
    original_add = trainer.tally.add
    trainer.tally.add = lambda out: (own.append(float(out.loss.detach())), original_add(out))[1]
    trainer.fit()
    return record.losses, record.epoch_mean, own


def test_the_step_loss_is_read_back_only_every_log_every_steps() -> None:
    seen, mean, own = train_one_epoch(log_every=4)  # 11 steps: read back after steps 4, 8 and 11 (epoch end)
    assert len(seen) == len(own) == 11
    assert math.isnan(seen[0]) and seen[3] == pytest.approx(own[3]) and seen[4:7] == [seen[3]] * 3
    assert seen[7] == pytest.approx(own[7]) and seen[10] == pytest.approx(own[10])
    assert mean == pytest.approx(sum(own) / 11, rel=1e-6)  # no step is lost from the epoch's mean
    every_step, every_mean, _ = train_one_epoch(log_every=1)
    assert every_step == pytest.approx(own, rel=1e-6) and every_mean == pytest.approx(mean, rel=1e-6)
