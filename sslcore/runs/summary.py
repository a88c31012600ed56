"""A run in one typed record: the one definition of every figure a listing shows (app tables and ``sslcore list``).

Each figure has one meaning and one label, used everywhere it appears:

- ``final loss``: the mean training loss of the last epoch record;
- :data:`KNN_LAST_LABEL`: the online k-NN monitor's test accuracy after the last epoch recorded that has one
  (epoch 0 is the untrained encoder); the Train page's tile shows the same figure under the same label;
- :data:`KNN_BEST_LABEL`: the best online k-NN test accuracy over the trained epochs (epoch 0 excluded: the
  best score must be one training reached);
- ``probe acc``: linear-probe test accuracy from eval.json, with all labels, else the largest budget evaluated.

:func:`summarize` never raises for what is inside a run folder: a file that cannot be read makes the run
``damaged`` with the reason (and the figures it could still read), so one bad folder never hides the others.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from typing import Any

from sslcore.runs.eval_results import read_eval_results
from sslcore.runs.files import DamagedFileError, read_json_object, read_jsonl
from sslcore.runs.store import ACTIVE_STATES, DAMAGED, Run, reconcile_run

KNN_LAST_LABEL = "k-NN (last epoch)"
KNN_BEST_LABEL = "best k-NN (epochs >= 1)"
KNN_LAST_HELP = ("Online k-NN monitor after the last epoch: test accuracy of a k-NN vote among the training "
                 "images' encoder features (train.knn_k neighbours), on fixed samples: up to 1,000 training images "
                 "and 512 test images (whole splits, up to 10,000, in runs trained before that)")
KNN_BEST_HELP = "The best online k-NN monitor score over the trained epochs (the untrained epoch 0 excluded)"
PROBE_HELP = ("Linear-probe test accuracy from the Evaluate page, with all labels (or the largest label budget "
              "evaluated); empty if not evaluated")
_EPOCH_MARK = '"kind":"epoch"'  # metrics.jsonl is written compactly (sslcore.runs.files.append_jsonl)
#: The files a summary is read from: their (mtime, size) tell a cache whether a summary is still current.
SUMMARY_FILES = ("status.json", "config.json", "metrics.jsonl", "progress.json", "eval.json")
Stamps = tuple[tuple[int, int] | None, ...]


def summary_stamps(run: Run) -> Stamps:
    """(mtime in ns, size) of each of SUMMARY_FILES (None for a missing one): equal stamps, equal summary.

    Except for liveness: a job killed without a word changes no file (see :func:`summarize`'s ``reconcile``).
    """
    stamps: list[tuple[int, int] | None] = []
    for name in SUMMARY_FILES:
        try:
            stat = os.stat(run.path / name)
        except FileNotFoundError:
            stamps.append(None)
            continue
        stamps.append((stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)


@dataclass(frozen=True)
class RunSummary:
    """What a listing shows about a run. Accuracies are fractions; times are seconds (since the epoch)."""

    id: str
    name: str
    state: str  # queued | running | completed | failed | cancelled | unknown | damaged (status or config unreadable)
    damaged: str | None  # why a file of the run cannot be read; None when every file is readable
    dataset: str
    task: str
    encoder: str
    epochs_done: int
    epochs_planned: int | None
    final_loss: float | None
    knn_last: float | None
    knn_best: float | None
    probe_acc: float | None
    duration_s: float | None  # training time, across resumes
    created: float | None
    started: float | None
    ended: float | None
    tags: tuple[str, ...]
    imported_from: str | None  # the archive file an imported run came from
    error: str | None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def progress(self) -> float | None:
        """Epochs done out of those planned, in [0, 1]; None if the plan is unknown."""
        return min(1.0, self.epochs_done / self.epochs_planned) if self.epochs_planned else None

    @property
    def epochs_text(self) -> str:
        """'3/10 epochs'."""
        return f"{self.epochs_done}/{self.epochs_planned or '?'} epochs"


def _number(value: Any) -> float | None:
    """A finite number as float; None for anything else (a hand edit may put text where a number was)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _text(value: Any, default: str) -> str:
    return value if isinstance(value, str) and value else default


#: Without these a run cannot be resumed, trained again or evaluated: it is shown as damaged.
ESSENTIAL_FILES = ("status.json", "config.json")


class _Reader:
    """Reads a run's files once each, noting (not raising) which are damaged and why."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.problems: dict[str, str] = {}  # file name -> reason

    def object(self, name: str) -> dict[str, Any]:
        try:
            return read_json_object(self.run.path / name, default={}) or {}
        except DamagedFileError as e:
            self.problems[name] = str(e)
            return {}

    def config(self) -> dict[str, dict[str, Any]]:
        """config.json's sections (not validated: a run whose task was since renamed must still be listed)."""
        raw = self.object("config.json")
        bad = [k for k in ("data", "encoder", "task", "train") if not isinstance(raw.get(k, {}), dict)]
        if bad:
            self.problems["config.json"] = f"config.json: section {bad[0]} is not an object"
        return {k: v for k, v in raw.items() if isinstance(v, dict)}

    def probe(self) -> float | None:
        try:
            results = read_eval_results(self.run.path)
        except DamagedFileError as e:
            self.problems["eval.json"] = str(e)
            return None
        return None if results is None else results.probe_accuracy()

    @property
    def unusable(self) -> bool:
        return any(name in self.problems for name in ESSENTIAL_FILES)

    @property
    def reason(self) -> str | None:
        return "; ".join(self.problems.values()) or None


def essential_damage(run: Run) -> str | None:
    """Why ``run`` cannot be used at all (its status.json or config.json cannot be read), or None."""
    reader = _Reader(run)
    reader.object("status.json")
    reader.config()
    return reader.reason


def epoch_records(run: Run) -> list[dict[str, Any]]:
    """The per-epoch records of the run's metrics.jsonl, without decoding its (far more numerous) step lines."""
    return [r for r in read_jsonl(run.metrics_path, containing=_EPOCH_MARK) if r.get("kind") == "epoch"]


def _duration(status: dict[str, Any], progress: dict[str, Any], epochs: list[dict[str, Any]]) -> float | None:
    """Training seconds: the latest heartbeat or epoch record (both survive a resume), else the status times."""
    known = [v for v in (_number(progress.get("elapsed_s")), _number(epochs[-1].get("elapsed")) if epochs else None)
             if v is not None]
    if known:
        return max(known)
    started, ended = _number(status.get("started")), _number(status.get("ended"))
    return ended - started if started and ended and ended >= started else None


def summarize(run: Run, *, reconcile: bool = True) -> RunSummary:
    """The run's summary, read from its folder now.

    reconcile: first record a run whose process is gone as failed (see :func:`sslcore.runs.store.reconcile_run`),
    so every listing agrees on a killed run.
    """
    if reconcile:
        reconcile_run(run)
    reader = _Reader(run)
    status, config = reader.object("status.json"), reader.config()
    progress, probe = reader.object("progress.json"), reader.probe()
    epochs = [r for r in epoch_records(run) if _number(r.get("epoch")) is not None]
    losses = [v for v in (_number(r.get("loss")) for r in epochs) if v is not None]
    knn = [(int(r["epoch"]), v) for r in epochs if (v := _number(r.get("knn_acc"))) is not None]
    planned = _number(status.get("epochs")) or _number(config.get("train", {}).get("epochs"))
    imported = status.get("imported_from")
    tags = status.get("tags")
    return RunSummary(
        id=run.id, name=_text(status.get("name"), run.id),
        state=DAMAGED if reader.unusable else _text(status.get("state"), "unknown"), damaged=reader.reason,
        dataset=_text(config.get("data", {}).get("dataset"), "?"), task=_text(config.get("task", {}).get("name"), "?"),
        encoder=_text(config.get("encoder", {}).get("name"), "?"),
        epochs_done=max((int(r["epoch"]) for r in epochs), default=0),
        epochs_planned=int(planned) if planned else None,
        final_loss=losses[-1] if losses else None,
        knn_last=knn[-1][1] if knn else None,
        knn_best=max((v for e, v in knn if e >= 1), default=None),
        probe_acc=probe, duration_s=_duration(status, progress, epochs),
        created=_number(status.get("created")), started=_number(status.get("started")),
        ended=_number(status.get("ended")),
        tags=tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
        imported_from=_text(imported.get("file"), "an archive") if isinstance(imported, dict) else None,
        error=status.get("error") if isinstance(status.get("error"), str) else None,
    )


def percent(value: float | None) -> str:
    """0.9512 -> '95.1%'; '-' when unknown."""
    return "-" if value is None else f"{100 * value:.1f}%"


def summary_json(summary: RunSummary) -> str:
    """``summary`` as one line of strict JSON: its fields by name, tags a list, a non-finite number null (a
    diverged run's loss is NaN, which JSON cannot hold)."""
    fields = asdict(summary)
    fields["tags"] = list(summary.tags)
    clean = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in fields.items()}
    return json.dumps(clean, allow_nan=False)


def format_summaries(summaries: list[RunSummary]) -> str:
    """The runs as a text table for the terminal (``sslcore list``); a damaged run gets its reason below it."""
    header = ("run id", "state", "epochs", "final loss", KNN_LAST_LABEL, KNN_BEST_LABEL, "probe acc", "name")
    rows = [header]
    for s in summaries:
        name = s.name + (f" (imported from {s.imported_from})" if s.imported_from else "")
        rows.append((s.id, s.state, f"{s.epochs_done}/{s.epochs_planned or '?'}",
                     "-" if s.final_loss is None else f"{s.final_loss:.4f}", percent(s.knn_last), percent(s.knn_best),
                     percent(s.probe_acc), name))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = []
    for row, summary in zip(rows, [None, *summaries], strict=True):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [cell.rjust(width) for cell, width in zip(row[2:-1], widths[2:], strict=True)]
        lines.append("  ".join([*cells, row[-1]]))
        if summary is not None and summary.damaged:
            lines.append(f"    damaged: {summary.damaged}; delete it with: sslcore delete {summary.id}")
    return "\n".join(lines)
