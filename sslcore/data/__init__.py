"""Datasets as in-memory tensors: a registry of named datasets and :func:`load_dataset`.

Importing this package registers every built-in dataset (embedded: ``digits``, ``mnist5k``;
torchvision: ``mnist``, ``fashion_mnist``, ``cifar10``). The user's own datasets (``sslcore.userdata``) are
registered at run time, from the data root, by ``sslcore.userdata.discovery.refresh_user_datasets``.
"""
from sslcore.data.base import DatasetSplit, DatasetUnavailableError, ImageDataset
from sslcore.data.registry import (DATASETS, DatasetNotFoundError, DatasetSpec, clear_dataset_cache, dataset_info,
                                   find_dataset, load_dataset, register_dataset, split_positions)
from sslcore.data.split import stratified_sample, stratified_split, stratified_subset

# Imported for their side effect: each module registers its datasets in DATASETS.
from sslcore.data import embedded, torchvision_sets  # noqa: E402,F401  isort: skip

__all__ = [
    "ImageDataset",
    "DatasetSplit",
    "DatasetUnavailableError",
    "DATASETS",
    "DatasetSpec",
    "DatasetNotFoundError",
    "register_dataset",
    "find_dataset",
    "load_dataset",
    "split_positions",
    "dataset_info",
    "clear_dataset_cache",
    "stratified_split",
    "stratified_subset",
    "stratified_sample",
]
