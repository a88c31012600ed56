"""Named starting points. The default recipe lives in the config dataclasses' defaults; these are variations."""
from __future__ import annotations

from sslcore.config import RunConfig, default_config

#: The home page's one-click demo: mnist5k + SimCLR, 5 epochs (the Home page shows how long it last took here).
QUICK_DEMO = {"data.dataset": "mnist5k", "task.name": "simclr", "encoder.name": "convnet", "train.epochs": 5}


def quick_demo_config() -> RunConfig:
    return default_config(**QUICK_DEMO)
