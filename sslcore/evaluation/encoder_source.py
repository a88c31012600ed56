"""The encoder an evaluation scores, with a fingerprint of the file it came from.

A run trained here has ``checkpoints/last.pt`` (full training state); a run imported from an archive has
only ``checkpoints/encoder.safetensors``. Either gives the same encoder; the fingerprint (sha256 of the
file) is what decides whether a stored ``eval.json`` still describes the current weights.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from sslcore.data import DatasetSplit
from sslcore.engine.checkpoint import load_checkpoint
from sslcore.models import Encoder
from sslcore.models.layout import to_conv_layout
from sslcore.runs import Run
from sslcore.runs.weights import ENCODER_FILE, build_config_encoder, encoder_state_from_checkpoint, weights_image_shape


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of the file at ``path``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_path(run: Run) -> Path:
    """``checkpoints/last.pt`` if the run has one, else an imported ``checkpoints/encoder.safetensors``."""
    last = run.checkpoint_dir / "last.pt"
    if last.exists():
        return last
    imported = run.checkpoint_dir / ENCODER_FILE
    if imported.exists():
        return imported
    raise FileNotFoundError(f"no checkpoint at {last}: train the run before evaluating it")


def _read_state(path: Path, data: DatasetSplit) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The encoder's state_dict and (step, epoch) from a training checkpoint or an imported weights file."""
    if path.suffix == ".pt":
        payload = load_checkpoint(path, map_location="cpu")  # weights_only=True inside
        state = payload.get("state", {})
        return encoder_state_from_checkpoint(payload), {"step": state.get("step"), "epoch": state.get("epoch")}
    recorded = weights_image_shape(path)
    if recorded is not None and recorded != data.sample_shape:
        raise ValueError(f"{path} was trained on samples of shape {recorded}, but {data.name} has samples of "
                         f"shape {data.sample_shape}")
    return load_file(str(path)), {"step": None, "epoch": None}


def load_evaluated_encoder(run: Run, data: DatasetSplit, device: torch.device) -> tuple[Encoder, dict[str, Any]]:
    """The run's encoder (eval mode, on ``device``) and its file's fingerprint (path, sha256, size, step, epoch).

    The file is hashed before and after loading: a training job replacing it in between would otherwise
    leave eval.json claiming weights other than the ones evaluated.
    """
    path = weights_path(run)
    for _ in range(3):
        before = file_sha256(path)
        state, position = _read_state(path, data)
        if file_sha256(path) == before:
            break
    # The random init is overwritten at once; keep the caller's RNG as it was.
    with torch.random.fork_rng(devices=[]):
        encoder = build_config_encoder(run.config(), data.sample_shape)
    try:
        encoder.load_state_dict(state)
    except RuntimeError as e:  # shapes or names differ: the run's config no longer builds that network
        raise ValueError(f"{path} does not fit the network its config builds now (was it trained with an "
                         f"older sslcore?): {str(e).splitlines()[0]}") from e
    fingerprint = {"path": str(path.relative_to(run.path)), "sha256": before, "size": path.stat().st_size,
                   **position}
    encoder.to(device)
    to_conv_layout(encoder)  # encodes 1.5-1.7x the images/s of the default layout (sslcore.models.layout)
    return encoder.eval(), fingerprint
