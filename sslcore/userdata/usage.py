"""Runs and the user's datasets: what a run records of its data, which runs use a dataset, and whether the
dataset a run names is here and holds the images it was trained on.

A run records ``status["dataset"] = {"name", "content_hash", "labels_hash"}`` when it starts training (hashes
only for the user's datasets: built-in ones are fixed). A removal is refused while a run that uses the
dataset is queued, training or being evaluated; finished runs keep their results and say what is missing.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sslcore.config_schema import DataConfig
from sslcore.data import DATASETS, DatasetNotFoundError, find_dataset, split_positions
from sslcore.runs import Run, RunStore
from sslcore.runs.eval_manager import job_status
from sslcore.runs.files import read_json
from sslcore.runs.store import ACTIVE_STATES
from sslcore.userdata import store


def user_manifest(name: str, root: str | Path) -> dict[str, Any] | None:
    """The manifest of user dataset ``name`` under ``root``; None if it is not one (or not there, or damaged)."""
    try:
        return store.read_manifest(store.store_dir(root) / name)
    except (store.DatasetDamagedError, OSError):
        return None


def dataset_record(data: DataConfig) -> dict[str, str]:
    """What a run records of its dataset: the name, and for a user dataset its content and labels hashes."""
    record = {"name": data.dataset}
    if data.dataset in DATASETS and DATASETS.get(data.dataset).user:
        manifest = user_manifest(data.dataset, data.root)
        if manifest is not None:
            record.update(content_hash=manifest["content_hash"], labels_hash=manifest["labels_hash"])
    return record


def file_names(data: DataConfig, split: str, positions: Sequence[int]) -> list[str] | None:
    """The file names of the images at ``positions`` of a run's ``split`` ("train"/"test"); None unless the
    run's dataset is one the user added (and is here)."""
    if data.dataset not in DATASETS or not DATASETS.get(data.dataset).user:
        return None
    manifest = user_manifest(data.dataset, data.root)
    located = split_positions(data.dataset, root=data.root, test_fraction=data.test_fraction, seed=data.split_seed,
                              train_limit=data.train_limit)
    if manifest is None or located is None:
        return None
    where = located[0 if split == "train" else 1]
    return [manifest["files"][int(where[int(p)])] for p in positions]


def dataset_problem(run: Run) -> str | None:
    """Why ``run``'s data cannot be used here as it was trained (missing, or other images); None if they can."""
    data = run.config().data
    try:
        find_dataset(data.dataset, data.root)
    except DatasetNotFoundError:
        return (f"its dataset {data.dataset!r} is not on this machine: add the same images with `sslcore data add "
                f"PATH --name {data.dataset}` (or on the Data page) to evaluate it or map its embeddings")
    recorded = (run.status().get("dataset") or {}).get("content_hash")
    manifest = user_manifest(data.dataset, data.root) if DATASETS.get(data.dataset).user else None
    if recorded and manifest is not None and manifest["content_hash"] != recorded:
        return (f"the dataset {data.dataset!r} here holds other images than the run was trained on (content hash "
                f"{manifest['content_hash'][7:19]}…, the run's {recorded[7:19]}…): its evaluations and maps would "
                "not be of its own data")
    return None


def _dataset_of(run: Run) -> str | None:
    """The dataset named in the run's config.json, read raw (a damaged or foreign config is no match)."""
    try:
        config = read_json(run.path / "config.json")
    except (OSError, ValueError):
        return None
    data = config.get("data") if isinstance(config, dict) else None
    return data.get("dataset") if isinstance(data, dict) else None


def runs_using(name: str, runs_dir: str | Path) -> tuple[list[Run], list[Run]]:
    """Runs whose config names dataset ``name``: (busy: queued, training or being evaluated; the others)."""
    busy: list[Run] = []
    idle: list[Run] = []
    for run in RunStore(runs_dir).list():
        if _dataset_of(run) != name:
            continue
        live = run.job_may_be_live() or job_status(run).get("state") in ACTIVE_STATES
        (busy if live else idle).append(run)
    return busy, idle


class DatasetInUseError(RuntimeError):
    """A dataset a queued, training or evaluated run needs; the message names the runs."""


def remove_dataset(name: str, root: str | Path, runs_dir: str | Path) -> list[Run]:
    """Delete user dataset ``name`` unless a run is using it now; returns the finished runs trained on it.

    ValueError for a name that is not a dataset the user added; DatasetInUseError naming the busy runs.
    """
    folder = store.store_dir(root) / name
    if not store.NAME_PATTERN.fullmatch(name) or not folder.is_dir():
        builtin = name in DATASETS and not DATASETS.get(name).user
        why = "it is built in" if builtin else f"there is no dataset {name!r} in {store.store_dir(root)}/"
        raise ValueError(f"cannot remove {name!r}: {why}; only datasets you added can be removed")
    busy, idle = runs_using(name, runs_dir)
    if busy:
        shown = ", ".join(r.id for r in busy[:3]) + (" …" if len(busy) > 3 else "")
        raise DatasetInUseError(f"dataset {name!r} is in use by {len(busy)} run(s) now ({shown}): stop them or wait "
                                "until they finish, then remove it")
    store.remove(folder)
    DATASETS.unregister(name)
    return idle
