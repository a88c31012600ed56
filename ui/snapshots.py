"""The trainer's per-epoch snapshots, read through a cache and arranged for display.

The file format (and its reader) is :mod:`sslcore.engine.snapshots`; how a task's snapshot is drawn is
the task's ``panels``. Reads are cached by the file's modification time and size, so a page that polls a
training run re-reads only the files that changed: a poll costs a listing. Everything but the cached
reads is a pure function of numpy arrays.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

from sslcore.engine.snapshots import Snapshot, SnapshotFile, read_snapshot
from ui.images import image_grid
from ui.plain_text import escape_markdown


@st.cache_data(max_entries=512, show_spinner=False)
def _cached_snapshot(path: str, mtime_ns: int, size: int) -> Snapshot:
    # mtime_ns and size are only the cache key: the trainer replaces a file atomically when it rewrites it.
    return read_snapshot(Path(path))


def load_snapshot(file: SnapshotFile) -> Snapshot:
    """``file`` parsed, from the cache unless it changed since the last read."""
    return _cached_snapshot(str(file.path), file.mtime_ns, file.size)


def class_name(names: tuple[str, ...] | None, label: int) -> str:
    """The class name of ``label``, or 'class 3' when the names are unknown."""
    return names[label] if names is not None and 0 <= label < len(names) else f"class {label}"


def image_caption(snapshot: Snapshot, i: int, names: tuple[str, ...] | None) -> str:
    """The line under image ``i``: its class and what the model made of it at this epoch (the task's caption)."""
    # Image captions render Markdown, and class names may come from a person's folder names.
    name = escape_markdown(class_name(names, int(snapshot.labels[i])))
    return f"{name} · {snapshot.panels.caption_of(snapshot.arrays, i)}"


#: Transparent pixels between the pictures of one image, and on each side of a strip (strips sit in a row).
STRIP_GAP = 4
STRIP_MARGIN = 10


def image_strips(snapshot: Snapshot, names: list[str], order: np.ndarray, min_tile_pixels: int) -> list[np.ndarray]:
    """For each image in ``order``: its pictures ``names`` side by side, upscaled crisp.

    Returns (H, W, 2) grey+alpha or (H, W, 4) RGBA uint8 pictures: the gaps between the pictures and
    the margins are transparent, so strips stand apart on a light or a dark page alike.
    """
    strips = []
    for i in order:
        grid = image_grid(np.stack([snapshot.arrays[name][i] for name in names]), columns=len(names),
                          pad=STRIP_GAP, min_tile_pixels=min_tile_pixels)
        colour = grid if grid.ndim == 3 else grid[..., None]
        alpha = np.full(grid.shape[:2], 255, np.uint8)
        tile = (grid.shape[1] - STRIP_GAP * (len(names) - 1)) // len(names)
        for k in range(1, len(names)):
            alpha[:, k * (tile + STRIP_GAP) - STRIP_GAP:k * (tile + STRIP_GAP)] = 0
        picture = np.concatenate([colour, alpha[..., None]], axis=2)
        strips.append(np.pad(picture, ((0, 0), (STRIP_MARGIN, STRIP_MARGIN), (0, 0))))  # zeros: transparent
    return strips


def png_bytes(picture: np.ndarray) -> bytes:
    """(H, W[, C]) uint8 as PNG: lossless, so upscaled pixels stay sharp (JPEG would smear them)."""
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return buffer.getvalue()


@st.cache_data(max_entries=256, show_spinner=False)
def _cached_pngs(path: str, mtime_ns: int, size: int, names: tuple[str, ...], order: tuple[int, ...],
                 min_tile_pixels: int) -> list[bytes]:
    snapshot = _cached_snapshot(path, mtime_ns, size)
    return [png_bytes(p) for p in image_strips(snapshot, list(names), np.array(order, np.int64), min_tile_pixels)]


def strip_pngs(file: SnapshotFile, names: list[str], order: np.ndarray, min_tile_pixels: int) -> list[bytes]:
    """:func:`image_strips` of ``file`` as PNG files, encoded once per file version, order and size.

    A live page redraws every poll; encoding 64 strips costs tens of milliseconds, a cache hit nothing.
    """
    return _cached_pngs(str(file.path), file.mtime_ns, file.size, tuple(names), tuple(int(i) for i in order),
                        min_tile_pixels)
