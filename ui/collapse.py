"""Collapse diagnostics on the Train page (live, beside the loss) and on Runs → Compare (overlaid).

The figures are computed by the trainer's monitor into each epoch record (``emb_std``, ``eff_rank``,
``emb_dim``, and ``alignment``/``uniformity`` for two-view methods; see :mod:`sslcore.evaluation.collapse`);
the warning's rule is the engine's :func:`~sslcore.evaluation.collapse.collapse_warning`. Figure builders
here are pure functions of tables; only :func:`collapse_notice` and :func:`compare_collapse` draw.
"""
from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from sslcore.evaluation.collapse import collapse_warning
from ui import charts
from ui.live_charts import Chart

ALIGN_COLOR = "#2f9e44"
HEAD_COLOR = "#f08c00"
UNIFORM_COLOR = "#ae3ec9"


#: (rank key, std key, dimension key, trace name, colour) of each embedding space the monitor records.
SPACES = (("eff_rank", "emb_std", "emb_dim", "features", charts.LOSS_COLOR),
          ("head_rank", "head_std", "head_dim", "head output", HEAD_COLOR))


def recorded(epochs: pd.DataFrame, column: str) -> pd.DataFrame:
    """The epoch records that have ``column`` (none when no record has it: a run from before it existed)."""
    return epochs.dropna(subset=[column]) if column in epochs else epochs.iloc[0:0]


def relative_spread(frame: pd.DataFrame, std: str, dim: str) -> list[float]:
    """std * sqrt(D): 1 for embeddings spread evenly on the sphere, 0 for a collapse, whatever D is."""
    return (frame[std] * frame[dim].pow(0.5)).tolist()


def collapse_charts(run_id: str, epochs: pd.DataFrame) -> list[Chart]:
    """Effective rank and relative spread of the encoder's features (and of the projection head's outputs,
    where the task has a head), and alignment/uniformity for two-view methods, per epoch; nothing for runs
    recorded before these figures existed."""
    ranks, spreads, dims = [], [], []
    for rank_key, std_key, dim_key, name, color in SPACES:
        frame = recorded(recorded(epochs, std_key), dim_key)
        if frame.empty:
            continue
        x = frame["epoch"].tolist()
        dims.append(f"{int(frame[dim_key].iloc[-1])} ({name.split()[0]})")  # "512 (features)", "128 (head)"
        ranks.append(charts.line(x, frame[rank_key].tolist(), name=name, color=color, width=2, markers=True))
        spreads.append(charts.line(x, relative_spread(frame, std_key, dim_key), name=name, color=color, width=2,
                                   markers=True))
    if not ranks:
        return []
    x_axis = {"dtick": 1} if len(epochs) <= 12 else None
    rank = charts.figure(ranks, title="Effective rank", subtitle="of " + ", ".join(dims),
                         x_title="epoch", y_title="rank", revision=run_id, height=charts.SMALL_HEIGHT, x_axis=x_axis,
                         y_axis={"rangemode": "tozero"})
    spread = charts.figure(spreads, title="Spread", subtitle="1 = evenly spread, 0 = collapsed", x_title="epoch",
                           y_title="", revision=run_id, height=charts.SMALL_HEIGHT, x_axis=x_axis,
                           y_axis={"rangemode": "tozero"})
    spread["layout"]["shapes"] = [_level(1.0)]
    found = [Chart("eff_rank", rank), Chart("emb_std", spread)]
    pairs = recorded(epochs, "alignment")
    if not pairs.empty:
        found.append(Chart("align_uniform", _alignment_figure(run_id, pairs)))
    return found


def _level(y: float) -> dict[str, object]:
    return {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": y, "y1": y,
            "line": {"color": charts.ACCENT_COLOR, "width": 1, "dash": "dot"}}


def _alignment_figure(run_id: str, pairs: pd.DataFrame) -> charts.Figure:
    x = pairs["epoch"].tolist()
    traces = [charts.line(x, pairs["alignment"].tolist(), name="alignment", color=ALIGN_COLOR, width=2, markers=True),
              charts.line(x, pairs["uniformity"].tolist(), name="uniformity", color=UNIFORM_COLOR, width=2,
                          markers=True)]
    return charts.figure(traces, title="Alignment and uniformity", subtitle="lower is better", x_title="epoch",
                         y_title="", revision=run_id, height=charts.SMALL_HEIGHT,
                         x_axis={"dtick": 1} if len(x) <= 12 else None)


def collapse_notice(epochs: pd.DataFrame) -> None:
    """A warning, in plain words, when the run's latest epoch shows collapse (the engine's rule)."""
    if "eff_rank" not in epochs:
        return
    message = collapse_warning(epochs.to_dict("records"))
    if message:
        st.warning(message + " With SimSiam or BYOL, check that the predictor is on; a lower learning rate or "
                   "more weight decay can also help.", icon=":material/warning:")


def compare_figure(curves: Sequence[tuple[str, str, pd.DataFrame]], height: int = 380) -> charts.Figure | None:
    """Effective rank (top) and relative spread (bottom) of the encoder's features per epoch of every run,
    one colour per run.

    ``curves``: (label, colour, epoch table) per run. None when no run recorded the figures.
    """
    traces = []
    for label, color, epochs in curves:
        rank, spread = recorded(epochs, "eff_rank"), recorded(epochs, "emb_std")
        if rank.empty:
            continue
        top = charts.line(rank["epoch"].tolist(), rank["eff_rank"].tolist(), name=label, color=color, width=2,
                          markers=True)
        spread = recorded(spread, "emb_dim")
        bottom = charts.line(spread["epoch"].tolist(), relative_spread(spread, "emb_std", "emb_dim"), name=label,
                             color=color, width=2, markers=True)
        top.update(legendgroup=label)
        bottom.update(legendgroup=label, showlegend=False, xaxis="x2", yaxis="y2")
        traces += [top, bottom]
    if not traces:
        return None
    fig = charts.figure(traces, title="Collapse diagnostics: effective rank and spread of the features", x_title="",
                        y_title="effective rank", revision="compare-collapse", height=height,
                        y_axis={"domain": [0.56, 1.0], "rangemode": "tozero"})
    layout = fig["layout"]
    layout["showlegend"] = True
    layout["xaxis"].update(anchor="y", matches="x2", showticklabels=False)
    layout["xaxis2"] = {**layout["xaxis"], "title": {"text": "epoch"}, "anchor": "y2", "showticklabels": True}
    layout["xaxis2"].pop("matches")
    layout["yaxis2"] = {**layout["yaxis"], "domain": [0.0, 0.44], "title": {"text": "spread (1 = even)"}}
    return fig


def compare_collapse(curves: Sequence[tuple[str, str, pd.DataFrame]]) -> None:
    """Draw :func:`compare_figure` under the loss overlay (only when some run has the figures)."""
    figure = compare_figure(curves)
    if figure is not None:
        st.plotly_chart(figure, config={"displaylogo": False}, key="runs.compare.collapse")
