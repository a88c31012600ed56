"""Run configuration fields and sections: the frozen dataclasses every part of a run is declared with.

Each section is a frozen dataclass whose fields are declared with :func:`param`, which records help text and
bounds. That metadata is the single source of truth for validation, for the CLI's ``--set section.field=value``
and for the dashboard's generated forms. A pretext task's config subclasses :class:`TaskConfig`.

This module depends on nothing else in sslcore, so tasks, encoders and datasets can declare their fields here
while :mod:`sslcore.config` (which builds and validates a whole run's config) depends on them, one way.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal


class ConfigError(ValueError):
    """A bad configuration value; the message names the field, the value and what is allowed."""


# --------------------------------------------------------------------------------------------------
# field metadata
# --------------------------------------------------------------------------------------------------

def param(default: Any, help: str, *, min: float | None = None, max: float | None = None,
          choices: tuple[Any, ...] | None = None, advanced: bool = False) -> Any:
    """Declare a config field with help text and inclusive bounds (or a fixed set of choices).

    ``advanced`` fields are folded away in the dashboard form but behave like any other field.
    """
    meta = {"help": help, "min": min, "max": max, "choices": choices, "advanced": advanced}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class FieldSpec:
    """What a form or parser needs to know about one field."""

    name: str
    type: type
    default: Any
    help: str
    min: float | None
    max: float | None
    choices: tuple[Any, ...] | None
    advanced: bool


def field_specs(cls: type) -> list[FieldSpec]:
    """The fields of a config dataclass with resolved types and their metadata."""
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        choices = f.metadata.get("choices")
        if typing.get_origin(hint) is Literal:
            choices = typing.get_args(hint)
            hint = type(choices[0])
        specs.append(FieldSpec(f.name, hint, f.default, f.metadata.get("help", ""), f.metadata.get("min"),
                               f.metadata.get("max"), choices, f.metadata.get("advanced", False)))
    return specs


def describe_bounds(spec: FieldSpec) -> str:
    """'between 0.01 and 10', '>= 0', '<= 5', 'one of a, b', or '' for an unbounded field."""
    if spec.choices is not None:
        return "one of " + ", ".join(str(c) for c in spec.choices)
    if spec.min is not None and spec.max is not None:
        return f"between {spec.min:g} and {spec.max:g}"
    if spec.min is not None:
        return f">= {spec.min:g}"
    if spec.max is not None:
        return f"<= {spec.max:g}"
    return ""


def _describe_allowed(spec: FieldSpec) -> str:
    if spec.choices is not None:
        return describe_bounds(spec)
    kind = {int: "an integer", float: "a number", bool: "true or false", str: "text"}.get(spec.type, spec.type.__name__)
    bounds = describe_bounds(spec)
    return f"{kind} {bounds}" if bounds else kind


def _fail(section: str, spec: FieldSpec, value: Any) -> ConfigError:
    return ConfigError(f"{section}.{spec.name} = {value!r} is not allowed: expected {_describe_allowed(spec)}")


def coerce_value(section: str, spec: FieldSpec, value: Any) -> Any:
    """Turn ``value`` (a JSON value or a command-line string) into the field's type and check it."""
    converted = _convert(section, spec, value)
    if spec.choices is not None and converted not in spec.choices:
        raise _fail(section, spec, value)
    if spec.type in (int, float):
        if not math.isfinite(converted):
            raise _fail(section, spec, value)
        if (spec.min is not None and converted < spec.min) or (spec.max is not None and converted > spec.max):
            raise _fail(section, spec, value)
    return converted


def _convert(section: str, spec: FieldSpec, value: Any) -> Any:
    try:
        if spec.type is bool:
            return _to_bool(value)
        if spec.type is int:
            return _to_int(value)
        if spec.type is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if spec.type is str:
            if not isinstance(value, str):
                raise ValueError
            return value
    except (TypeError, ValueError):
        raise _fail(section, spec, value) from None
    raise _fail(section, spec, value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
        return value.lower() in ("true", "1", "yes", "on")
    raise ValueError


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    raise ValueError


def build_section(cls: type, section: str, values: dict[str, Any]) -> Any:
    """Instantiate config dataclass ``cls`` from a mapping, validating every value.

    Unknown keys are refused with the list of fields that exist.
    """
    specs = {s.name: s for s in field_specs(cls)}
    unknown = sorted(set(values) - set(specs))
    if unknown:
        raise ConfigError(f"{section}.{unknown[0]} is not a field; {section} has: {', '.join(specs)}")
    kwargs = {name: coerce_value(section, specs[name], v) for name, v in values.items()}
    for spec in specs.values():  # defaults are validated too, so a bad default cannot slip through
        if spec.name not in kwargs:
            coerce_value(section, spec, spec.default)
    return cls(**kwargs)


def section_dict(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


# --------------------------------------------------------------------------------------------------
# the sections of a run
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DataConfig:
    dataset: str = param("mnist5k", "Dataset name (see `python -m sslcore datasets`).")
    root: str = param("data", "Folder holding downloadable datasets (MNIST, CIFAR-10, ...).", advanced=True)
    download: bool = param(False, "Download the dataset into `root` if its files are missing.", advanced=True)
    test_fraction: float = param(0.2, "Share of images held out as the test split (datasets without an official "
                                 "split).", min=0.05, max=0.5, advanced=True)
    train_limit: int = param(0, "Use at most this many training images (stratified); 0 = all.", min=0, advanced=True)
    split_seed: int = param(0, "Seed of the train/test split.", min=0, advanced=True)
    # Options of one dataset (its ``options`` in the registry); the others ignore them and the form hides them.
    synthetic_rows: int = param(20_000, "synthetic_table only: rows generated (train + test).", min=200, max=200_000)
    synthetic_columns: int = param(32, "synthetic_table only: columns; a quarter informative, a quarter redundant "
                                   "(mixtures of the informative ones), the rest pure noise.", min=4, max=512)
    synthetic_noise: float = param(0.5, "synthetic_table only: std of the noise added to every column (each column "
                                   "has unit spread before it).", min=0.0, max=5.0)


@dataclass(frozen=True)
class EncoderConfig:
    """The encoder's architecture. ``name`` and ``width`` apply to every encoder; each encoder uses the other
    fields it needs and ignores the rest (a CNN has no depth field of its own, an MLP no patches)."""

    name: str = param("convnet", "Encoder architecture (see `python -m sslcore encoders`).")
    width: int = param(32, "Base width: channels of the first conv layer, units / 8 of the MLP, or token size / 4 of "
                           "the ViT.", min=4, max=256)
    depth: int = param(2, "MLP encoders: hidden layers (8 x width units each, the last one 4 x width: the features). "
                          "ViT: transformer blocks.", min=1, max=8)
    norm: str = param("batch", "MLP encoders only: normalisation after each hidden layer.", choices=("batch", "layer"))
    patch_size: int = param(4, "ViT only: side of the square patches an image is cut into, in pixels; must divide "
                               "the image side.", min=1, max=32)

    def options(self) -> dict[str, Any]:
        """The fields besides name and width, as keywords of ``sslcore.models.build_encoder``."""
        return {k: v for k, v in section_dict(self).items() if k not in ("name", "width")}


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = param(10, "Passes over the training images.", min=1, max=10000)
    batch_size: int = param(128, "Images per optimisation step (over all processes when several train the run).",
                            min=2, max=8192)
    optimizer: str = param("adamw", "Optimiser.", choices=("adamw", "sgd"))
    lr: float = param(2e-3, "Peak learning rate (after warm-up). Some tasks start from their own (SimSiam).",
                      min=1e-7, max=10.0)
    weight_decay: float = param(1e-4, "Decoupled weight decay.", min=0.0, max=1.0)
    warmup_epochs: float = param(1.0, "Linear warm-up length in epochs, then cosine decay.", min=0.0, max=1000.0)
    min_lr_ratio: float = param(0.01, "Final learning rate as a fraction of the peak.", min=0.0, max=1.0, advanced=True)
    seed: int = param(0, "Seed for initialisation, batch order and augmentations.", min=0)
    device: str = param("auto", "Where to train: auto picks cuda > mps > cpu.", choices=("auto", "cpu", "cuda", "mps"))
    precision: str = param("auto", "auto: bf16 autocast where it is faster (GPUs with bf16; conv nets on CPUs with "
                                   "native bf16, AVX512-BF16 or AMX); bf16: always; fp32: never.",
                           choices=("auto", "bf16", "fp32"), advanced=True)
    threads: int = param(0, "CPU threads for this run; 0 = all cores.", min=0, max=256, advanced=True)
    knn_k: int = param(20, "Neighbours of the online k-NN monitor (0 turns it off).", min=0, max=200, advanced=True)
    monitor_every: int = param(1, "Epochs between the monitor's passes (online k-NN, collapse figures, the task's "
                               "held-out scores); the untrained start and the last epoch are always measured. "
                               "Raise it when epochs are short and the monitor's time shows.", min=1, max=10000,
                               advanced=True)
    snapshot_images: int = param(8, "Test images shown in the per-epoch snapshots.", min=0, max=64, advanced=True)
    log_every: int = param(1, "Read the step loss back and write it every N steps (on a GPU each read waits for "
                           "the device: raise this for speed).", min=1, max=10000, advanced=True)
    sync_bn: bool = param(True, "With several processes, BatchNorm statistics of the whole global batch "
                          "(synchronised); off = each process's own slice.", advanced=True)


class TaskConfig:
    """Base of every pretext task's config dataclass; ``name`` is set when the task registers."""

    name: ClassVar[str] = ""


SECTIONS: dict[str, type] = {"data": DataConfig, "encoder": EncoderConfig, "train": TrainConfig}

