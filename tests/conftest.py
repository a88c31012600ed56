"""Shared fixtures: small, fast configurations on the embedded `digits` dataset."""
from __future__ import annotations

from typing import Any

import pytest
import torch

from sslcore.config import RunConfig, default_config


def tiny_config(task: str = "simclr", **overrides: Any) -> RunConfig:
    """A few-second run on digits (1,437 train images of 8x8) with a narrow convnet."""
    base = {"data.dataset": "digits", "task.name": task, "encoder.width": 8, "train.epochs": 2,
            "train.batch_size": 128, "train.threads": 1, "train.snapshot_images": 4}
    return default_config(**{**base, **overrides})


@pytest.fixture(autouse=True)
def _single_thread() -> None:
    # Tests run next to other work on a 2-core machine; one thread keeps timings sane and results stable.
    torch.set_num_threads(1)


def dataset_for(task: str) -> str:
    """The smallest embedded dataset ``task`` fits (digits for image tasks), for tests parametrised over tasks."""
    from sslcore.data import DATASETS, dataset_info
    from sslcore.pairing import tasks_for

    embedded = [d for d in DATASETS.names() if dataset_info(d)["embedded"]]
    fits = [d for d in sorted(embedded, key=lambda d: (d != "digits", d)) if task in tasks_for(d)]
    if not fits:
        raise LookupError(f"no embedded dataset fits task {task!r}")
    return fits[0]
