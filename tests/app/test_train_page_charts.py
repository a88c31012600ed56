"""The Train page's charts: the loss chart's smoothing (as in TensorBoard) and log scale for a positive loss, the
metrics as a CSV, and the training process's CPU and memory per epoch. Real (tiny) runs; the figures read back
from the chart component's arguments."""
from __future__ import annotations

import json

import plotly.graph_objects as go
import pytest

from sslcore.engine.training_run import execute_run
from sslcore.runs import Run
from sslcore.runs.process_manager import JobManager
from tests.app.conftest import live_charts, open_page
from tests.conftest import tiny_config
from ui import charts

TRAIN = "app_pages/train.py"


@pytest.fixture
def simclr_run(jobs: JobManager) -> Run:
    run = jobs.store.create(tiny_config(**{"train.epochs": 2}))
    assert execute_run(run) == "completed"
    return run


def losses_of(run: Run) -> list[float]:
    return [r["loss"] for r in run.metrics("step")]


def test_smoothing_defaults_to_auto_and_each_stop_redraws_the_trend(simclr_run: Run) -> None:
    losses = losses_of(simclr_run)
    at = open_page(TRAIN, simclr_run.id)
    assert not at.exception
    control = at.segmented_control(key="live.loss.smoothing")
    assert control.value == "auto" and list(control.options) == ["auto", "off", "0.6", "0.9", "0.99"]
    raw, trend = live_charts(at)["loss"]["data"]
    automatic = charts.smooth(losses, charts.smoothing_weight(len(losses)))
    assert raw["y"] == losses and trend["y"] == pytest.approx(automatic)

    control.set_value("0.99").run()
    figure = live_charts(at)["loss"]
    go.Figure(figure)  # valid plotly
    assert figure["data"][1]["y"] == pytest.approx(charts.smooth(losses, 0.99))
    assert figure["data"][1]["y"] != pytest.approx(trend["y"])

    at.segmented_control(key="live.loss.smoothing").set_value("off").run()
    [only] = live_charts(at)["loss"]["data"]  # no trend: the raw losses, drawn bold
    assert only["y"] == losses and only["line"]["width"] > raw["line"]["width"]


def test_a_log_scale_for_a_positive_loss_and_a_fresh_zoom_for_it(simclr_run: Run) -> None:
    assert min(losses_of(simclr_run)) > 0  # NT-Xent is a cross-entropy
    at = open_page(TRAIN, simclr_run.id)
    linear = live_charts(at)["loss"]["layout"]
    assert linear["yaxis"].get("type") != "log"
    toggle = at.toggle(key="live.loss.log")
    assert not toggle.disabled
    toggle.set_value(True).run()
    assert not at.exception
    log = live_charts(at)["loss"]["layout"]
    assert log["yaxis"]["type"] == "log"
    assert log["uirevision"] != linear["uirevision"]  # a range zoomed on one scale means nothing on the other
    assert live_charts(at)["knn"]["layout"]["uirevision"] == linear["uirevision"]  # the other charts keep theirs


def test_no_log_scale_for_a_loss_that_reaches_zero_or_below(jobs: JobManager) -> None:
    run = jobs.store.create(tiny_config("simsiam", **{"train.epochs": 1}))
    assert execute_run(run) == "completed"
    assert min(losses_of(run)) <= 0  # a negative cosine similarity
    at = open_page(TRAIN, run.id)
    toggle = at.toggle(key="live.loss.log")
    assert toggle.disabled
    assert "0 or below" in toggle.help
    assert live_charts(at)["loss"]["layout"]["yaxis"].get("type") != "log"


def test_the_runs_metrics_are_offered_as_a_csv(simclr_run: Run) -> None:
    at = open_page(TRAIN, simclr_run.id)
    [download] = [d for d in at.download_button if d.label == "Metrics (CSV)"]
    assert not download.disabled  # the file itself is checked in the browser journey (tests/e2e)


def test_the_process_cpu_and_memory_are_charted_per_trained_epoch(simclr_run: Run) -> None:
    records = simclr_run.metrics("epoch")[1:]  # epoch 0: the untrained start, not measured
    at = open_page(TRAIN, simclr_run.id)
    figures = live_charts(at)
    cpu, memory = figures["sys_cpu"], figures["sys_memory"]
    go.Figure(cpu), go.Figure(memory)  # valid plotly
    [used] = cpu["data"]
    assert used["x"] == [1, 2] and used["y"] == pytest.approx([r["sys_cpu_percent"] / 100 for r in records])
    threads = int(records[-1]["sys_threads"])
    assert cpu["layout"]["shapes"][0]["y0"] == threads  # the ceiling its threads allow, dotted
    assert f"{threads * 100}%" in cpu["layout"]["title"]["subtitle"]["text"]
    names = [trace["name"] for trace in memory["data"]]
    assert names[:2] == ["resident", "peak resident"] and "GPU (peak)" not in names
    assert memory["data"][1]["y"] == [r["sys_peak_rss_mib"] for r in records]


def test_a_run_recorded_before_the_system_figures_gets_no_system_charts(simclr_run: Run) -> None:
    records = simclr_run.metrics()
    old = [{k: v for k, v in r.items() if not k.startswith("sys_")} for r in records]
    simclr_run.metrics_path.write_text("".join(json.dumps(r) + "\n" for r in old))
    figures = live_charts(open_page(TRAIN, simclr_run.id))
    assert "loss" in figures and "sys_cpu" not in figures and "sys_memory" not in figures
