"""Which datasets, encoders and pretext tasks fit together, decided without loading any data.

A dataset declares its ``kind`` ("image": uint8 (C, H, W) samples; "table": float32 (F,) rows) and,
where known, its sample shape. An encoder declares the kinds it accepts and its family ("mlp", "cnn",
"vit"). A task declares :class:`DataRequirements`. :func:`pairing_problem` is the one place that checks
them: the config validation (CLI, API) and the dashboard's form both call it, so a pairing that does not
fit is refused with the same sentence everywhere, and the sentence names the fix.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

IMAGE = "image"
TABLE = "table"
KINDS = (IMAGE, TABLE)


@dataclass(frozen=True)
class DataRequirements:
    """What a pretext task needs from its data and encoder.

    kinds: the data kinds it accepts. colour: needs 3-channel images. min_size: smallest image side.
    encoder_families: encoder families it works with (empty = any encoder that accepts the data kind).
    """

    kinds: tuple[str, ...] = (IMAGE,)
    colour: bool = False
    min_size: int = 0
    encoder_families: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataFacts:
    """What is known about a dataset without loading it."""

    name: str
    kind: str
    sample_shape: tuple[int, ...] | None


def _data_problem(req: DataRequirements, data: DataFacts) -> str | None:
    if data.kind not in req.kinds:
        return f"needs {' or '.join(k + ' data' for k in req.kinds)}, and {data.name!r} is {data.kind} data"
    shape = data.sample_shape
    if data.kind != IMAGE or shape is None:
        return None
    if req.colour and shape[0] != 3:
        return f"needs colour images, and {data.name!r} is grey ({shape[0]} channel)"
    if req.min_size and min(shape[1:]) < req.min_size:
        return f"needs images of at least {req.min_size}x{req.min_size}, and {data.name!r} is {shape[1]}x{shape[2]}"
    return None


def _encoder_problem(req: DataRequirements, encoder_name: str, encoder_kinds: tuple[str, ...], family: str,
                     data_kind: str) -> str | None:
    if data_kind not in encoder_kinds:
        return f"encoder {encoder_name!r} takes {' or '.join(encoder_kinds)} data, not {data_kind} data"
    if req.encoder_families and family not in req.encoder_families:
        return f"needs a {' or '.join(req.encoder_families)} encoder, and {encoder_name!r} is a {family} encoder"
    return None


def _join(names: Iterable[str]) -> str:
    names = list(names)
    return ", ".join(names) if names else "(none registered)"


def pairing_problem(task_name: str, encoder_name: str, dataset_name: str) -> str | None:
    """None if task, encoder and dataset fit together; else one sentence saying why not and what would fit.

    Names must already be registered (the registries' own errors cover unknown names).
    """
    from sslcore.models import ENCODERS
    from sslcore.tasks import TASKS

    req = TASKS.get(task_name).requires
    data = _facts(dataset_name)
    problem = data_problem(task_name, dataset_name)
    if problem is not None:
        return problem
    encoder = ENCODERS.get(encoder_name)
    problem = _encoder_problem(req, encoder_name, encoder.kinds, encoder.family, data.kind)
    if problem is not None:
        fits = [e.name for e in ENCODERS
                if _encoder_problem(req, e.name, e.obj.kinds, e.obj.family, data.kind) is None]
        prefix = "" if problem.startswith("encoder") else f"task {task_name!r} "
        return f"{prefix}{problem}; pick encoder {_join(fits)}"
    return None


def data_problem(task_name: str, dataset_name: str) -> str | None:
    """The part of :func:`pairing_problem` about the data alone: None if ``dataset_name`` meets the task's data
    requirements, else the sentence with datasets that would."""
    from sslcore.data import DATASETS
    from sslcore.tasks import TASKS

    req = TASKS.get(task_name).requires
    problem = _data_problem(req, _facts(dataset_name))
    if problem is None:
        return None
    fits = [d for d in DATASETS.names() if _data_problem(req, _facts(d)) is None]
    return f"task {task_name!r} {problem}; pick a dataset such as {_join(fits[:6])}"


def settings_problem(task_config: Any, encoder_config: Any, dataset_name: str) -> str | None:
    """None if the task's and the encoder's settings fit the dataset's images; else one line naming the
    field, the value and what is allowed (a jigsaw grid or a ViT patch size that does not divide the image).

    Each task and encoder checks its own fields (``settings_problem`` classmethods); for a dataset whose
    sample shape is not known before loading, they check again when the run builds them.
    """
    from sslcore.models import ENCODERS
    from sslcore.tasks import TASKS

    data = _facts(dataset_name)
    shape = data.sample_shape if data.kind == IMAGE else None
    return (TASKS.get(task_config.name).settings_problem(task_config, shape)
            or (None if shape is None else ENCODERS.get(encoder_config.name).settings_problem(encoder_config.options(),
                                                                                             shape)))


def _facts(dataset_name: str) -> DataFacts:
    from sslcore.data import dataset_info

    info = dataset_info(dataset_name)
    return DataFacts(dataset_name, str(info["kind"]), info["sample_shape"])  # type: ignore[arg-type]


def tasks_for(dataset_name: str) -> list[str]:
    """Names of the tasks whose data requirements ``dataset_name`` meets (the form offers only these)."""
    from sslcore.tasks import TASKS

    data = _facts(dataset_name)
    return [e.name for e in TASKS if _data_problem(e.obj.requires, data) is None]


def tasks_of_kind(dataset_name: str) -> list[str]:
    """Names of the tasks that take ``dataset_name``'s kind of data, whether or not they fit it otherwise (a
    colour-only task on grey images): what a form lists, so that it can say why one does not fit."""
    from sslcore.tasks import TASKS

    kind = _facts(dataset_name).kind
    return [e.name for e in TASKS if kind in e.obj.requires.kinds]


def encoders_of_kind(dataset_name: str) -> list[str]:
    """Names of the encoders that take ``dataset_name``'s kind of data, whatever the task."""
    from sslcore.models import ENCODERS

    kind = _facts(dataset_name).kind
    return [e.name for e in ENCODERS if kind in e.obj.kinds]


def default_encoder(task_name: str, dataset_name: str, preferred: str) -> str:
    """``preferred`` if it fits ``task_name`` on ``dataset_name``, else the first encoder that does.

    What a config that names no encoder gets: the default convnet for images, the table MLP for a table.
    """
    fits = encoders_for(task_name, dataset_name)
    return preferred if preferred in fits or not fits else fits[0]


def datasets_for(task_name: str) -> list[str]:
    """Names of the datasets that meet ``task_name``'s data requirements, embedded ones (no files needed) first."""
    from sslcore.data import DATASETS
    from sslcore.tasks import TASKS

    req = TASKS.get(task_name).requires
    fits = [e for e in DATASETS if _data_problem(req, _facts(e.name)) is None]
    return [e.name for e in sorted(fits, key=lambda e: not e.obj.embedded)]


def encoders_for(task_name: str, dataset_name: str) -> list[str]:
    """Names of the encoders that fit ``task_name`` on ``dataset_name``."""
    from sslcore.models import ENCODERS
    from sslcore.tasks import TASKS

    req, kind = TASKS.get(task_name).requires, _facts(dataset_name).kind
    return [e.name for e in ENCODERS if _encoder_problem(req, e.name, e.obj.kinds, e.obj.family, kind) is None]
