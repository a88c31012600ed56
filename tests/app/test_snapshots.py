"""The snapshot helpers behind the Reconstructions & views page: cached reads, captions, image strips.

The file format is tested in tests/engine/test_snapshot_files.py, the tasks' panels in
tests/engine/test_task_panels.py."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from sslcore.engine.snapshots import Snapshot, read_snapshot, snapshot_files, write_snapshot
from ui.images import upscale_factor
from ui.snapshots import STRIP_GAP, STRIP_MARGIN, image_caption, image_strips, load_snapshot, strip_pngs


def images(n: int, value: int = 0) -> np.ndarray:
    """(n, 1, 8, 8) uint8 images, image i filled with value + i."""
    return (np.arange(n, dtype=np.uint8)[:, None, None, None] + value) * np.ones((1, 1, 8, 8), np.uint8)


def write(path: Path, epoch: int = 0, n: int = 3, **arrays: np.ndarray) -> Path:
    """A masked autoencoder's snapshot file, written by the trainer's writer."""
    base = {"original": images(n), "input": images(n, 50), "reconstruction": images(n, 100),
            "error": np.linspace(0.1, 0.3, n, dtype=np.float32)}
    write_snapshot(path, "masked_autoencoder", epoch, np.arange(n) % 10, np.arange(n) * 7, {**base, **arrays})
    return path


def reconstruction(errors: list[float], same_input: bool = False) -> Snapshot:
    n = len(errors)
    return Snapshot("masked_autoencoder", 1, np.arange(n), np.arange(n),
                    {"original": images(n), "input": images(n) if same_input else images(n, 50),
                     "reconstruction": images(n, 100), "error": np.array(errors, np.float32)})


def test_captions_start_with_the_class_name(tmp_path: Path) -> None:
    snap = read_snapshot(write(tmp_path / "epoch_0001.npz", n=2, error=np.array([0.01234, 0.5], np.float32)))
    assert image_caption(snap, 0, tuple("zero one two".split())) == "zero · error 0.0123"
    assert image_caption(snap, 1, None) == "class 1 · error 0.5000"


def test_a_rewritten_snapshot_is_read_again(tmp_path: Path) -> None:
    write(tmp_path / "epoch_0001.npz", epoch=1)
    [file] = snapshot_files(tmp_path)
    assert len(load_snapshot(file)) == 3
    write(tmp_path / "epoch_0001.npz", epoch=1, n=4)  # the trainer rewrote it: a new mtime and size
    [changed] = snapshot_files(tmp_path)
    assert len(load_snapshot(changed)) == 4


def test_strips_put_each_images_panels_side_by_side_crisply_upscaled() -> None:
    snap = reconstruction([0.1, 0.2, 0.3])
    strips = image_strips(snap, ["original", "input", "reconstruction"], np.array([2, 0]), min_tile_pixels=96)
    side, gap, margin = 8 * upscale_factor(8, 8, 96), STRIP_GAP, STRIP_MARGIN
    assert len(strips) == 2 and strips[0].shape == (side, 2 * margin + 3 * side + 2 * gap, 2)  # grey + alpha
    grey, alpha = strips[0][..., 0], strips[0][..., 1]
    tiles = [slice(margin + k * (side + gap), margin + k * (side + gap) + side) for k in range(3)]
    # image 2 in the requested order: original value 2, input 52, reconstruction 102, every pixel kept
    assert [np.unique(grey[:, t]).tolist() for t in tiles] == [[2], [52], [102]]
    assert all((alpha[:, t] == 255).all() for t in tiles)
    assert (alpha == 255).sum() == 3 * side * side  # gaps and margins are see-through


def test_colour_strips_get_an_alpha_channel() -> None:
    snap = reconstruction([0.1])
    snap.arrays.update({k: np.repeat(v, 3, axis=1) for k, v in snap.arrays.items() if v.ndim == 4})
    [strip] = image_strips(snap, ["original", "reconstruction"], np.array([0]), min_tile_pixels=8)
    assert strip.shape == (8, 2 * STRIP_MARGIN + 2 * 8 + STRIP_GAP, 4)


def test_strips_are_sent_as_lossless_png(tmp_path: Path) -> None:
    write(tmp_path / "epoch_0003.npz", epoch=3)
    [file] = snapshot_files(tmp_path)
    names, order = ["original", "reconstruction"], np.array([1, 0, 2])
    pngs = strip_pngs(file, names, order, min_tile_pixels=56)
    expected = image_strips(read_snapshot(file.path), names, order, min_tile_pixels=56)
    decoded = [np.asarray(Image.open(io.BytesIO(png))) for png in pngs]
    assert all(png.startswith(b"\x89PNG") for png in pngs)
    assert all(np.array_equal(d, e) for d, e in zip(decoded, expected, strict=True))  # pixel-exact: no JPEG smear
