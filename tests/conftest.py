"""Shared fixtures: small, fast configurations on the embedded `digits` dataset (or one a task fits)."""
from __future__ import annotations

from typing import Any

import pytest
import torch

from sslcore.config import RunConfig, default_config

#: Small embedded datasets the tests train on, in order of preference; a task gets the first one it fits.
TEST_DATASETS = ("digits", "shapes")
#: Training images kept of a test dataset other than digits (stratified), so a run stays a few seconds.
TEST_TRAIN_LIMIT = 640


def fitting_data(task: str) -> dict[str, Any]:
    """Data overrides that fit ``task``, chosen through ``sslcore.pairing``: digits where the task fits it,
    else the first small dataset that does (shapes for colour-only tasks, a table for table tasks), capped
    to a few hundred training images. The config then picks an encoder that fits (vit_tiny for mae), so a
    new task is tested with no test edits."""
    from sslcore.data import DATASETS, dataset_info
    from sslcore.pairing import encoders_for, tasks_for

    embedded = [n for n in DATASETS.names() if dataset_info(n)["embedded"] and n not in TEST_DATASETS]
    fits = [d for d in (*TEST_DATASETS, *embedded) if task in tasks_for(d) and encoders_for(task, d)]
    if not fits:
        raise LookupError(f"no embedded dataset fits task {task!r}")
    return {"data.dataset": fits[0]} if fits[0] == "digits" else {"data.dataset": fits[0],
                                                                   "data.train_limit": TEST_TRAIN_LIMIT}


def tiny_config(task: str = "simclr", **overrides: Any) -> RunConfig:
    """A few-second run with a narrow encoder: on digits (1,437 train images of 8x8) with a convnet where
    the task fits them, else on the data :func:`fitting_data` picks (unless ``overrides`` name a dataset)."""
    data = {} if "data.dataset" in overrides else fitting_data(task)
    base = {**data, "task.name": task, "encoder.width": 8, "train.epochs": 2,
            "train.batch_size": 128, "train.threads": 1, "train.snapshot_images": 4}
    return default_config(**{**base, **overrides})


@pytest.fixture(autouse=True)
def _single_thread() -> None:
    # Tests run next to other work on a 2-core machine; one thread keeps timings sane and results stable.
    torch.set_num_threads(1)


def dataset_for(task: str) -> str:
    """The smallest embedded dataset ``task`` fits (digits for image tasks), for tests parametrised over tasks."""
    return fitting_data(task)["data.dataset"]
