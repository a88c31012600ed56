"""A run's encoder weights, wherever they live: the training checkpoint or an imported safetensors file.

A run trained here keeps its full training state in ``checkpoints/last.pt`` (task + optimiser, for
resuming); a run imported from an archive keeps only ``checkpoints/encoder.safetensors``. Both give
the same :class:`~sslcore.models.Encoder`: it takes float images (B, C, H, W) in [0, 1] (or table rows
(B, F)) and normalises them itself with the mean/std buffers stored among its weights.

The "image shape" recorded with the weights is the sample shape: (C, H, W) for images, (F,) for a table
(the key keeps its first name, so exports made before tables existed still import).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from sslcore.config import RunConfig, config_from_dict
from sslcore.data import DatasetSplit, load_run_data
from sslcore.engine.checkpoint import load_checkpoint
from sslcore.models import Encoder, build_encoder
from sslcore.runs.files import read_json
from sslcore.runs.store import Run

ENCODER_FILE = "encoder.safetensors"
#: Key of the safetensors metadata (and of status.json) holding the sample shape the encoder was trained on:
#: (C, H, W), or (F,) for a table.
IMAGE_SHAPE_KEY = "image_shape"
#: Most columns a table encoder may be recorded with (a bound on what an imported file can make us build).
MAX_COLUMNS = 100_000
_ENCODER_PREFIX = "encoder."  # the task's submodule name in its state_dict


def format_image_shape(shape: tuple[int, ...]) -> str:
    return ",".join(str(int(v)) for v in shape)


def parse_image_shape(value: object) -> tuple[int, ...]:
    """(C, H, W) from ``"1,28,28"`` or ``[1, 28, 28]``, or a table's (F,) from ``"13"`` or ``[13]``.

    ValueError unless 1-4 channels and sides of 1-4096, or 1 to MAX_COLUMNS columns.
    """
    parts: Any = value.split(",") if isinstance(value, str) else value  # anything from a JSON file
    try:
        shape = tuple(int(str(p).strip()) for p in parts)  # TypeError when ``parts`` is not iterable
    except (TypeError, ValueError):
        shape = ()
    if len(shape) == 1 and 1 <= shape[0] <= MAX_COLUMNS:
        return shape
    if len(shape) != 3 or not 1 <= shape[0] <= 4 or not all(1 <= side <= 4096 for side in shape[1:]):
        raise ValueError(f"image shape {value!r} is not allowed: expected C,H,W with 1-4 channels and sides of "
                         f"1-4096, or a table's column count (1-{MAX_COLUMNS})")
    return shape


def encoder_state_from_checkpoint(payload: dict) -> dict[str, torch.Tensor]:
    """The encoder's own state_dict (mean/std buffers included) out of a training checkpoint's task state."""
    state = {k[len(_ENCODER_PREFIX):]: v for k, v in payload["model"].items() if k.startswith(_ENCODER_PREFIX)}
    if not state:
        raise ValueError("the checkpoint holds no encoder weights")
    return state


def final_encoder_state(run: Run) -> dict[str, torch.Tensor]:
    """The run's latest encoder weights (CPU tensors): from last.pt, else from an imported encoder file."""
    last = run.checkpoint_dir / "last.pt"
    if last.exists():
        return encoder_state_from_checkpoint(load_checkpoint(last, map_location="cpu"))
    imported = run.checkpoint_dir / ENCODER_FILE
    if imported.exists():
        return load_file(imported)
    raise FileNotFoundError(f"run {run.id} has no weights yet: it stopped before its first checkpoint")


def weights_image_shape(path: Path) -> tuple[int, ...] | None:
    """The image shape recorded in a safetensors file's metadata, or None if it records none."""
    with safe_open(str(path), framework="pt") as f:
        value = (f.metadata() or {}).get(IMAGE_SHAPE_KEY)
    return None if value is None else parse_image_shape(value)


def run_image_shape(run: Run, config: RunConfig) -> tuple[int, ...]:
    """The sample shape ``run`` trained on: (C, H, W) of its images or (F,) of its table.

    Recorded in status.json or the imported weights when known; otherwise the dataset is loaded (from
    the in-process cache when it was loaded before), since an MLP's weights depend on the image size.
    """
    recorded = run.status().get(IMAGE_SHAPE_KEY)
    if recorded is not None:
        return parse_image_shape(recorded)
    imported = run.checkpoint_dir / ENCODER_FILE
    if imported.exists() and (shape := weights_image_shape(imported)) is not None:
        return shape
    return load_run_data(config.data).sample_shape


def build_config_encoder(config: RunConfig, image_shape: tuple[int, ...]) -> Encoder:
    """A fresh (untrained) encoder of ``config``'s architecture for samples of ``image_shape`` ((C, H, W) or (F,))."""
    e = config.encoder
    return build_encoder(e.name, image_shape, width=e.width, depth=e.depth, norm=e.norm, patch_size=e.patch_size)


def load_encoder(weights: str | Path, config: str | Path | RunConfig,
                 image_shape: tuple[int, ...] | None = None) -> Encoder:
    """An encoder (eval mode, CPU) from an exported ``encoder.safetensors`` and its ``config.json``.

    ``image_shape`` defaults to the one recorded in the weights' metadata (every sslcore export has it).
    """
    if not isinstance(config, RunConfig):
        config = config_from_dict(read_json(Path(config)), stored=True)  # weights need no data
    if image_shape is None:
        image_shape = weights_image_shape(Path(weights))
        if image_shape is None:
            raise ValueError(f"{weights} does not record the image shape it was trained on; pass image_shape=(C, H, W)")
    encoder = build_config_encoder(config, image_shape)
    encoder.load_state_dict(load_file(str(weights)))
    return encoder.eval()


def load_run_encoder(run: Run, data: DatasetSplit) -> Encoder:
    """The trained encoder of ``run`` (eval mode, CPU) for images like ``data``'s.

    Prefers ``checkpoints/last.pt`` (a run trained here) and falls back to ``checkpoints/encoder.safetensors``
    (an imported run, which has no training checkpoint). FileNotFoundError if the run has neither.
    """
    config = run.config()
    imported = run.checkpoint_dir / ENCODER_FILE
    if not (run.checkpoint_dir / "last.pt").exists() and imported.exists():
        recorded = weights_image_shape(imported)
        if recorded is not None and recorded != data.sample_shape:
            raise ValueError(f"run {run.id}'s encoder was trained on samples of shape {recorded}, "
                             f"but {data.name} has samples of shape {data.sample_shape}")
    encoder = build_config_encoder(config, data.sample_shape)
    encoder.load_state_dict(final_encoder_state(run))
    return encoder.eval()
