"""Where a method goes wrong: confusion matrix, per-class accuracy and the most-confused pairs with examples.

Reads the test predictions that the evaluation stored in ``<run>/eval_predictions.npz`` (every repeat of
the chosen budget, combined) and, for the example images, the run's dataset test split.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
import torch

from sslcore.data import DatasetUnavailableError
from sslcore.evaluation.confusion import combined_confusion, most_confused, pair_examples, per_class_accuracy
from sslcore.evaluation.predictions import PREDICTIONS_FILE, load_predictions, prediction_key
from sslcore.evaluation.results import budget_amount, method_label
from sslcore.runs import Run
from ui.datasets import load_config_split
from ui.evaluate_charts import confusion_figure, per_class_figure
from ui.evaluate_results import Evaluated
from ui.images import image_grid
from ui.plain_text import escape_markdown
from ui.table_preview import rows_frame

EXAMPLES_PER_PAIR = 6
TOP_PAIRS = 3


@st.cache_data(max_entries=16, show_spinner=False)
def _predictions(path: str, mtime_ns: int) -> dict[str, np.ndarray]:
    return load_predictions(Path(path))  # mtime_ns is only the cache key


def _test_images(run: Run) -> tuple[Any, tuple[str, ...]] | None:
    """The run's test split (images or table rows) and class names, or None if the dataset cannot be loaded here."""
    data = run.config().data
    try:
        split = load_config_split(data)
    except (DatasetUnavailableError, OSError, ValueError):
        return None
    return split.labelled().test, split.class_names  # predictions are of the labelled samples


def _default_budget(budgets: list[Any]) -> int:
    """The first budget of at least 4 labels per class (few labels, where the methods differ), else the first."""
    return next((i for i, b in enumerate(budgets) if b != "all" and b >= 4), 0)


def confusion_section(run: Run, e: Evaluated) -> None:
    """Pick a method and a budget; draw the combined confusion matrix, per-class bars and confused pairs."""
    path = run.path / PREDICTIONS_FILE
    stored = e.results.get("predictions")
    if not stored or not path.exists():
        st.info("These results were computed before predictions were stored: evaluate again to see where the "
                "probe goes wrong.")
        return
    predictions = _predictions(str(path), path.stat().st_mtime_ns)
    p = e.results["protocol"]
    methods, budgets = p["methods"], p["budgets"]
    left, right = st.columns(2)
    method = left.selectbox("Method", methods, format_func=method_label, key="evaluate.confusion.method",
                            index=methods.index("linear_probe") if "linear_probe" in methods else 0)
    budget = right.selectbox("Labels per class", budgets, key="evaluate.confusion.budget", format_func=budget_amount,
                             index=_default_budget(budgets))
    stored = [predictions.get(prediction_key(method, budget, r)) for r in range(p["repeats"])]
    runs = [r for r in stored if r is not None]
    if len(runs) != len(stored) or "test_labels" not in predictions:
        st.warning("The stored predictions do not match these results; evaluate again.")
        return
    truth = predictions["test_labels"]
    test = _test_images(run)
    n_classes = p.get("num_classes") or int(max(truth.max(), max(r.max() for r in runs)) + 1)
    names = test[1] if test is not None else tuple(str(i) for i in range(n_classes))
    matrix = combined_confusion(truth, runs, n_classes)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    revision = f"{run.id}-{method}-{budget}"
    title = f"Confusion: {method_label(method)}, {budget_amount(budget)} ({p['repeats']} repeats combined)"
    config = {"displaylogo": False}
    st.plotly_chart(confusion_figure(rates.tolist(), matrix.tolist(), names, title=title, revision=revision),
                    config=config, key="evaluate.confusion.matrix")
    accuracy = [None if np.isnan(a) else float(a) for a in per_class_accuracy(matrix)]
    st.plotly_chart(per_class_figure(accuracy, names, revision=revision), config=config,
                    key="evaluate.confusion.per_class")
    _confused_pairs(matrix, truth, runs, names, test[0] if test is not None else None)


def _confused_pairs(matrix: np.ndarray, truth: np.ndarray, runs: list[np.ndarray], names: tuple[str, ...],
                    test: Any) -> None:
    pairs = most_confused(matrix, TOP_PAIRS)
    if not pairs:
        st.success("No test image was misclassified at this budget.")
        return
    unit = "rows" if test is not None and test.kind == "table" else "images"
    st.markdown(f"**Most confused pairs** (test {unit} of the true class that the method called the other one)")
    for pair in pairs:
        label, picture = st.columns([2, 5], vertical_alignment="center")
        # Class names may be a person's folder names: shown as typed, never as Markdown.
        true, predicted = escape_markdown(names[pair.true_class]), escape_markdown(names[pair.predicted_class])
        label.markdown(f"true **{true}** → predicted **{predicted}**  \n"
                       f"{pair.count} times ({pair.rate:.0%} of that class)")
        if test is None:
            picture.caption(f"the dataset's {unit} are not available here")
            continue
        examples = pair_examples(truth, runs, pair.true_class, pair.predicted_class, EXAMPLES_PER_PAIR)
        if test.kind == "table":
            picture.dataframe(rows_frame(test, torch.as_tensor(examples)).style.format(precision=3,
                                                                                       subset=list(test.columns.names)))
        else:
            picture.image(image_grid(test.images[examples].numpy(), columns=EXAMPLES_PER_PAIR), output_format="PNG")
