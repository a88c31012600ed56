"""What the embedding map shows on hover: thumbnails of a run's shown images as PNG data URIs, or, for a
table, the row's values as text."""
from __future__ import annotations

import base64
import io

import numpy as np

from sslcore.atomic import write_atomic
from sslcore.evaluation.embeddings import Split, embeddings_dir, run_points, table_columns
from sslcore.runs import Run


def thumbnails_base64(images: np.ndarray, scale: int = 2) -> list[str]:
    """uint8 images (N, C, H, W), C = 1 or 3 -> N PNG data URIs (``data:image/png;base64,...``), each
    enlarged ``scale`` times with square pixels (an 8x8 digit is unreadable at its own size)."""
    from PIL import Image  # the dashboard's dependency, not the engine's: imported only when thumbnails are asked for

    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be uint8 (N, 1 or 3, H, W), got {images.dtype} {images.shape}")
    big = np.ascontiguousarray(images.repeat(scale, axis=2).repeat(scale, axis=3).transpose(0, 2, 3, 1))
    if big.shape[3] == 1:
        big = big[..., 0]  # (N, H, W): Pillow reads a 2-D uint8 array as greyscale, (H, W, 3) as RGB
    uris = []
    for image in big:
        buffer = io.BytesIO()
        # Level 1: these images are a few hundred bytes either way, and the higher levels only cost time.
        Image.fromarray(image).save(buffer, "PNG", compress_level=1)
        uris.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"))
    return uris


def run_thumbnails(run: Run, split: Split = "test", max_points: int = 5000, scale: int = 2) -> list[str]:
    """:func:`thumbnails_base64` of :func:`run_points`, in the same order; cached (one data URI per line)."""
    path = embeddings_dir(run) / f"thumbs_{split}_n{max_points}_s{scale}.txt"
    if path.exists():
        return path.read_text().splitlines()
    uris = thumbnails_base64(run_points(run, split, max_points)[0], scale)
    write_atomic(path, lambda f: f.write("\n".join(uris).encode("ascii")))
    return uris


def row_text(values: np.ndarray, names: tuple[str, ...], limit: int = 12) -> str:
    """One row's values (F,) as lines "name  value", at most ``limit`` of them, then how many more there are."""
    lines = [f"{name}  {value:.4g}" for name, value in zip(names[:limit], values[:limit].tolist(), strict=True)]
    if len(names) > limit:
        lines.append(f"… {len(names) - limit} more columns")
    return "\n".join(lines)


def run_row_texts(run: Run, split: Split = "test", max_points: int = 5000) -> list[str]:
    """:func:`row_text` of every shown row of a table run, in :func:`run_points` order (values as fed to the model)."""
    rows = run_points(run, split, max_points)[0]
    names = table_columns(run).names
    return [row_text(row, names) for row in rows]
