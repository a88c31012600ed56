"""The snapshot viewer: one run's test images as the model saw them, epoch by epoch, live while it trains.

A fragment that reruns on a timer only while it has a reason to: every PLAY_SECONDS while playing
(each tick steps the epoch), every POLL_SECONDS while the run is queued or running (new snapshot files
appear without a reload), never otherwise. A tick that finds nothing new costs a folder listing: files
are parsed once per (mtime, size). The epoch shown lives in session state, one key per run.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

import numpy as np
import streamlit as st

from sslcore.config import ConfigError
from sslcore.data import DatasetUnavailableError
from sslcore.engine.snapshots import Snapshot, SnapshotError, SnapshotFile, snapshot_files
from sslcore.registry import UnknownNameError
from sslcore.runs import ACTIVE_STATES, Run
from ui import charts
from ui.datasets import load_config_split
from ui.plain_text import escape_markdown
from ui.polling import polling_fragment
from ui.snapshots import image_caption, load_snapshot, strip_pngs
from ui.table_snapshots import draw_table_snapshot

PLAY_SECONDS = 0.8
#: Side of one upscaled image, in pixels, per size choice (8x8 digits become 96x96 at "medium").
TILE_PIXELS = {"small": 56, "medium": 96, "large": 144}


def _key(run_id: str, name: str) -> str:
    return f"views.{run_id}.{name}"


def snapshot_panel(run: Run) -> None:
    """Draw the run's snapshots with an epoch slider and a Play button; keep them current while it trains."""
    playing = st.session_state.get(_key(run.id, "playing"), False)
    active = run.state in ACTIVE_STATES
    polling_fragment(_viewer, str(run.path), active, active=playing or active, every=PLAY_SECONDS if playing else None)


@st.cache_data(show_spinner=False, max_entries=16)
def class_names(run_path: str) -> tuple[str, ...] | None:
    """The run's dataset class names, or None when they cannot be had (its files are gone, an old config)."""
    try:
        d = Run(Path(run_path)).config().data
        return load_config_split(d).class_names
    except (ConfigError, UnknownNameError, DatasetUnavailableError, OSError):
        return None  # the images still show, labelled 'class 3'


def _viewer(run_path: str, polling: bool) -> None:
    run = Run(Path(run_path))
    active = run.state in ACTIVE_STATES
    if polling and not active:
        st.rerun()  # the run just ended: one full rerun registers this fragment again without a timer
    files = snapshot_files(run.snapshot_dir)
    if not files:
        _no_snapshots(run, active)
        return
    epochs = [f.epoch for f in files]
    epoch = _current_epoch(run.id, epochs)
    _epoch_controls(run.id, epochs, active)
    file = files[epochs.index(epoch)]
    try:
        snapshot, first = load_snapshot(file), load_snapshot(files[0])
    except SnapshotError as error:
        st.error(f"This snapshot cannot be shown: {escape_markdown(error)}")  # its text may come from an imported file
        return
    _summary_tiles(snapshot, first, len(epochs))
    _image_grid(run, file, snapshot)
    _summary_chart(run.id, files, epoch, snapshot)


def _no_snapshots(run: Run, active: bool) -> None:
    if active:
        st.info("No snapshots yet. The trainer saves the first one (epoch 0: the untrained model) as soon as "
                "training starts, then one after every epoch; they appear here by themselves.",
                icon=":material/hourglass_top:")
    elif run.status().get("state") == "completed":
        st.info("This run saved no snapshots (it was trained with `train.snapshot_images = 0`).")
    else:
        st.info(f"This run has no snapshots: it ended ({run.state}) before its first one was saved.")


def _current_epoch(run_id: str, epochs: list[int]) -> int:
    """The epoch to show, put into the slider's state before the slider is drawn.

    Defaults to the latest, and follows new snapshots while the latest is shown (a live run). While
    playing, steps one epoch per PLAY_SECONDS; at the last epoch playback stops.
    """
    state, key = st.session_state, _key(run_id, "epoch")
    current = state.get(key)
    playing = state.get(_key(run_id, "playing"), False)
    if current not in epochs or (current == state.get(_key(run_id, "last_seen")) and not playing):
        current = epochs[-1]
    stop = False
    now = time.monotonic()
    # 0.9: a timer tick that comes a little early still counts; other reruns in between do not step
    if playing and now - state.get(_key(run_id, "stepped_at"), 0.0) >= 0.9 * PLAY_SECONDS:
        current = next((e for e in epochs if e > current), epochs[-1])
        state[_key(run_id, "stepped_at")] = now
        stop = current == epochs[-1]
    state[key], state[_key(run_id, "last_seen")] = current, epochs[-1]
    if stop:
        state[_key(run_id, "playing")] = False
        st.rerun()  # a full rerun drops the playback timer; it draws the last epoch
    return current


def _toggle_play(run_id: str, epochs: list[int]) -> None:
    state = st.session_state
    playing = not state.get(_key(run_id, "playing"), False)
    state[_key(run_id, "playing")] = playing
    if playing:
        if state.get(_key(run_id, "epoch")) == epochs[-1]:
            state[_key(run_id, "epoch")] = epochs[0]  # from the start, like a video that had ended
        state[_key(run_id, "stepped_at")] = time.monotonic()
    st.rerun()  # full rerun: the fragment's timer is chosen there


def _pause(run_id: str) -> None:
    # A person moving the slider takes over from playback; a full rerun then drops the playback timer.
    if st.session_state.get(_key(run_id, "playing"), False):
        st.session_state[_key(run_id, "playing")] = False
        st.rerun()


def _epoch_label(epoch: int) -> str:
    return f"{epoch} (untrained)" if epoch == 0 else str(epoch)


def _epoch_controls(run_id: str, epochs: list[int], active: bool) -> None:
    playing = st.session_state.get(_key(run_id, "playing"), False)
    button, slider = st.columns([1, 7], vertical_alignment="bottom")
    button.button("Pause" if playing else "Play", key=_key(run_id, "play"), on_click=_toggle_play,
                  args=(run_id, epochs), icon=":material/pause:" if playing else ":material/play_arrow:",
                  disabled=len(epochs) < 2, help="Step through the epochs, one every "
                  f"{PLAY_SECONDS:g} s, from epoch {epochs[0]} if the last one is shown")
    with slider:
        if len(epochs) > 1:
            st.select_slider("Epoch", options=epochs, key=_key(run_id, "epoch"), format_func=_epoch_label,
                             on_change=_pause, args=(run_id,))
        else:
            st.markdown(f"**Epoch {_epoch_label(epochs[0])}**: the only snapshot so far")
    if active:
        st.caption("The run is training: new epochs appear on the slider as they finish; the latest one is "
                   "shown while you stay on it.")


def _summary_tiles(snapshot: Snapshot, first: Snapshot, n_epochs: int) -> None:
    panels = snapshot.panels
    summary = panels.summary
    value, start = panels.summary_value(snapshot.arrays), first.panels.summary_value(first.arrays)
    delta = None
    if snapshot.epoch != first.epoch:
        change = value - start
        delta = (f"{change * 100:+.0f} pts" if summary.percent else f"{change:+.4f}") + f" vs epoch {first.epoch}"
    unit = "rows" if panels.rows else "images"
    cells = st.columns(3)
    # The colour says better or worse for THIS number (a falling error is green, a falling accuracy red), and
    # nothing for a number a healthy run may move either way (the view similarity of two-view methods).
    color: Literal["off", "normal", "inverse"] = (
        "off" if not summary.judged else "normal" if panels.higher_is_better() else "inverse")
    cells[0].metric(f"{summary.label} · epoch {snapshot.epoch}", summary.fmt.format(value), delta=delta,
                    delta_color=color,
                    help=f"over the {len(snapshot)} test {unit} shown below")
    cells[1].metric(f"Test {unit} shown", len(snapshot), help=f"fixed test {unit}, cycling through the classes "
                    "(train.snapshot_images); the same ones at every epoch")
    cells[2].metric("Snapshots", n_epochs, help="epoch 0 (untrained) and one after every epoch")


def _image_grid(run: Run, file: SnapshotFile, snapshot: Snapshot) -> None:
    names = class_names(str(run.path))
    panels = snapshot.panels
    shown = panels.columns(snapshot.arrays)
    options, worst = st.columns([3, 2], vertical_alignment="center")
    size = None
    if shown:  # pictures to size (a table's heat maps have their own size)
        size = options.segmented_control("Image size", list(TILE_PIXELS), default="medium", required=True,
                                         key="views.size", label_visibility="collapsed")
    with worst:
        worst_on = st.toggle(panels.worst_label, key=f"views.worst.{snapshot.task or snapshot.kind}")
    order = panels.worst_order(snapshot.arrays) if worst_on else np.arange(len(snapshot))
    captions = [image_caption(snapshot, int(i), names) for i in order]
    if shown:
        st.caption("Each picture: " + " | ".join(column.title for column in shown) + ".")
    if worst_on:
        unit = "rows" if panels.rows else "images"
        st.caption(f"Sorted worst first, at epoch {snapshot.epoch}, among the {len(snapshot)} test {unit} the "
                   "trainer snapshots (set `train.snapshot_images`, up to 64, to watch more); the rest of the "
                   "test set is not searched here.")
    if not shown and panels.rows:  # a table task: heat maps of its rows
        draw_table_snapshot(run, snapshot, order, names)
        return
    if not shown:  # a task without pictures: its per-image lines alone
        st.dataframe({"test item": captions}, hide_index=True)
        return
    strips = strip_pngs(file, [column.array for column in shown], order, TILE_PIXELS[size or "medium"])
    st.image(strips, caption=captions, output_format="PNG")


def _summary_chart(run_id: str, files: list[SnapshotFile], epoch: int, shown: Snapshot) -> None:
    """The epoch summary over all snapshots, with the shown epoch marked."""
    points, unreadable = {}, []
    for f in files:
        try:
            snapshot = load_snapshot(f)
            points[f.epoch] = snapshot.panels.summary_value(snapshot.arrays)
        except SnapshotError:
            unreadable.append(str(f.epoch))
    if len(points) < 2:
        return
    summary = shown.panels.summary
    figure = charts.epoch_figure(list(points), list(points.values()), title=f"{summary.label} per epoch",
                                 y_title=summary.axis, revision=run_id, percent=summary.percent)
    figure["layout"]["shapes"] = [{"type": "line", "x0": epoch, "x1": epoch, "yref": "paper", "y0": 0, "y1": 1,
                                   "line": {"color": charts.ACCENT_COLOR, "width": 2, "dash": "dot"}}]
    st.plotly_chart(figure, config={"displaylogo": False}, key=f"views.chart.{run_id}")
    if unreadable:
        st.caption(f"Left out of the chart: the snapshot of epoch {', '.join(unreadable)}, which cannot be read.")
