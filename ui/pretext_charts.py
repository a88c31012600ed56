"""The pretext task's own scores per epoch on the Train page: how well the model solves its made-up task on
held-out data (SimCLR's pair accuracy, RotNet's rotation accuracy, an autoencoder's reconstruction error),
next to the same score on its training batches where the task logs one.

The trainer's monitor records a task's held-out scores in every epoch record as ``test_<what>_<kind>`` (see
``PretextTask.evaluate`` and ``view_metrics``), and a training step may log ``<what>_<kind>`` itself. The name
says how to read it: ``acc`` is a fraction (higher is better), ``mse`` an error (lower is better). Figure builders
here are pure functions of the run's tables.
"""
from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from ui import charts
from ui.live_charts import Chart

TEST_PREFIX = "test_"
LOSS_KEY = "test_loss"  # the pretext loss on held-out views
#: Abbreviations in metric names, in words.
_WORDS = {"recon": "reconstruction"}
_ERRORS = {"mse": "MSE", "mae": "MAE"}
TRAIN_COLOR = "#adb5bd"


class MetricReading(NamedTuple):
    """How a pretext score reads: chart title, whether it is a fraction (a 0-100% axis), which way is good."""

    title: str
    percent: bool
    higher_is_better: bool | None  # None: the name does not say
    from_zero: bool = True  # the axis starts at 0 (scores and errors); a loss is drawn over the range it spans


def metric_reading(key: str) -> MetricReading:
    """'test_pair_acc' -> ('Pair accuracy', percent, higher is better); 'test_recon_mse' -> ('Reconstruction error
    (MSE)', lower is better); 'test_loss' -> ('Loss per epoch', lower is better); 'test_view_gap' -> ('View gap',
    lower is better); any other name in plain words, direction unknown."""
    *words, kind = key.removeprefix(TEST_PREFIX).split("_")
    noun = " ".join(_WORDS.get(w, w) for w in words).capitalize()
    if words and kind == "acc":
        return MetricReading(f"{noun} accuracy", True, True)
    if words and kind in _ERRORS:
        return MetricReading(f"{noun} error ({_ERRORS[kind]})", False, False)
    if key == LOSS_KEY:  # the pretext loss itself; the step chart above is titled "Loss"
        return MetricReading("Loss per epoch", False, False, from_zero=False)
    if words and kind == "gap":  # VICReg's view gap: how far apart two views lie, against two images
        return MetricReading(f"{noun} gap", False, False)
    return MetricReading(key.removeprefix(TEST_PREFIX).replace("_", " ").capitalize(), False, None)


def training_means(steps: pd.DataFrame, column: str) -> pd.Series:
    """The mean of a step metric over each epoch's steps, indexed like the epoch records (epoch k = after k
    epochs: a step record's ``epoch`` is the 0-based epoch it ran in)."""
    if column not in steps or "epoch" not in steps:
        return pd.Series(dtype=float)
    logged = steps.dropna(subset=[column])
    return logged.groupby(logged["epoch"] + 1)[column].mean()


def pretext_charts(run_id: str, steps: pd.DataFrame, epochs: pd.DataFrame, unit: str = "images") -> list[Chart]:
    """One small chart per held-out pretext score the epoch records hold: the score per epoch on held-out
    ``unit`` ("images" or "rows"), and its per-epoch mean on the training batches where the steps log it."""
    found = []
    # The task's own scores first (SimCLR's pair accuracy beside the k-NN chart), its loss per epoch after them.
    for key in sorted((c for c in epochs.columns if c.startswith(TEST_PREFIX)), key=lambda c: (c == LOSS_KEY, c)):
        held_out = epochs.dropna(subset=[key])
        if held_out.empty:
            continue
        reading = metric_reading(key)
        traces = [charts.line(held_out["epoch"].tolist(), held_out[key].tolist(), name=f"held-out {unit}",
                              color=charts.LOSS_COLOR, width=2, markers=True)]
        train = training_means(steps, key.removeprefix(TEST_PREFIX))
        if not train.empty:
            traces.append(charts.line(train.index.tolist(), train.tolist(), name="training batches",
                                      color=TRAIN_COLOR, width=2, markers=True))
        subtitle = {True: "higher is better", False: "lower is better", None: ""}[reading.higher_is_better]
        x_axis = {"dtick": 1, "rangemode": "tozero"} if len(held_out) <= 12 else {"rangemode": "tozero"}
        y_axis = charts.PERCENT_AXIS if reading.percent else {"rangemode": "tozero"} if reading.from_zero else {}
        figure = charts.figure(traces, title=reading.title, subtitle=subtitle, x_title="epoch", y_title="",
                               revision=run_id, height=charts.SMALL_HEIGHT, x_axis=x_axis, y_axis=y_axis)
        if reading.percent:
            for trace in figure["data"]:
                trace["cliponaxis"] = False  # a score of exactly 100% is drawn whole on the capped axis
        found.append(Chart(key, figure))
    return found
