"""The in-memory dataset types every part of sslcore works on: images and tables.

A sample is a tensor, and its kind says which: images are ``uint8`` (N, C, H, W), table rows are
``float32`` (N, F) with column metadata (:class:`~sslcore.data.table.TableColumns`). Labels are ``int64``
(N,). Both types offer the same interface: ``samples``, ``labels``, ``class_names``, ``kind``,
``sample_shape``, ``subset``, ``split`` and ``len``, plus two per-kind operations on raw sample batches:
``to_input`` (what a model is fed, done per batch on the training device) and ``input_stats`` (the
normalisation statistics an encoder stores). Code that is not about one kind uses only these.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, TypeAlias

import torch

if TYPE_CHECKING:
    from sslcore.data.table import TableDataset

    Dataset: TypeAlias = "ImageDataset | TableDataset"


class DatasetUnavailableError(RuntimeError):
    """A dataset's files are missing and downloading was not asked for; the message says what to do."""


@dataclass(frozen=True)
class ImageDataset:
    """Images, labels and class names of one split.

    images: uint8 (N, C, H, W); labels: int64 (N,) with values in [0, len(class_names)), or -1 for an image
    without a label (the user's own unlabelled images: ``class_names`` is then empty or covers only some).
    strata: int64 (N,), the groups a train/test split keeps in proportion when they are not the labels (a
    user dataset labelled after its import keeps the split it was trained on); None = the labels.
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    strata: torch.Tensor | None = None
    kind: ClassVar[str] = "image"

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"{self.name}: images must be uint8 (N, C, H, W), "
                             f"got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"{self.name}: labels must be int64 (N,) matching the images")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def samples(self) -> torch.Tensor:
        """The images, uint8 (N, C, H, W): the kind-neutral name generic code uses."""
        return self.images

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self.image_shape

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_labels(self) -> bool:
        """Whether any image has a label (the k-NN monitor, evaluation and class colours need them)."""
        return self.num_classes > 0

    @property
    def split_groups(self) -> torch.Tensor:
        """int64 (N,): what a stratified split keeps in proportion (``strata``, else the labels)."""
        return self.labels if self.strata is None else self.strata

    @staticmethod
    def to_input(batch: torch.Tensor) -> torch.Tensor:
        """uint8 images (B, C, H, W) -> float (B, C, H, W) in [0, 1]; in place on the fresh float copy."""
        return batch.float().div_(255.0)

    @staticmethod
    def input_stats(samples: torch.Tensor, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std (each (C,), float32; the std unbiased, as ``Tensor.std``) of uint8 images
        (N, C, H, W), in [0, 1] units.

        Exact integer sums of the values and their squares, ``chunk`` images at a time: a float copy of the whole
        split would need 4x its uint8 size (600 MB for CIFAR-10's training images) for two numbers per channel.
        """
        channels = samples.shape[1]
        total = torch.zeros(channels, dtype=torch.int64)
        squares = torch.zeros(channels, dtype=torch.int64)
        for start in range(0, len(samples), chunk):
            x = samples[start:start + chunk].to(torch.int32)
            total += x.sum(dim=(0, 2, 3), dtype=torch.int64)
            squares += (x * x).sum(dim=(0, 2, 3), dtype=torch.int64)
        count = samples.numel() // max(channels, 1)
        mean = total.double() / count
        variance = (squares.double() - count * mean * mean) / max(count - 1, 1)
        return (mean / 255.0).float(), (variance.clamp_min(0.0).sqrt() / 255.0).float()

    def subset(self, indices: torch.Tensor) -> ImageDataset:
        """The samples at ``indices`` (int64 (M,)), in that order."""
        strata = None if self.strata is None else self.strata[indices]
        return ImageDataset(self.name, self.images[indices], self.labels[indices], self.class_names, strata)

    def labelled(self) -> ImageDataset:
        """Only the samples that have a label (all of them for a built-in dataset)."""
        keep = self.labels >= 0
        return self if bool(keep.all()) else self.subset(torch.nonzero(keep).flatten())

    def split(self, train_idx: torch.Tensor, test_idx: torch.Tensor) -> DatasetSplit:
        """Train and test subsets; images need no statistics fitted on the train side."""
        return DatasetSplit(self.subset(train_idx), self.subset(test_idx))


def dataset_type(samples: torch.Tensor) -> type[ImageDataset] | type[TableDataset]:
    """The dataset type whose samples look like ``samples``: uint8 (N, C, H, W) images or float (N, F) rows.

    For code that holds a bare sample tensor (feature extraction, the supervised baseline) and needs its
    kind's ``to_input`` / ``input_stats``; ValueError for anything else.
    """
    from sslcore.data.table import TableDataset  # the table module imports this one

    if samples.dtype == torch.uint8 and samples.ndim == 4:
        return ImageDataset
    if samples.dtype.is_floating_point and samples.ndim == 2:
        return TableDataset
    raise ValueError(f"samples must be uint8 images (N, C, H, W) or float table rows (N, F), "
                     f"got {samples.dtype} {tuple(samples.shape)}")


def to_model_input(samples: torch.Tensor) -> torch.Tensor:
    """A batch of raw samples of either kind as the float input an encoder takes (see ``to_input``)."""
    return dataset_type(samples).to_input(samples)


@dataclass(frozen=True)
class DatasetSplit:
    """A dataset's train and test splits (of one kind); the test split is never trained on."""

    train: Dataset
    test: Dataset

    @property
    def name(self) -> str:
        return self.train.name

    @property
    def kind(self) -> str:
        return self.train.kind

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self.train.sample_shape

    @property
    def image_shape(self) -> tuple[int, int, int]:
        if not isinstance(self.train, ImageDataset):
            raise TypeError(f"{self.name} holds {self.kind} data, which has no image shape; use sample_shape")
        return self.train.image_shape

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.train.class_names

    @property
    def has_labels(self) -> bool:
        return self.train.has_labels

    def as_images(self) -> tuple[ImageDataset, ImageDataset]:
        """(train, test), for code that draws images; TypeError for a table."""
        if not (isinstance(self.train, ImageDataset) and isinstance(self.test, ImageDataset)):
            raise TypeError(f"{self.name} holds {self.kind} data, not images")
        return self.train, self.test

    def as_tables(self) -> tuple[TableDataset, TableDataset]:
        """(train, test), for code that shows rows and column names; TypeError for images."""
        from sslcore.data.table import TableDataset  # the table module imports this one

        if not (isinstance(self.train, TableDataset) and isinstance(self.test, TableDataset)):
            raise TypeError(f"{self.name} holds {self.kind} data, not a table")
        return self.train, self.test

    def labelled(self) -> DatasetSplit:
        """Both splits reduced to their labelled samples (evaluation needs labels; training does not)."""
        return DatasetSplit(self.train.labelled(), self.test.labelled())
