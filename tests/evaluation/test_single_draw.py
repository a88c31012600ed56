"""One repeat has no spread: scores are shown without '± 0.0' and the verdict says it is one draw, not a win."""
from __future__ import annotations

from sslcore.evaluation.results import format_results_table, score_text
from sslcore.evaluation.verdict import verdict


def row(method: str, budget: int | str, accuracies: list[float]) -> dict:
    mean = sum(accuracies) / len(accuracies)
    std = (sum((a - mean) ** 2 for a in accuracies) / len(accuracies)) ** 0.5
    return {"method": method, "labels_per_class": budget, "accuracies": accuracies, "accuracy_mean": mean,
            "accuracy_std": std}


def test_a_single_repeat_is_shown_without_a_spread() -> None:
    assert score_text(row("linear_probe", 4, [0.822])) == "82.2"
    assert score_text(row("linear_probe", 4, [0.80, 0.84])) == "82.0 ± 2.0"
    table = format_results_table({"results": [row("linear_probe", 4, [0.822]), row("supervised", 4, [0.51])],
                                  "protocol": {"repeats": 1}})
    assert "±" not in table and "82.2" in table and "one repeat, so no spread" in table


def test_a_verdict_from_one_draw_says_so_instead_of_declaring_a_winner() -> None:
    [sentence] = verdict([row("linear_probe", 4, [0.82]), row("supervised", 4, [0.51])], "simclr")
    assert sentence.startswith("With 4 labels per class, on a single draw of labels, SimCLR features "
                               "scored 31 points above training from scratch (82.0% vs 51.0%).")
    assert "not a verdict" in sentence and "beat" not in sentence
    [level] = verdict([row("linear_probe", 4, [0.700]), row("supervised", 4, [0.698])], "simclr")
    assert "scored the same" in level and "single draw" in level


def test_repeats_keep_the_verdict_over_the_spread() -> None:
    [sentence] = verdict([row("linear_probe", 4, [0.81, 0.83]), row("supervised", 4, [0.50, 0.52])], "simclr")
    assert sentence == ("With 4 labels per class, SimCLR features beat training from scratch by 31 points "
                        "(82.0% vs 51.0%).")
