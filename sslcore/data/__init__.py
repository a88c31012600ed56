"""Datasets as in-memory tensors: a registry of named datasets and :func:`load_dataset`.

Importing this package registers every built-in dataset (embedded: ``digits``, ``mnist5k``;
torchvision: ``mnist``, ``fashion_mnist``, ``cifar10``).
"""
from sslcore.data.base import DatasetSplit, DatasetUnavailableError, ImageDataset
from sslcore.data.registry import DATASETS, DatasetSpec, clear_dataset_cache, dataset_info, load_dataset, register_dataset
from sslcore.data.split import stratified_sample, stratified_split, stratified_subset

# Imported for their side effect: each module registers its datasets in DATASETS.
from sslcore.data import embedded, torchvision_sets  # noqa: E402,F401  isort: skip

__all__ = [
    "ImageDataset",
    "DatasetSplit",
    "DatasetUnavailableError",
    "DATASETS",
    "DatasetSpec",
    "register_dataset",
    "load_dataset",
    "dataset_info",
    "clear_dataset_cache",
    "stratified_split",
    "stratified_subset",
    "stratified_sample",
]
