"""Plotly figures as plain dicts (plotly's JSON schema): pure functions of plain sequences.

Dicts rather than ``go.Figure`` objects because the live panel rebuilds its figures about once a
second while a run trains, and constructing (validating) plotly objects costs ~40 ms a figure where a
dict costs well under 1 ms; ``tests/app/test_charts.py`` checks every builder against plotly's schema.

Every figure carries a ``uirevision``: while it stays the same, plotly keeps the user's zoom, pan and
legend choices when the figure is redrawn with new points. Traces are ordinary SVG scatters (not
WebGL): the series are short, and SVG keeps working in headless browsers and screenshots.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

Figure = dict[str, Any]

#: Beyond this many points a series is thinned for drawing (the smoothing uses every point first).
MAX_POINTS = 1500
LOSS_COLOR = "#3b5bdb"
ACCENT_COLOR = "#e8590c"
MUTED_COLOR = "#808495"  # Streamlit's caption grey: readable on its light and dark themes
#: Height of the live panel's small charts: room for a title, a subtitle and a legend over a ~130 px plot.
SMALL_HEIGHT = 250
#: A CSS font-family list: names quoted, since an unquoted "Source Sans 3" (a word that is a number) makes the
#: whole list invalid CSS; the browser then draws in its default font while plotly measured the text in another,
#: and a legend entry ("supervised from scratch") came out clipped.
FONT = '"Source Sans Pro", "Source Sans 3", "Helvetica Neue", Arial, sans-serif'
#: A y axis of accuracies (fractions): 0% to 100%, never plotly's automatic padding past 100%.
PERCENT_AXIS: dict[str, Any] = {"tickformat": ".0%", "range": [0.0, 1.0], "autorange": False}


def smooth(values: Sequence[float], weight: float = 0.9) -> list[float]:
    """Exponential moving average with bias correction (TensorBoard's smoothing).

    s_t = weight * s_(t-1) + (1 - weight) * x_t, divided by (1 - weight^t) so early points are not pulled
    towards zero. Non-finite values are skipped (the previous smoothed value repeats).
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"weight must be in [0, 1), got {weight}")
    out: list[float] = []
    acc = norm = 0.0
    for value in values:
        if math.isfinite(value):
            acc = weight * acc + (1.0 - weight) * value
            norm = weight * norm + (1.0 - weight)
        out.append(acc / norm if norm > 0 else math.nan)
    return out


#: The loss charts' smoothing stops (TensorBoard's slider, in a few steps): "auto" is :func:`smoothing_weight`'s.
SMOOTHING_CHOICES: dict[str, float | None] = {"auto": None, "off": 0.0, "0.6": 0.6, "0.9": 0.9, "0.99": 0.99}
SMOOTHING_HELP = ("Weight of the moving average through the per-step losses, as in TensorBoard (0.99: long memory, "
                  "off: the raw values). Auto averages about 5% of the curve.")


def smoothing_weight(n_points: int) -> float:
    """A weight that averages over ~5% of the series (at least 3, at most 100 points)."""
    window = min(100.0, max(3.0, n_points / 20.0))
    return 1.0 - 1.0 / window


def thin(xs: Sequence[Any], *series: Sequence[Any], max_points: int = MAX_POINTS) -> tuple[list[Any], ...]:
    """Every k-th point of ``xs`` and of each series (all the same length), always keeping the last one."""
    n = len(xs)
    if n <= max_points:
        return (list(xs), *(list(s) for s in series))
    stride = math.ceil(n / max_points)
    keep = list(range(0, n, stride))
    if keep[-1] != n - 1:
        keep.append(n - 1)
    return ([xs[i] for i in keep], *([s[i] for i in keep] for s in series))


def _finite(values: Sequence[float | None]) -> list[float | None]:
    """NaN and infinities become None (and None stays): a gap in the line, and valid JSON (NaN is not)."""
    return [float(v) if v is not None and math.isfinite(v) else None for v in values]


def line(x: Sequence[Any], y: Sequence[float | None], *, name: str, color: str, width: float, opacity: float = 1.0,
         markers: bool = False) -> dict[str, Any]:
    """One SVG scatter trace; a None (or non-finite) value in ``y`` is a gap."""
    trace: dict[str, Any] = {"type": "scatter", "x": list(x), "y": _finite(y), "name": name,
                             "mode": "lines+markers" if markers else "lines", "line": {"color": color, "width": width}}
    if opacity < 1.0:
        trace["opacity"] = opacity
    return trace


def figure(traces: list[dict[str, Any]], *, title: str, x_title: str, y_title: str, revision: str, height: int,
           x_axis: dict[str, Any] | None = None, y_axis: dict[str, Any] | None = None, subtitle: str = "") -> Figure:
    """Traces plus the shared look: bold title at the top left, an optional smaller grey ``subtitle`` under it
    (what a number means, the sample it is on), the legend centred between them and the plot, light grid,
    no template.

    Plotly does not wrap titles, and the live panel's small charts are ~250 px wide: keep ``title`` to a few
    words and say the rest in ``subtitle``. The title is pinned to the top of the figure and pushes the plot
    down (automargin), as the legend does, so neither can overlap the other however the legend wraps.
    No template: plotly's default one adds ~6 kB of JSON to every update.
    """
    grid = {"showgrid": True, "gridcolor": "rgba(128,128,128,0.18)", "zeroline": False, "automargin": True}
    heading: dict[str, Any] = {"text": f"<b>{title}</b>", "x": 0.0, "xanchor": "left", "font": {"size": 14},
                               "yref": "container", "y": 1.0, "yanchor": "top", "pad": {"t": 4}, "automargin": True}
    if subtitle:
        heading["subtitle"] = {"text": subtitle, "font": {"size": 11, "color": MUTED_COLOR}}
    return {
        "data": traces,
        "layout": {
            "title": heading,
            "height": height,
            "margin": {"l": 8, "r": 8, "t": 36, "b": 8},
            "font": {"family": FONT, "size": 12},
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
            "uirevision": revision,
            "hovermode": "x unified",
            "showlegend": len(traces) > 1,
            # centred above the plot: the right corner belongs to the mode bar, the left to the title
            "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "center", "x": 0.5},
            "xaxis": {"title": {"text": x_title}, **grid, **(x_axis or {})},
            # a gap between the y tick labels and the plot: at the origin "0%" and the x axis's "0" ran together
            "yaxis": {"title": {"text": y_title}, **grid, "ticklabelstandoff": 6, **(y_axis or {})},
        },
    }


def loss_figure(steps: Sequence[int], losses: Sequence[float], *, revision: str, height: int = 320,
                smoothing: float | None = None, log_y: bool = False) -> Figure:
    """Training loss per step: the raw values faint, their smoothed trend bold.

    ``smoothing``: the moving average's weight (TensorBoard's slider, 0 = none: the raw values alone, drawn
    bold), None for :func:`smoothing_weight`'s choice; ``log_y``: a log-scale y axis (for a positive loss: plotly
    leaves out values <= 0 there). A change of scale starts the chart's zoom afresh: a range zoomed on one
    scale means nothing on the other.
    """
    weight = smoothing_weight(len(losses)) if smoothing is None else smoothing
    y_axis = {"type": "log"} if log_y else None
    revision = f"{revision}:log" if log_y else revision
    if weight == 0.0:
        x, raw = thin(steps, losses)
        return figure([line(x, raw, name="per step", color=LOSS_COLOR, width=2)], title="Loss", x_title="step",
                      y_title="loss", revision=revision, height=height, y_axis=y_axis)
    x, raw, smoothed = thin(steps, losses, smooth(losses, weight))
    return figure([line(x, raw, name="per step", color=LOSS_COLOR, width=1, opacity=0.3),
                   line(x, smoothed, name="smoothed", color=LOSS_COLOR, width=3)],
                  title="Loss", x_title="step", y_title="loss", revision=revision, height=height, y_axis=y_axis)


def lr_figure(steps: Sequence[int], lrs: Sequence[float], *, revision: str, height: int = SMALL_HEIGHT) -> Figure:
    """Learning rate per step, as the optimiser used it."""
    x, y = thin(steps, lrs)
    return figure([line(x, y, name="lr", color=ACCENT_COLOR, width=2)], title="Learning rate", x_title="step",
                  y_title="", revision=revision, height=height, y_axis={"exponentformat": "e"})


def epoch_figure(epochs: Sequence[int], values: Sequence[float], *, title: str, y_title: str, revision: str,
                 percent: bool = False, height: int = SMALL_HEIGHT, subtitle: str = "") -> Figure:
    """One value per epoch (k-NN accuracy, images/s), as markers joined by a line."""
    x_axis: dict[str, Any] = {"rangemode": "tozero"}
    if len(epochs) <= 12:
        x_axis["dtick"] = 1
    trace = line(epochs, values, name=y_title, color=LOSS_COLOR, width=2, markers=True)
    if percent:
        trace["cliponaxis"] = False  # a marker at exactly 100% is drawn whole on the capped axis
    return figure([trace], title=title, x_title="epoch", y_title=y_title, revision=revision, height=height,
                  x_axis=x_axis, y_axis=PERCENT_AXIS if percent else None, subtitle=subtitle)


def schedule_figure(steps: Sequence[int], lrs: Sequence[float], steps_per_epoch: int, *, height: int = 200) -> Figure:
    """The planned learning rate at ``steps`` over the whole run, x in epochs (drawn before a run starts)."""
    x, y = thin([step / steps_per_epoch for step in steps], lrs)
    return figure([line(x, y, name="lr", color=ACCENT_COLOR, width=2)], title="Planned learning rate",
                  x_title="epoch", y_title="", revision="schedule", height=height, y_axis={"exponentformat": "e"})
