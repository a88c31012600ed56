"""MNIST, Fashion-MNIST and CIFAR-10, with their official train/test splits, from their official files.

The files are read by :mod:`sslcore.data.official_files` straight into uint8 tensors (no per-image work, no
second copy of the data); torchvision is imported only to download them (``download=True``, ``--download``
on the CLI), which also checks the downloads' md5 sums. Nothing is downloaded unless asked for; missing or
damaged files raise :class:`DatasetUnavailableError` saying where the files are expected and what is wrong.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sslcore.data.base import DatasetSplit, DatasetUnavailableError, ImageDataset
from sslcore.data.embedded import DIGIT_NAMES
from sslcore.data.official_files import (
    DamagedFileError,
    read_cifar_batches,
    read_cifar_class_names,
    read_idx,
)
from sslcore.data.registry import register_dataset

#: The uncompressed IDX files of an MNIST-format dataset (torchvision's resource names without ".gz").
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FASHION_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot")
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_FILE, CIFAR_META_FILE = "test_batch", "batches.meta"


@dataclass(frozen=True)
class _Files:
    """Where a dataset's files live, for error messages: ``folder`` holds ``names``."""

    title: str
    folder: Path
    names: tuple[str, ...]
    hint: str = ""

    def unavailable(self, download: bool, error: Exception) -> DatasetUnavailableError:
        """One single-line message with the dataset, the folder its files belong in, and the ways out."""
        listing = ", ".join(self.names)
        if download:
            reason = " ".join(str(error).split())  # torchvision's download errors span several lines
            text = (
                f"{self.title} could not be downloaded ({reason}). Copy its files ({listing}) into "
                f"{self.folder}/ and load it again without --download."
            )
        else:
            text = (
                f"{self.title} is not available: expected the files {listing} in {self.folder}/ (missing or damaged). "
                "Either run with --download (download=True in Python) to fetch them, or copy the files there."
            )
        return DatasetUnavailableError(f"{text} {self.hint}".strip())

    def damaged(self, error: DamagedFileError) -> DatasetUnavailableError:
        return DatasetUnavailableError(f"{self.title} is not available: {error}. Copy intact files into "
                                       f"{self.folder}/, or delete them and run with --download. {self.hint}".strip())

    def check_present(self) -> None:
        """DatasetUnavailableError (nothing downloaded) unless every file is there."""
        missing = [n for n in self.names if not (self.folder / n).is_file()]
        if missing:
            raise self.unavailable(False, FileNotFoundError(", ".join(missing)))


def _download(dataset_cls: type[Any], root: Path, files: _Files) -> None:
    """Fetch the files with torchvision (which checks their md5 sums), turning its errors into
    DatasetUnavailableError; a no-op for files already there."""
    try:
        dataset_cls(str(root), train=False, download=True)  # the smaller split: the download covers both
    except (RuntimeError, OSError) as error:
        # RuntimeError ("Dataset not found or corrupted") or URLError (an OSError) when a download fails.
        raise files.unavailable(True, error) from error


def _mnist_like(torchvision_name: str, name: str, title: str, root: Path, download: bool,
                class_names: Sequence[str]) -> DatasetSplit:
    """MNIST-format IDX files under ``root/<torchvision class name>/raw/`` -> images uint8 (N, 1, 28, 28)."""
    files = _Files(title, root / torchvision_name / "raw", IDX_FILES,
                   # torchvision reads only the uncompressed files; people often copy just the .gz downloads.
                   hint="The files must be uncompressed: gunzip any .gz downloads.")
    if download:
        import torchvision.datasets

        _download(getattr(torchvision.datasets, torchvision_name), root, files)
    files.check_present()

    def split(prefix: str) -> ImageDataset:
        try:
            images = read_idx(files.folder / f"{prefix}-images-idx3-ubyte", ndim=3)
            labels = read_idx(files.folder / f"{prefix}-labels-idx1-ubyte", ndim=1)
        except DamagedFileError as error:
            raise files.damaged(error) from None
        if len(images) != len(labels) or (len(labels) and labels.max() >= len(class_names)):
            raise files.damaged(DamagedFileError(
                f"{prefix}: {len(images)} images but {len(labels)} labels (of 0..{len(class_names) - 1})"))
        return ImageDataset(name, torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)),
                            tuple(class_names))

    return DatasetSplit(split("train"), split("t10k"))


@register_dataset(
    "mnist",
    "MNIST handwritten digits, 28×28 grey (60,000 train / 10,000 test, 10 classes); needs files or --download",
    embedded=False,
    official_split=True,
    sample_shape=(1, 28, 28),
)
def load_mnist(root: Path, download: bool) -> DatasetSplit:
    """Official MNIST train/test; class names "0".."9" (torchvision's are "0 - zero", ...)."""
    return _mnist_like("MNIST", "mnist", "MNIST", root, download, DIGIT_NAMES)


@register_dataset(
    "fashion_mnist",
    "Fashion-MNIST clothing images, 28×28 grey (60,000 train / 10,000 test, 10 classes); needs files or --download",
    embedded=False,
    official_split=True,
    sample_shape=(1, 28, 28),
)
def load_fashion_mnist(root: Path, download: bool) -> DatasetSplit:
    """Official Fashion-MNIST train/test; class names as torchvision gives them ("T-shirt/top", ...)."""
    return _mnist_like("FashionMNIST", "fashion_mnist", "Fashion-MNIST", root, download, FASHION_NAMES)


@register_dataset(
    "cifar10",
    "CIFAR-10 colour photos, 32×32 RGB (50,000 train / 10,000 test, 10 classes); needs files or --download",
    embedded=False,
    official_split=True,
    sample_shape=(3, 32, 32),
)
def load_cifar10(root: Path, download: bool) -> DatasetSplit:
    """Official CIFAR-10 python batches under ``root/cifar-10-batches-py/`` -> images uint8 (N, 3, 32, 32)."""
    names = (*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE, CIFAR_META_FILE)
    files = _Files("CIFAR-10", root / "cifar-10-batches-py", names, hint="They come from cifar-10-python.tar.gz.")
    if download:
        from torchvision.datasets import CIFAR10

        _download(CIFAR10, root, files)
    files.check_present()
    try:
        classes = read_cifar_class_names(files.folder / CIFAR_META_FILE)

        def split(file_names: Sequence[str]) -> ImageDataset:
            images, labels = read_cifar_batches([files.folder / f for f in file_names], len(classes))
            return ImageDataset("cifar10", torch.from_numpy(images), torch.from_numpy(labels), classes)

        return DatasetSplit(split(CIFAR_TRAIN_FILES), split((CIFAR_TEST_FILE,)))
    except DamagedFileError as error:
        raise files.damaged(error) from None
