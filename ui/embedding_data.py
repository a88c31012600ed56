"""What the Embeddings page shows of a run, read through the engine's caches in the run folder.

Features, 2-D maps, thumbnails, quality figures and class names are files under ``<run>/embeddings/``:
sslcore computes each once, for every session, keyed by the checkpoint's version so a resumed run is
never shown stale. t-SNE is only *started* here: it runs in a background process
(``sslcore.evaluation.projection_cache``) and :func:`tsne_watch` polls it. So is the first read of a big split
(:func:`first_read_jobs`): its features, PCA maps, quality figures and thumbnails take seconds.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import streamlit as st

from sslcore.data import DatasetUnavailableError
from sslcore.evaluation.embedding_quality import run_quality
from sslcore.evaluation.embeddings import PIXELS, Source, Split, run_class_names, run_data, run_features, run_points
from sslcore.evaluation.projection_cache import (
    ProjectionCache,
    Status,
    projection_error,
    projection_status,
    start_background_projection,
)
from sslcore.evaluation.thumbnails import run_row_texts, run_thumbnails
from sslcore.runs import Run
from sslcore.userdata import usage
from ui.polling import polling_fragment

#: Points per map: a stratified sample beyond this (all of mnist5k's 1,000 test and 4,000 train images).
MAX_POINTS = 5000
#: Thumbnails at their own size (8x8 digits: ~100 bytes each); the browser enlarges them with square pixels.
THUMB_SCALE = 1
METHOD_NAMES = {"tsne": "t-SNE", "pca": "PCA"}
#: A split shown with this many points (a sample of a big dataset's) is read the first time in a background job,
#: not in the page: on 60,000 MNIST images the encoder features, quality figures and thumbnails of the
#: 5,000-image sample took 7-9 s of one page run (benchmarks/bench_big_datasets.py).
BACKGROUND_FROM = MAX_POINTS


def source_label(source: Source, table: bool = False) -> str:
    if source == PIXELS:
        return "raw columns" if table else "raw pixels"
    return f"epoch {source}"


class Points(NamedTuple):
    """The shown points of one split, in map order (a point's position is its row)."""

    features: np.ndarray  # float32 (N, D): the encoder's features at the chosen epoch
    pixels: np.ndarray  # float32 (N, C*H*W) in [0, 1], or a table's standardised columns (N, F)
    labels: np.ndarray  # int64 (N,)
    ids: np.ndarray  # int64 (N,): each image's (or row's) index in the split
    images: np.ndarray  # uint8 (N, C, H, W), or a table's rows float32 (N, F)

    @property
    def table(self) -> bool:
        return self.images.ndim == 2


def load_points(run: Run, epoch: int, split: Split) -> Points:
    """Features of ``epoch`` (extracted once, then read from the run folder) and raw pixels of the same points."""
    features, labels, ids = run_features(run, epoch, split, MAX_POINTS)
    pixels, _, _ = run_features(run, PIXELS, split, MAX_POINTS)
    images, _, _ = run_points(run, split, MAX_POINTS)
    return Points(features, pixels, labels, ids, images)


def thumbnails(run: Run, split: Split) -> list[str]:
    """One PNG data URI per shown point (made once per run and split, then read from the run folder)."""
    return run_thumbnails(run, split, MAX_POINTS, THUMB_SCALE)


def file_names(run: Run, split: Split, ids: np.ndarray) -> list[str] | None:
    """The file name of each shown image, for datasets the user added (None otherwise, or if unavailable)."""
    try:
        return usage.file_names(run.config().data, split, ids.tolist())
    except (DatasetUnavailableError, OSError, ValueError, IndexError):
        return None


def row_texts(run: Run, split: Split) -> list[str]:
    """A table run's shown rows, each as lines "column  value", for the hover tooltip."""
    return run_row_texts(run, split, MAX_POINTS)


def column_names(run: Run) -> tuple[str, ...]:
    """A table run's column names."""
    return run_data(run).as_tables()[0].columns.names


def class_names(run: Run) -> tuple[str, ...]:
    """The run's class names; empty when its dataset cannot be loaded here (labels are then shown as numbers)."""
    try:
        return run_class_names(run)
    except (DatasetUnavailableError, OSError, ValueError):
        return ()


def quality(run: Run, source: Source, split: Split) -> dict[str, float]:
    """Leave-one-out k-NN accuracy and silhouette of ``source``'s features on the shown points (cached on disk)."""
    return run_quality(run, source, split, MAX_POINTS)


@dataclass(frozen=True)
class MapView:
    """The map a panel shows: t-SNE once it is ready, PCA (computed at once) until then or when asked for."""

    coords: np.ndarray  # float32 (N, 2)
    method: str  # "pca" or "tsne": what ``coords`` are
    tsne: Status | None  # the background t-SNE's status when t-SNE was asked for, else None
    error: str | None = None  # why the t-SNE failed

    @property
    def waiting(self) -> bool:
        """t-SNE was asked for and is not shown yet (computing or failed)."""
        return self.tsne is not None and self.method != "tsne"


def map_view(run: Run, source: Source, split: Split, method: str) -> MapView:
    """The map of ``source`` for ``method`` ("tsne" or "pca"); starts the t-SNE job if it is not computed yet.

    Never computes a t-SNE here: a script run must stay fast, and a rerun would kill the work.
    """
    cache = ProjectionCache(run, MAX_POINTS)
    status: Status | None = None
    if method == "tsne":
        status = projection_status(run, source, split, "tsne", None, MAX_POINTS)
        if status == "missing":
            start_background_projection(run, source, split, "tsne", None, MAX_POINTS)
            status = projection_status(run, source, split, "tsne", None, MAX_POINTS)
        coords = cache.get(source, split, "tsne") if status == "ready" else None
        if coords is not None:
            return MapView(coords, "tsne", status)
    error = projection_error(run, source, split, "tsne", None, MAX_POINTS) if status == "failed" else None
    return MapView(cache.get_or_compute(source, split, "pca"), "pca", status, error)


def first_read_jobs(run: Run, epoch: int, split: Split) -> list[Source]:
    """The sources (``epoch``, pixels) of a big split whose first read runs in the background now: the page
    waits for them (:func:`first_read_watch`). Starts them when nothing is cached yet; empty when the page can
    draw: a small split (read in the page, well under a second), everything cached, or a job that failed
    (then the page reads in place and shows any error itself).
    """
    if len(run_points(run, split, MAX_POINTS)[2]) < BACKGROUND_FROM:
        return []
    waiting: list[Source] = []
    for source in (epoch, PIXELS):
        status = projection_status(run, source, split, "pca", None, MAX_POINTS)
        if status == "missing":
            start_background_projection(run, source, split, "pca", None, MAX_POINTS, warm=True,
                                        thumb_scale=THUMB_SCALE)
            status = projection_status(run, source, split, "pca", None, MAX_POINTS)
        if status == "running":
            waiting.append(source)
    return waiting


def first_read_watch(run: Run, epoch: int, split: Split) -> None:
    """Polls the first-read jobs of ``epoch`` and the pixels on ``split`` (a fragment); reruns the page when
    none is running any more."""
    polling_fragment(_first_read_poll, str(run.path), epoch, split, active=True)


def _first_read_poll(run_path: str, epoch: int, split: Split) -> None:
    run = Run(Path(run_path))
    if all(projection_status(run, s, split, "pca", None, MAX_POINTS) != "running" for s in (epoch, PIXELS)):
        st.rerun()


def retry_tsne(run: Run, source: Source, split: Split) -> None:
    """Start the failed t-SNE of ``source`` again."""
    start_background_projection(run, source, split, "tsne", None, MAX_POINTS, retry_failed=True)


def tsne_statuses(run: Run, sources: Sequence[Source], split: Split) -> list[Status]:
    return [projection_status(run, s, split, "tsne", None, MAX_POINTS) for s in sources]


def job_ended(seen: Sequence[Status | None], now: Sequence[Status]) -> bool:
    """Whether a t-SNE job that was running when the page was drawn (``seen``; None: not asked for) has since
    ended (``now``)."""
    return any(before == "running" and after != "running" for before, after in zip(seen, now, strict=True))


def tsne_watch(run: Run, sources: Sequence[Source], split: Split, seen: list[Status | None]) -> None:
    """A note while t-SNE maps compute; when one finishes (or fails) the whole page reruns to swap it in.

    An ``st.fragment`` polling every POLL_SECONDS while a job runs, and only then: each poll costs a few
    ``stat`` calls, and the maps themselves are redrawn once, by the full rerun, not at every poll.
    """
    polling = "running" in seen
    polling_fragment(_watch, str(run.path), list(sources), split, seen, active=polling)


def _watch(run_path: str, sources: list[Source], split: Split, seen: list[Status | None]) -> None:
    run = Run(Path(run_path))
    now = tsne_statuses(run, sources, split)
    if job_ended(seen, now):
        st.rerun()  # redraw the maps with the job's result (or its error)
    computing = [source_label(s) for s, status in zip(sources, now, strict=True) if status == "running"]
    if computing:
        st.caption(f":material/hourglass_top: t-SNE computing in the background for {' and '.join(computing)}; "
                   "the PCA map is shown meanwhile and is swapped for the t-SNE map when it is ready.")
