"""Building a pretext task for a run: its encoder sized for the data and normalised with the train split's
statistics, wrapped by the task the config names.

Here, beside the tasks, so that everything that needs a run's model (the trainer, the evaluation, the
dashboard's previews) builds it the same way without depending on the training engine.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from sslcore.models import build_encoder
from sslcore.tasks.base import TASKS, PretextTask

if TYPE_CHECKING:  # types only: sslcore.config imports the tasks
    from sslcore.config import RunConfig
    from sslcore.data import DatasetSplit


def build_task(config: RunConfig, data: DatasetSplit) -> PretextTask:
    """Encoder + task for ``config``, sized for ``data`` and normalised with its train-split statistics."""
    mean, std = data.train.input_stats(data.train.samples)
    e = config.encoder
    encoder = build_encoder(e.name, data.sample_shape, width=e.width, depth=e.depth, norm=e.norm,
                            patch_size=e.patch_size, mean=mean, std=std)
    return TASKS.get(config.task.name)(encoder, config.task, data.sample_shape)
