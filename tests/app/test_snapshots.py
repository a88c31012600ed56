"""The snapshot helpers behind the Reconstructions & views page: reading files, ordering, captions, strips."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ui.images import upscale_factor
from ui.snapshots import (STRIP_GAP, STRIP_MARGIN, Snapshot, SnapshotError, image_caption, image_strips, panels,
                          read_snapshot, snapshot_files, strip_pngs, summary_value, worst_first)


def images(n: int, value: int = 0) -> np.ndarray:
    """(n, 1, 8, 8) uint8 images, image i filled with value + i."""
    return (np.arange(n, dtype=np.uint8)[:, None, None, None] + value) * np.ones((1, 1, 8, 8), np.uint8)


def write(path: Path, kind: str = "reconstruction", epoch: int = 0, n: int = 3, **arrays: np.ndarray) -> Path:
    """A snapshot file laid out as the trainer's Snapshotter writes it."""
    base = {"reconstruction": {"original": images(n), "input": images(n, 50), "reconstruction": images(n, 100),
                               "error": np.linspace(0.1, 0.3, n, dtype=np.float32)}}.get(kind, {})
    np.savez_compressed(path, kind=np.array(kind), epoch=np.array(epoch), labels=np.arange(n) % 10,
                        indices=np.arange(n) * 7, **{**base, **arrays})
    return path


def reconstruction(errors: list[float], same_input: bool = False) -> Snapshot:
    n = len(errors)
    return Snapshot("reconstruction", 1, np.arange(n), np.arange(n),
                    {"original": images(n), "input": images(n) if same_input else images(n, 50),
                     "reconstruction": images(n, 100), "error": np.array(errors, np.float32)})


def rotation(predicted: list[int], true: list[int], confidence: list[float]) -> Snapshot:
    n = len(true)
    return Snapshot("rotation", 1, np.arange(n), np.arange(n),
                    {"original": images(n), "rotated": images(n), "predicted_angle": np.array(predicted),
                     "true_angle": np.array(true), "confidence": np.array(confidence, np.float32)})


def test_files_are_listed_by_epoch_number_and_temporary_files_are_skipped(tmp_path: Path) -> None:
    for epoch in (10, 2, 0):
        write(tmp_path / f"epoch_{epoch:04d}.npz", epoch=epoch)
    (tmp_path / ".epoch_0011.tmp.npz").write_bytes(b"half written")
    (tmp_path / "notes.txt").write_text("not a snapshot")
    assert [f.epoch for f in snapshot_files(tmp_path)] == [0, 2, 10]
    assert snapshot_files(tmp_path / "missing") == []


def test_a_snapshot_file_is_read_back_with_its_arrays(tmp_path: Path) -> None:
    snap = read_snapshot(write(tmp_path / "epoch_0004.npz", epoch=4, n=5))
    assert (snap.kind, snap.epoch, len(snap)) == ("reconstruction", 4, 5)
    assert snap.arrays["original"].shape == (5, 1, 8, 8) and snap.arrays["error"].shape == (5,)
    assert list(snap.indices) == [0, 7, 14, 21, 28]


@pytest.mark.parametrize("content, message", [
    (b"not a zip file", "could not be read"),
    (None, "is missing error"),
])
def test_a_damaged_file_gets_an_error_naming_it(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "epoch_0001.npz"
    if content is None:
        np.savez(path, kind=np.array("reconstruction"), epoch=np.array(1), labels=np.arange(2), indices=np.arange(2),
                 original=images(2), input=images(2), reconstruction=images(2))
    else:
        path.write_bytes(content)
    with pytest.raises(SnapshotError, match=message) as raised:
        read_snapshot(path)
    assert "epoch_0001.npz" in str(raised.value)


def test_an_unknown_kind_or_a_ragged_array_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="kind 'jigsaw'"):
        read_snapshot(write(tmp_path / "epoch_0000.npz", kind="jigsaw"))
    with pytest.raises(SnapshotError, match="error do not have one entry per image"):
        read_snapshot(write(tmp_path / "epoch_0001.npz", error=np.zeros(7, np.float32)))


def test_pickled_arrays_are_never_loaded(tmp_path: Path) -> None:
    path = tmp_path / "epoch_0000.npz"
    np.savez(path, kind=np.array("reconstruction"), epoch=np.array(0), labels=np.array([object()], dtype=object))
    with pytest.raises(SnapshotError, match="could not be read"):
        read_snapshot(path)


def test_worst_reconstructions_come_first() -> None:
    snap = reconstruction([0.2, 0.5, 0.1, 0.4])
    assert list(worst_first(snap)) == [1, 3, 0, 2]
    assert summary_value(snap) == pytest.approx(0.3)


def test_confidently_wrong_rotations_come_first_then_unsure_right_ones() -> None:
    snap = rotation(predicted=[0, 90, 90, 180], true=[0, 0, 180, 180], confidence=[0.9, 0.6, 0.95, 0.4])
    assert list(worst_first(snap)) == [2, 1, 3, 0]
    assert summary_value(snap) == pytest.approx(0.5)  # two of four right


def test_captions_name_the_class_and_what_the_model_did() -> None:
    names = tuple("zero one two three".split())
    assert image_caption(reconstruction([0.01234, 0.5]), 0, names) == "zero · error 0.0123"
    snap = rotation(predicted=[90, 90], true=[90, 270], confidence=[0.873, 0.5])
    assert image_caption(snap, 0, names) == "zero · pred 90° (87%) ✓ · true 90°"
    assert image_caption(snap, 1, None) == "class 1 · pred 90° (50%) ✗ · true 270°"


def test_the_plain_autoencoder_shows_no_separate_input_panel() -> None:
    assert [t for _, t in panels(reconstruction([0.1], same_input=True))] == ["original", "reconstruction"]
    assert [t for _, t in panels(reconstruction([0.1]), "masked input")] == ["original", "masked input",
                                                                              "reconstruction"]


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
