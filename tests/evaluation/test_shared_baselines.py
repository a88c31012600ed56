"""Shared baselines: a run evaluated without baselines borrows them from a run evaluated on exactly the same
labelled images, and from no other (the Evaluate page's verdict lines that use them:
tests/app/test_evaluate_verdict_lines.py)."""
from __future__ import annotations

from typing import Any

from sslcore.evaluation.shared_baselines import Evaluated, with_shared_baselines

DATA = {"dataset": "mnist5k", "split_seed": 0, "test_fraction": 0.2}


def evaluated(run_id: str, task: str, rows: dict[str, float], hashes: tuple[str, ...] = ("a", "b"),
              data: dict[str, Any] = DATA, repeats: int = 2) -> Evaluated:
    results = [{"method": m, "labels_per_class": 4, "accuracy_mean": acc, "accuracy_std": 0.01}
               for m, acc in rows.items()]
    subsets = [{"labels_per_class": 4, "repeat": r, "indices_sha256": h} for r, h in enumerate(hashes)]
    return Evaluated(run_id, f"{task} run", task, {"results": results, "subsets": subsets,
                                                   "protocol": {"dataset": data, "repeats": repeats}})


SIMCLR = evaluated("s", "simclr", {"linear_probe": 0.82, "supervised": 0.71, "raw_pixels": 0.65})
ROTATION = evaluated("r", "rotation", {"linear_probe": 0.58, "knn": 0.42})


def test_a_run_without_baselines_borrows_those_of_a_run_on_the_same_labelled_images() -> None:
    rows, lender = with_shared_baselines(ROTATION, [SIMCLR, ROTATION])
    assert lender == "simclr run"
    assert {r["method"] for r in rows} == {"linear_probe", "knn", "supervised", "raw_pixels"}


def test_baselines_are_not_borrowed_across_different_labelled_images_or_data() -> None:
    other_subsets = evaluated("r2", "rotation", {"linear_probe": 0.58}, hashes=("a", "c"))
    other_data = evaluated("r3", "rotation", {"linear_probe": 0.58}, data={**DATA, "split_seed": 1})
    other_repeats = evaluated("r4", "rotation", {"linear_probe": 0.58}, hashes=("a",), repeats=1)
    for run in (other_subsets, other_data, other_repeats):
        rows, lender = with_shared_baselines(run, [SIMCLR, run])
        assert lender is None and {r["method"] for r in rows} == {"linear_probe"}


def test_a_run_with_its_own_baselines_keeps_them() -> None:
    rows, lender = with_shared_baselines(SIMCLR, [ROTATION, SIMCLR])
    assert lender is None and rows == SIMCLR.results["results"]
