"""Convolutional models train with channels-last weights (oneDNN's and cuDNN's faster layout), other models as
they are; the layout changes no result, and every checkpoint file holds standard contiguous tensors."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from safetensors.torch import save

from sslcore.data import load_run_data
from sslcore.engine.checkpoint import load_checkpoint
from sslcore.engine.trainer import Trainer
from sslcore.engine.training_run import execute_run
from sslcore.models.layout import conv_memory_format, to_conv_layout
from sslcore.runs import RunStore
from sslcore.tasks.build import build_task
from tests.conftest import tiny_config


def _trainer(task: str) -> Trainer:
    config = tiny_config(task)
    data = load_run_data(config.data)
    return Trainer.create(config, build_task(config, data), data, torch.device("cpu"))


@pytest.mark.parametrize("task", ["simclr", "autoencoder", "mae"])
def test_a_model_with_convolutions_trains_with_channels_last_weights(task: str) -> None:
    trainer = _trainer(task)
    weights = [p for p in trainer.task.parameters() if p.ndim == 4]
    assert weights, f"{task}'s model should have convolution weights"
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
    assert any(not p.is_contiguous() for p in weights)  # really re-laid out, not just trivially both


def test_a_model_without_convolutions_keeps_the_default_layout() -> None:
    trainer = _trainer("scarf")
    assert conv_memory_format(trainer.task) == torch.contiguous_format
    assert all(p.is_contiguous() for p in trainer.task.parameters())


def test_only_devices_known_to_handle_channels_last_get_it() -> None:
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3))
    assert conv_memory_format(conv) == torch.channels_last
    assert conv_memory_format(conv.to("meta")) == torch.contiguous_format  # as on Apple's MPS, left as it is
    assert conv_memory_format(torch.nn.ReLU()) == torch.contiguous_format  # no parameters, no convolution


def test_channels_last_gives_the_same_loss_and_gradients_as_the_default_layout() -> None:
    trainer = _trainer("simclr")
    default_layout = copy.deepcopy(trainer.task).to(memory_format=torch.contiguous_format)
    assert to_conv_layout(trainer.task) == torch.channels_last
    images = trainer.to_input(trainer.train_images[:32])
    losses, grads = [], []
    for model in (trainer.task, default_layout):
        model.zero_grad()
        out = model(images, torch.Generator().manual_seed(3))
        out.loss.backward()
        losses.append(out.loss.detach())
        grads.append([p.grad for p in model.parameters() if p.grad is not None])
    # The two layouts sum in different orders (and AVX2 and AVX-512 kernels differ again): a margin well above
    # float rounding, far below what a layout bug gives (a wrong layout scrambles values entirely).
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-4, atol=1e-5)
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)


def test_a_checkpoint_of_a_channels_last_run_holds_contiguous_tensors(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create(tiny_config("simclr", **{"train.epochs": 1, "train.knn_k": 0}))
    assert execute_run(run) == "completed"
    last = load_checkpoint(run.checkpoint_dir / "last.pt")
    tensors = [*last["model"].values(),
               *(v for state in last["optimizer"]["state"].values() for v in state.values() if v.ndim == 4)]
    assert any(t.ndim == 4 for t in tensors)
    assert all(t.is_contiguous() for t in tensors)
    save({k: v for k, v in last["model"].items() if k.startswith("encoder.")})  # safetensors takes them as they are


def test_a_resumed_run_has_its_optimizer_moments_in_its_parameters_layout(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create(tiny_config("simclr", **{"train.epochs": 1, "train.knn_k": 0}))
    assert execute_run(run) == "completed"
    checkpoint = load_checkpoint(run.checkpoint_dir / "last.pt")
    config = run.config()
    data = load_run_data(config.data)
    trainer = Trainer.create(config, build_task(config, data), data, torch.device("cpu"), checkpoint=checkpoint)
    moments = [(p, state) for p, state in trainer.optimizer.state.items() if p.ndim == 4]
    assert moments
    for param, state in moments:
        assert param.is_contiguous(memory_format=torch.channels_last)
        assert state["exp_avg"].stride() == state["exp_avg_sq"].stride() == param.stride()
    saved = checkpoint["optimizer"]["state"]
    restored = trainer.optimizer.state_dict()["state"]
    for index, state in saved.items():  # the same values, only laid out anew
        torch.testing.assert_close(restored[index]["exp_avg"], state["exp_avg"], rtol=0, atol=0)
