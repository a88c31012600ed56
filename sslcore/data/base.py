"""The in-memory dataset types every part of sslcore works on.

A sample is a tensor: images are ``uint8`` tensors of shape (N, C, H, W) held in memory, labels are
``int64`` tensors of shape (N,). Conversion to float in [0, 1] happens per batch on the training device.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


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

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"{self.name}: images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"{self.name}: labels must be int64 (N,) matching the images")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

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

    def subset(self, indices: torch.Tensor) -> "ImageDataset":
        """The samples at ``indices`` (int64 (M,)), in that order."""
        strata = None if self.strata is None else self.strata[indices]
        return ImageDataset(self.name, self.images[indices], self.labels[indices], self.class_names, strata)

    def labelled(self) -> "ImageDataset":
        """Only the samples that have a label (all of them for a built-in dataset)."""
        keep = self.labels >= 0
        return self if bool(keep.all()) else self.subset(torch.nonzero(keep).flatten())


@dataclass(frozen=True)
class DatasetSplit:
    """A dataset's train and test splits; the test split is never trained on."""

    train: ImageDataset
    test: ImageDataset

    @property
    def name(self) -> str:
        return self.train.name

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.train.image_shape

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.train.class_names

    @property
    def has_labels(self) -> bool:
        return self.train.has_labels

    def labelled(self) -> "DatasetSplit":
        """Both splits reduced to their labelled samples (evaluation needs labels; training does not)."""
        return DatasetSplit(self.train.labelled(), self.test.labelled())
