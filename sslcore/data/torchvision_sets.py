"""MNIST, Fashion-MNIST and CIFAR-10 through torchvision, with their official train/test splits.

torchvision's dataset classes are used only to find, check and parse the files on disk; their
``.data`` / ``.targets`` arrays are taken whole into tensors, so there is no per-image PIL work.
Nothing is downloaded unless the caller asks for it (``download=True``, ``--download`` on the CLI);
missing files raise :class:`DatasetUnavailableError` saying where the files are expected.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sslcore.data.base import DatasetSplit, DatasetUnavailableError, ImageDataset
from sslcore.data.embedded import DIGIT_NAMES
from sslcore.data.registry import register_dataset


@dataclass(frozen=True)
class _Files:
    """Where a torchvision dataset's files live, for error messages: ``folder`` holds ``names``."""

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


def _open(dataset_cls: type[Any], root: Path, train: bool, download: bool, files: _Files) -> Any:
    """Instantiate a torchvision dataset class, turning its missing-file errors into DatasetUnavailableError."""
    try:
        return dataset_cls(str(root), train=train, download=download)
    except RuntimeError as error:
        # torchvision raises RuntimeError("Dataset not found ...") for missing/corrupt files, and
        # RuntimeError or URLError (an OSError) when a download fails.
        raise files.unavailable(download, error) from error
    except OSError as error:
        if not download:
            raise
        raise files.unavailable(download, error) from error


def _mnist_like(dataset_cls: type[Any], name: str, title: str, root: Path, download: bool,
                class_names: Sequence[str]) -> DatasetSplit:
    """MNIST-format IDX files under ``root/<ClassName>/raw/`` -> images uint8 (N, 1, 28, 28)."""
    files = _Files(
        title,
        root / dataset_cls.__name__ / "raw",
        # The uncompressed IDX names, from torchvision's own resource list ("x.gz" -> "x").
        tuple(Path(url).stem for url, _ in dataset_cls.resources),
        # torchvision reads only the uncompressed files; people often copy just the .gz downloads.
        hint="The files must be uncompressed: gunzip any .gz downloads.",
    )

    def split(train: bool) -> ImageDataset:
        ds = _open(dataset_cls, root, train, download, files)
        return ImageDataset(name, ds.data.unsqueeze(1), ds.targets.to(torch.int64), tuple(class_names))

    return DatasetSplit(split(train=True), split(train=False))


@register_dataset(
    "mnist",
    "MNIST handwritten digits, 28×28 grey (60,000 train / 10,000 test, 10 classes); needs files or --download",
    embedded=False,
    official_split=True,
    sample_shape=(1, 28, 28),
)
def load_mnist(root: Path, download: bool) -> DatasetSplit:
    """Official MNIST train/test; class names "0".."9" (torchvision's are "0 - zero", ...)."""
    from torchvision.datasets import MNIST

    return _mnist_like(MNIST, "mnist", "MNIST", root, download, DIGIT_NAMES)


@register_dataset(
    "fashion_mnist",
    "Fashion-MNIST clothing images, 28×28 grey (60,000 train / 10,000 test, 10 classes); needs files or --download",
    embedded=False,
    official_split=True,
    sample_shape=(1, 28, 28),
)
def load_fashion_mnist(root: Path, download: bool) -> DatasetSplit:
    """Official Fashion-MNIST train/test; class names from torchvision ("T-shirt/top", ...)."""
    from torchvision.datasets import FashionMNIST

    return _mnist_like(FashionMNIST, "fashion_mnist", "Fashion-MNIST", root, download, FashionMNIST.classes)


@register_dataset(
    "cifar10",
    "CIFAR-10 colour photos, 32×32 RGB (50,000 train / 10,000 test, 10 classes); needs files or --download",
    embedded=False,
    official_split=True,
    sample_shape=(3, 32, 32),
)
def load_cifar10(root: Path, download: bool) -> DatasetSplit:
    """Official CIFAR-10 python batches under ``root/cifar-10-batches-py/`` -> images uint8 (N, 3, 32, 32)."""
    from torchvision.datasets import CIFAR10

    names = tuple(f for f, _ in CIFAR10.train_list + CIFAR10.test_list) + (CIFAR10.meta["filename"],)
    files = _Files("CIFAR-10", root / CIFAR10.base_folder, names, hint="They come from cifar-10-python.tar.gz.")

    def split(train: bool) -> ImageDataset:
        ds = _open(CIFAR10, root, train, download, files)
        # torchvision keeps (N, H, W, C) numpy; the channel-first copy is made once, here.
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        labels = torch.as_tensor(ds.targets, dtype=torch.int64)
        return ImageDataset("cifar10", images, labels, tuple(ds.classes))

    return DatasetSplit(split(train=True), split(train=False))
