"""The Evaluate page's verdict lines: a run evaluated without baselines shows those of a run evaluated on
exactly the same labelled images (the rule: sslcore.evaluation.shared_baselines), and from no other."""
from __future__ import annotations

from tests.evaluation.test_shared_baselines import DATA, ROTATION, SIMCLR, evaluated
from ui.evaluate_results import verdict_lines


def test_a_run_without_baselines_is_judged_against_those_of_a_run_on_the_same_labelled_images() -> None:
    lines = verdict_lines([SIMCLR, ROTATION])
    [rotation_line] = [line for line in lines if line.startswith("**rotation run**")]
    assert "training from scratch beats rotation prediction features by 13 points (58.0% vs 71.0%)" in rotation_line
    assert "baselines of simclr run" in rotation_line


def test_no_verdict_without_baselines_from_the_same_labelled_images_or_data() -> None:
    other_subsets = evaluated("r2", "rotation", {"linear_probe": 0.58}, hashes=("a", "c"))
    other_data = evaluated("r3", "rotation", {"linear_probe": 0.58}, data={**DATA, "split_seed": 1})
    other_repeats = evaluated("r4", "rotation", {"linear_probe": 0.58}, hashes=("a",), repeats=1)
    for run in (other_subsets, other_data, other_repeats):
        assert "No verdict" in verdict_lines([SIMCLR, run])[1]
