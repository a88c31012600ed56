"""Compare draws losses of different kinds (a reconstruction MSE near 0.05, NT-Xent near 2.6) so both are readable."""
from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from sslcore.runs import Run
from sslcore.runs.process_manager import JobManager
from tests.app.conftest import open_page
from tests.conftest import tiny_config
from ui import charts
from ui.runs_compare import Curves, compare_figure, default_loss_scale, relative_losses


def logged(run: Run, start: float, end: float, steps: int = 40) -> None:
    """A finished run's metrics: a loss falling from ``start`` to ``end`` over two epochs."""
    losses = [start + (end - start) * s / (steps - 1) for s in range(steps)]
    run.append_metrics(*({"kind": "step", "step": s + 1, "epoch": 0 if s < steps // 2 else 1, "loss": loss,
                          "lr": 0.002, "time": 100.0 + s} for s, loss in enumerate(losses)))
    run.append_metrics(*({"kind": "epoch", "epoch": e, "step": e * steps // 2, "time": 100.0 + e * steps // 2,
                          "knn_acc": 0.5 + 0.1 * e} for e in range(3)))
    run.update_status(state="completed")


def test_relative_losses_start_at_one_whatever_their_scale() -> None:
    assert relative_losses([2.0, 2.5, 1.0]) == pytest.approx([1.0, 1.25, 0.5])
    assert relative_losses([0.0, 0.0]) == [0.0, 0.0]  # nothing to divide by: left as logged
    assert default_loss_scale(["simclr", "autoencoder"]) == "relative to start"
    assert default_loss_scale(["simclr", "simclr"]) == "as logged"


def test_relative_scale_puts_both_curves_on_one_readable_axis() -> None:
    steps = list(range(1, 21))
    curves = [Curves(name, steps, [a + (b - a) * s / 20 for s in steps], [float(s) for s in steps], [0, 1], [0, 20],
                     [0.0, 20.0], [0.5, 0.6]) for name, a, b in (("mse", 0.05, 0.01), ("ntxent", 2.6, 1.3))]
    fig = compare_figure(curves, loss_scale="relative to start")
    mse, _, ntxent, _ = fig["data"]
    assert fig["layout"]["yaxis"]["title"]["text"] == "loss ÷ starting loss"
    # Each ends at its own fraction of its start: the MSE fell to about a quarter, NT-Xent to about half.
    assert mse["y"][-1] < 0.5 < ntxent["y"][-1] < 0.7 and max(mse["y"] + ntxent["y"]) <= 1.0


def compare_two(jobs: JobManager, *runs: tuple[str, str, float, float]) -> tuple[AppTest, list[Run]]:
    """The Runs page with two finished runs (name, task, first and last loss) ticked in its table."""
    made = []
    for name, task, start, end in runs:
        made.append(jobs.store.create(tiny_config(task), name=name))
        logged(made[-1], start, end)
    at = open_page("app_pages/runs.py")
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": [0, 1], "columns": [], "cells": []}}
    return at.run(), made


def test_runs_of_different_tasks_are_compared_relative_to_their_start(jobs: JobManager) -> None:
    at, _ = compare_two(jobs, ("mse run", "autoencoder", 0.05, 0.01), ("ntxent run", "simclr", 2.6, 1.3))
    assert not at.exception
    [chart] = at.get("plotly_chart")
    layout = json.loads(chart.proto.spec)["layout"]
    assert layout["yaxis"]["title"]["text"] == "loss ÷ starting loss"
    at.segmented_control(key="runs.compare.loss.relative to start").set_value("as logged").run()
    [chart] = at.get("plotly_chart")
    assert json.loads(chart.proto.spec)["layout"]["yaxis"]["title"]["text"] == "loss"


def test_the_compared_losses_take_the_smoothing_chosen_above_them(jobs: JobManager) -> None:
    at, (first, second) = compare_two(jobs, ("first", "simclr", 2.6, 1.3), ("second", "simclr", 2.4, 1.2))
    control = at.segmented_control(key="runs.compare.smoothing")
    assert control.value == "auto"

    def loss_traces() -> tuple[list[float], str]:
        [chart] = at.get("plotly_chart")
        figure = json.loads(chart.proto.spec)
        return figure["data"][0]["y"], figure["layout"]["title"]["text"]

    auto, title = loss_traces()
    assert "(smoothed)" in title
    control.set_value("off").run()
    raw, title = loss_traces()
    newest = first if at.dataframe[0].value["name"].iloc[0] == "first" else second
    assert raw == pytest.approx([r["loss"] for r in newest.metrics("step")]) and "(smoothed)" not in title
    at.segmented_control(key="runs.compare.smoothing").set_value("0.99").run()
    heavy, _ = loss_traces()
    assert heavy == pytest.approx(charts.smooth(raw, 0.99)) and heavy != pytest.approx(auto)
