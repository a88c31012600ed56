"""The verdict: what an evaluation's numbers say, in one or two plain sentences.

Pure functions of eval.json's ``results`` rows (``method``, ``labels_per_class``, ``accuracy_mean``,
``accuracy_std``), so they can be tested on hand-made results. A difference counts only when it is larger
than the spread over repeats (the two standard deviations added, at least :data:`MIN_GAP`); anything
smaller is called a tie, because another draw of labelled images could reverse it. A score from a single
repeat has no spread at all, so a comparison involving one is reported as what one draw showed, not as a win.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sslcore.tasks import TASKS

#: Differences below this (0.5 accuracy points) are ties even when the repeats agree exactly.
MIN_GAP = 0.005
#: The self-supervised methods a verdict speaks for, best first, and the baselines it compares them with.
_SSL_METHODS = ("linear_probe", "knn")
_BASELINES = (("supervised", "training from scratch"), ("raw_pixels", "raw pixels"),
              ("raw_columns", "logistic regression on the raw columns"))
#: On tables, trees on the raw columns are the model to beat; when evaluated, the verdict always says how they did.
_TREES = ("gradient_boosting", "gradient boosting on the raw columns")

Row = dict[str, Any]


def task_name(task: str) -> str:
    """How a sentence names the task: its ``display_name`` ('simclr' -> 'SimCLR'); an unknown task (a run made
    by a task since renamed) keeps its name with spaces for underscores."""
    return TASKS.get(task).display_name if task in TASKS else task.replace("_", " ")


def budget_phrase(budget: int | str) -> str:
    """4 -> 'With 4 labels per class'; 1 -> 'With 1 label per class'; 'all' -> 'With all labels'."""
    if budget == "all":
        return "With all labels"
    return f"With {budget} label{'' if budget == 1 else 's'} per class"


def compare(a: Row, b: Row) -> tuple[str, float]:
    """('win' | 'loss' | 'tie', a's lead over b in accuracy points) for two results rows."""
    gap = a["accuracy_mean"] - b["accuracy_mean"]
    spread = max(MIN_GAP, a.get("accuracy_std", 0.0) + b.get("accuracy_std", 0.0))
    return ("tie" if abs(gap) <= spread else "win" if gap > 0 else "loss"), 100.0 * gap


def _budget_order(budget: int | str) -> float:
    return float("inf") if budget == "all" else float(budget)


def points_phrase(points: float) -> str:
    """3.2 -> '3 points'; 0.8 -> '1 point' (rounded to whole accuracy points)."""
    whole = round(abs(points))
    return f"{whole} point{'' if whole == 1 else 's'}"


def single_draw(row: Row) -> bool:
    """Whether the row's score comes from one repeat (one labelled subset): a number without a spread."""
    accuracies = row.get("accuracies")
    return isinstance(accuracies, list) and len(accuracies) == 1


def _single_draw_sentence(subject: str, budget: int | str, base_name: str, points: float, numbers: str) -> str:
    if abs(points) < 100 * MIN_GAP:
        told = f"{subject} and {base_name} scored the same"
    else:
        told = f"{subject} scored {points_phrase(points)} {'above' if points > 0 else 'below'} {base_name}"
    return (f"{budget_phrase(budget)}, on a single draw of labels, {told} ({numbers}). One repeat has no "
            "spread, so this is not a verdict: another draw could reverse it; evaluate with 3 or more repeats.")


def _sentence(subject: str, budget: int | str, ssl: Row, base: Row, base_name: str, verb: str = "beat") -> str:
    outcome, points = compare(ssl, base)
    numbers = f"{100 * ssl['accuracy_mean']:.1f}% vs {100 * base['accuracy_mean']:.1f}%"
    if single_draw(ssl) or single_draw(base):
        return _single_draw_sentence(subject, budget, base_name, points, numbers)
    if outcome == "win":
        return f"{budget_phrase(budget)}, {subject} {verb} {base_name} by {points_phrase(points)} ({numbers})."
    if outcome == "loss":
        return f"{budget_phrase(budget)}, {base_name} beats {subject} by {points_phrase(points)} ({numbers})."
    return (f"{budget_phrase(budget)}, {subject} and {base_name} are level ({numbers}, within the spread "
            "over repeats).")


def verdict(results: Sequence[Row], task: str) -> list[str]:
    """Sentences comparing the SSL features with the baselines at the fewest and at the most labels.

    The SSL side is the linear probe (the k-NN probe when the probe is missing); the baseline is training
    from scratch (raw pixels when that is missing). Says plainly what it cannot compare.
    """
    rows = {(r["method"], r["labels_per_class"]): r for r in results}
    ssl_method = next((m for m in _SSL_METHODS if any(k[0] == m for k in rows)), None)
    base = next(((m, name) for m, name in _BASELINES if any(k[0] == m for k in rows)), None)
    if ssl_method is None or base is None:
        missing = "probe on the SSL features" if ssl_method is None else "baseline (supervised or raw pixels)"
        return [f"No verdict: the evaluation has no {missing} to compare."]
    budgets = sorted({b for m, b in rows if (ssl_method, b) in rows and (base[0], b) in rows}, key=_budget_order)
    if not budgets:
        return ["No verdict: the SSL features and the baseline were evaluated at different label budgets."]
    subject = f"{task_name(task)} features" + (" (k-NN)" if ssl_method == "knn" else "")
    chosen = budgets[:1] + budgets[-1:] if len(budgets) > 1 else budgets
    lines = [_sentence(subject, b, rows[(ssl_method, b)], rows[(base[0], b)], base[1]) for b in chosen]
    lines += [_sentence(subject, b, rows[(ssl_method, b)], rows[(_TREES[0], b)], _TREES[1])
              for b in chosen if (_TREES[0], b) in rows]
    if base[0] == "supervised" and ("finetune", budgets[0]) in rows:  # the third step: same network, SSL start
        lines.append(_sentence(f"fine-tuning the {task_name(task)} encoder", budgets[0], rows[("finetune", budgets[0])],
                               rows[("supervised", budgets[0])], "training it from scratch", verb="beats"))
    return lines


def ranking(runs: Sequence[tuple[str, Sequence[Row]]], budget: int | str, method: str = "linear_probe") -> str | None:
    """'With 4 labels per class, the linear probe ranks: SimCLR 82.2%, rotation 70.1%, ...' or None.

    ``runs``: (display name, results rows) per run; runs without ``method`` at ``budget`` are left out,
    and None is returned when fewer than two remain.
    """
    scored = [(name, row["accuracy_mean"]) for name, rows in runs for row in rows
              if row["method"] == method and row["labels_per_class"] == budget]
    if len(scored) < 2:
        return None
    scored.sort(key=lambda item: -item[1])
    listing = ", ".join(f"{name} {100 * acc:.1f}%" for name, acc in scored)
    return f"{budget_phrase(budget)}, the {method.replace('_', ' ')} ranks the runs: {listing}."
