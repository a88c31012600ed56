"""Run configuration: the whole run's config, one validation path, JSON round-trip, dotted overrides.

The fields and sections themselves (:func:`param`, :class:`DataConfig`, ..., :class:`TaskConfig`) are
declared in :mod:`sslcore.config_schema`, which depends on nothing else, and re-exported here. This module
builds and validates a :class:`RunConfig`; it needs the registries of tasks, encoders and datasets, and
imports them like any other dependency (they import only the schema).
"""
from __future__ import annotations

import dataclasses
import json
import reprlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sslcore.config_schema import (
    SECTIONS,
    ConfigError,
    DataConfig,
    EncoderConfig,
    FieldSpec,
    TaskConfig,
    TrainConfig,
    build_section,
    coerce_value,
    describe_bounds,
    field_specs,
    param,
    section_dict,
)
from sslcore.data import DATASETS, DatasetNotFoundError, find_dataset
from sslcore.models import ENCODERS
from sslcore.pairing import default_encoder, pairing_problem, settings_problem
from sslcore.registry import UnknownNameError
from sslcore.tasks import TASKS
from sslcore.userdata.store import NAME_PATTERN


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run. ``task`` is an instance of the chosen task's own config class."""

    data: DataConfig
    encoder: EncoderConfig
    task: TaskConfig
    train: TrainConfig

    def to_dict(self) -> dict[str, Any]:
        return {"data": section_dict(self.data), "encoder": section_dict(self.encoder),
                "task": {"name": self.task.name, **section_dict(self.task)}, "train": section_dict(self.train)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def replace(self, overrides: dict[str, Any]) -> RunConfig:
        """A copy with dotted overrides applied (``{"task.temperature": "0.2"}``), validated."""
        return config_from_dict(self.to_dict(), overrides)


def _task_class(name: str) -> Any:
    try:
        return TASKS.get(name)
    except UnknownNameError:
        raise ConfigError(f"task.name = {name!r} is not allowed: expected one of {', '.join(TASKS.names())}") from None


def task_config_class(name: str) -> type:
    """The config dataclass of pretext task ``name``."""
    return _task_class(name).Config


def task_train_defaults(name: str) -> dict[str, Any]:
    """The training settings pretext task ``name`` starts from where its recipe differs from ``TrainConfig``'s
    defaults (e.g. ``{"lr": 5e-4}`` for SimSiam); empty for most tasks."""
    return dict(_task_class(name).train_defaults)


def config_from_dict(data: dict[str, Any], overrides: dict[str, Any] | None = None, *,
                     stored: bool = False) -> RunConfig:
    """Build and validate a RunConfig from nested dicts (JSON) plus dotted overrides.

    Setting ``task.name`` switches the task; the other task fields then start from that task's defaults
    unless they are also given. Training fields not given start from the task's :func:`task_train_defaults`,
    then ``TrainConfig``'s. When no encoder name is given, the default encoder is used if it fits the
    task and data, else the first that does (``table_mlp`` for a table). ``stored``: the config of an existing
    (or imported) run, whose dataset may be one the user added and is not on this machine now; it is accepted,
    and loading its data says so.
    """
    unknown = sorted(set(data) - {"data", "encoder", "task", "train"})
    if unknown:
        raise ConfigError(f"{unknown[0]} is not a config section; sections are: data, encoder, task, train")
    not_object = sorted(k for k, v in data.items() if not isinstance(v, dict))
    if not_object:  # dropping it would silently train with the defaults instead of what was written
        name = not_object[0]
        raise ConfigError(f"config section {name} = {reprlib.repr(data[name])} is not allowed: expected an object "
                          "of fields, e.g. {\"epochs\": 10}")
    merged: dict[str, dict[str, Any]] = {k: dict(v) for k, v in data.items()}
    overrides = overrides or {}
    new_task = overrides.get("task.name")
    if new_task is not None and new_task != merged.get("task", {}).get("name"):
        merged["task"] = {}  # another task's fields would not fit the new one
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if not name:
            raise ConfigError(f"{key!r} must look like section.field, e.g. task.temperature")
        if section not in ("data", "encoder", "task", "train"):
            raise ConfigError(f"{section} is not a config section; sections are: data, encoder, task, train")
        merged.setdefault(section, {})[name] = value
    task_values = dict(merged.get("task", {}))
    task_name = str(task_values.pop("name", "simclr"))
    merged["train"] = {**task_train_defaults(task_name), **merged.get("train", {})}
    sections = {name: build_section(cls, name, merged.get(name, {})) for name, cls in SECTIONS.items()}
    task = build_section(task_config_class(task_name), "task", task_values)
    if _check_names(sections["data"], sections["encoder"], stored):
        if "name" not in merged.get("encoder", {}):  # no encoder chosen: the default that fits the data
            sections["encoder"] = _default_encoder(task.name, sections["data"].dataset, sections["encoder"])
        _check_pairing(task, sections["encoder"], sections["data"].dataset)
    return RunConfig(data=sections["data"], encoder=sections["encoder"], task=task, train=sections["train"])


def _check_names(data: DataConfig, encoder: EncoderConfig, stored: bool) -> bool:
    """Raise ConfigError for an unknown encoder or dataset; returns whether the dataset is known (a ``stored``
    config may name a missing one). The user's datasets under ``data.root`` are looked up first."""
    if encoder.name not in ENCODERS:
        raise ConfigError(f"encoder.name = {encoder.name!r} is not allowed: "
                          f"expected one of {', '.join(ENCODERS.names())}")
    try:
        find_dataset(data.dataset, data.root)
    except DatasetNotFoundError:
        if stored and NAME_PATTERN.fullmatch(data.dataset):  # a name a user dataset could have, nothing else
            return False
        raise ConfigError(f"data.dataset = {data.dataset!r} is not allowed: "
                          f"expected one of {', '.join(DATASETS.names())} "
                          "(or add your own images: `sslcore data add PATH --name NAME`)") from None
    return True


def _default_encoder(task: str, dataset: str, encoder: EncoderConfig) -> EncoderConfig:
    return dataclasses.replace(encoder, name=default_encoder(task, dataset, encoder.name))


def _check_pairing(task: TaskConfig, encoder: EncoderConfig, dataset: str) -> None:
    problem = pairing_problem(task.name, encoder.name, dataset) or settings_problem(task, encoder, dataset)
    if problem is not None:
        raise ConfigError(problem)


def default_config(**overrides: Any) -> RunConfig:
    """The default recipe (mnist5k + simclr + convnet), with dotted overrides:
    ``default_config(**{"train.epochs": 2})``."""
    return config_from_dict({}, overrides)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a JSON config file (full or partial) into nested dicts, with a clear error if it is not JSON."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))  # JSON is UTF-8, whatever the locale says
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {e.start}): save it as UTF-8 JSON") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"config file {path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a JSON object with sections data, encoder, task, train")
    return data


def parse_assignments(items: list[str]) -> dict[str, str]:
    """``["task.temperature=0.2"]`` -> ``{"task.temperature": "0.2"}``; values stay strings until validated."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r} must look like section.field=value, e.g. task.temperature=0.2")
        out[key.strip()] = value.strip()
    return out


__all__ = ["ConfigError", "param", "FieldSpec", "field_specs", "DataConfig", "EncoderConfig", "TrainConfig",
           "TaskConfig", "RunConfig", "config_from_dict", "default_config", "load_config_file",
           "parse_assignments", "task_config_class", "task_train_defaults", "coerce_value", "build_section",
           "describe_bounds"]

