"""Config validation names the field, the value and what is allowed; JSON round-trips exactly."""
from __future__ import annotations

import dataclasses
import json
from itertools import pairwise

import pytest

from sslcore.config import ConfigError, config_from_dict, default_config, field_specs
from sslcore.engine.schedule import plan_schedule, schedule_curve, warmup_cosine
from sslcore.tasks import TASKS
from tests.conftest import dataset_for


def test_json_round_trip_for_every_task() -> None:
    for name in TASKS.names():
        config = default_config(**{"task.name": name, "data.dataset": dataset_for(name)})
        again = config_from_dict(json.loads(config.to_json()))
        assert again == config and again.task.name == name


@pytest.mark.parametrize("overrides, message", [
    ({"train.epochs": "-1"}, "train.epochs = '-1' is not allowed: expected an integer between 1 and 10000"),
    ({"train.lr": "fast"}, "train.lr = 'fast' is not allowed: expected a number"),
    ({"train.lr": "nan"}, "train.lr = 'nan' is not allowed"),
    ({"train.optimizer": "adam"}, "train.optimizer = 'adam' is not allowed: expected one of adamw, sgd"),
    ({"task.temperature": "0"}, "task.temperature = '0' is not allowed: expected a number between 0.01 and 10"),
    ({"task.nope": "1"}, "task.nope is not a field; task has: crop_scale_min, rotation_deg, jitter, flip, temperature"),
    ({"model.depth": "3"}, "model is not a config section"),
    ({"data.dataset": "imagenet"},
     "data.dataset = 'imagenet' is not allowed: expected one of breast_cancer, cifar10, digits"),
    ({"encoder.name": "vit"}, "encoder.name = 'vit' is not allowed: expected one of convnet, mlp, resnet18"),
    ({"task.name": "puzzle"}, "task.name = 'puzzle' is not allowed: expected one of autoencoder"),
    ({"train.epochs": "2.5"}, "train.epochs = '2.5' is not allowed: expected an integer"),
])
def test_bad_values_name_field_value_and_allowed(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        default_config(**overrides)
    assert message in str(err.value)


def test_switching_task_starts_from_that_tasks_defaults() -> None:
    simclr = default_config(**{"task.temperature": "0.3"})
    masked = simclr.replace({"task.name": "masked_autoencoder", "task.mask_ratio": "0.6"})
    assert masked.task.name == "masked_autoencoder" and masked.task.mask_ratio == 0.6
    assert masked.train == simclr.train


def test_every_field_has_help_text_and_a_valid_default() -> None:
    from sslcore.config import SECTIONS

    classes = list(SECTIONS.values()) + [TASKS.get(n).Config for n in TASKS.names()]
    for cls in classes:
        for spec in field_specs(cls):
            assert spec.help, f"{cls.__name__}.{spec.name} has no help text"
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen


def test_warmup_cosine_is_a_pure_schedule() -> None:
    curve = schedule_curve(100, peak=1.0, warmup_steps=10, final=0.01)
    assert curve[0] == pytest.approx(0.1) and curve[9] == pytest.approx(1.0)
    assert max(curve) == pytest.approx(1.0) and curve[-1] == pytest.approx(0.01, abs=1e-3)
    assert all(a >= b for a, b in pairwise(curve[10:]))
    assert warmup_cosine(500, 100, 1.0, 10, 0.01) == pytest.approx(0.01)


def test_the_schedule_plan_lays_out_whole_batches_and_the_warm_up() -> None:
    train = default_config(**{"train.batch_size": 128, "train.epochs": 3, "train.warmup_epochs": 0.5,
                              "train.lr": 0.1, "train.min_lr_ratio": 0.01}).train
    plan = plan_schedule(train, 1437)  # digits' training split: 11 whole batches, the last 29 images dropped
    assert (plan.batch_size, plan.steps_per_epoch, plan.total_steps, plan.warmup_steps) == (128, 11, 33, 6)
    assert plan.lr(0) == pytest.approx(0.1 / 6) and plan.lr(5) == pytest.approx(0.1)  # warm-up ends at the peak
    assert plan.lr(33) == pytest.approx(0.001) and 0.001 < plan.lr(32) < plan.lr(31)  # then decays to lr * 0.01
    small = plan_schedule(train, 50)  # fewer images than one batch: one batch of all of them per epoch
    assert (small.batch_size, small.steps_per_epoch) == (50, 1)
    steps, lrs = plan.sample(points=5)
    assert steps == [0, 8, 16, 24, 32] and lrs == [plan.lr(s) for s in steps]
