"""Reading a run's ``eval.json``, checked: the one reader for every table, chart and command that shows results.

eval.json is written by :func:`sslcore.evaluation.protocol.evaluate_run`, but may also come from an imported
archive or a hand edit. :func:`read_eval_results` checks the parts that readers index into (each result row's
method, budget, scores and per-repeat lists; the protocol; the subsets), so code downstream can rely on them;
anything else is a :class:`~sslcore.runs.files.DamagedFileError` naming what is wrong.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sslcore.runs.files import DamagedFileError, read_json_object

EVAL_FILE = "eval.json"
Budget = int | str


@dataclass(frozen=True)
class ResultRow:
    """One method at one label budget: test accuracy as a fraction, mean and standard deviation over repeats."""

    method: str
    labels_per_class: Budget
    accuracy_mean: float
    accuracy_std: float
    repeats: int


@dataclass(frozen=True)
class EvalResults:
    """A checked eval.json: its result rows, its protocol, and the whole file as stored (``data``)."""

    rows: tuple[ResultRow, ...]
    protocol: dict[str, Any]
    data: dict[str, Any]

    def probe_accuracy(self) -> float | None:
        """Linear-probe test accuracy with all labels, else with the largest budget evaluated; None if absent."""
        probes = [r for r in self.rows if r.method == "linear_probe"]
        if not probes:
            return None
        best = max(probes, key=lambda r: math.inf if r.labels_per_class == "all" else float(r.labels_per_class))
        return best.accuracy_mean


#: What a method is called in eval.json (it is shown, so an imported file may not put arbitrary text there).
METHOD_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_WORD = re.compile(r"[A-Za-z0-9_.:+-]{0,64}")
#: What the label-efficiency chart and the protocol paragraph cannot do without.
REQUIRED_PROTOCOL_FIELDS = ("budgets", "repeats", "train_size")
#: Protocol fields that pages show, and the check each must pass when present.
_SHOWN_PROTOCOL_FIELDS: dict[str, Callable[[Any], bool]] = {
    "train_size": lambda v: _count(v), "test_size": lambda v: _count(v), "num_classes": lambda v: _count(v),
    "repeats": lambda v: _count(v), "seed": lambda v: _count(v),
    "budgets": lambda v: isinstance(v, list) and all(_budget(b) for b in v),
    "subset_seeds": lambda v: isinstance(v, list) and all(_count(x) for x in v),
    "methods": lambda v: isinstance(v, list) and all(isinstance(m, str) and METHOD_NAME.fullmatch(m) for m in v),
    "dataset": lambda v: isinstance(v, dict),
    "supervised": lambda v: isinstance(v, dict) and all(_scalar(x) for x in v.values()),
}


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _scalar(value: Any) -> bool:
    """A number, a flag, nothing, a short identifier, or a list of numbers (e.g. an image shape)."""
    if value is None or isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, str):  # no Markdown or HTML syntax: it is shown in the protocol paragraph
        return _WORD.fullmatch(value) is not None
    return isinstance(value, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value)


def _fraction(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1


def _budget(value: Any) -> bool:
    return value == "all" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)


def _row(index: int, raw: Any) -> ResultRow:
    where = f"{EVAL_FILE}: results[{index}]"
    if not isinstance(raw, dict):
        raise DamagedFileError(f"{where} is not an object")
    if not isinstance(raw.get("method"), str) or not METHOD_NAME.fullmatch(raw["method"]) \
            or not _budget(raw.get("labels_per_class")):
        raise DamagedFileError(f"{where} has no valid method and labels_per_class")
    if not (_fraction(raw.get("accuracy_mean")) and _fraction(raw.get("accuracy_std"))):
        raise DamagedFileError(f"{where} has no accuracy_mean and accuracy_std between 0 and 1")
    accuracies = raw.get("accuracies")
    if not isinstance(accuracies, list) or not accuracies or not all(_fraction(a) for a in accuracies):
        raise DamagedFileError(f"{where}.accuracies is not a list of accuracies between 0 and 1")
    for key in ("seconds", "indices_sha256"):
        if not isinstance(raw.get(key), list) or len(raw[key]) != len(accuracies):
            raise DamagedFileError(f"{where}.{key} is not a list with one entry per repeat")
    return ResultRow(raw["method"], raw["labels_per_class"], float(raw["accuracy_mean"]), float(raw["accuracy_std"]),
                     len(accuracies))


def parse_eval_results(data: dict[str, Any]) -> EvalResults:
    """Check an eval.json's contents; DamagedFileError naming the first part that is wrong."""
    results, protocol, subsets = data.get("results"), data.get("protocol"), data.get("subsets", [])
    if not isinstance(results, list):
        raise DamagedFileError(f"{EVAL_FILE} has no list of results")
    rows = tuple(_row(i, raw) for i, raw in enumerate(results))
    if not isinstance(protocol, dict) or not all(key in protocol for key in REQUIRED_PROTOCOL_FIELDS):
        raise DamagedFileError(f"{EVAL_FILE}: protocol is not an object with {', '.join(REQUIRED_PROTOCOL_FIELDS)}")
    for key, check in _SHOWN_PROTOCOL_FIELDS.items():
        if key in protocol and not check(protocol[key]):
            raise DamagedFileError(f"{EVAL_FILE}: protocol.{key} is not a valid value")
    if not isinstance(subsets, list) or not all(isinstance(s, dict) and _budget(s.get("labels_per_class"))
                                                and isinstance(s.get("repeat"), int) for s in subsets):
        raise DamagedFileError(f"{EVAL_FILE}: subsets is not a list of (labels_per_class, repeat) records")
    return EvalResults(rows, protocol, data)


def read_eval_results(run_path: Path) -> EvalResults | None:
    """The checked eval.json of the run folder ``run_path``; None if it was never evaluated.

    DamagedFileError (one line, naming the file) if the file cannot be read or is not a valid evaluation.
    """
    data = read_json_object(run_path / EVAL_FILE)
    return None if data is None else parse_eval_results(data)
