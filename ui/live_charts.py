"""Plotly charts that update in place, keeping the user's zoom (a small custom component).

``st.plotly_chart`` derives a chart's identity from its figure, so every new data point remounts the
chart and the user's zoom is lost (checked in a browser with Streamlit 1.67). This component keeps one
<div> per chart name and updates it with ``Plotly.react``: a figure whose ``layout.uirevision`` stays
the same keeps its zoom, pan and legend state while points are added.

The component's folder is assembled once per plotly version in the temp directory: the page
``live_charts.html`` next to this module plus the ``plotly.min.js`` of the installed plotly package
(served by the Streamlit server itself, so nothing is fetched from the internet).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import plotly
import streamlit.components.v1 as components

from ui.charts import Figure

PAGE = Path(__file__).with_name("live_charts.html")


def _plotly_js() -> Path:
    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def component_dir(source: Path = PAGE, name: str = "live-charts") -> Path:
    """The served folder (index.html + plotly.min.js), built atomically if missing; one per page/plotly version.

    ``source`` and ``name``: another plotly component's page (e.g. ui/embedding_map.html) and folder prefix.
    """
    page = source.read_bytes()
    version = hashlib.sha256(page + plotly.__version__.encode()).hexdigest()[:12]
    uid = os.getuid() if hasattr(os, "getuid") else 0
    target = Path(tempfile.gettempdir()) / f"ssl-studio-{uid}" / f"{name}-{version}"
    if (target / "index.html").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
    shutil.copyfile(_plotly_js(), staging / "plotly.min.js")
    (staging / "index.html").write_bytes(page)  # written last: its presence means the folder is complete
    try:
        staging.rename(target)
    except OSError:  # another process (or session) built it first
        shutil.rmtree(staging, ignore_errors=True)
    return target


_component = components.declare_component("live_charts", path=str(component_dir()))


@dataclass(frozen=True)
class Chart:
    """One chart of the grid: ``wide`` charts take a whole row, the others share one."""

    name: str
    figure: Figure
    wide: bool = False


def chart_args(charts: list[Chart]) -> list[dict[str, object]]:
    """The component's arguments: each figure as a JSON string (strict JSON: NaN is refused, not sent)."""
    return [{"name": c.name, "wide": c.wide, "figure": json.dumps(c.figure, allow_nan=False)} for c in charts]


def live_charts(charts: list[dict[str, object]], *, key: str) -> None:
    """Draw ``charts`` (from :func:`chart_args`); the same ``key`` on the next draw updates them in place."""
    _component(charts=charts, key=key, default=None)
