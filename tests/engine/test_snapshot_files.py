"""The snapshot file format (sslcore.engine.snapshots): written by the trainer, read back for the viewer,
old files (``kind`` instead of ``task``) still readable, damaged or foreign files refused with a clear line."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sslcore.data import load_dataset
from sslcore.engine.snapshots import (
    LEGACY_KINDS,
    SnapshotError,
    panels_for,
    read_snapshot,
    snapshot_files,
    write_snapshot,
)
from sslcore.tasks import TASKS
from sslcore.tasks.build import build_task
from tests.conftest import dataset_for, tiny_config


def images(n: int, value: int = 0) -> np.ndarray:
    """(n, 1, 8, 8) uint8 images, image i filled with value + i."""
    return (np.arange(n, dtype=np.uint8)[:, None, None, None] + value) * np.ones((1, 1, 8, 8), np.uint8)


def reconstruction_arrays(n: int) -> dict[str, np.ndarray]:
    return {"original": images(n), "input": images(n, 50), "reconstruction": images(n, 100),
            "error": np.linspace(0.1, 0.3, n, dtype=np.float32)}


def write(path: Path, task: str = "masked_autoencoder", epoch: int = 0, n: int = 3, **arrays: np.ndarray) -> Path:
    """A snapshot file written by the trainer's writer."""
    write_snapshot(path, task, epoch, np.arange(n) % 10, np.arange(n) * 7, {**reconstruction_arrays(n), **arrays})
    return path


def write_legacy(path: Path, kind: str, n: int = 3, **arrays: np.ndarray) -> Path:
    """A file as the trainer wrote it before tasks declared panels: ``kind`` and no ``task``."""
    np.savez_compressed(path, kind=np.array(kind), epoch=np.array(1), labels=np.arange(n), indices=np.arange(n),
                        **arrays)
    return path


def test_files_are_listed_by_epoch_number_and_temporary_files_are_skipped(tmp_path: Path) -> None:
    for epoch in (10, 2, 0):
        write(tmp_path / f"epoch_{epoch:04d}.npz", epoch=epoch)
    (tmp_path / ".epoch_0011.tmp.npz").write_bytes(b"half written")
    (tmp_path / "notes.txt").write_text("not a snapshot")
    assert [f.epoch for f in snapshot_files(tmp_path)] == [0, 2, 10]
    assert snapshot_files(tmp_path / "missing") == []


def test_a_snapshot_file_is_read_back_with_its_task_and_arrays(tmp_path: Path) -> None:
    snap = read_snapshot(write(tmp_path / "epoch_0004.npz", epoch=4, n=5))
    assert (snap.task, snap.epoch, len(snap)) == ("masked_autoencoder", 4, 5)
    assert snap.arrays["original"].shape == (5, 1, 8, 8) and snap.arrays["error"].shape == (5,)
    assert list(snap.indices) == [0, 7, 14, 21, 28]
    assert snap.panels is TASKS.get("masked_autoencoder").panels  # the task's own panels draw it


@pytest.mark.parametrize("kind, arrays, titles", [
    ("reconstruction", reconstruction_arrays(2), ["original", "input", "reconstruction"]),
    ("rotation", {"original": images(2), "rotated": images(2), "true_angle": np.array([0, 90]),
                  "predicted_angle": np.array([0, 0]), "confidence": np.array([0.5, 0.7], np.float32)},
     ["original", "rotated input"]),
    ("views", {"original": images(2), "view1": images(2), "view2": images(2),
               "pair_similarity": np.array([0.5, 0.7], np.float32)}, ["original", "view 1", "view 2"]),
])
def test_files_written_before_panels_are_drawn_by_their_familys_panels(
        tmp_path: Path, kind: str, arrays: dict[str, np.ndarray], titles: list[str]) -> None:
    snap = read_snapshot(write_legacy(tmp_path / "epoch_0001.npz", kind, n=2, **arrays))
    assert (snap.task, snap.kind) == ("", kind)
    assert snap.panels is TASKS.get(LEGACY_KINDS[kind]).panels
    assert [c.title for c in snap.panels.columns(snap.arrays)] == titles
    assert snap.panels.caption_of(snap.arrays, 1)  # every caption field is there


@pytest.mark.parametrize("content, message", [
    (b"not a zip file", "could not be read"),
    (None, "is missing error"),
])
def test_a_damaged_file_gets_an_error_naming_it(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "epoch_0001.npz"
    if content is None:
        np.savez(path, task=np.array("autoencoder"), epoch=np.array(1), labels=np.arange(2), indices=np.arange(2),
                 original=images(2), input=images(2), reconstruction=images(2))
    else:
        path.write_bytes(content)
    with pytest.raises(SnapshotError, match=message) as raised:
        read_snapshot(path)
    assert "epoch_0001.npz" in str(raised.value)


def test_an_unknown_task_or_kind_or_a_ragged_array_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="written by task 'no_such_task', which this version does not know"):
        read_snapshot(write(tmp_path / "epoch_0000.npz", task="no_such_task"))
    with pytest.raises(SnapshotError, match="snapshot kind 'puzzle'"):
        read_snapshot(write_legacy(tmp_path / "epoch_0002.npz", "puzzle", **reconstruction_arrays(3)))
    with pytest.raises(SnapshotError, match="error do not have one entry per image"):
        read_snapshot(write(tmp_path / "epoch_0001.npz", error=np.zeros(7, np.float32)))


def test_a_file_without_task_or_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "epoch_0000.npz"
    np.savez(path, epoch=np.array(0), labels=np.arange(2), indices=np.arange(2))
    with pytest.raises(SnapshotError, match="is missing task"):
        read_snapshot(path)


def test_pickled_arrays_are_never_loaded(tmp_path: Path) -> None:
    path = tmp_path / "epoch_0000.npz"
    np.savez(path, task=np.array("autoencoder"), epoch=np.array(0), labels=np.array([object()], dtype=object))
    with pytest.raises(SnapshotError, match="could not be read"):
        read_snapshot(path)


def test_a_task_array_named_like_a_reserved_field_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="may not be called epoch"):
        write_snapshot(tmp_path / "epoch_0000.npz", "autoencoder", 0, np.arange(3), np.arange(3),
                       {**reconstruction_arrays(3), "epoch": np.zeros(3)})


@pytest.mark.parametrize("task_name", TASKS.names())
def test_every_tasks_real_snapshot_is_read_back_and_drawable(tmp_path: Path, task_name: str) -> None:
    dataset = dataset_for(task_name)
    config = tiny_config(task_name, **{"data.dataset": dataset})
    data = load_dataset(dataset)
    task = build_task(config, data).eval()
    raw = data.test.samples[:5]
    images_in = raw.float() / 255 if raw.dtype == torch.uint8 else raw.float()  # as the trainer's Snapshotter
    with torch.no_grad():
        arrays = task.snapshot(images_in, torch.Generator().manual_seed(0))
    write_snapshot(tmp_path / "epoch_0000.npz", task_name, 0, data.test.labels[:5].numpy(), np.arange(5), arrays)
    snap = read_snapshot(tmp_path / "epoch_0000.npz")
    panels = snap.panels
    assert snap.task == task_name and panels is panels_for(task_name)
    assert all(snap.arrays[c.array].dtype == np.uint8 and snap.arrays[c.array].ndim == 4 for c in panels.images)
    assert all(snap.arrays[c.array].shape == (5, *data.sample_shape) for c in panels.rows)  # a table's heat maps
    assert sorted(panels.worst_order(snap.arrays).tolist()) == list(range(5))
    assert np.isfinite(panels.summary_value(snap.arrays))
    assert all(panels.caption_of(snap.arrays, i) for i in range(5))

