"""Checkpoints written on a background thread: complete, loadable, of the weights at the moment they were taken,
and a failed write still fails the run."""
from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sslcore.engine.checkpoint import BackgroundWriter, cpu_copy, load_checkpoint, save_checkpoint
from sslcore.engine.training_run import execute_run
from sslcore.runs import RunStore
from tests.conftest import tiny_config


def test_a_background_checkpoint_holds_the_weights_of_when_it_was_taken(tmp_path: Path) -> None:
    model = torch.nn.Linear(64, 64)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(8, 64)).sum().backward()
    optimizer.step()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    payload = cpu_copy({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": {"step": 1}})
    writer = BackgroundWriter()
    writer.submit(lambda: save_checkpoint(tmp_path / "last.pt", payload))
    with torch.no_grad():  # training goes on while the file is written
        for p in model.parameters():
            p.add_(1.0)
    writer.wait()
    loaded = load_checkpoint(tmp_path / "last.pt")
    assert loaded["state"] == {"step": 1} and set(loaded["optimizer"]["state"]) == {0, 1}
    for name, value in before.items():
        assert torch.equal(loaded["model"][name], value)
    assert not torch.equal(loaded["model"]["weight"], model.weight.detach())


def test_a_failed_background_write_is_raised_on_the_callers_thread() -> None:
    def full_disk() -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    writer = BackgroundWriter()
    writer.submit(full_disk)
    with pytest.raises(OSError, match="No space left"):
        writer.wait()
    writer.wait()  # reported once; the writer is usable again


def test_a_run_ends_with_every_epoch_file_complete_and_resumable(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create(tiny_config("simclr", **{"train.epochs": 2, "train.knn_k": 0}))
    assert execute_run(run) == "completed"
    names = sorted(p.name for p in run.checkpoint_dir.iterdir())
    assert names == ["encoder_epoch_0000.safetensors", "encoder_epoch_0001.safetensors",
                     "encoder_epoch_0002.safetensors", "last.pt"]  # no temp file left behind
    last = load_checkpoint(run.checkpoint_dir / "last.pt")
    assert last["state"]["step"] == last["state"]["epoch"] * last["state"]["steps_per_epoch"] == 22
    final = load_file(run.checkpoint_dir / "encoder_epoch_0002.safetensors")
    for name, value in final.items():
        assert torch.equal(last["model"]["encoder." + name], value)
