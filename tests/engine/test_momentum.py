"""The momentum (EMA) target shared by BYOL, MoCo v3 and DINO: frozen, updated by the schedule, checkpointed,
and resumed exactly."""
from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
import torch
from torch import nn

from sslcore.data import load_dataset
from sslcore.engine.checkpoint import load_checkpoint
from sslcore.engine.schedule import cosine_momentum
from sslcore.engine.trainer import build_optimizer
from sslcore.engine.training_run import execute_run
from sslcore.models.momentum import ema_update, momentum_target
from sslcore.runs import RunStore
from sslcore.tasks.build import build_task
from tests.conftest import tiny_config
from tests.engine.test_runs import _cancel_mid_epoch

MOMENTUM_TASKS = ["byol", "moco", "dino"]


def test_target_is_a_frozen_copy_that_follows_the_online_weights() -> None:
    online = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    target = momentum_target(online)
    assert all(not p.requires_grad for p in target.parameters())
    assert all(torch.equal(a, b)
               for a, b in zip(target.state_dict().values(), online.state_dict().values(), strict=True))
    before = [p.clone() for p in target.parameters()]
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
    ema_update(target, online, 1.0)
    assert all(torch.equal(t, b) for t, b in zip(target.parameters(), before, strict=True)), \
        "momentum 1 keeps the target"
    ema_update(target, online, 0.75)
    for t, b, o in zip(target.parameters(), before, online.parameters(), strict=True):
        assert torch.allclose(t, 0.75 * b + 0.25 * o)
    ema_update(target, online, 0.0)
    assert all(torch.equal(t, o) for t, o in zip(target.parameters(), online.parameters(), strict=True)), \
        "momentum 0 copies"
    with pytest.raises(ValueError, match="momentum must be in"):
        ema_update(target, online, 1.5)


def test_cosine_momentum_rises_from_base_to_one() -> None:
    curve = [cosine_momentum(s, 100, 0.9) for s in range(101)]
    assert curve[0] == pytest.approx(0.9) and curve[50] == pytest.approx(0.95) and curve[100] == pytest.approx(1.0)
    assert all(a <= b for a, b in pairwise(curve))


@pytest.mark.parametrize("task_name", MOMENTUM_TASKS)
def test_targets_are_not_optimised_but_are_saved(task_name: str) -> None:
    config = tiny_config(task_name)
    task = build_task(config, load_dataset("digits"))
    optimised = {id(p) for group in build_optimizer(task, config).param_groups for p in group["params"]}
    targets = [p for name, p in task.named_parameters() if name.startswith("target_")]
    assert targets and not any(id(p) in optimised for p in targets)
    assert any(k.startswith("target_encoder.") for k in task.state_dict())


@pytest.mark.parametrize("task_name", MOMENTUM_TASKS)
def test_resume_after_one_epoch_gives_identical_online_and_target_weights(tmp_path: Path, task_name: str) -> None:
    config = tiny_config(task_name, **{"train.epochs": 2, "train.knn_k": 0})
    straight = RunStore(tmp_path / "a").create(config)
    assert execute_run(straight) == "completed"
    interrupted = _cancel_mid_epoch(tmp_path / "b", config, step=11)  # 1437 // 128 = 11 steps: end of epoch 1
    interrupted.stop_path.unlink()
    assert execute_run(interrupted, resume=True) == "completed"

    a = load_checkpoint(straight.checkpoint_dir / "last.pt")["model"]
    b = load_checkpoint(interrupted.checkpoint_dir / "last.pt")["model"]
    assert a.keys() == b.keys()
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differing, f"{task_name}: resumed weights differ in {differing[:5]}"
    # The target really moved (and is not just a copy of the online network): the test compares something.
    torch.manual_seed(config.train.seed)  # as execute_run does: the same initial weights
    fresh = build_task(config, load_dataset("digits"))
    untrained = fresh.state_dict()
    for key in (name for name, _ in fresh.named_parameters() if name.startswith("target_")):
        online = key.removeprefix("target_")
        assert not torch.equal(a[key], untrained[key]) and not torch.equal(a[key], a[online]), key
