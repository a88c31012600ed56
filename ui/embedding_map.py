"""Embedding maps with image thumbnails on hover: figure builders (pure) and a small custom component.

``st.plotly_chart`` cannot show an image in a hover label, so the maps are drawn by
``embedding_map.html``: WebGL scatters (``scattergl``: thousands of points stay smooth; SVG would not)
side by side in one frame, one trace per class, an <img> tooltip near the cursor, the hovered image
ringed on the other map as well, and the clicked point sent back to Python. Like ``ui.live_charts`` it
serves the installed plotly package's ``plotly.min.js`` (nothing comes from the internet).

A point is known by its *position*: its row in the arrays of ``sslcore.evaluation.embeddings.run_points``
(the same rows for every epoch and for raw pixels). Each marker's ``customdata`` is its position; the
component's ``thumbs`` and ``ids`` are indexed by it.
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit.components.v1 as components

from ui.charts import FONT, Figure
from ui.live_charts import component_dir

PAGE = Path(__file__).with_name("embedding_map.html")
#: Tableau 10, then ten lighter companions: one colour per class for up to 20 classes (then they repeat).
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac", "#a0cbe8", "#ffbe7d", "#ff9d9a", "#86bcb6", "#8cd17d", "#f1ce63", "#d4a6c8", "#fabfd2",
           "#d7b5a6", "#79706e")
HIGHLIGHT = "#111111"
ECHO_COLOR = "#d6336c"
#: The name of the empty trace every map ends with; the component rings a point hovered on another map in it.
ECHO_TRACE = "echo"

_component = components.declare_component("embedding_map", path=str(component_dir(PAGE, "embedding-map")))


def rounded(values: np.ndarray, span: float) -> list[float]:
    """``values`` rounded to about a thousandth of ``span`` (finer than a screen pixel; the JSON stays short)."""
    decimals = max(0, 3 - math.floor(math.log10(span))) if span > 0 and math.isfinite(span) else 6
    return np.round(np.asarray(values, dtype=np.float64), decimals).tolist()


def marker_size(n_points: int) -> int:
    """Bigger dots for a few hundred points, smaller ones for thousands (they would cover each other)."""
    return 7 if n_points <= 600 else 5 if n_points <= 2500 else 4


def map_figure(coords: np.ndarray, labels: np.ndarray, class_names: Sequence[str], *, title: str, revision: str,
               query: int | None = None, neighbours: Sequence[int] = (), height: int = 460) -> Figure:
    """A 2-D map as a plotly figure dict: one ``scattergl`` trace per class present, named after it.

    coords: float (N, 2); labels: int (N,) indexing ``class_names``. Each marker's customdata is its
    position (row) in ``coords``. ``query`` and ``neighbours`` (positions) are ringed on top, and an
    empty last trace (``ECHO_TRACE``) is left for the component to ring a point hovered on another map.
    ``revision`` is the layout's uirevision: zoom and hidden classes are kept while it stays the same.
    """
    coords, labels = np.asarray(coords), np.asarray(labels)
    if coords.ndim != 2 or coords.shape[1] != 2 or len(coords) != len(labels):
        raise ValueError(f"coords must be (N, 2) with one label per row, got {coords.shape} and {labels.shape}")
    span = float(np.ptp(coords)) if len(coords) else 1.0
    x, y = rounded(coords[:, 0], span), rounded(coords[:, 1], span)
    size = marker_size(len(coords))
    traces = []
    for c in np.unique(labels).tolist():
        where = np.flatnonzero(labels == c).tolist()
        traces.append({"type": "scattergl", "mode": "markers", "name": class_name(class_names, c),
                       "x": [x[i] for i in where], "y": [y[i] for i in where], "customdata": where,
                       "marker": {"color": PALETTE[c % len(PALETTE)] if c >= 0 else NO_LABEL_COLOR, "size": size,
                                  "opacity": 0.8},
                       "hoverinfo": "none"})  # hover events still fire: the component draws its own tooltip
    if query is not None:
        ringed = [int(query), *map(int, neighbours)]
        traces.append(_ring("query and neighbours", ringed, x, y, HIGHLIGHT, size + 6))
    traces.append(_ring(ECHO_TRACE, [], x, y, ECHO_COLOR, size + 10, legend=False))
    return {"data": traces, "layout": _layout(title, revision, height)}


#: The trace of images without a label (the user's unlabelled data): one neutral colour.
NO_LABEL, NO_LABEL_COLOR = "no label", "#9a9a9a"


def class_name(class_names: Sequence[str], label: int) -> str:
    """The name of class ``label`` ("no label" for -1), or the number itself when the names do not cover it."""
    if label < 0:
        return NO_LABEL
    return str(class_names[label]) if label < len(class_names) else str(label)


def _ring(name: str, positions: list[int], x: list[float], y: list[float], color: str, size: int,
          legend: bool = True) -> dict[str, Any]:
    return {"type": "scattergl", "mode": "markers", "name": name, "showlegend": legend,
            "x": [x[i] for i in positions], "y": [y[i] for i in positions], "customdata": positions,
            "marker": {"symbol": "circle-open", "size": size, "color": color, "line": {"width": 2}},
            "hoverinfo": "none" if legend else "skip"}


def _layout(title: str, revision: str, height: int) -> dict[str, Any]:
    # The axes of a projection carry no meaning, so no ticks; equal scales keep distances honest.
    axis = {"showticklabels": False, "showgrid": False, "zeroline": False, "title": {"text": ""}}
    return {
        "title": {"text": f"<b>{title}</b>", "x": 0.0, "xanchor": "left", "font": {"size": 14}},
        "height": height,
        "margin": {"l": 8, "r": 8, "t": 40, "b": 8},
        "font": {"family": FONT, "size": 12},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "uirevision": revision,
        "hovermode": "closest",
        # At the right, one class a line: a legend below would take the map's height for 10+ classes.
        "legend": {"itemsizing": "constant", "tracegroupgap": 2},
        "xaxis": axis,
        "yaxis": {**axis, "scaleanchor": "x", "scaleratio": 1},
    }


@dataclass(frozen=True)
class MapPanel:
    """One map of the component: a stable name (its <div>) and its figure."""

    name: str
    figure: Figure


def map_args(panels: Sequence[MapPanel], thumbs: Sequence[str], ids: Sequence[int] | np.ndarray, split: str,
             names: Sequence[str] | None = None, texts: Sequence[str] = ()) -> dict[str, Any]:
    """The component's arguments: figures as strict JSON strings (NaN refused), one thumbnail and id per position,
    and optionally one file name per position (the user's own images; shown as text, never as HTML).

    ``texts``: for a table, one row's values per position, shown on hover instead of a thumbnail (pass
    empty thumbnails then).
    """
    if len(thumbs) != len(ids):
        raise ValueError(f"one thumbnail per point: got {len(thumbs)} thumbnails for {len(ids)} points")
    if names is not None and len(names) != len(ids):
        raise ValueError(f"one file name per point: got {len(names)} names for {len(ids)} points")
    if texts and len(texts) != len(ids):
        raise ValueError(f"one text per point: got {len(texts)} texts for {len(ids)} points")
    return {"maps": [{"name": p.name, "figure": json.dumps(p.figure, allow_nan=False)} for p in panels],
            "thumbs": list(thumbs), "ids": [int(i) for i in ids], "split": split, "names": list(names or []),
            "texts": list(texts)}


def embedding_map(args: dict[str, Any], *, key: str) -> Any:
    """Draw the maps (``args`` from :func:`map_args`); returns the last click's raw value, or None."""
    return _component(**args, key=key, default=None)


def new_click(value: Any, last_nonce: Any, n_points: int) -> int | None:
    """The position of a click not seen before (its nonce differs from ``last_nonce``), else None.

    ``value`` comes from the browser, so anything but ``{"position": int in [0, n_points), "nonce": ...}``
    is ignored rather than trusted.
    """
    if not isinstance(value, dict) or value.get("nonce") in (None, last_nonce):
        return None
    position = value.get("position")
    if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < n_points:
        return None
    return position
