"""How a task's snapshot is drawn, declared by the task as plain data (no streamlit here).

A task's ``snapshot`` returns named arrays for N fixed test images: uint8 pictures (N, C, H, W) and
per-image numbers (N,); a table task returns rows of standardised values (N, F) instead of pictures, drawn
as heat maps (``rows``), optionally with the cells it changed outlined (``marked``) and the error of each
column (``column_error``). Its ``panels`` (a :class:`SnapshotPanels`) say what a viewer does with them:
which pictures stand side by side (:class:`ImageColumn`), which numbers there are and whether higher is
better (:class:`Value`), the line under each image (``caption``), which number sorts "worst first", and
the one number that sums up an epoch (:class:`Summary`). The Reconstructions & views page draws any task
from this alone, so a task with a new kind of picture needs no edit outside its own file.

Example (a reconstruction task)::

    panels = SnapshotPanels(
        images=(ImageColumn("original", "original"), ImageColumn("reconstruction", "reconstruction")),
        values=(Value("error", "error", "{:.4f}", higher_is_better=False),),
        caption="error {error:.4f}",
        worst_first="error", worst_label="Worst reconstructed first",
        summary=Summary("error", "Mean reconstruction error", axis="error", fmt="{:.4f}"),
        explanation="What the pictures show, in two or three plain sentences.")
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Arrays = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class ImageColumn:
    """One picture per image: the snapshot's uint8 (N, C, H, W) array ``array``, titled ``title``.

    ``hide_if_same_as``: leave the column out when its pictures equal that array's (an autoencoder's
    input is the original itself; showing it twice says nothing).
    """

    array: str
    title: str
    hide_if_same_as: str = ""


@dataclass(frozen=True)
class Value:
    """A per-image value (N,): the snapshot's array ``name``, or computed from its arrays by ``compute``.

    ``higher_is_better``: True/False for a score (it decides what "worst" and a green change mean);
    None for a plain fact (an angle, a mark). ``compute`` must be a pure function of the arrays.
    """

    name: str
    label: str
    fmt: str = "{:.4f}"
    higher_is_better: bool | None = None
    compute: Callable[[Arrays], np.ndarray] | None = None

    def of(self, arrays: Arrays) -> np.ndarray:
        """The (N,) values of the snapshot ``arrays``."""
        return np.asarray(self.compute(arrays) if self.compute is not None else arrays[self.name])


@dataclass(frozen=True)
class Summary:
    """The one number per epoch: the mean over the images of value ``value``.

    ``label`` titles it ('Mean reconstruction error'), ``axis`` is its short chart axis title, ``fmt``
    writes it; ``percent``: a share in [0, 1], so changes are written in points and the axis in %.
    ``judged``: whether a change says better or worse (its value's ``higher_is_better`` colours it); False for
    a number a healthy run may move either way, shown without colour (the encoder's similarity of two views:
    training also spreads different images apart, and on the default SimCLR run it fell from 0.88 to 0.83 while
    the k-NN accuracy rose from 79% to 94%).
    """

    value: str
    label: str
    axis: str
    fmt: str = "{:.4f}"
    percent: bool = False
    judged: bool = True


@dataclass(frozen=True, kw_only=True)
class SnapshotPanels:
    """What a viewer draws of one task's snapshot (see the module docstring for an example).

    images: the picture columns, left to right (may be empty: a table's rows have no pictures).
    values: the per-image values. caption: a ``str.format`` template for the line under each image; its
    fields are the names of the ``values`` and of the snapshot's per-image (N,) arrays; empty = each value
    as "label value" (its ``fmt``), joined by " · ". worst_first: the value that orders images worst
    first (lowest first if higher is better, else highest first); worst_label names that order.
    summary: the epoch's one number. explanation: what the pictures show, in plain words (Markdown).
    required: arrays the snapshot must hold besides the image columns and stored values (checked on read).
    rows: for tables, the (N, F) float arrays of standardised values drawn as heat maps, top to bottom (an
    :class:`ImageColumn` each: array, title, hide_if_same_as). marked: a bool (N, F) array of the cells the
    task changed, outlined on the heat maps. column_error: (target, prediction) arrays whose squared
    difference, averaged over the rows, is drawn per column (which columns the model finds predictable).
    """

    images: tuple[ImageColumn, ...]
    values: tuple[Value, ...]
    worst_first: str
    worst_label: str
    summary: Summary
    caption: str = ""
    explanation: str = ""
    required: tuple[str, ...] = ()
    rows: tuple[ImageColumn, ...] = ()
    marked: str = ""
    column_error: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = {v.name for v in self.values}
        for field, name in (("worst_first", self.worst_first), ("summary.value", self.summary.value)):
            if name not in names:
                raise ValueError(f"SnapshotPanels.{field} = {name!r} is not one of the values {sorted(names)}")
        if self.value(self.worst_first).higher_is_better is None:
            raise ValueError(f"SnapshotPanels.worst_first = {self.worst_first!r} needs a value with "
                             "higher_is_better set")

    def value(self, name: str) -> Value:
        """The declared value called ``name``."""
        return next(v for v in self.values if v.name == name)

    def required_arrays(self) -> tuple[str, ...]:
        """Every array a snapshot drawn with these panels must hold, one entry per image each."""
        names = [c.array for c in (*self.images, *self.rows)] + [v.name for v in self.values if v.compute is None]
        return tuple(dict.fromkeys([*names, *([self.marked] if self.marked else []), *self.column_error,
                                    *self.required]))

    def columns(self, arrays: Arrays) -> list[ImageColumn]:
        """The image columns to draw, left to right, without those equal to their ``hide_if_same_as``."""
        return _shown(self.images, arrays)

    def row_arrays(self, arrays: Arrays) -> list[ImageColumn]:
        """A table's heat maps to draw, top to bottom, without those equal to their ``hide_if_same_as``."""
        return _shown(self.rows, arrays)

    def column_errors(self, arrays: Arrays) -> np.ndarray | None:
        """Mean squared difference per column (F,) between the ``column_error`` arrays, or None if undeclared."""
        if not self.column_error:
            return None
        target, prediction = (np.asarray(arrays[name], dtype=np.float64) for name in self.column_error)
        return ((prediction - target) ** 2).mean(axis=0)

    def summary_value(self, arrays: Arrays) -> float:
        """The epoch's one number: the mean of the summary value over the images."""
        return float(np.mean(self.value(self.summary.value).of(arrays).astype(np.float64)))

    def higher_is_better(self) -> bool:
        """Whether a rise of the summary number is good news (it colours the change)."""
        return bool(self.value(self.summary.value).higher_is_better)

    def worst_order(self, arrays: Arrays) -> np.ndarray:
        """Image indices (N,) from worst to best by ``worst_first``; ties keep the snapshot's order."""
        value = self.value(self.worst_first)
        scores = value.of(arrays).astype(np.float64)
        return np.argsort(scores if value.higher_is_better else -scores, kind="stable")

    def caption_of(self, arrays: Arrays, i: int) -> str:
        """The line under image ``i`` (without its class name)."""
        if not self.caption:
            return " · ".join(f"{v.label} {v.fmt.format(v.of(arrays)[i].item())}" for v in self.values)
        fields: dict[str, Any] = {name: a[i].item() for name, a in arrays.items() if a.ndim == 1}
        fields.update({v.name: v.of(arrays)[i].item() for v in self.values})
        return self.caption.format(**fields)

    def retitled(self, array: str, title: str, explanation: str | None = None) -> SnapshotPanels:
        """A copy with image column ``array`` titled ``title`` (and a new explanation, if given)."""
        images = tuple(dataclasses.replace(c, title=title) if c.array == array else c for c in self.images)
        text = self.explanation if explanation is None else explanation
        return dataclasses.replace(self, images=images, explanation=text)


def _shown(columns: tuple[ImageColumn, ...], arrays: Arrays) -> list[ImageColumn]:
    return [c for c in columns
            if not (c.hide_if_same_as and np.array_equal(arrays[c.array], arrays[c.hide_if_same_as]))]


def guess_values(predicted: str, true: str) -> tuple[Value, ...]:
    """The per-image values of a task that guesses which of several transforms it was shown (rotation, jigsaw):
    the snapshot's ``confidence``, whether its array ``predicted`` equals ``true`` ("right"), a ✓/✗ "mark", and
    "sure_and_right", the confidence negative when wrong: low to high it orders the confidently wrong first,
    then the unsure wrong, the unsure right and the surely right (use it as ``worst_first``)."""

    def right(a: Arrays) -> np.ndarray:
        return a[predicted] == a[true]

    def sure_and_right(a: Arrays) -> np.ndarray:
        return np.where(right(a), 1.0, -1.0) * a["confidence"].astype(np.float64)

    return (Value("confidence", "confidence", "{:.0%}"),
            Value("right", "right", "{:.0%}", higher_is_better=True, compute=right),
            Value("mark", "right or wrong", "{}", compute=lambda a: np.where(right(a), "✓", "✗")),
            Value("sure_and_right", "confidence, negative when wrong", "{:+.2f}", higher_is_better=True,
                  compute=sure_and_right))
