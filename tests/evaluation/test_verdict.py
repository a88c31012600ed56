"""The verdict sentences and the confusion-matrix helpers, on hand-made results."""
from __future__ import annotations

import numpy as np
import pytest

from sslcore.evaluation.confusion import (
    combined_confusion,
    confusion_matrix,
    most_confused,
    pair_examples,
    per_class_accuracy,
)
from sslcore.evaluation.verdict import compare, points_phrase, ranking, task_name, verdict


def row(method: str, budget: int | str, mean: float, std: float = 0.0) -> dict:
    return {"method": method, "labels_per_class": budget, "accuracy_mean": mean, "accuracy_std": std}


def test_a_clear_win_names_the_task_the_budget_and_the_points() -> None:
    results = [row("linear_probe", 4, 0.82, 0.02), row("supervised", 4, 0.51, 0.015),
               row("linear_probe", "all", 0.97), row("supervised", "all", 0.967, 0.001)]
    first, last = verdict(results, "simclr")
    assert first == "With 4 labels per class, SimCLR features beat training from scratch by 31 points (82.0% vs 51.0%)."
    assert last.startswith("With all labels, SimCLR features and training from scratch are level")


def test_fine_tuning_is_compared_with_training_the_same_network_from_scratch() -> None:
    results = [row("linear_probe", 4, 0.82), row("supervised", 4, 0.51), row("finetune", 4, 0.88)]
    assert verdict(results, "simclr")[-1] == ("With 4 labels per class, fine-tuning the SimCLR encoder beats training "
                                              "it from scratch by 37 points (88.0% vs 51.0%).")


def test_a_loss_says_the_baseline_wins() -> None:
    [sentence] = verdict([row("linear_probe", 1, 0.30, 0.01), row("supervised", 1, 0.45, 0.02)], "rotation")
    assert sentence == ("With 1 label per class, training from scratch beats rotation prediction features by "
                        "15 points (30.0% vs 45.0%).")


def test_a_gap_within_the_spread_over_repeats_is_a_tie() -> None:
    assert compare(row("a", 4, 0.70, 0.03), row("b", 4, 0.66, 0.02))[0] == "tie"  # 4 points < 3 + 2
    assert compare(row("a", 4, 0.70, 0.01), row("b", 4, 0.66, 0.01))[0] == "win"
    assert compare(row("a", 4, 0.700, 0.0), row("b", 4, 0.698, 0.0))[0] == "tie"  # below half a point


def test_missing_methods_fall_back_or_say_so() -> None:
    knn_vs_pixels = verdict([row("knn", 10, 0.9), row("raw_pixels", 10, 0.8)], "autoencoder")
    assert knn_vs_pixels == ["With 10 labels per class, autoencoder features (k-NN) beat raw pixels by 10 points "
                             "(90.0% vs 80.0%)."]
    assert verdict([row("supervised", 4, 0.5)], "simclr") == [
        "No verdict: the evaluation has no probe on the SSL features to compare."]
    assert verdict([row("linear_probe", 4, 0.5)], "simclr")[0].startswith("No verdict: the evaluation has no baseline")
    assert verdict([row("linear_probe", 4, 0.5), row("supervised", 10, 0.6)], "simclr") == [
        "No verdict: the SSL features and the baseline were evaluated at different label budgets."]


def test_task_names_and_ranking() -> None:
    assert task_name("simclr") == "SimCLR" and task_name("my_new_task") == "my new task"
    runs = [("autoencoder", [row("linear_probe", 4, 0.70)]), ("SimCLR", [row("linear_probe", 4, 0.82)])]
    assert ranking(runs, 4) == ("With 4 labels per class, the linear probe ranks the runs: "
                                "SimCLR 82.0%, autoencoder 70.0%.")
    assert ranking(runs[:1], 4) is None


def test_confusion_matrix_counts_rates_and_most_confused_pairs() -> None:
    truth = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    first = np.array([0, 1, 1, 1, 1, 2, 0, 2])
    second = np.array([0, 1, 0, 1, 0, 2, 2, 2])
    matrix = confusion_matrix(truth, first, 3)
    assert matrix.tolist() == [[1, 2, 0], [0, 2, 0], [1, 0, 2]]
    combined = combined_confusion(truth, [first, second], 3)
    assert combined.sum() == 16 and combined[0, 1] == 3
    assert per_class_accuracy(combined) == pytest.approx([3 / 6, 3 / 4, 5 / 6])
    top = most_confused(combined, top=3)
    assert [(p.true_class, p.predicted_class, p.count) for p in top] == [(0, 1, 3), (1, 0, 1), (2, 0, 1)]
    assert top[0].rate == pytest.approx(0.5)
    assert pair_examples(truth, [first, second], 0, 1).tolist() == [1, 2]  # image 1 confused twice, image 2 once
    assert np.isnan(per_class_accuracy(np.zeros((2, 2), dtype=int))).all()
    with pytest.raises(ValueError, match="class indices"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)


def test_points_are_whole_and_singular_when_one() -> None:
    assert [points_phrase(p) for p in (0.8, 1.4, -1.2, 12.6)] == ["1 point", "1 point", "1 point", "13 points"]
