"""DINO's own parts: small crops for the student only, the teacher temperature warm-up, the running centre."""
from __future__ import annotations

import pytest
import torch

from sslcore.data import load_dataset
from sslcore.tasks.build import build_task
from tests.conftest import tiny_config


def dino(**overrides):
    return build_task(tiny_config("dino", **overrides), load_dataset("digits"))


def test_small_crops_are_half_size_and_only_the_student_sees_them() -> None:
    task = dino(**{"task.local_crops": 3})
    images = load_dataset("digits").train.images[:16].float() / 255
    crops = task.local_crops(images, torch.Generator().manual_seed(0))
    assert crops.shape == (3 * 16, 1, 4, 4)
    seen: list[tuple[int, ...]] = []
    task.target_encoder.register_forward_hook(lambda m, args, out: seen.append(tuple(args[0].shape)))
    out = task.training_step(images, torch.Generator().manual_seed(0))
    assert torch.isfinite(out.loss)
    assert seen == [(32, 1, 8, 8)], "the teacher sees the two full views only"


def test_teacher_temperature_warms_up_with_the_run_and_is_checkpointed() -> None:
    task = dino(**{"task.warmup_teacher_temperature": 0.02, "task.teacher_temperature": 0.06,
                   "task.teacher_temperature_warmup": 0.5})
    assert float(task.teacher_temperature()) == pytest.approx(0.02)
    task.after_optimizer_step(step=24, total_steps=100)  # a quarter of the run done: half-way through the warm-up
    assert float(task.teacher_temperature()) == pytest.approx(0.04)
    resumed = dino(**{"task.warmup_teacher_temperature": 0.02, "task.teacher_temperature": 0.06,
                      "task.teacher_temperature_warmup": 0.5})
    resumed.load_state_dict(task.state_dict())
    assert float(resumed.teacher_temperature()) == pytest.approx(0.04)
    task.after_optimizer_step(step=79, total_steps=100)
    assert float(task.teacher_temperature()) == pytest.approx(0.06)


def test_centre_follows_the_teacher_outputs() -> None:
    task = dino(**{"task.center_momentum": 0.5})
    images = load_dataset("digits").train.images[:32].float() / 255
    assert torch.count_nonzero(task.center) == 0
    task.training_step(images, torch.Generator().manual_seed(0))
    assert torch.count_nonzero(task.center) > 0 and "center" in task.state_dict()
