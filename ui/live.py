"""The live view of one run: status, progress, curves and controls, redrawn from the run folder.

It is an ``st.fragment`` that reruns on its own every POLL_SECONDS while the run is queued or running;
each rerun reads progress.json (the heartbeat), status.json and, only when it changed, metrics.jsonl.
Training itself never runs here: the buttons only ask the job manager to stop or resume a worker.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import streamlit as st

from sslcore.engine.callbacks import format_duration
from sslcore.runs import ACTIVE_STATES, Run
from sslcore.runs.actions import resume_blocker
from sslcore.runs.archive import metrics_csv
from sslcore.runs.store import STARTUP_GRACE_SECONDS
from sslcore.runs.summary import KNN_LAST_HELP, KNN_LAST_LABEL
from ui import charts
from ui.collapse import collapse_charts, collapse_notice
from ui.live_charts import Chart, chart_args, live_charts
from ui.plain_text import escape_markdown
from ui.polling import FIRST_POINT_POLL_SECONDS, FIRST_POINT_WINDOW_SECONDS, polling_fragment
from ui.pretext_charts import pretext_charts
from ui.runs import RUN_PARAM, RunMetrics, log_tail, metrics_stamp, run_metrics
from ui.runs_damaged import damaged_panel
from ui.server import job_manager
from ui.system_charts import system_charts

BadgeColor = Literal["gray", "blue", "green", "orange", "red"]
STATE_COLORS: dict[str, BadgeColor] = {"queued": "gray", "running": "blue", "completed": "green", "cancelled": "orange",
                                       "failed": "red"}


def run_panel(run: Run) -> None:
    """Draw ``run``; while it is queued or running, redraw it every POLL_SECONDS seconds.

    Whether and how often to poll is decided at each full page run. When a polling fragment sees the run end,
    it asks for one full rerun, which registers the fragment again without ``run_every`` (Streamlit drops the
    old timers on a full run): an ended run costs nothing to keep on screen. Until the run's first step is on
    disk (for FIRST_POINT_WINDOW_SECONDS after it was created at most) it polls every FIRST_POINT_POLL_SECONDS,
    and asks for one full rerun when that step arrives or that window closes, to go on at the usual pace.
    """
    if damaged_panel(run, key="live"):
        return
    polling = run.state in ACTIVE_STATES
    waiting = polling and _awaits_first_point(run.status(), run_metrics(run))
    polling_fragment(_live_view, str(run.path), polling, waiting, active=polling,
                     every=FIRST_POINT_POLL_SECONDS if waiting else None)
    _inspect_links(run)


def _awaits_first_point(status: dict[str, Any], metrics: RunMetrics) -> bool:
    """Whether the run (its status.json, its metrics) was created less than FIRST_POINT_WINDOW_SECONDS ago and
    has logged no training step."""
    young = time.time() - (status.get("created") or 0.0) < FIRST_POINT_WINDOW_SECONDS
    return young and metrics.steps.empty


#: Pages that look inside a run: (page file, link label, icon). They read the run from ``?run=``.
INSPECT_PAGES = (
    ("app_pages/views.py", "Reconstructions & views", ":material/grid_view:"),
    ("app_pages/embeddings.py", "Embeddings", ":material/scatter_plot:"),
    ("app_pages/evaluate.py", "Evaluate", ":material/query_stats:"),
)


def _inspect_links(run: Run) -> None:
    """Links to the pages that show what this run learned (they work while it trains, too), and its metrics as
    a CSV for a spreadsheet (every step and epoch record logged so far, read when the button is clicked)."""
    # Columns as wide as their labels need (equal thirds cut "Reconstructions & views" short in the run column)
    widths = [len(label) + 6 for _, label, _ in INSPECT_PAGES]
    for column, (page, label, icon) in zip(st.columns(widths), INSPECT_PAGES, strict=True):
        column.page_link(page, label=label, icon=icon, query_params={RUN_PARAM: run.id})
    st.download_button("Metrics (CSV)", data=lambda: metrics_csv(run.metrics()).encode(),
                       file_name=f"{run.id}-metrics.csv", mime="text/csv", icon=":material/download:",
                       key=f"metrics-csv-{run.id}", help="Every logged step and epoch record, one row each (the "
                       "kind column says which); the charts above are drawn from them.")


def _live_view(run_path: str, polling: bool, waiting_for_steps: bool = False) -> None:
    run = Run(Path(run_path))
    status = run.status()
    state = status.get("state", "unknown")
    if state in ACTIVE_STATES and _worker_vanished(run, status):
        status, state = run.status(), run.state
    if polling and state not in ACTIVE_STATES:
        st.rerun()  # the run just ended: stop polling and let the rest of the page catch up
    progress = run.progress()
    _header(run, status)
    _progress_bar(state, status, progress)
    _controls(run, state)
    if state == "failed":
        _failure(run, status)
    metrics = run_metrics(run)
    _tiles(metrics, progress, sample_unit(status))
    collapse_notice(metrics.epochs)
    _charts(run, metrics)
    if waiting_for_steps and not _awaits_first_point(status, metrics):
        st.rerun()  # the first point is drawn (or it is late): the usual pace from now on (a full run sets it)


def _worker_vanished(run: Run, status: dict[str, Any]) -> bool:
    """Whether the run's worker is gone without a word (crash, OOM kill); if so the run is now 'failed'.

    The one write this panel may cause, and through the job manager: without it a dead run would say
    'running' (and be polled) until the next server start.
    """
    if run.is_alive():
        return False
    manager = job_manager()
    waiting_since = max(status.get("created", 0.0), status.get("queued_at") or 0.0)
    starting = status.get("pid") is None and time.time() - waiting_since < STARTUP_GRACE_SECONDS
    # A worker still starting has not written its pid; only a child that already exited can be judged.
    failed = manager.reap() if starting else manager.reconcile()
    return any(r.id == run.id for r in failed)


def _header(run: Run, status: dict[str, Any]) -> None:
    state = status.get("state", "unknown")
    title, badge = st.columns([4, 1], vertical_alignment="center")
    title.markdown(f"#### {escape_markdown(status.get('name', run.id))}")
    with badge:
        st.badge(state, color=STATE_COLORS.get(state, "gray"))
    details = [run.id] + ([where_trained(status)] if status.get("device") else [])
    if status.get("dataset_size"):
        details.append(f"{status['dataset_size']:,} training {sample_unit(status)}")
    st.caption(" · ".join(details))


def sample_unit(status: dict[str, Any]) -> str:
    """What the run's samples are called: "rows" for a table (its sample shape is (F,)), else "images"."""
    return "rows" if len(status.get("image_shape") or ()) == 1 else "images"


def where_trained(status: dict[str, Any]) -> str:
    """'device cpu · bf16', or '2 processes (cuda:0 (NVIDIA H200), cuda:1 (NVIDIA H200)) · bf16' for a distributed
    run (the precision only where the run recorded it)."""
    devices = status.get("devices") or []
    where = f"{len(devices)} processes ({', '.join(devices)})" if len(devices) > 1 else f"device {status.get('device')}"
    precision = status.get("precision")
    return f"{where} · {precision}" if precision in ("bf16", "fp32") else where


def format_seconds(seconds: float | None) -> str:
    """'1:05', '1:02:03', or '?' when unknown (the console's format, :func:`format_duration`)."""
    return format_duration(seconds, unknown="?")


def progress_text(state: str, status: dict[str, Any], progress: dict[str, Any]) -> tuple[float, str]:
    """(fraction done, one line for the progress bar) from status.json and the heartbeat."""
    step, total = progress.get("step", 0), progress.get("total_steps") or 0
    fraction = min(1.0, step / total) if total else 0.0
    if state == "queued":
        return 0.0, "Queued: waiting for a free training slot"
    if state == "running" and progress.get("phase") in (None, "queued", "starting"):
        return fraction, "Starting: loading the data and building the model"
    epochs = progress.get("epochs") or status.get("epochs", "?")
    epoch = progress.get("epoch", 0)
    if state == "running":
        current = min(epoch + 1, epochs) if isinstance(epochs, int) else epoch + 1
        elapsed, eta = format_seconds(progress.get("elapsed_s")), format_seconds(progress.get("eta_s"))
        return fraction, f"Epoch {current}/{epochs} · step {step}/{total} · {elapsed} elapsed · ETA {eta}"
    if not total:
        return 0.0, f"{state.capitalize()} before training started"
    return fraction, f"{state.capitalize()} after {epoch}/{epochs} epochs, {step}/{total} steps, " \
                     f"{format_seconds(progress.get('elapsed_s'))}"


def _progress_bar(state: str, status: dict[str, Any], progress: dict[str, Any]) -> None:
    fraction, text = progress_text(state, status, progress)
    st.progress(fraction, text=text)


def _controls(run: Run, state: str) -> None:
    if state in ACTIVE_STATES:
        if run.stop_requested():
            st.caption("Stopping: finishing the current step and saving a checkpoint…")
        elif st.button("Stop", key=f"stop-{run.id}", icon=":material/stop_circle:"):
            job_manager().cancel(run)
            st.caption("Stopping: finishing the current step and saving a checkpoint…")
    elif resume_blocker(run) is None:  # the engine's rule: stopped, with a checkpoint to continue from
        if st.button("Resume from the last checkpoint", key=f"resume-{run.id}", icon=":material/play_arrow:"):
            try:
                job_manager().resume(run)
            except RuntimeError as refused:  # e.g. another tab resumed it a moment ago
                st.error(escape_markdown(refused))
                return
            st.rerun()  # a full rerun, so the panel polls again


def _failure(run: Run, status: dict[str, Any]) -> None:
    st.error(f"**The run failed:** {escape_markdown(status.get('error') or 'no reason was recorded')}")
    if status.get("traceback"):
        with st.expander("Traceback"):
            st.code(status["traceback"], language="text")
    log = log_tail(run)
    if log:
        with st.expander("Job log (last lines)"):
            st.code(log, language="text")


def _last(frame: pd.DataFrame, column: str) -> float | None:
    if column not in frame or frame[column].dropna().empty:
        return None
    return float(frame[column].dropna().iloc[-1])


def _tiles(metrics: RunMetrics, progress: dict[str, Any], unit: str) -> None:
    steps, epochs = metrics.steps, metrics.epochs
    loss = _last(steps, "loss")
    lr = progress.get("lr") or _last(steps, "lr")
    speed = progress.get("images_per_s") or _last(epochs, "images_per_s")
    knn = _last(epochs, "knn_acc")
    knn_delta = None
    if knn is not None and epochs["knn_acc"].notna().sum() > 1:
        knn_delta = f"{(knn - float(epochs['knn_acc'].dropna().iloc[0])) * 100:+.1f} pts"
    cells = st.columns(4)
    cells[0].metric("Loss", "–" if loss is None else f"{loss:.3f}", help="last logged training step")
    cells[1].metric("Learning rate", "–" if not lr else f"{lr:.2g}")
    cells[2].metric(f"{unit.capitalize()} / s", "–" if not speed else f"{speed:,.0f}",
                    help="training throughput, this epoch")
    cells[3].metric(KNN_LAST_LABEL, "–" if knn is None else f"{knn:.1%}", delta=knn_delta,
                    help=f"{KNN_LAST_HELP}; the change is since the untrained encoder (epoch 0)")


def knn_sample_note(epochs: pd.DataFrame, unit: str = "images") -> str:
    """'1,000 train → 512 test images' (``unit``: 'rows' for a table) where the epoch records say the monitor's
    sample sizes (runs trained before the monitor used fixed samples do not: their figure was on whole splits,
    capped at 10,000), else ''."""
    if "knn_bank" not in epochs or epochs["knn_bank"].dropna().empty:
        return ""
    last = epochs.dropna(subset=["knn_bank"]).iloc[-1]
    return f"{int(last['knn_bank']):,} train → {int(last['knn_queries']):,} test {unit}"


@dataclass(frozen=True)
class LossView:
    """How the loss chart is drawn: the moving average's weight (None: chosen from the curve's length) and the
    y axis's scale."""

    smoothing: float | None = None
    log_y: bool = False


def live_figures(run_id: str, metrics: RunMetrics, unit: str = "images", loss_view: LossView = LossView()
                 ) -> list[Chart]:
    """The run's curves: loss per step (wide, drawn as ``loss_view`` says), learning rate, throughput, k-NN
    accuracy, the pretext task's held-out scores, the collapse diagnostics and the process's CPU and memory per
    epoch; ``unit`` names the samples ("images" or "rows")."""
    steps, epochs = metrics.steps, metrics.epochs
    found: list[Chart] = []
    if not steps.empty:
        x = steps["step"].tolist()
        loss = charts.loss_figure(x, steps["loss"].tolist(), revision=run_id, smoothing=loss_view.smoothing,
                                  log_y=loss_view.log_y)
        found.append(Chart("loss", loss, wide=True))
        if "lr" in steps:
            found.append(Chart("lr", charts.lr_figure(x, steps["lr"].tolist(), revision=run_id)))
    if "images_per_s" in epochs and epochs["images_per_s"].notna().any():
        speed = epochs.dropna(subset=["images_per_s"])
        found.append(Chart("throughput", charts.epoch_figure(speed["epoch"].tolist(), speed["images_per_s"].tolist(),
                                                             title="Throughput", y_title=f"{unit}/s",
                                                             revision=run_id)))
    if "knn_acc" in epochs and epochs["knn_acc"].notna().any():
        knn = epochs.dropna(subset=["knn_acc"])
        found.append(Chart("knn", charts.epoch_figure(knn["epoch"].tolist(), knn["knn_acc"].tolist(),
                                                      title="Online k-NN accuracy", subtitle=knn_sample_note(knn, unit),
                                                      y_title="test accuracy", revision=run_id, percent=True)))
    return (found + pretext_charts(run_id, steps, epochs, unit) + collapse_charts(run_id, epochs)
            + system_charts(run_id, epochs))


@st.cache_data(max_entries=32, show_spinner=False)
def _chart_args(run_path: str, mtime_ns: int, size: int, loss_view: LossView) -> list[dict[str, object]]:
    # Keyed by the metrics file's stamp: a poll that finds no new line re-sends the cached JSON.
    run = Run(Path(run_path))
    return chart_args(live_figures(run.id, run_metrics(run), sample_unit(run.status()), loss_view))


def _loss_controls(losses: pd.Series) -> LossView:
    """Smoothing and scale of the loss chart, chosen above it (kept for every run this session shows).
    A log scale is offered only for a loss that stays above 0 (SimSiam's, a negative cosine similarity, does not)."""
    smoothing_cell, scale_cell = st.columns([5, 3], vertical_alignment="bottom")
    choice = smoothing_cell.segmented_control(
        "Loss smoothing", list(charts.SMOOTHING_CHOICES), default="auto", required=True, key="live.loss.smoothing",
        help=charts.SMOOTHING_HELP)
    positive = bool((losses.dropna() > 0).all())
    log_y = scale_cell.toggle("Log scale", key="live.loss.log", disabled=not positive,
                              help="A log y axis shows the late, slow part of a falling loss." if positive else
                              "This loss reaches 0 or below, which a log axis cannot show.")
    return LossView(charts.SMOOTHING_CHOICES[choice or "auto"], bool(log_y) and positive)


def _charts(run: Run, metrics: RunMetrics) -> None:
    if metrics.steps.empty:
        st.info("The loss curve appears with the first training steps.")
        loss_view = LossView()
    else:
        loss_view = _loss_controls(metrics.steps["loss"])
    stamp = metrics_stamp(run)
    # Mounted at once, with no charts yet: its frame loads plotly.js while the worker starts, so the first
    # point is drawn the moment it is read.
    live_charts([] if stamp is None else _chart_args(str(run.path), *stamp, loss_view), key=f"charts-{run.id}")
