"""The first loss point is written before the epoch-0 baseline, and that baseline is still the untrained model's.

The trainer records "epoch 0" (the k-NN of the untrained encoder, its snapshot and checkpoint) just after the first
step, from a copy of the start; these tests pin what a user relies on: the first line of metrics.jsonl is a loss,
the baseline's weights are the untrained ones, and the run trains exactly as if the baseline had never been taken.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from sslcore.data import load_run_data
from sslcore.engine.callbacks import Callback
from sslcore.engine.monitor import KNN_BANK_IMAGES
from sslcore.engine.run_callbacks import Heartbeat
from sslcore.engine.trainer import Trainer
from sslcore.engine.training_run import execute_run
from sslcore.runs import RunStore
from sslcore.runs.files import read_jsonl
from sslcore.tasks.build import build_task
from tests.conftest import tiny_config


def fresh_task(config):  # the task a run starts from: seeded like the job does before building it
    torch.manual_seed(config.train.seed)
    data = load_run_data(config.data)
    return build_task(config, data), data


def test_first_record_is_a_loss_and_epoch_0_holds_the_untrained_weights(tmp_path: Path) -> None:
    config = tiny_config("simclr", **{"train.epochs": 1})
    run = RunStore(tmp_path).create(config)
    assert execute_run(run) == "completed"

    records = read_jsonl(run.metrics_path)
    assert records[0]["kind"] == "step" and records[0]["step"] == 1
    epochs = run.metrics("epoch")
    assert [(r["epoch"], r["step"]) for r in epochs] == [(0, 0), (1, 11)]
    assert "loss" not in epochs[0]  # no training in the baseline record
    untrained, _ = fresh_task(config)
    baseline = load_file(run.checkpoint_dir / "encoder_epoch_0000.safetensors")
    for name, value in untrained.encoder.state_dict().items():  # BatchNorm statistics included
        assert torch.equal(baseline[name], value), name
    trained = load_file(run.checkpoint_dir / "encoder_epoch_0001.safetensors")
    assert any(not torch.equal(trained[k], baseline[k]) for k in baseline)


def test_taking_the_baseline_mid_run_leaves_training_unchanged(tmp_path: Path) -> None:
    config = tiny_config("simclr", **{"train.epochs": 1})
    run = RunStore(tmp_path).create(config)
    assert execute_run(run) == "completed"

    task, data = fresh_task(config)  # the same run with no callbacks at all: no baseline, no monitor
    assert Trainer.create(config, task, data, torch.device("cpu")).fit() == "completed"
    with_baseline = load_file(run.checkpoint_dir / "encoder_epoch_0001.safetensors")
    for name, value in task.encoder.state_dict().items():
        assert torch.equal(with_baseline[name], value), name


def test_the_monitor_records_the_sizes_of_its_fixed_samples(tmp_path: Path) -> None:
    config = tiny_config("autoencoder", **{"train.epochs": 1})
    run = RunStore(tmp_path).create(config)
    assert execute_run(run) == "completed"
    data = load_run_data(config.data)
    assert len(data.train) > KNN_BANK_IMAGES > len(data.test)  # digits: a bank sample of the training images, all test
    for record in run.metrics("epoch"):
        assert record["knn_bank"] == KNN_BANK_IMAGES and record["knn_queries"] == len(data.test)
        assert 0.0 <= record["knn_acc"] <= 1.0


class ProgressLog(Callback):
    """Reads progress.json after every step and epoch end (placed after the heartbeat that writes it)."""

    def __init__(self, run) -> None:
        self.run, self.steps = run, []

    def on_step_end(self, state) -> None:
        self.steps.append(self.run.progress().get("step"))

    def on_epoch_end(self, state) -> None:
        self.steps.append(self.run.progress().get("step"))


def test_the_progress_file_never_goes_back_to_step_0_for_the_baseline(tmp_path: Path) -> None:
    config = tiny_config("simclr", **{"train.epochs": 1, "train.knn_k": 0})
    run = RunStore(tmp_path).create(config)
    task, data = fresh_task(config)
    log = ProgressLog(run)
    trainer = Trainer.create(config, task, data, torch.device("cpu"), [Heartbeat(run, every_seconds=0.0), log])
    assert trainer.fit() == "completed"
    assert log.steps[:3] == [1, 1, 2]  # step 1, the baseline's epoch end (still 1), step 2
    assert log.steps == sorted(log.steps) and log.steps[-1] == 11
