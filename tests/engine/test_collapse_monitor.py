"""The trainer's monitor writes the collapse figures into every epoch record of metrics.jsonl."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sslcore.engine.training_run import execute_run
from sslcore.evaluation.collapse import collapse_warning
from sslcore.runs import RunStore
from sslcore.tasks import TASKS, StepOutput, register_task
from sslcore.tasks.simclr import SimCLR, SimCLRConfig
from tests.conftest import tiny_config


@pytest.mark.parametrize("task", ["simclr", "scarf", "barlow_twins", "vicreg", "simsiam"])
def test_tasks_whose_loss_compares_two_projections_record_it_on_held_out_views(tmp_path: Path, task: str) -> None:
    # Their loss is a function of the two views' projector outputs the monitor embeds anyway: a held-out loss per
    # epoch costs no encoder pass, and set beside the training batches' loss it shows the pretext task overfitting.
    run = RunStore(tmp_path).create(tiny_config(task, **{"train.knn_k": 0}))
    assert execute_run(run) == "completed"
    held_out = [r["test_loss"] for r in run.metrics("epoch")]
    assert len(held_out) == 3 and all(torch.isfinite(torch.tensor(held_out)))
    assert held_out[-1] < held_out[0], held_out  # it falls as the model learns the task, as the training loss does
    if task == "vicreg":
        gaps = [r["test_view_gap"] for r in run.metrics("epoch")]
        assert 0.0 < gaps[-1] < gaps[0], gaps  # held-out views drawn closer, relative to the images' spread


@pytest.mark.parametrize("task, two_views", [("simclr", True), ("autoencoder", False)])
def test_every_epoch_record_has_the_collapse_figures(tmp_path: Path, task: str, two_views: bool) -> None:
    run = RunStore(tmp_path).create(tiny_config(task, **{"train.epochs": 1, "train.knn_k": 0}))
    assert execute_run(run) == "completed"
    records = run.metrics("epoch")
    assert [r["epoch"] for r in records] == [0, 1]
    for r in records:
        d = r["emb_dim"]
        assert d == 4 * 4 * 8  # the tiny convnet (width 8) pools 4 * width channels to 2 x 2
        assert 1.0 < r["eff_rank"] <= d and 0.0 < r["emb_std"] < 1.0
        assert ("alignment" in r and "uniformity" in r and "head_rank" in r) == two_views
    if two_views:
        assert all(0.0 <= r["alignment"] <= 4.0 and r["uniformity"] < 0.0 for r in records)


@dataclass(frozen=True)
class NaiveSiameseConfig(SimCLRConfig):
    """SimCLR's views and head, trained with nothing that prevents collapse."""


class NaiveSiamese(SimCLR):
    """Pull two views' head outputs together with no negatives, no predictor and no stop-gradient: the
    textbook collapse (Chen & He 2021, section 4), here as a stand-in until SimSiam's predictor can be removed."""

    Config = NaiveSiameseConfig

    def training_step(self, images: torch.Tensor, generator: torch.Generator) -> StepOutput:
        v1, v2 = self.two_views(images, generator)
        z1, z2 = self.projector(self.encoder(torch.cat([v1, v2]))).chunk(2)
        return StepOutput(loss=-F.cosine_similarity(z1, z2).mean())


@pytest.fixture
def naive_siamese() -> Iterator[str]:
    register_task("naive_siamese_test", "Two views pulled together, nothing against collapse (a test)")(NaiveSiamese)
    yield "naive_siamese_test"
    TASKS._entries.pop("naive_siamese_test")  # the registry has no public removal


def test_a_real_collapsing_run_is_recognised_and_a_healthy_one_is_not(tmp_path: Path, naive_siamese: str) -> None:
    store = RunStore(tmp_path)
    collapsing = store.create(tiny_config(naive_siamese, **{"train.epochs": 3, "train.knn_k": 0}))
    healthy = store.create(tiny_config("simclr", **{"train.epochs": 3, "train.knn_k": 0}))
    assert execute_run(collapsing) == execute_run(healthy) == "completed"
    folded, spread = collapsing.metrics("epoch"), healthy.metrics("epoch")
    assert folded[-1]["loss"] < -0.95  # the loss is "solved": both views map to the same point
    message = collapse_warning(folded)
    assert message is not None and "the projection head's outputs" in message, [
        (r["head_rank"], r["head_std"]) for r in folded]
    assert collapse_warning(spread) is None, [(r["eff_rank"], r["emb_std"], r["head_rank"], r["head_std"])
                                              for r in spread]
    # SimCLR's own held-out figure, scored on the monitor's view embeddings: the pairs are found more often
    assert spread[-1]["test_pair_acc"] > spread[0]["test_pair_acc"] + 0.02, [r["test_pair_acc"] for r in spread]


@pytest.mark.parametrize("batch_size, chunk", [(32, 32), (100, 100), (1024, 128)])
def test_view_scores_are_taken_on_chunks_of_the_training_batch(batch_size: int, chunk: int) -> None:
    # A contrastive pair accuracy depends on how many candidates a view has: scored on chunks the size of a
    # training batch, the held-out figure reads like the training one (a batch larger than the views: one chunk).
    from sslcore.data import load_run_data
    from sslcore.engine.monitor import EpochEvaluator
    from sslcore.engine.state import TrainState
    from sslcore.engine.trainer import Trainer, build_task

    config = tiny_config("simclr")
    data = load_run_data(config.data)
    trainer = Trainer.create(config, build_task(config, data), data, torch.device("cpu"))
    sizes: list[int] = []
    trainer.task.view_metrics = lambda v1, v2: sizes.append(v1.shape[0]) or {"test_rows": float(v1.shape[0])}
    monitor = EpochEvaluator(data, knn_k=0, seed=0, test_images=128)
    monitor.on_fit_start(TrainState(epochs=1, steps_per_epoch=1, batch_size=batch_size), trainer)
    state = TrainState(epochs=1, steps_per_epoch=1, batch_size=batch_size)
    monitor.on_epoch_end(state)
    assert set(sizes) == {chunk} and len(sizes) == 128 // chunk  # 100: one chunk, the short rest left out
    assert state.epoch_metrics["test_rows"] == chunk


def test_with_monitor_every_the_monitor_measures_the_start_every_nth_epoch_and_the_last(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create(tiny_config("simclr", **{"train.epochs": 5, "train.monitor_every": 2}))
    assert execute_run(run) == "completed"
    records = run.metrics("epoch")
    assert [r["epoch"] for r in records] == [0, 1, 2, 3, 4, 5]  # every epoch still has its record (loss, speed)
    measured = [r["epoch"] for r in records if "knn_acc" in r]
    assert measured == [0, 2, 4, 5]
    assert [r["epoch"] for r in records if "eff_rank" in r] == measured
    assert [r["epoch"] for r in records if "test_pair_acc" in r] == measured
    assert all("loss" in r for r in records[1:])
