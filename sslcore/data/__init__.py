"""Datasets as in-memory tensors: a registry of named datasets and :func:`load_dataset`.

Importing this package registers every built-in dataset (embedded images: ``digits``, ``mnist5k``, ``shapes``;
torchvision: ``mnist``, ``fashion_mnist``, ``cifar10``; embedded tables: ``wine``, ``breast_cancer``,
``digits_table``, ``synthetic_table``). The user's own datasets (``sslcore.userdata``) are registered at run
time, from the data root, by ``sslcore.userdata.discovery.refresh_user_datasets``.
"""
from sslcore.data.base import DatasetSplit, DatasetUnavailableError, ImageDataset, dataset_type, to_model_input
from sslcore.data.registry import (
                                   DATASETS,
                                   DatasetNotFoundError,
                                   DatasetSpec,
                                   clear_dataset_cache,
                                   dataset_info,
                                   find_dataset,
                                   load_dataset,
                                   load_run_data,
                                   register_dataset,
                                   split_positions,
)
from sslcore.data.split import stratified_sample, stratified_split, stratified_subset
from sslcore.data.table import RawTable, TableColumns, TableDataset

# Imported for their side effect: each module registers its datasets in DATASETS.
from sslcore.data import embedded, shapes, synthetic, tables, torchvision_sets  # noqa: E402,F401  isort: skip

__all__ = [
    "ImageDataset",
    "TableDataset",
    "TableColumns",
    "RawTable",
    "dataset_type",
    "to_model_input",
    "load_run_data",
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
