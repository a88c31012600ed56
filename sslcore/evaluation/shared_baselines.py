"""Baselines shared between evaluated runs: an evaluation-protocol rule, so it lives with the protocol.

Baselines (supervised from scratch, raw pixels or columns, gradient-boosted trees) do not depend on the SSL
features, only on the labelled samples. A run evaluated without them may show those of another run, but only
one evaluated on the same dataset split with exactly the same labelled subsets, so the comparison stays the
one the protocol promises.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

#: The methods that do not depend on the SSL features.
BASELINES = ("supervised", "raw_pixels", "raw_columns", "gradient_boosting")


class Evaluated(NamedTuple):
    """A run with stored results: its id, a label for legends and tables, its task and its eval.json."""

    run_id: str
    label: str
    task: str
    results: dict[str, Any]


def _subset_hashes(results: dict[str, Any]) -> dict[tuple[Any, int], str]:
    return {(s["labels_per_class"], s["repeat"]): s.get("indices_sha256", "")
            for s in results.get("subsets", [])}


def with_shared_baselines(run: Evaluated, others: Sequence[Evaluated]) -> tuple[list[dict[str, Any]], str | None]:
    """``run``'s results rows, plus the baseline rows of another run when ``run`` has none of its own.

    Baselines (supervised from scratch, raw pixels) do not depend on the SSL features, only on the
    labelled images. They are borrowed only from a run evaluated on the same dataset split with exactly
    the same labelled subsets (equal index hashes for every budget and repeat of ``run``), so the
    comparison stays the one the protocol promises. Returns (rows, label of the lending run or None).
    """
    rows = list(run.results["results"])
    if any(r["method"] in BASELINES for r in rows):
        return rows, None
    mine = _subset_hashes(run.results)
    for other in others:
        same_data = other.results.get("protocol", {}).get("dataset") == run.results.get("protocol", {}).get("dataset")
        theirs = _subset_hashes(other.results)
        if other.run_id == run.run_id or not same_data or not mine or any(theirs.get(k) != h for k, h in mine.items()):
            continue
        if other.results.get("protocol", {}).get("repeats") != run.results.get("protocol", {}).get("repeats"):
            continue  # their means would average over other subsets too
        lent = [r for r in other.results["results"] if r["method"] in BASELINES]
        if lent:
            return rows + lent, other.label
    return rows, None
