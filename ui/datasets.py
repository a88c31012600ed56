"""Datasets and pretext tasks as the Train page shows them: facts, sample images, task previews.

Loading is cached per server (``st.cache_resource``: the tensors are shared read-only, never copied),
and the small derived pictures are cached as data. Nothing here trains or writes anything.
"""
from __future__ import annotations

import inspect
import json
import sys
from typing import Any, NamedTuple

import numpy as np
import streamlit as st
import torch

from sslcore.config import config_from_dict
from sslcore.data import DatasetSplit, dataset_info, find_dataset, load_dataset
from sslcore.engine.preview import preview_views
from sslcore.tasks import TASKS
from sslcore.tasks.base import to_uint8
from sslcore.userdata.discovery import refresh_user_datasets
from ui.images import image_grid

#: Sample grid: this many images of each of at most MAX_SAMPLE_CLASSES classes, one class per column.
SAMPLES_PER_CLASS = 2
MAX_SAMPLE_CLASSES = 10


@st.cache_resource(show_spinner="Loading the dataset…", max_entries=8)
def _load_split(name: str, root: str, test_fraction: float, split_seed: int, train_limit: int,
                version: str, options: tuple[tuple[str, Any], ...] = ()) -> DatasetSplit:
    return load_dataset(name, root=root, test_fraction=test_fraction, seed=split_seed, train_limit=train_limit,
                        options=dict(options))


def data_version(name: str, root: str) -> str:
    """What changes when dataset ``name``'s data change (a user dataset relabelled or replaced); '' if built in."""
    refresh_user_datasets(root)  # a stat per stored dataset: sees labels added by the CLI meanwhile
    try:
        return find_dataset(name, root).version
    except ValueError:  # not here: loading it raises the message that says so
        return ""


def load_split(name: str, root: str, test_fraction: float = 0.2, split_seed: int = 0,
               train_limit: int = 0, options: tuple[tuple[str, Any], ...] = ()) -> DatasetSplit:
    """Dataset ``name`` split as a run with these data settings will split it (shared, read-only tensors).

    Cached per data version, so labels added to a user dataset (from another process too) are seen here.
    ``options``: the dataset's own settings as (field, value) pairs (see :func:`dataset_options`).
    Raises DatasetUnavailableError when its files are missing (nothing is downloaded here).
    """
    return _load_split(name, root, test_fraction, split_seed, train_limit, data_version(name, root), options)


def dataset_options(data: Any) -> tuple[tuple[str, Any], ...]:
    """The options dataset ``data.dataset`` takes, with their values in ``data`` (a DataConfig or a mapping)."""
    get = data.get if isinstance(data, dict) else lambda k: getattr(data, k)
    try:
        names = find_dataset(str(get("dataset")), str(get("root"))).options
    except ValueError:  # not here: loading it raises the message that says so
        return ()
    return tuple((k, get(k)) for k in names)


def load_config_split(data: Any) -> DatasetSplit:
    """:func:`load_split` for a run's data config: the exact split that run trains on."""
    return load_split(data.dataset, data.root, data.test_fraction, data.split_seed, data.train_limit,
                      dataset_options(data))


class DatasetFacts(NamedTuple):
    description: str
    train_size: int
    test_size: int
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]  # (C, H, W)
    official_split: bool


def dataset_facts(name: str, split: DatasetSplit) -> DatasetFacts:
    info = dataset_info(name)
    return DatasetFacts(str(info["description"]), len(split.train), len(split.test), split.class_names,
                        split.image_shape, bool(info["official_split"]))


def sample_grid(name: str, root: str) -> np.ndarray:
    """A grid of test images: one column per class (up to 10), SAMPLES_PER_CLASS rows; (H, W[, 3]) uint8.
    Without labels: the first images, in rows of 10."""
    return _sample_grid(name, root, data_version(name, root))


@st.cache_data(max_entries=16, show_spinner=False)
def _sample_grid(name: str, root: str, version: str) -> np.ndarray:
    test = load_split(name, root).as_images()[1]
    if not test.has_labels:
        count = min(len(test), SAMPLES_PER_CLASS * MAX_SAMPLE_CLASSES)
        return image_grid(test.images[:count].numpy(), columns=min(count, MAX_SAMPLE_CLASSES))
    classes = range(min(test.num_classes, MAX_SAMPLE_CLASSES))
    per_class = [torch.nonzero(test.labels == c).flatten()[:SAMPLES_PER_CLASS] for c in classes]
    # Row-major order with classes as columns: image r of every class, then image r + 1.
    order = [idx[r] for r in range(SAMPLES_PER_CLASS) for idx in per_class if r < len(idx)]
    return image_grid(test.images[torch.stack(order)].numpy(), columns=len(per_class))


def task_explanation(task_name: str) -> str:
    """A paragraph on what the task asks of the model: its module's docstring (one file per task)."""
    task_cls = TASKS.get(task_name)
    return inspect.getdoc(sys.modules[task_cls.__module__]) or task_cls.description


@st.cache_data(max_entries=32, show_spinner=False)
def task_views(config_json: str, count: int, seed: int) -> dict[str, np.ndarray]:
    """What the model would be shown for ``count`` test images: view name -> uint8 (count, C, H, W).

    The task is built exactly as a run would build it (so a combination the task refuses raises its
    ConfigError here, before any run starts); ``seed`` picks the random corruption/augmentation.
    """
    config = config_from_dict(json.loads(config_json))
    _, views = preview_views(config, load_config_split(config.data), count, seed)
    return {name: to_uint8(batch) for name, batch in views.items()}
