"""What a task shows the model, without training: the dashboard's preview of a task's views.

The task is built exactly as a run builds it (:func:`sslcore.tasks.build.build_task`), on the test samples a
run's snapshots would pick, so a combination the task refuses raises its ConfigError here, before any run.
"""
from __future__ import annotations

import torch

from sslcore.config import RunConfig
from sslcore.data import DatasetSplit
from sslcore.engine.run_callbacks import pick_snapshot_indices
from sslcore.tasks.build import build_task


def preview_views(config: RunConfig, data: DatasetSplit, count: int,
                  seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(the indices (count,) of the test samples shown, view name -> model-input batch of them).

    Views are images (count, C, H, W) in [0, 1] or table rows (count, F), as the task's ``make_views`` makes
    them; ``seed`` picks the samples and the random corruption or augmentation.
    """
    task = build_task(config, data)
    indices = pick_snapshot_indices(data.test, count, seed)
    inputs = data.test.to_input(data.test.samples[indices])
    with torch.no_grad():
        views = task.make_views(inputs, torch.Generator().manual_seed(seed))
    return indices, views
