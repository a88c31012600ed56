"""Checkpoints: written atomically, read back with ``weights_only=True`` (no pickled code runs on load)."""
from __future__ import annotations

import io
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
