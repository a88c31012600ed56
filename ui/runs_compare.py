"""Comparing runs: their loss and k-NN curves overlaid on one figure, and the config fields that differ.

The figure builder and the diff are pure functions of plain data (tested without Streamlit); ``compare``
draws them for the runs a person picked on the Runs page. Different pretext tasks have losses of different
kinds and scales (a reconstruction MSE near 0.05, NT-Xent near 2.6): on one linear axis the smaller would be
a flat line, so runs of different tasks are drawn relative to their own starting loss by default.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import pandas as pd
import streamlit as st

from sslcore.runs import Run
from ui import charts
from ui.collapse import compare_collapse
from ui.runs import run_metrics

XMode = Literal["epoch", "wall time"]
X_MODES: tuple[XMode, ...] = ("epoch", "wall time")
LossScale = Literal["relative to start", "as logged"]
LOSS_SCALES: tuple[LossScale, ...] = ("relative to start", "as logged")
#: One colour per run (Tableau 10: distinct, and readable on a light background).
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac")
MISSING = "—"


class Curves(NamedTuple):
    """One run's curves. Step series (S,): step, loss, time; epoch series (E,): epoch, step, time, k-NN."""

    label: str
    steps: Sequence[int]
    losses: Sequence[float]
    step_times: Sequence[float]
    epochs: Sequence[int]
    epoch_steps: Sequence[int]
    epoch_times: Sequence[float]
    knn: Sequence[float | None]


def steps_per_epoch(curves: Curves) -> float | None:
    """Optimisation steps in one epoch, read off the first epoch record past epoch 0 (None before it)."""
    for epoch, step in zip(curves.epochs, curves.epoch_steps, strict=True):
        if epoch >= 1 and step:
            return step / epoch
    return None


def _x(curves: Curves, mode: XMode) -> tuple[list[float], list[float]]:
    """x of the step points and of the epoch points: fractional epochs, or minutes since the first record."""
    if mode == "wall time":
        t0 = min([*curves.step_times[:1], *curves.epoch_times[:1]], default=0.0)
        return [(t - t0) / 60.0 for t in curves.step_times], [(t - t0) / 60.0 for t in curves.epoch_times]
    per_epoch = steps_per_epoch(curves)
    # Before the first epoch ends there is no epoch length yet: steps stand in, on an axis of their own scale.
    step_x = [s / per_epoch for s in curves.steps] if per_epoch else [float(s) for s in curves.steps]
    return step_x, [float(e) for e in curves.epochs]


def relative_losses(losses: Sequence[float]) -> list[float]:
    """``losses`` divided by the run's first logged (finite) loss: 1 at the start, 0.5 where the loss has
    halved, whatever the loss's own scale."""
    start = next((v for v in losses if v is not None and math.isfinite(v)), 0.0)
    if start <= 0.0:  # no scale to divide by (a loss that starts at 0 or below): keep the values
        return list(losses)
    return [v / start for v in losses]


def default_loss_scale(tasks: Sequence[str]) -> LossScale:
    """'as logged' when every run optimises the same task's loss (values comparable), else 'relative to start'."""
    return "as logged" if len(set(tasks)) <= 1 else "relative to start"


def compare_figure(runs: Sequence[Curves], mode: XMode = "epoch", height: int = 520,
                   loss_scale: LossScale = "as logged", smoothing: float | None = None) -> charts.Figure:
    """Smoothed loss (top) and k-NN accuracy per epoch (bottom) of every run, one colour and legend entry each.

    A run's two traces share a legend group, so clicking its name hides or shows both. ``loss_scale``
    'relative to start' divides each run's loss by its own starting value (see :func:`relative_losses`);
    ``smoothing`` is the moving average's weight (0: the raw losses), None for each run's automatic one.
    """
    x_title = "epoch" if mode == "epoch" else "wall time (minutes since the first record)"
    relative = loss_scale == "relative to start"
    traces = []
    for i, run in enumerate(runs):
        color = PALETTE[i % len(PALETTE)]
        step_x, epoch_x = _x(run, mode)
        losses = relative_losses(run.losses) if relative else run.losses
        weight = charts.smoothing_weight(len(losses)) if smoothing is None else smoothing
        trend = charts.smooth(losses, weight) if losses else []
        x, y = charts.thin(step_x, trend)
        loss = charts.line(x, y, name=run.label, color=color, width=2)
        knn = charts.line(epoch_x, run.knn, name=run.label, color=color, width=2, markers=True)  # None: a gap
        loss.update(legendgroup=run.label)
        knn.update(legendgroup=run.label, showlegend=False, xaxis="x2", yaxis="y2")
        traces += [loss, knn]
    smoothed = "" if smoothing == 0.0 else " (smoothed)"
    title = (f"Loss relative to each run's start{smoothed} and online k-NN accuracy" if relative
             else f"Loss{smoothed} and online k-NN accuracy")
    fig = charts.figure(traces, title=title, x_title="", y_title="loss ÷ starting loss" if relative else "loss",
                        revision=f"compare-{loss_scale}", height=height, y_axis={"domain": [0.56, 1.0]})
    layout = fig["layout"]
    layout["showlegend"] = True
    layout["xaxis"].update(anchor="y", matches="x2", showticklabels=False)
    layout["xaxis2"] = {**layout["xaxis"], "title": {"text": x_title}, "anchor": "y2", "showticklabels": True}
    layout["xaxis2"].pop("matches")
    layout["yaxis2"] = {**layout["yaxis"], "domain": [0.0, 0.44], "title": {"text": "k-NN accuracy"},
                        **charts.PERCENT_AXIS}
    return fig


def flatten(config: dict[str, Any]) -> dict[str, Any]:
    """{'train': {'lr': 0.002}} -> {'train.lr': 0.002} (sections one level deep, as config.json is)."""
    flat: dict[str, Any] = {}
    for section, fields in config.items():
        if isinstance(fields, dict):
            flat.update({f"{section}.{name}": value for name, value in fields.items()})
        else:
            flat[section] = fields
    return flat


def config_diff(configs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The fields whose values differ between ``configs`` (column label -> config.json dict).

    Rows: 'section.field' (sorted); columns: the labels; a field one config lacks (another task's
    parameter) shows as MISSING. Values are shown as JSON text, so 0.1 and '0.1' stay distinguishable.
    """
    flats = {label: flatten(config) for label, config in configs.items()}
    fields = sorted(set().union(*flats.values())) if flats else []
    rows = {}
    for field in fields:
        values = [json.dumps(flat[field]) if field in flat else MISSING for flat in flats.values()]
        if len(set(values)) > 1:
            rows[field] = values
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(flats)).rename_axis("field")


def run_curves(run: Run, label: str) -> Curves:
    """A run's curves from its metrics.jsonl (the cached read of ``ui.runs.run_metrics``)."""
    steps, epochs = run_metrics(run)

    def column(frame: pd.DataFrame, name: str) -> list[Any]:
        if name not in frame:
            return [None] * len(frame)
        return [None if pd.isna(v) else v for v in frame[name].tolist()]

    return Curves(label, column(steps, "step"), column(steps, "loss"), column(steps, "time"), column(epochs, "epoch"),
                  column(epochs, "step"), column(epochs, "time"), column(epochs, "knn_acc"))


def labels_for(runs: Sequence[Run]) -> dict[str, str]:
    """Run id -> legend label: the run's name, plus the end of its id where two runs share a name."""
    names = {run.id: run.status().get("name", run.id) for run in runs}
    counts = pd.Series(list(names.values())).value_counts()
    return {rid: f"{name} · {rid[-4:]}" if counts[name] > 1 else name for rid, name in names.items()}


def compare(runs: Sequence[Run]) -> None:
    """Draw the overlay figure (x axis: epoch or wall time) and the config diff for ``runs``."""
    labels = labels_for(runs)
    configs = {run.id: run.config_dict() for run in runs}
    tasks = [str(config.get("task", {}).get("name", "?")) for config in configs.values()]
    default = default_loss_scale(tasks)
    x_column, loss_column, smoothing_column = st.columns([2, 3, 3])
    mode = x_column.segmented_control("x axis", X_MODES, default="epoch", key="runs.compare.x") or "epoch"
    # Keyed by the default, so choosing runs of other tasks brings the right default back.
    scale = loss_column.segmented_control(
        "loss", LOSS_SCALES, default=default, key=f"runs.compare.loss.{default}",
        help="Different pretext tasks have losses of different kinds and sizes; relative to its start, each "
             "run's curve shows how far its own loss fell.") or default
    smoothing = smoothing_column.segmented_control(
        "loss smoothing", list(charts.SMOOTHING_CHOICES), default="auto", required=True,
        key="runs.compare.smoothing", help=charts.SMOOTHING_HELP) or "auto"
    curves = [run_curves(run, labels[run.id]) for run in runs]
    st.plotly_chart(compare_figure(curves, mode, loss_scale=scale, smoothing=charts.SMOOTHING_CHOICES[smoothing]),
                    config={"displaylogo": False}, key="runs.compare.chart")
    compare_collapse([(labels[run.id], PALETTE[i % len(PALETTE)], run_metrics(run).epochs)
                      for i, run in enumerate(runs)])
    diff = config_diff({labels[run.id]: configs[run.id] for run in runs})
    if diff.empty:
        st.caption("Their configs are identical, field for field.")
    else:
        st.markdown(f"**Config differences** ({len(diff)} field{'s' * (len(diff) != 1)}; the rest are the same)")
        st.dataframe(diff, width="stretch")
