"""Pretext tasks, one file each. Importing this package imports every task module in it, and each
module registers itself with ``@register_task``; adding a task means adding one file here."""
import importlib
import pkgutil

from sslcore.tasks.base import TASKS, PretextTask, StepOutput, register_task


def _import_task_modules() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            importlib.import_module(f"{__name__}.{module.name}")


_import_task_modules()

__all__ = ["TASKS", "PretextTask", "StepOutput", "register_task"]
