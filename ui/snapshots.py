"""The trainer's per-epoch snapshots (``<run>/snapshots/epoch_0003.npz``), read and arranged for display.

Each file holds what the pretext task showed of a fixed set of test images at one epoch (epoch 0 =
untrained): ``kind`` ('reconstruction' | 'rotation' | 'views'), ``epoch``, ``labels``, ``indices`` and
the task's arrays (see ``PretextTask.snapshot``). Reads are cached by the file's modification time and
size, so a page that polls a training run re-reads only the files that changed: a poll costs a listing.
Everything but the cached read is a pure function of numpy arrays.
"""
from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import streamlit as st
from PIL import Image

from ui.images import image_grid

#: Per-family arrays a snapshot must hold (besides kind/epoch/labels/indices).
REQUIRED = {
    "reconstruction": ("original", "input", "reconstruction", "error"),
    "rotation": ("original", "rotated", "true_angle", "predicted_angle", "confidence"),
    "views": ("original", "view1", "view2", "pair_similarity"),
}
_FILE_NAME = re.compile(r"epoch_(\d+)\.npz")


class SnapshotError(ValueError):
    """A snapshot file that cannot be shown (damaged, or written by an unknown task family)."""


class SnapshotFile(NamedTuple):
    """One snapshot file and the cache key of its contents."""

    epoch: int
    path: Path
    mtime_ns: int
    size: int


@dataclass(frozen=True)
class Snapshot:
    """One epoch's snapshot: ``labels`` and ``indices`` (N,); ``arrays`` maps names to (N, ...) arrays.

    Image arrays are uint8 (N, C, H, W); per-image values (error, confidence, ...) are (N,).
    """

    kind: str
    epoch: int
    labels: np.ndarray
    indices: np.ndarray
    arrays: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.labels)


def snapshot_files(snapshot_dir: Path) -> list[SnapshotFile]:
    """The snapshot files in ``snapshot_dir``, by epoch; other names (temporary files) are skipped."""
    found = []
    try:
        entries = list(snapshot_dir.iterdir())
    except FileNotFoundError:
        return []
    for path in entries:
        match = _FILE_NAME.fullmatch(path.name)
        if not match:
            continue
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed between the listing and the stat (the run was deleted)
            continue
        found.append(SnapshotFile(int(match.group(1)), path, stat.st_mtime_ns, stat.st_size))
    return sorted(found)


def read_snapshot(path: Path) -> Snapshot:
    """Parse one snapshot file; SnapshotError naming the file and the problem if it cannot be shown."""
    try:
        with np.load(path, allow_pickle=False) as data:  # no pickles: a run folder may come from an import
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise SnapshotError(f"{path.name} could not be read ({error})") from error
    missing = [k for k in ("kind", "epoch", "labels", "indices") if k not in arrays]
    if missing:
        raise SnapshotError(f"{path.name} is missing {', '.join(missing)}")
    kind = str(arrays.pop("kind"))
    if kind not in REQUIRED:
        raise SnapshotError(f"{path.name} has snapshot kind {kind!r}; this page shows {', '.join(REQUIRED)}")
    missing = [k for k in REQUIRED[kind] if k not in arrays]
    if missing:
        raise SnapshotError(f"{path.name} ({kind}) is missing {', '.join(missing)}")
    labels = arrays.pop("labels").astype(np.int64)
    bad = [k for k in REQUIRED[kind] if len(arrays[k]) != len(labels)]
    if bad:
        raise SnapshotError(f"{path.name}: {', '.join(bad)} do not have one entry per image ({len(labels)})")
    return Snapshot(kind, int(arrays.pop("epoch")), labels, arrays.pop("indices"), arrays)


@st.cache_data(max_entries=512, show_spinner=False)
def _cached_snapshot(path: str, mtime_ns: int, size: int) -> Snapshot:
    # mtime_ns and size are only the cache key: the trainer replaces a file atomically when it rewrites it.
    return read_snapshot(Path(path))


def load_snapshot(file: SnapshotFile) -> Snapshot:
    """``file`` parsed, from the cache unless it changed since the last read."""
    return _cached_snapshot(str(file.path), file.mtime_ns, file.size)


def summary_value(snapshot: Snapshot) -> float:
    """One number per epoch: mean reconstruction error, rotation accuracy or mean pair similarity."""
    a = snapshot.arrays
    if snapshot.kind == "reconstruction":
        return float(np.mean(a["error"]))
    if snapshot.kind == "rotation":
        return float(np.mean(a["predicted_angle"] == a["true_angle"]))
    return float(np.mean(a["pair_similarity"]))


def worst_first(snapshot: Snapshot) -> np.ndarray:
    """Image order (N,) from worst to best: highest error; confidently wrong rotations; least similar views."""
    a = snapshot.arrays
    if snapshot.kind == "reconstruction":
        badness = a["error"].astype(np.float64)
    elif snapshot.kind == "rotation":
        wrong = a["predicted_angle"] != a["true_angle"]
        confidence = a["confidence"].astype(np.float64)
        # wrong ones first (surest first), then right ones from least to most sure
        badness = np.where(wrong, 1.0 + confidence, 1.0 - confidence)
    else:
        badness = -a["pair_similarity"].astype(np.float64)
    return np.argsort(-badness, kind="stable")


def class_name(names: tuple[str, ...] | None, label: int) -> str:
    """The class name of ``label``, or 'class 3' when the names are unknown."""
    return names[label] if names is not None and 0 <= label < len(names) else f"class {label}"


def image_caption(snapshot: Snapshot, i: int, names: tuple[str, ...] | None) -> str:
    """The line under image ``i``: its class and what the model made of it at this epoch."""
    a, label = snapshot.arrays, class_name(names, int(snapshot.labels[i]))
    if snapshot.kind == "reconstruction":
        return f"{label} · error {float(a['error'][i]):.4f}"
    if snapshot.kind == "rotation":
        predicted, true = int(a["predicted_angle"][i]), int(a["true_angle"][i])
        mark = "✓" if predicted == true else "✗"
        return f"{label} · pred {predicted}° ({float(a['confidence'][i]):.0%}) {mark} · true {true}°"
    return f"{label} · similarity {float(a['pair_similarity'][i]):.2f}"


def panels(snapshot: Snapshot, input_title: str = "input") -> list[tuple[str, str]]:
    """(array name, title) of the pictures side by side for each image, left to right.

    The plain autoencoder's input is the original itself, so that panel is left out there.
    """
    if snapshot.kind == "reconstruction":
        same = np.array_equal(snapshot.arrays["input"], snapshot.arrays["original"])
        middle = [] if same else [("input", input_title)]
        return [("original", "original"), *middle, ("reconstruction", "reconstruction")]
    if snapshot.kind == "rotation":
        return [("original", "original"), ("rotated", "rotated input")]
    return [("original", "original"), ("view1", "view 1"), ("view2", "view 2")]


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
