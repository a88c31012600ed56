"""The training process's CPU and memory per epoch on the Train page (W&B's system panel, in two charts).

The figures are the epoch records' ``sys_*`` keys (:mod:`sslcore.engine.system_monitor`); runs recorded before
they existed get no charts. Pure functions of the epochs table.
"""
from __future__ import annotations

import pandas as pd

from ui import charts
from ui.collapse import recorded
from ui.live_charts import Chart

PEAK_COLOR = "#868e96"
GPU_COLOR = "#2f9e44"


def _x_axis(x: list[int]) -> dict[str, object]:
    return {"dtick": 1, "rangemode": "tozero"} if len(x) <= 12 else {"rangemode": "tozero"}


def cpu_figure(run_id: str, cpu: pd.DataFrame) -> charts.Figure:
    """CPU time over wall time per epoch (100% = one core busy), with the ceiling its threads allow dotted."""
    x = cpu["epoch"].tolist()
    threads = int(cpu["sys_threads"].iloc[-1]) if "sys_threads" in cpu else 0
    trace = charts.line(x, (cpu["sys_cpu_percent"] / 100).tolist(), name="CPU", color=charts.LOSS_COLOR, width=2,
                        markers=True)
    subtitle = f"100% = one core busy; {threads} thread{'s' * (threads != 1)} allow {threads * 100}%" if threads \
        else "100% = one core busy"
    figure = charts.figure([trace], title="CPU", subtitle=subtitle, x_title="epoch", y_title="", revision=run_id,
                           height=charts.SMALL_HEIGHT, x_axis=_x_axis(x),
                           y_axis={"tickformat": ".0%", "rangemode": "tozero"})
    if threads:
        figure["layout"]["shapes"] = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": threads,
                                       "y1": threads, "line": {"color": charts.ACCENT_COLOR, "width": 1,
                                                               "dash": "dot"}}]
    return figure


def memory_figure(run_id: str, epochs: pd.DataFrame) -> charts.Figure | None:
    """Resident memory at each epoch's end, the process's peak so far, and GPU memory where a GPU trained."""
    traces = []
    for key, name, color, dash in (("sys_rss_mib", "resident", charts.LOSS_COLOR, False),
                                   ("sys_peak_rss_mib", "peak resident", PEAK_COLOR, True),
                                   ("sys_gpu_peak_mib", "GPU (peak)", GPU_COLOR, False)):
        frame = recorded(epochs, key)
        if frame.empty:
            continue
        trace = charts.line(frame["epoch"].tolist(), frame[key].tolist(), name=name, color=color, width=2,
                            markers=True)
        if dash:
            trace["line"]["dash"] = "dot"
        traces.append(trace)
    if not traces:
        return None
    x = [int(e) for e in epochs["epoch"]]
    return charts.figure(traces, title="Memory", subtitle="MiB held by the training process", x_title="epoch",
                         y_title="MiB", revision=run_id, height=charts.SMALL_HEIGHT, x_axis=_x_axis(x),
                         y_axis={"rangemode": "tozero"})


def system_charts(run_id: str, epochs: pd.DataFrame) -> list[Chart]:
    """The CPU and memory charts of a run's epochs; none for a run that did not record them."""
    found = []
    cpu = recorded(epochs, "sys_cpu_percent")
    if not cpu.empty:
        found.append(Chart("sys_cpu", cpu_figure(run_id, cpu)))
    memory = memory_figure(run_id, epochs)
    if memory is not None:
        found.append(Chart("sys_memory", memory))
    return found
