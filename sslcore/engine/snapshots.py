"""The snapshot file format, written by the trainer and read by viewers: ``<run>/snapshots/epoch_0003.npz``.

Each file holds what the pretext task showed of a fixed set of test images at one epoch (epoch 0 =
untrained): ``task`` (the registered task name), ``epoch``, ``labels`` and ``indices`` (N,), and the
task's own arrays (see ``PretextTask.snapshot``). The task's ``panels`` say how to draw them, so a reader
finds them by the recorded name. Files written before tasks declared panels hold ``kind``
("reconstruction" | "rotation" | "views") instead of ``task``; they are drawn with the panels of the
task that stands for that family (:data:`LEGACY_KINDS`).

No pickles are ever loaded: a run folder may come from an import.
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from sslcore.atomic import write_atomic
from sslcore.tasks import TASKS
from sslcore.tasks.panels import SnapshotPanels

#: Files written before panels: their ``kind`` and the task whose panels draw that family.
LEGACY_KINDS = {"reconstruction": "autoencoder", "rotation": "rotation", "views": "simclr"}
_FILE_NAME = re.compile(r"epoch_(\d+)\.npz")
_RESERVED = ("task", "kind", "epoch", "labels", "indices")


class SnapshotError(ValueError):
    """A snapshot file that cannot be shown (damaged, or written by a task this version does not know)."""


class SnapshotFile(NamedTuple):
    """One snapshot file and the cache key of its contents."""

    epoch: int
    path: Path
    mtime_ns: int
    size: int


@dataclass(frozen=True)
class Snapshot:
    """One epoch's snapshot: ``labels`` and ``indices`` (N,); ``arrays`` maps names to (N, ...) arrays.

    ``task``: the task that wrote it; ``kind``: the family, for files written before ``task`` was recorded
    ("" otherwise). Image arrays are uint8 (N, C, H, W); per-image values (error, confidence, ...) are (N,).
    Holds only names and arrays (no functions), so it can be pickled into a cache.
    """

    task: str
    epoch: int
    labels: np.ndarray
    indices: np.ndarray
    arrays: dict[str, np.ndarray]
    kind: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def panels(self) -> SnapshotPanels:
        """How to draw it: the panels of the task that wrote it."""
        found = panels_for(self.task, self.kind)
        if found is None:
            raise SnapshotError(f"no task draws snapshots of task {self.task!r} / kind {self.kind!r}")
        return found


def panels_for(task: str, kind: str = "") -> SnapshotPanels | None:
    """The panels of registered task ``task``, else of the legacy ``kind``'s task; None if neither is known."""
    if task in TASKS:
        return TASKS.get(task).panels
    legacy = LEGACY_KINDS.get(kind)
    return TASKS.get(legacy).panels if legacy is not None and legacy in TASKS else None


def write_snapshot(path: Path, task: str, epoch: int, labels: np.ndarray, indices: np.ndarray,
                   arrays: dict[str, np.ndarray]) -> None:
    """Write one snapshot file atomically (a viewer polling the folder never sees half a file)."""
    clash = [name for name in arrays if name in _RESERVED]
    if clash:
        raise ValueError(f"task {task!r}: snapshot arrays may not be called {', '.join(clash)} (reserved)")
    # Any: numpy's stubs type savez's **kwds against its allow_pickle flag.
    contents: dict[str, Any] = dict(task=np.array(task), epoch=np.array(epoch), labels=labels, indices=indices,
                                    **arrays)
    write_atomic(path, lambda f: np.savez_compressed(f, **contents))


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
    missing = [k for k in ("epoch", "labels", "indices") if k not in arrays]
    if "task" not in arrays and "kind" not in arrays:
        missing.insert(0, "task")
    if missing:
        raise SnapshotError(f"{path.name} is missing {', '.join(missing)}")
    task, kind = str(arrays.pop("task", "")), str(arrays.pop("kind", ""))
    panels = panels_for(task, kind)
    if panels is None:
        written = f"task {task!r}" if task else f"snapshot kind {kind!r}"
        raise SnapshotError(f"{path.name} was written by {written}, which this version does not know; "
                            f"known tasks: {', '.join(TASKS.names())}")
    labels = arrays.pop("labels").astype(np.int64)
    _check_arrays(path.name, task or kind, panels, arrays, len(labels))
    return Snapshot(task, int(arrays.pop("epoch")), labels, arrays.pop("indices"), arrays, kind)


def _check_arrays(name: str, writer: str, panels: SnapshotPanels, arrays: dict[str, np.ndarray], n: int) -> None:
    """The arrays the panels draw are there, with one entry per image."""
    required = panels.required_arrays()
    missing = [k for k in required if k not in arrays]
    if missing:
        raise SnapshotError(f"{name} ({writer}) is missing {', '.join(missing)}")
    bad = [k for k in required if arrays[k].ndim == 0 or len(arrays[k]) != n]
    if bad:
        raise SnapshotError(f"{name}: {', '.join(bad)} do not have one entry per image ({n})")
