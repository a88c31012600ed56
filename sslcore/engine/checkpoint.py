"""Checkpoints: written atomically, read back with ``weights_only=True`` (no pickled code runs on load)."""
from __future__ import annotations

import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save

from sslcore.atomic import write_atomic


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` (tensors, dicts, lists, numbers, strings) to ``path`` via a temp file + rename.

    Serialised in memory first, then written in one go: torch's zip writer turns a failed write on a full
    disk into an opaque ``inline_container.cc`` assertion, where Python's own write raises ENOSPC.
    """
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    write_atomic(path, lambda f: f.write(buffer.getbuffer()), durable=True)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely; a clear error if it is missing or not a checkpoint."""
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # a truncated or foreign file: say which file, not just the unpickler's complaint
        raise ValueError(f"{path} is not a readable sslcore checkpoint: {e}") from e


def save_weights(path: Path, state_dict: dict[str, torch.Tensor]) -> None:
    """Save tensors as safetensors (atomic), the format for exported and per-epoch encoder weights."""
    data = save({k: v.detach().contiguous().cpu() for k, v in state_dict.items()})
    write_atomic(path, lambda f: f.write(data))


def cpu_copy(tree: Any) -> Any:
    """A copy of ``tree`` (nested dicts/lists/tuples of tensors and plain values) with every tensor cloned to the
    CPU: a snapshot that training may go on changing the original of while it is written out. The copies are
    in the standard contiguous layout, whatever the trainer's (channels-last weights, :mod:`sslcore.models.layout`),
    so a checkpoint's tensors can go straight into safetensors or any other reader."""
    if isinstance(tree, torch.Tensor):
        return tree.detach().to("cpu", copy=True, memory_format=torch.contiguous_format)
    if isinstance(tree, dict):
        return {k: cpu_copy(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(cpu_copy(v) for v in tree)
    return tree


class BackgroundWriter:
    """Runs one write at a time on a thread, so serialising a checkpoint does not stall the training steps.

    ``submit`` first waits for the previous write (writes land in order; at most one snapshot is held in
    memory). A write's error is raised by the next ``submit`` or ``wait`` on the caller's thread, so a full
    disk still ends the run with its reason. ``wait`` returns once everything submitted is on disk. The thread
    is not a daemon: a process that ends on an error still finishes the write in flight before it exits.
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, write: Callable[[], None]) -> None:
        self.wait()
        self._thread = threading.Thread(target=self._run, args=(write,), name="checkpoint-writer")
        self._thread.start()

    def _run(self, write: Callable[[], None]) -> None:
        try:
            write()
        except BaseException as error:  # noqa: BLE001 - handed to the training thread by wait()
            self._error = error

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error
