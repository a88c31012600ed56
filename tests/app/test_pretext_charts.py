"""The pretext task's own held-out scores on the Train page, per epoch, beside its training-batch score; and a
table run's speed counted in rows. Real (tiny) runs: the charts show what the trainer's monitor recorded."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pytest

from sslcore.engine.training_run import execute_run
from sslcore.runs.process_manager import JobManager
from tests.app.conftest import live_charts, open_page
from tests.conftest import tiny_config
from ui.pretext_charts import MetricReading, metric_reading, training_means

TRAIN = "app_pages/train.py"



@pytest.mark.parametrize("key, reading", [
    ("test_pair_acc", MetricReading("Pair accuracy", True, True)),
    ("test_rotation_acc", MetricReading("Rotation accuracy", True, True)),
    ("test_recon_mse", MetricReading("Reconstruction error (MSE)", False, False)),
    ("test_view_gap", MetricReading("View gap", False, False)),  # VICReg's: two views against two images
    ("test_loss", MetricReading("Loss per epoch", False, False, from_zero=False)),  # drawn over its own range
    ("test_spread_ratio", MetricReading("Spread ratio", False, None)),  # a name that does not say which way is good
    ("test_acc", MetricReading("Acc", False, None)),
])
def test_a_score_reads_from_its_name(key: str, reading: MetricReading) -> None:
    assert metric_reading(key) == reading


def test_training_scores_are_averaged_per_epoch_and_placed_at_that_epochs_end() -> None:
    steps = pd.DataFrame({"step": [1, 2, 3, 4], "epoch": [0, 0, 1, 1], "pair_acc": [0.1, 0.3, 0.5, None]})
    means = training_means(steps, "pair_acc")
    assert means.to_dict() == pytest.approx({1: 0.2, 2: 0.5})  # epoch record k comes after k epochs
    assert training_means(steps, "jigsaw_acc").empty


def test_the_train_page_charts_the_held_out_score_beside_the_training_one(jobs: JobManager) -> None:
    run = jobs.store.create(tiny_config("rotation", **{"train.epochs": 2}))
    assert execute_run(run) == "completed"
    at = open_page(TRAIN, run.id)
    assert not at.exception
    figure = live_charts(at)["test_rotation_acc"]
    go.Figure(figure)  # valid plotly
    held_out, training = figure["data"]
    recorded = [r["test_rotation_acc"] for r in run.metrics("epoch")]
    assert held_out["name"] == "held-out images" and held_out["x"] == [0, 1, 2] and held_out["y"] == recorded
    assert training["name"] == "training batches" and training["x"] == [1, 2]
    assert all(0.0 <= y <= 1.0 for y in held_out["y"] + training["y"])
    assert figure["layout"]["title"]["text"] == "<b>Rotation accuracy</b>"
    assert "higher is better" in figure["layout"]["title"]["subtitle"]["text"]
    assert figure["layout"]["yaxis"]["range"] == [0.0, 1.0]  # a fraction, on a 0-100% axis


def test_a_table_run_counts_rows_and_charts_its_reconstruction_error(jobs: JobManager) -> None:
    run = jobs.store.create(tiny_config("tabular_autoencoder", **{"train.epochs": 2}))
    assert execute_run(run) == "completed"
    at = open_page(TRAIN, run.id)
    assert not at.exception
    assert "Rows / s" in [m.label for m in at.metric] and "Images / s" not in [m.label for m in at.metric]
    charts = live_charts(at)
    assert charts["throughput"]["layout"]["yaxis"]["title"]["text"] == "rows/s"
    knn_sample = charts["knn"]["layout"]["title"]["subtitle"]["text"]
    assert knn_sample.endswith(" test rows") and "train → " in knn_sample, knn_sample
    error = charts["test_recon_mse"]
    assert error["data"][0]["name"] == "held-out rows" and len(error["data"]) == 1  # no training-batch twin logged
    assert error["layout"]["title"]["text"] == "<b>Reconstruction error (MSE)</b>"
    assert "lower is better" in error["layout"]["title"]["subtitle"]["text"]
    assert error["data"][0]["y"][-1] < error["data"][0]["y"][0]  # the held-out error falls as it trains


def test_scarf_scores_its_held_out_pairs_like_its_training_batches(jobs: JobManager) -> None:
    run = jobs.store.create(tiny_config("scarf", **{"train.epochs": 2, "train.batch_size": 32}))
    assert execute_run(run) == "completed"
    records = run.metrics("epoch")
    assert all(0.0 <= r["test_pair_acc"] <= 1.0 and "alignment" in r for r in records)
    at = open_page(TRAIN, run.id)
    assert not at.exception
    held_out, training = live_charts(at)["test_pair_acc"]["data"]
    assert held_out["name"] == "held-out rows" and held_out["x"] == [0, 1, 2]
    assert training["name"] == "training batches" and training["x"] == [1, 2]


def test_vicreg_charts_its_held_out_loss_and_view_gap_beside_the_training_batches(jobs: JobManager) -> None:
    run = jobs.store.create(tiny_config("vicreg"))
    assert execute_run(run) == "completed"
    at = open_page(TRAIN, run.id)
    assert not at.exception
    charts = live_charts(at)
    for key, title in (("test_loss", "Loss per epoch"), ("test_view_gap", "View gap")):
        held_out, training = charts[key]["data"]
        assert held_out["name"] == "held-out images" and held_out["x"] == [0, 1, 2]
        assert held_out["y"] == [r[key] for r in run.metrics("epoch")]
        assert training["name"] == "training batches" and training["x"] == [1, 2]  # epoch means of the steps
        assert charts[key]["layout"]["title"]["text"] == f"<b>{title}</b>"
        assert "lower is better" in charts[key]["layout"]["title"]["subtitle"]["text"]
    assert "rangemode" not in charts["test_loss"]["layout"]["yaxis"]  # a loss of 20 -> 18 is not drawn from 0
    assert charts["test_view_gap"]["layout"]["yaxis"]["rangemode"] == "tozero"  # a ratio: 0 = views coincide
