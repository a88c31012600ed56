"""Form widgets generated from the config dataclasses' field metadata (``sslcore.config.field_specs``).

Types pick the widget (number input, checkbox, select box, text), defaults and bounds come from the
``param`` declarations, and the help text is the engine's own. A new pretext task file, or a new field
in one, shows up in the form with no UI edit. Validation stays in one place: the values are handed to
``config_from_dict``, whose ConfigError message the page shows as is.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import streamlit as st

from sslcore.config import (
    ConfigError,
    FieldSpec,
    RunConfig,
    coerce_value,
    config_from_dict,
    describe_bounds,
    field_specs,
    task_train_defaults,
)
from sslcore.engine.schedule import plan_schedule


def float_step(spec: FieldSpec) -> float:
    """A +/- step of the order of the default (0.001 for 2e-3, 0.1 for 0.4, 1 for 10), within the bounds."""
    scale = abs(float(spec.default)) or (spec.max or 1.0) / 100.0
    step = 10.0 ** math.floor(math.log10(scale))
    if spec.max is not None and spec.min is not None:
        step = min(step, (spec.max - spec.min) / 10.0)
    return step


def field_widget(section: str, spec: FieldSpec, key: str) -> Any:
    """The widget for one field, labelled with its name and showing its help, path and bounds on hover.

    Number boxes get no min/max: a bounded box keeps its last valid value when a person types an
    out-of-range one (the browser only marks it red, on hover), so the run would start with a value nobody
    chose. Any number is passed on, and the engine's own check is shown under the field (:func:`field_problem`).
    """
    label = spec.name.replace("_", " ")
    bounds = describe_bounds(spec)
    help_text = f"{spec.help}\n\n`{section}.{spec.name}`" + (f" — {bounds}" if bounds else "")
    if spec.choices is not None:
        options = list(spec.choices)
        return st.selectbox(label, options, index=options.index(spec.default), key=key, help=help_text)
    if spec.type is bool:
        return st.checkbox(label, value=bool(spec.default), key=key, help=help_text)
    value: int | float | str
    if spec.type is int:
        value = st.number_input(label, value=int(spec.default), step=1, key=key, help=help_text)
    elif spec.type is float:
        value = st.number_input(label, value=float(spec.default), step=float_step(spec), format="%g", key=key,
                                help=help_text)
    else:  # any other type is typed in as text and converted (and checked) by the engine
        value = st.text_input(label, value=str(spec.default), key=key, help=help_text)
    problem = field_problem(section, spec, value)
    if problem is not None:
        st.error(problem, icon=":material/error:")
    return value


def field_problem(section: str, spec: FieldSpec, value: Any) -> str | None:
    """The engine's message for ``value`` in ``section.<field>`` (names the field, value and range), or None."""
    try:
        coerce_value(section, spec, value)
    except ConfigError as error:
        return str(error)
    return None


def _field_grid(section: str, specs: list[FieldSpec], key_of: Callable[[str], str], columns: int) -> dict[str, Any]:
    if not specs:
        return {}
    cells = st.columns(min(columns, len(specs)))
    values = {}
    for i, spec in enumerate(specs):
        with cells[i % len(cells)]:
            values[spec.name] = field_widget(section, spec, key_of(spec.name))
    return values


def section_form(cls: type, section: str, *, key_prefix: str, exclude: Iterable[str] = (), columns: int = 2,
                 advanced_label: str = "Advanced settings", defaults: Mapping[str, Any] | None = None,
                 key_of: Callable[[str], str] | None = None) -> dict[str, Any]:
    """Widgets for every field of config dataclass ``cls`` (except ``exclude``); returns name -> value.

    Basic fields come first, in a grid; fields declared ``advanced=True`` are folded into an expander.
    ``key_prefix`` keeps widget state apart (e.g. one prefix per task, so switching tasks shows that
    task's own defaults); ``key_of(field)``, when given, names each widget instead. ``defaults`` replace the
    declared defaults of some fields (a task's own training settings).
    """
    skipped = set(exclude)
    defaults = defaults or {}
    specs = [dataclasses.replace(spec, default=defaults[spec.name]) if spec.name in defaults else spec
             for spec in field_specs(cls) if spec.name not in skipped]
    key = key_of or (lambda name: f"{key_prefix}.{name}")
    values = _field_grid(section, [s for s in specs if not s.advanced], key, columns)
    advanced = [s for s in specs if s.advanced]
    if advanced:
        with st.expander(advanced_label):
            values.update(_field_grid(section, advanced, key, columns))
    return values


def train_key(task_name: str, field: str) -> str:
    """The Train form's widget key of training field ``field``.

    One widget for every task (a batch size typed once stays when the task changes), except for the fields a
    task sets its own default for (SimSiam's learning rate): those are the task's own widgets, like its task
    fields, so picking that task shows its default and going back to another shows the shared one.
    """
    return f"form.train.{task_name}.{field}" if field in task_train_defaults(task_name) else f"form.train.{field}"


#: Session key: the run id whose config the form was last filled from (see :func:`form_state`).
PREFILLED_KEY = "form.prefilled_from"
#: Fields the form never shows: the data root is the server's, not the browser's, to choose.
_NOT_IN_FORM = {("data", "root")}


def widget_value(spec: FieldSpec, value: Any) -> Any:
    """``value`` as the widget :func:`field_widget` draws for ``spec`` holds it (text fields hold str)."""
    if spec.choices is not None or spec.type is bool:
        return value
    if spec.type is int:
        return int(value)
    if spec.type is float:
        return float(value)
    return str(value)


def form_state(config: RunConfig) -> dict[str, Any]:
    """Widget key -> value that makes the Train page's form show ``config``.

    Keys follow the page's scheme: ``form.<section>.<field>`` (the task's fields under
    ``form.task.<task name>.<field>``, so each task keeps its own values), plus the three pickers
    ``form.data.dataset``, ``form.task.name`` and ``form.encoder.name``. Seeding these before the widgets
    are drawn is how "Edit and train again" opens the form on an earlier run's config.
    """
    state: dict[str, Any] = {"form.task.name": config.task.name}
    sections = {"data": config.data, "encoder": config.encoder, "train": config.train, "task": config.task}
    for section, values in sections.items():
        prefix = f"form.task.{config.task.name}" if section == "task" else f"form.{section}"
        for spec in field_specs(type(values)):
            if (section, spec.name) not in _NOT_IN_FORM:
                key = train_key(config.task.name, spec.name) if section == "train" else f"{prefix}.{spec.name}"
                state[key] = widget_value(spec, getattr(values, spec.name))
    return state


def assemble_config(task_name: str, sections: dict[str, dict[str, Any]]) -> RunConfig:
    """The run config the form describes, validated by the engine (raises its ConfigError as is).

    ``sections`` maps 'data', 'encoder', 'task', 'train' to field values (the task's name apart).
    """
    data = {name: dict(values) for name, values in sections.items()}
    data["task"] = {"name": task_name, **data.get("task", {})}
    return config_from_dict(data)


def planned_lr(config: RunConfig, train_size: int, points: int = 300) -> tuple[list[int], list[float], int]:
    """The learning rate the run will use, at ``points`` evenly spread steps: (steps, lrs, steps_per_epoch).

    The trainer's own plan (:func:`sslcore.engine.schedule.plan_schedule`), sampled for a plot.
    """
    plan = plan_schedule(config.train, train_size)
    steps, lrs = plan.sample(points)
    return steps, lrs, plan.steps_per_epoch
