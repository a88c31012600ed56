"""Views of an eval.json: a text table (CLI), flat per-repeat rows (CSV) and plain method names."""
from __future__ import annotations

from typing import Any

#: How the methods are called where a person reads them.
METHOD_LABELS = {"linear_probe": "linear probe", "knn": "k-NN", "supervised": "supervised from scratch",
                 "raw_pixels": "raw pixels", "finetune": "fine-tuned", "raw_columns": "raw columns (logistic)",
                 "gradient_boosting": "gradient-boosted trees"}


def method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method.replace("_", " "))


def budget_amount(budget: int | str) -> str:
    """4 -> '4 labels per class', 1 -> '1 label per class', 'all' -> 'all labels'."""
    return "all labels" if budget == "all" else f"{budget} label{'' if budget == 1 else 's'} per class"


def fits(row: dict[str, Any]) -> int | None:
    """How many repeats a results row's score averages (None for a row that does not say)."""
    accuracies = row.get("accuracies")
    return len(accuracies) if isinstance(accuracies, list) else None


def score_text(row: dict[str, Any]) -> str:
    """'82.2 ± 1.9' (% test accuracy, mean ± std over repeats), or '82.2' from a single repeat.

    One repeat has no spread: '± 0.0' would read as a measured certainty.
    """
    mean = f"{100 * row['accuracy_mean']:.1f}"
    return mean if fits(row) == 1 else f"{mean} ± {100 * row['accuracy_std']:.1f}"


def format_results_table(eval_dict: dict[str, Any]) -> str:
    """A text table of eval.json's results: rows = label budgets, columns = methods, cells "97.1 ± 0.3" (%)
    (a bare "97.1" from a single repeat)."""
    results = eval_dict.get("results", [])
    methods = list(dict.fromkeys(r["method"] for r in results))
    budgets = list(dict.fromkeys(r["labels_per_class"] for r in results))
    cells = {(r["labels_per_class"], r["method"]): score_text(r) for r in results}
    rows = [["labels/class", *methods]] + [[str(b), *(cells.get((b, m), "-") for m in methods)] for b in budgets]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    p = eval_dict.get("protocol", {})
    unit = "rows" if {"raw_columns", "gradient_boosting"} & set(methods) else "images"
    over = "one repeat, so no spread" if p.get("repeats") == 1 else f"mean ± std over {p.get('repeats', '?')} repeats"
    lines.append(f"test accuracy (%), {over}; "
                 f"train {p.get('train_size', '?')} / test {p.get('test_size', '?')} {unit}")
    return "\n".join(lines)


def repeat_rows(eval_dict: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat record per (method, budget, repeat): accuracy, seconds, subset seed/size/hash (for a CSV)."""
    subsets = {(s["labels_per_class"], s["repeat"]): s for s in eval_dict.get("subsets", [])}
    rows = []
    for result in eval_dict.get("results", []):
        budget = result["labels_per_class"]
        for r, accuracy in enumerate(result["accuracies"]):
            subset = subsets.get((budget, r), {})
            rows.append({"run_id": eval_dict.get("run_id"), "method": result["method"], "labels_per_class": budget,
                         "repeat": r, "subset_seed": subset.get("seed"), "subset_size": subset.get("size"),
                         "subset_sha256": result["indices_sha256"][r], "test_accuracy": accuracy,
                         "seconds": result["seconds"][r]})
    return rows
