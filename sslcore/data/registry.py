"""The dataset registry and the one function the rest of sslcore uses to get data: :func:`load_dataset`.

A dataset is registered once, by name, with a loader that turns files (or a package's embedded
arrays) into in-memory tensors. ``load_dataset`` adds what every caller needs on top: an in-process
cache, a seeded stratified train/test split for datasets without an official one, and an optional
stratified cap on the number of training images for fast demos. :func:`load_run_data` loads the exact
split a run's data config describes.

A dataset may take options (the generated ``synthetic_table`` takes its row and column counts): it names
them in ``options``, each one a field of the run's data config with the same name, and its loader
receives them as keyword arguments. Other datasets never see them.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sslcore.data.base import DatasetSplit, DatasetUnavailableError, ImageDataset
from sslcore.data.split import stratified_sample, stratified_split
from sslcore.data.table import RawTable, TableDataset
from sslcore.registry import Registry, UnknownNameError

__all__ = ["DatasetSpec", "DATASETS", "DatasetNotFoundError", "register_dataset", "find_dataset", "load_dataset",
           "load_run_data", "split_positions", "dataset_info", "clear_dataset_cache"]

Loaded = ImageDataset | TableDataset | RawTable | DatasetSplit
Loader = Callable[..., Loaded]


@dataclass(frozen=True)
class DatasetSpec:
    """How to get one dataset.

    loader(data_root, download, **options) returns one ImageDataset or RawTable (split later by
    ``load_dataset``) or a DatasetSplit holding the dataset's official train/test sets.
    embedded: True when the data ships inside an installed package (no files, no download).
    official_split: True when the loader returns the dataset's own train/test split.
    kind: what one sample is: "image" (uint8 (C, H, W)) or "table" (float32 (F,)).
    sample_shape: the shape of one sample when it is known without loading ((C, H, W) or (F,)); None if not.
    user: True for a dataset the user added (``sslcore.userdata``), found under the data root at run time.
    version: changes whenever the data change (a user dataset's hashes), so no cache serves old data.
    options: data-config fields the loader takes as keyword arguments (e.g. a generator's row count).
    """

    loader: Loader
    embedded: bool
    official_split: bool
    kind: str = "image"
    sample_shape: tuple[int, ...] | None = None
    user: bool = False
    version: str = ""
    options: tuple[str, ...] = ()


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register_dataset(name: str, description: str, *, embedded: bool, official_split: bool, kind: str = "image",
                     sample_shape: tuple[int, ...] | None = None,
                     options: tuple[str, ...] = ()) -> Callable[[Loader], Loader]:
    """Decorator: register a loader function as dataset ``name``; returns the function unchanged.

    ``kind`` and ``sample_shape`` let tasks be checked against the dataset without loading it; ``options``
    names the data-config fields the loader takes (see the module docstring).
    """

    def decorator(loader: Loader) -> Loader:
        spec = DatasetSpec(loader, embedded, official_split, kind, sample_shape, options=tuple(options))
        DATASETS.register(name, description)(spec)
        return loader

    return decorator


# Full datasets already loaded in this process, keyed by (name, resolved root, version). Not functools.lru_cache:
# the ``download`` flag must not be part of the key (the data are the same either way), and a lock per
# key stops two threads of the app (Streamlit runs sessions in threads) from loading the same files
# twice, while a slow download of one dataset does not hold up loading another.
_CACHE_SIZE = 8
_Key = tuple[str, Path | None, str, tuple[tuple[str, Any], ...]]
_cache: OrderedDict[_Key, Loaded] = OrderedDict()
_cache_lock = threading.Lock()  # guards _cache and _key_locks, held only briefly
_key_locks: dict[_Key, threading.Lock] = {}


def _load_full(name: str, root: Path, download: bool, options: Mapping[str, Any]) -> Loaded:
    """The dataset as its loader returns it, loaded at most once per (name, root, version, options) while cached."""
    spec = find_dataset(name, root)
    root = root.expanduser().resolve()
    taken = tuple((k, options[k]) for k in spec.options if k in options)
    # Embedded data do not live under the root, so one cached copy serves every root.
    key: _Key = (name, None if spec.embedded else root, spec.version, taken)
    with _cache_lock:
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        with _cache_lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]
        loaded = spec.loader(root, download, **dict(taken))
        with _cache_lock:
            _cache[key] = loaded
            if len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        return loaded


class DatasetNotFoundError(UnknownNameError, DatasetUnavailableError):
    """No dataset of that name: neither built in nor added under the data root. Both an unknown name (a
    typo) and unavailable data (a run whose own dataset was removed, or never added on this machine)."""


def find_dataset(name: str, root: str | Path = "data") -> DatasetSpec:
    """The spec of dataset ``name``, looking for the user's datasets under ``root`` if it is not registered.

    Raises DatasetNotFoundError naming the datasets that exist and how to add one.
    """
    if name not in DATASETS:
        from sslcore.userdata.discovery import refresh_user_datasets  # late: it registers into DATASETS

        refresh_user_datasets(root)
    if name not in DATASETS:
        builtin = ", ".join(e.name for e in DATASETS if not e.obj.user)
        added = ", ".join(e.name for e in DATASETS if e.obj.user) or "none"
        raise DatasetNotFoundError(
            f"unknown dataset {name!r}: it is not built in ({builtin}) and not among the datasets added under "
            f"{Path(root)}/ ({added}); add your images with `sslcore data add PATH --name {name}` or on the Data page")
    return DATASETS.get(name)


def clear_dataset_cache() -> None:
    """Forget every loaded dataset (e.g. after files under the data root were replaced)."""
    with _cache_lock:
        _cache.clear()


def load_dataset(
    name: str,
    *,
    root: str | Path = "data",
    download: bool = False,
    test_fraction: float = 0.2,
    seed: int = 0,
    train_limit: int = 0,
    options: Mapping[str, Any] | None = None,
) -> DatasetSplit:
    """Load dataset ``name`` as in-memory train/test tensors.

    Images are uint8 (N, C, H, W), table rows float32 (N, F), labels int64 (N,). Datasets with an
    official split keep it; the others are split with :func:`stratified_split` (``test_fraction``,
    ``seed``), and a table's column statistics are fitted on its train side only. ``options``: values for
    the dataset's own options (others are ignored), e.g. ``{"synthetic_rows": 5000}``.
    ``train_limit > 0`` keeps a seeded, stratified subset of that many training images (the test
    split is untouched), so a demo on a large dataset stays fast. Files are looked up under ``root``
    and fetched from the internet only when ``download`` is True.

    The full dataset is cached in-process and shared between calls, so callers must treat the
    returned tensors as read-only (copy before any in-place change).

    Raises DatasetNotFoundError (an UnknownNameError and a DatasetUnavailableError) for a name that is neither
    built in nor added under ``root``, and DatasetUnavailableError when files are missing.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
    if train_limit < 0:
        raise ValueError(f"train_limit must be >= 0 (0 = no limit), got {train_limit}")
    loaded = _load_full(name, Path(root), download, options or {})
    if isinstance(loaded, DatasetSplit):
        split = loaded
        if 0 < train_limit < len(split.train):
            keep = stratified_sample(split.train.split_groups, train_limit, seed)
            split = DatasetSplit(split.train.subset(keep), split.test)
        return split
    return loaded.split(*_positions(loaded, test_fraction, seed, train_limit))


def _positions(loaded: ImageDataset | TableDataset | RawTable, test_fraction: float, seed: int,
               train_limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    train_idx, test_idx = stratified_split(loaded.split_groups, test_fraction, seed)
    if 0 < train_limit < len(train_idx):
        train_idx = train_idx[stratified_sample(loaded.split_groups[train_idx], train_limit, seed)]
    return train_idx, test_idx


def split_positions(name: str, *, root: str | Path = "data", test_fraction: float = 0.2, seed: int = 0,
                    train_limit: int = 0) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Where :func:`load_dataset`'s train and test images (with the same arguments) sit in the whole dataset:
    int64 (N_train,), (N_test,); None for a dataset with an official split. Names a user's image by its file."""
    loaded = _load_full(name, Path(root), False, {})
    return None if isinstance(loaded, DatasetSplit) else _positions(loaded, test_fraction, seed, train_limit)


def load_run_data(data: Any) -> DatasetSplit:
    """The exact split a run's data config (:class:`sslcore.config.DataConfig`) describes, options included."""
    spec = find_dataset(data.dataset, data.root)
    return load_dataset(data.dataset, root=data.root, download=data.download, test_fraction=data.test_fraction,
                        seed=data.split_seed, train_limit=data.train_limit,
                        options={k: getattr(data, k) for k in spec.options})


def dataset_info(name: str) -> dict[str, object]:
    """Cheap facts about dataset ``name`` without loading it: name, description, embedded, official_split,
    kind, sample_shape, user (added by the user) and options."""
    entry = DATASETS.entry(name)
    return {
        "name": entry.name,
        "description": entry.description,
        "embedded": entry.obj.embedded,
        "official_split": entry.obj.official_split,
        "kind": entry.obj.kind,
        "sample_shape": entry.obj.sample_shape,
        "user": entry.obj.user,
        "options": entry.obj.options,
    }
