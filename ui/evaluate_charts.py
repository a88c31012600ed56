"""Evaluation figures as plotly dicts: the label-efficiency curve, the confusion matrix, per-class accuracy.

Pure functions of plain numbers (see ``ui/charts.py`` for why dicts). The label-efficiency chart has the
number of labels per class on a log axis; the "all labels" budget is placed at the real average number
of labels per class (train size / classes) and labelled "all". Each curve is the mean over repeats with
a shaded band of ± one standard deviation (none where a single repeat gives no spread).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from ui.charts import FONT, Figure, figure

#: One colour per evaluation method (the SSL methods in cool colours, the baselines warm/grey).
METHOD_COLORS = {"linear_probe": "#3b5bdb", "knn": "#0ca678", "finetune": "#ae3ec9", "supervised": "#e8590c",
                 "raw_pixels": "#868e96", "raw_columns": "#868e96", "gradient_boosting": "#c92a2a"}
#: Colours of the runs' probe curves when several runs share the chart.
RUN_COLORS = ("#3b5bdb", "#0ca678", "#ae3ec9", "#f08c00", "#1098ad", "#d6336c", "#5c940d", "#495057")


class Curve(NamedTuple):
    """One line of the label-efficiency chart: points (x = labels per class) with mean and std accuracy.

    A std of None marks a point from a single repeat: it has no spread, so it gets no band and no '±'.
    """

    name: str
    color: str
    x: list[float]
    mean: list[float]
    std: list[float | None]
    dash: str = "solid"


def budget_x(budget: int | str, train_size: int, num_classes: int) -> float:
    """Labels per class of a budget; "all" is the average over classes (train_size / num_classes)."""
    return train_size / max(1, num_classes) if budget == "all" else float(budget)


def _rgba(hex_color: str, alpha: float) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _band(curve: Curve) -> dict[str, Any]:
    """The shaded mean ± std area: the upper edge left to right, then the lower edge back (one closed shape)."""
    upper = [min(1.0, m + (s or 0.0)) for m, s in zip(curve.mean, curve.std, strict=True)]
    lower = [max(0.0, m - (s or 0.0)) for m, s in zip(curve.mean, curve.std, strict=True)]
    return {"type": "scatter", "x": curve.x + curve.x[::-1], "y": upper + lower[::-1], "fill": "toself",
            "fillcolor": _rgba(curve.color, 0.15), "line": {"width": 0}, "mode": "lines", "hoverinfo": "skip",
            "showlegend": False, "legendgroup": curve.name, "name": curve.name}


def _mean_line(curve: Curve) -> dict[str, Any]:
    # Per point: '82.2% ± 1.9%' over repeats, or '82.2% (one repeat, no spread)'.
    spread = [f" ± {100 * s:.1f}%" if s is not None else " (one repeat, no spread)" for s in curve.std]
    return {"type": "scatter", "x": curve.x, "y": curve.mean, "customdata": spread, "name": curve.name,
            "mode": "lines+markers", "legendgroup": curve.name,
            "line": {"color": curve.color, "width": 2.5, "dash": curve.dash}, "marker": {"size": 7},
            "hovertemplate": "%{y:.1%}%{customdata}"}


def label_efficiency_figure(curves: Sequence[Curve], ticks: Sequence[tuple[float, str]], *, revision: str,
                            height: int = 420) -> Figure:
    """Test accuracy against labels per class (log x); a band and a line per curve, ``ticks`` (x, text)."""
    traces = [t for c in curves if c.x for t in (_band(c), _mean_line(c))]
    x_axis = {"type": "log", "tickvals": [x for x, _ in ticks], "ticktext": [text for _, text in ticks]}
    fig = figure(traces, title="Label efficiency", x_title="labels per class (log scale)",
                 y_title="test accuracy", revision=revision, height=height, x_axis=x_axis,
                 y_axis={"tickformat": ".0%", "rangemode": "tozero"})
    fig["layout"]["showlegend"] = True
    # At the right, one entry a line: run names are long, and a horizontal legend above the plot overlaps them.
    fig["layout"]["legend"] = {"orientation": "v", "x": 1.02, "xanchor": "left", "y": 1.0, "yanchor": "top"}
    return fig


def confusion_figure(rates: Sequence[Sequence[float]], counts: Sequence[Sequence[int]], class_names: Sequence[str],
                     *, title: str, revision: str) -> Figure:
    """A heatmap of row-normalised rates (true class x predicted class), counts in the hover text."""
    names = [str(n) for n in class_names]
    side = max(320, min(640, 48 * len(names) + 120))
    trace = {"type": "heatmap", "z": [list(map(float, row)) for row in rates], "x": names, "y": names,
             "customdata": [list(map(int, row)) for row in counts], "colorscale": "Blues", "zmin": 0.0, "zmax": 1.0,
             "colorbar": {"tickformat": ".0%", "thickness": 12},
             "hovertemplate": "true %{y}, predicted %{x}: %{z:.1%} (%{customdata})<extra></extra>"}
    fig = figure([trace], title=title, x_title="predicted class", y_title="true class", revision=revision,
                 height=side, x_axis={"type": "category", "showgrid": False},
                 y_axis={"type": "category", "autorange": "reversed", "showgrid": False})
    fig["layout"]["hovermode"] = "closest"
    return fig


def per_class_figure(accuracy: Sequence[float | None], class_names: Sequence[str], *, revision: str,
                     height: int = 280) -> Figure:
    """Accuracy of each true class as bars (None for a class without test images)."""
    trace = {"type": "bar", "x": [str(n) for n in class_names], "y": list(accuracy),
             "marker": {"color": METHOD_COLORS["linear_probe"]}, "hovertemplate": "%{x}: %{y:.1%}<extra></extra>"}
    fig = figure([trace], title="Accuracy per class", x_title="true class", y_title="test accuracy",
                 revision=revision, height=height, x_axis={"type": "category"},
                 y_axis={"tickformat": ".0%", "range": [0, 1.02]})
    fig["layout"]["hovermode"] = "closest"
    fig["layout"]["font"] = {"family": FONT, "size": 12}
    return fig
