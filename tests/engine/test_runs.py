"""A training run leaves a complete, parseable run folder; stops, failures and resumes lose nothing."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sslcore.data import load_dataset
from sslcore.engine.callbacks import Callback
from sslcore.engine.checkpoint import load_checkpoint
from sslcore.engine.training_run import execute_run
from sslcore.runs import RunStore
from sslcore.runs.files import read_jsonl
from sslcore.tasks.build import build_task
from tests.conftest import tiny_config


def test_completed_run_folder_is_complete_and_parses(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = store.create(tiny_config("autoencoder", **{"train.epochs": 2}))
    assert execute_run(run) == "completed"

    status = json.loads((run.path / "status.json").read_text())
    assert status["state"] == "completed" and status["ended"] >= status["started"]
    assert store.get(run.id).config() == tiny_config("autoencoder", **{"train.epochs": 2})
    epochs = run.metrics("epoch")
    assert [r["epoch"] for r in epochs] == [0, 1, 2]
    assert all(0.0 <= r["knn_acc"] <= 1.0 for r in epochs)
    assert all(r["loss"] > 0 and r["images_per_s"] > 0 and "eta" in r and "lr" in r for r in epochs[1:])
    steps = run.metrics("step")
    assert [r["step"] for r in steps] == list(range(1, 2 * 11 + 1))  # 1437 // 128 = 11 steps per epoch
    assert epochs[-1]["test_recon_mse"] < epochs[0]["test_recon_mse"]

    snapshots = run.snapshot_files()
    assert [p.name for p in snapshots] == ["epoch_0000.npz", "epoch_0001.npz", "epoch_0002.npz"]
    with np.load(snapshots[-1]) as snap:
        assert str(snap["task"]) == "autoencoder"
        assert snap["original"].shape == snap["reconstruction"].shape == (4, 1, 8, 8)
    assert (run.checkpoint_dir / "last.pt").exists()
    assert len(list(run.checkpoint_dir.glob("encoder_epoch_*.safetensors"))) == 3
    assert run.progress()["phase"] == "completed"


def test_checkpoint_round_trip_gives_identical_encoder_outputs(tmp_path: Path) -> None:
    config = tiny_config("rotation", **{"train.epochs": 1})
    run = RunStore(tmp_path).create(config)
    execute_run(run)
    data = load_dataset("digits")
    payload = load_checkpoint(run.checkpoint_dir / "last.pt")
    task = build_task(config, data)
    task.load_state_dict(payload["model"])
    task.eval()
    reloaded = build_task(config, data).eval()
    batch = data.test.images[:16].float() / 255
    assert not torch.allclose(task.encoder(batch), reloaded.encoder(batch))  # fresh weights differ ...
    reloaded.load_state_dict(load_checkpoint(run.checkpoint_dir / "last.pt")["model"])
    assert torch.equal(task.encoder(batch), reloaded.encoder(batch))  # ... until the checkpoint is loaded
    assert payload["state"]["epoch"] == 1 and payload["config"] == config.to_dict()


class StopAfter(Callback):
    """Stops at exactly ``step``, as StopRequest does on a STOP file or SIGTERM (which it polls every 0.5 s)."""

    def __init__(self, run, step: int) -> None:
        self.run, self.step = run, step

    def on_step_end(self, state) -> None:
        if state.step == self.step:
            self.run.request_stop()
            state.stop_reason = "cancelled"


def _cancel_mid_epoch(tmp_path: Path, config, step: int = 15):
    run = RunStore(tmp_path).create(config)
    from sslcore.engine import training_run

    original = training_run.run_callbacks
    training_run.run_callbacks = lambda *a, **k: [StopAfter(run, step), *original(*a, **k)]
    try:
        assert execute_run(run) == "cancelled"
    finally:
        training_run.run_callbacks = original
    return run


def test_cancelled_run_resumes_and_continues_the_same_log(tmp_path: Path) -> None:
    config = tiny_config("simclr", **{"train.epochs": 3})
    run = _cancel_mid_epoch(tmp_path, config)
    status = run.status()
    assert status["state"] == "cancelled"
    stopped_at = load_checkpoint(run.checkpoint_dir / "last.pt")["state"]["step"]
    assert 15 <= stopped_at < 33

    run.stop_path.unlink()
    assert execute_run(run, resume=True) == "completed"
    steps = [r["step"] for r in run.metrics("step")]
    assert steps == list(range(1, 34)), "every step logged exactly once across the stop and the resume"
    assert [r["epoch"] for r in run.metrics("epoch")] == [0, 1, 2, 3]


def test_resumed_run_matches_an_uninterrupted_one(tmp_path: Path) -> None:
    config = tiny_config("denoising_autoencoder", **{"train.epochs": 2})
    straight = RunStore(tmp_path / "a").create(config)
    execute_run(straight)
    interrupted = _cancel_mid_epoch(tmp_path / "b", config)
    interrupted.stop_path.unlink()
    execute_run(interrupted, resume=True)
    a = [r["loss"] for r in straight.metrics("step")]
    b = [r["loss"] for r in interrupted.metrics("step")]
    assert np.allclose(a, b, rtol=1e-4), "batch order and augmentations are pure functions of (seed, step)"


def test_nan_loss_fails_the_run_with_a_readable_reason(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create(tiny_config("autoencoder", **{"train.lr": 10.0, "train.epochs": 1}))
    from sslcore.tasks._reconstruction import ReconstructionTask

    original = ReconstructionTask.training_step

    def poisoned(self, images, generator):
        out = original(self, images, generator)
        out.loss = out.loss * float("nan")
        return out

    ReconstructionTask.training_step = poisoned
    try:
        assert execute_run(run) == "failed"
    finally:
        ReconstructionTask.training_step = original
    status = run.status()
    assert status["state"] == "failed"
    assert "loss became nan at step 1" in status["error"] and "lower learning rate" in status["error"]
    assert "NonFiniteLossError" in status["traceback"]


def test_crash_fails_the_run_with_reason_and_traceback(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create(tiny_config(**{"data.dataset": "mnist", "data.root": str(tmp_path / "nodata")}))
    assert execute_run(run) == "failed"
    status = run.status()
    assert "--download" in status["error"] and str(tmp_path / "nodata") in status["error"]
    assert "Traceback" in status["traceback"]


def test_metrics_reader_ignores_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"kind": "step", "step": 1}\n{"kind": "step", "st')
    assert read_jsonl(path) == [{"kind": "step", "step": 1}]


def test_same_seed_same_losses(tmp_path: Path) -> None:
    losses = []
    for name in ("a", "b"):
        run = RunStore(tmp_path / name).create(tiny_config("rotation", **{"train.epochs": 1}))
        execute_run(run)
        losses.append([r["loss"] for r in run.metrics("step")])
    assert losses[0] == losses[1]


def test_reconcile_marks_dead_running_runs_failed(tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    run = store.create(tiny_config())
    run.update_status(state="running", pid=2**22 + 12345)  # no such process
    assert [r.id for r in store.reconcile()] == [run.id]
    assert run.state == "failed" and "interrupted" in run.status()["error"]


@pytest.mark.parametrize("bad", ["not a zip", b"\x80\x02garbage"])
def test_corrupt_checkpoint_gives_a_clear_error(tmp_path: Path, bad) -> None:
    path = tmp_path / "last.pt"
    path.write_bytes(bad.encode() if isinstance(bad, str) else bad)
    with pytest.raises(ValueError, match="not a readable sslcore checkpoint"):
        load_checkpoint(path)
