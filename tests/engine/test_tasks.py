"""Every registered pretext task learns: its loss falls on real data within a few dozen steps (on digits, or on
the small dataset and encoder it fits: see tests/conftest.py ``fitting_data``)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sslcore.config import RunConfig
from sslcore.data import DatasetSplit, load_dataset, load_run_data
from sslcore.engine.trainer import Trainer
from sslcore.tasks import TASKS
from sslcore.tasks.build import build_task
from tests.conftest import tiny_config

#: Settings a task needs for the generic "loss falls by a fifth" check. SCARF's default temperature of 1 (the
#: paper's, and the best linear probe on synthetic_table) keeps NT-Xent above ~60% of its starting value, so a
#: 20% fall is checked at a lower temperature, on a table with enough rows for 88 steps in 4 epochs.
LOSS_CHECK = {"scarf": {"task.temperature": 0.05, "data.dataset": "digits_table"},  # 0.63 of the start measured
              # Colour from grey learns slowly on 640 shapes: 0.80 of the start after 4 epochs (on the line, and
              # one rounding from failing), 0.56 after 8.
              "colorization": {"train.epochs": 8}}


class LossRecorder:
    """A callback that keeps every step's loss (or the step metric ``metric``)."""

    def __init__(self, metric: str = "loss") -> None:
        self.metric = metric
        self.losses: list[float] = []

    def on_fit_start(self, state, trainer) -> None: ...
    def on_epoch_end(self, state) -> None: ...
    def on_fit_end(self, state, outcome) -> None: ...

    def on_step_end(self, state) -> None:
        self.losses.append(state.loss if self.metric == "loss" else state.step_metrics[self.metric])


def load_for(config: RunConfig) -> DatasetSplit:
    """The (small) data ``config`` trains on."""
    return load_run_data(config.data)


@pytest.mark.parametrize("task_name", TASKS.names())
def test_each_task_loss_falls(task_name: str) -> None:
    """On digits, or the small dataset the task fits (see tests/conftest.py ``fitting_data``)."""
    config = tiny_config(task_name, **{"train.epochs": 4, "train.batch_size": 64, "train.lr": 3e-3,
                                       **LOSS_CHECK.get(task_name, {})})
    data = load_for(config)
    torch.manual_seed(0)
    metric = TASKS.get(task_name).learning_metric  # the loss, unless the task says what else measures learning
    recorder = LossRecorder(metric)
    Trainer.create(config, build_task(config, data), data, torch.device("cpu"), [recorder]).fit()
    first, last = np.mean(recorder.losses[:5]), np.mean(recorder.losses[-5:])
    assert np.isfinite(recorder.losses).all()
    assert last < 0.8 * first, f"{task_name}: {metric} went {first:.4f} -> {last:.4f}"


@pytest.mark.parametrize("task_name", TASKS.names())
def test_views_and_snapshots_have_image_shapes(task_name: str) -> None:
    config = tiny_config(task_name)
    data = load_for(config)
    task = build_task(config, data).eval()
    images = data.test.to_input(data.test.samples[:5])
    views = task.make_views(images, torch.Generator().manual_seed(0))
    assert views and all(v.shape == images.shape for v in views.values())
    with torch.no_grad():
        snap = task.snapshot(images, torch.Generator().manual_seed(0))
    assert set(task.panels.required_arrays()) <= set(snap)  # what the viewer draws is there
    image_arrays = [a for a in snap.values() if a.shape[1:] == data.sample_shape and a.dtype != bool]
    dtype = np.uint8 if data.kind == "image" else np.float32
    assert image_arrays and all(a.dtype == dtype and a.shape == (5, *data.sample_shape) for a in image_arrays)
    assert all(len(a) == 5 for a in snap.values())


def test_masked_autoencoder_hides_the_configured_share_and_scores_only_hidden_pixels() -> None:
    config = tiny_config("masked_autoencoder", **{"task.mask_ratio": 0.5, "task.patch_size": 2})
    data = load_dataset("digits")
    task = build_task(config, data)
    images = data.test.images[:6].float() / 255
    inputs, hidden = task.corrupt(images, torch.Generator().manual_seed(0))
    assert hidden.float().mean(dim=(1, 2, 3)).allclose(torch.full((6,), 0.5))
    assert (inputs[hidden.expand_as(inputs)] == 0).all()
    assert torch.equal(inputs[~hidden.expand_as(inputs)], images[~hidden.expand_as(images)])


def test_masked_autoencoder_shows_hidden_patches_grey_and_visible_pixels_as_given() -> None:
    config = tiny_config("masked_autoencoder", **{"task.mask_ratio": 0.5, "task.patch_size": 2})
    data = load_dataset("digits")
    task = build_task(config, data).eval()
    images = data.test.images[:6].float() / 255
    _, hidden = task.corrupt(images, torch.Generator().manual_seed(0))
    with torch.no_grad():
        snap = task.snapshot(images, torch.Generator().manual_seed(0))  # the same generator: the same mask
    hidden, shown = hidden.expand_as(images).numpy(), snap["input"]
    assert (shown[hidden] == 128).all()  # grey, unlike a digit's black background
    assert np.array_equal(shown[~hidden], snap["original"][~hidden])
    assert np.array_equal(snap["reconstruction"][~hidden], snap["original"][~hidden])


def test_masked_autoencoder_refuses_patches_larger_than_the_image() -> None:
    from sslcore.config import ConfigError

    config = tiny_config("masked_autoencoder", **{"task.patch_size": 9})
    with pytest.raises(ConfigError, match="task.patch_size = 9.*at most the image side"):
        build_task(config, load_dataset("digits"))


def test_rotation_views_are_exact_quarter_turns() -> None:
    task = build_task(tiny_config("rotation"), load_dataset("digits"))
    images = load_dataset("digits").test.images[:3].float() / 255
    views = task.make_views(images, torch.Generator())
    assert torch.equal(views["90°"], torch.rot90(images, 1, dims=(2, 3)))
    assert torch.equal(views["0°"], images)
