"""A table task's snapshot as figures: heat maps of a few test rows and the error of each column.

The figure builders are pure functions of numpy arrays returning plotly figure dicts (see ``ui/charts.py``
for why dicts); :func:`draw_table_snapshot` puts them on the Reconstructions & views page. Values
are in standard deviations from the train mean, so one colour scale fits every column; the cells the task
corrupted are outlined. The per-column error is the mean squared difference over the shown rows.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from sslcore.config import ConfigError
from sslcore.data import DatasetUnavailableError
from sslcore.engine.snapshots import Snapshot
from sslcore.registry import UnknownNameError
from sslcore.runs import Run
from ui.charts import ACCENT_COLOR, LOSS_COLOR, Figure, figure
from ui.datasets import load_config_split
from ui.snapshots import class_name

#: Colours clip at this many standard deviations (a few extreme cells would wash out the rest).
CLIP = 3.0
#: Blue below the train mean, red above, white at it.
COLORSCALE = [[0.0, "#2166ac"], [0.25, "#92c5de"], [0.5, "#f7f7f7"], [0.75, "#f4a582"], [1.0, "#b2182b"]]
ROW_PIXELS = 22
GAP = 0.06


def heatmaps_figure(maps: Sequence[tuple[str, np.ndarray]], columns: Sequence[str], row_labels: Sequence[str],
                    marked: np.ndarray | None, *, revision: str) -> Figure:
    """Heat maps stacked top to bottom, one per (title, values (M, F)), sharing the column axis.

    marked: bool (M, F), the corrupted cells, outlined on every map (or None). Row ``i`` of each map is the
    same test row, labelled ``row_labels[i]``.
    """
    n = len(maps)
    height = (1.0 - GAP * (n - 1)) / n
    traces: list[dict[str, Any]] = []
    layout_axes: dict[str, Any] = {}
    annotations = []
    for k, (title, values) in enumerate(maps):
        axis = "" if k == 0 else str(k + 1)
        top = 1.0 - k * (height + GAP)
        values = np.asarray(values, dtype=np.float64)
        traces.append({"type": "heatmap", "z": np.round(values, 3).tolist(), "x": list(columns),
                       "y": list(row_labels), "xaxis": f"x{axis}", "yaxis": f"y{axis}", "zmin": -CLIP, "zmax": CLIP,
                       "colorscale": COLORSCALE, "showscale": k == 0, "xgap": 1, "ygap": 1,
                       "colorbar": {"title": {"text": "std"}, "thickness": 12, "len": 0.6},
                       "hovertemplate": "%{y} · %{x}: %{z:.2f} std<extra>" + title + "</extra>"})
        if marked is not None and np.any(marked):
            rows, cols = np.nonzero(np.asarray(marked))
            traces.append({"type": "scatter", "mode": "markers", "xaxis": f"x{axis}", "yaxis": f"y{axis}",
                           "x": [columns[int(c)] for c in cols], "y": [row_labels[int(r)] for r in rows],
                           "hoverinfo": "skip",
                           "showlegend": False, "marker": {"symbol": "square-open", "size": 14,
                                                           "color": "#111111", "line": {"width": 1.5}}})
        layout_axes[f"xaxis{axis}"] = {"showticklabels": k == n - 1, "tickangle": -45, "matches": "x",
                                       "anchor": f"y{axis}"}
        layout_axes[f"yaxis{axis}"] = {"domain": [max(0.0, top - height), top], "autorange": "reversed",
                                       "anchor": f"x{axis}"}
        annotations.append({"text": f"<b>{title}</b>", "xref": "paper", "yref": "paper", "x": 0.0, "y": top,
                            "xanchor": "left", "yanchor": "bottom", "showarrow": False})
    fig = figure(traces, title="", x_title="", y_title="", revision=revision,
                 height=int(80 + n * (len(row_labels) * ROW_PIXELS + 30)))
    fig["layout"].update(layout_axes, annotations=annotations, showlegend=False, hovermode="closest")
    fig["layout"]["margin"] = {"l": 8, "r": 8, "t": 24, "b": 8}
    return fig


def column_error_figure(errors: np.ndarray, columns: Sequence[str], *, revision: str) -> Figure:
    """Mean squared error (in standardised units) per column, as bars; the mean as a dotted line."""
    errors = np.asarray(errors, dtype=np.float64)
    bars = {"type": "bar", "x": list(columns), "y": np.round(errors, 5).tolist(), "name": "error",
            "marker": {"color": LOSS_COLOR}, "hovertemplate": "%{x}: %{y:.4f}<extra></extra>"}
    fig = figure([bars], title="Reconstruction error per column (shown rows)", x_title="", y_title="error",
                 revision=revision, height=260, x_axis={"tickangle": -45})
    fig["layout"]["shapes"] = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": float(errors.mean()),
                                "y1": float(errors.mean()), "line": {"color": ACCENT_COLOR, "dash": "dot", "width": 2}}]
    fig["layout"]["hovermode"] = "closest"
    return fig


@st.cache_data(show_spinner=False, max_entries=16)
def column_names(run_path: str, width: int) -> tuple[str, ...]:
    """A table run's column names (``width`` of them); 'column 3' when its dataset cannot be loaded here."""
    try:
        d = Run(Path(run_path)).config().data
        names = load_config_split(d).as_tables()[0].columns.names
        if len(names) == width:
            return tuple(names)
    except (ConfigError, UnknownNameError, DatasetUnavailableError, OSError, AttributeError, TypeError):
        pass
    return tuple(f"column {j}" for j in range(width))


def draw_table_snapshot(run: Run, snapshot: Snapshot, order: np.ndarray, names: tuple[str, ...] | None) -> None:
    """Heat maps of the snapshot's rows (in ``order``), their lines, and the error per column."""
    panels, arrays = snapshot.panels, snapshot.arrays
    maps = [(c.title, arrays[c.array][order]) for c in panels.row_arrays(arrays)]
    columns = column_names(str(run.path), maps[0][1].shape[1])
    labels = [f"#{int(snapshot.indices[i])} {class_name(names, int(snapshot.labels[i]))}" for i in order]
    marked = arrays[panels.marked][order] if panels.marked else None
    st.caption("Values in standard deviations from the train mean (colours clip at ±3); outlined: the cells the "
               "task corrupted. Each row is one test row, labelled with its id and class.")
    st.plotly_chart(heatmaps_figure(maps, columns, labels, marked, revision=f"{run.id}:{snapshot.task}"),
                    config={"displaylogo": False}, key=f"views.rows.{run.id}")
    lines = {"test row": labels, "at this epoch": [panels.caption_of(arrays, int(i)) for i in order]}
    st.dataframe(lines, hide_index=True)
    errors = panels.column_errors(arrays)
    if errors is not None:
        st.plotly_chart(column_error_figure(errors, columns, revision=f"{run.id}:errors"),
                        config={"displaylogo": False}, key=f"views.column_error.{run.id}")
        worst = [columns[j] for j in np.argsort(-errors, kind="stable")[:3]]
        st.caption(f"Over the {len(snapshot)} rows shown; hardest to rebuild: {', '.join(worst)}. Set "
                   "`train.snapshot_images` (up to 64) to average over more rows.")
