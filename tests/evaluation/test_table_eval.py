"""Table runs end to end: reconstruction error falls, the table protocol (trees included) on the same rows,
the verdict."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sslcore.config import default_config
from sslcore.engine.training_run import execute_run
from sslcore.evaluation.methods import TABLE_METHODS, check_methods
from sslcore.evaluation.protocol import evaluate_run
from sslcore.evaluation.trees import GradientBoostingBaseline, min_leaf
from sslcore.evaluation.verdict import verdict
from sslcore.runs import Run, RunStore

SMALL = {"data.dataset": "synthetic_table", "data.synthetic_rows": 2000, "train.batch_size": 64, "train.threads": 1}


def trained(tmp_path: Path, task: str, **overrides: object) -> Run:
    run = RunStore(tmp_path).create(default_config(**{**SMALL, "task.name": task, **overrides}))
    assert execute_run(run) == "completed", run.status().get("error")
    return run


def test_tabular_autoencoder_cuts_test_reconstruction_error_at_least_threefold(tmp_path: Path) -> None:
    run = trained(tmp_path, "tabular_autoencoder", **{"train.epochs": 4, "train.knn_k": 0})
    mse = [r["test_recon_mse"] for r in run.metrics("epoch")]
    assert len(mse) == 5 and mse[0] > 0.5  # epoch 0: the untrained decoder, about the columns' variance
    assert mse[0] / mse[-1] >= 3, f"test reconstruction error {mse[0]:.3f} -> {mse[-1]:.3f}"  # ~8x measured


def test_a_table_run_is_evaluated_with_the_table_baselines_on_the_same_rows(tmp_path: Path) -> None:
    run = trained(tmp_path, "scarf", **{"train.epochs": 1})
    result = evaluate_run(run, [4, "all"], repeats=2, supervised={"max_steps": 20})
    rows = {(r["method"], r["labels_per_class"]): r for r in result["results"]}
    assert result["protocol"]["methods"] == list(TABLE_METHODS)
    assert set(rows) == {(m, b) for m in TABLE_METHODS for b in (4, "all")}
    for budget in (4, "all"):  # every method saw exactly the same labelled rows in each repeat
        hashes = {tuple(rows[(m, budget)]["indices_sha256"]) for m in TABLE_METHODS}
        assert len(hashes) == 1
    classes = result["protocol"]["num_classes"]
    assert rows[("gradient_boosting", "all")]["accuracy_mean"] > 1.5 / classes  # well above chance
    assert rows[("gradient_boosting", 4)]["details"][0]["min_samples_leaf"] == min_leaf(16)
    assert "min(20, max(2, rows // 10))" in result["protocol"]["gradient_boosting"]["min_samples_leaf"]


def test_image_only_methods_are_refused_for_tables_with_the_ones_that_fit() -> None:
    with pytest.raises(ValueError, match="'raw_pixels' needs image data, and this run's data is table data; "
                                         "choose from linear_probe, knn, supervised, raw_columns"):
        check_methods(["linear_probe", "raw_pixels"], "table")
    with pytest.raises(ValueError, match="'gradient_boosting' needs table data"):
        check_methods(["gradient_boosting"], "image")


def test_gradient_boosting_gets_leaves_small_enough_to_split_a_few_labels() -> None:
    assert [min_leaf(n) for n in (8, 40, 200, 5000)] == [2, 4, 20, 20]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(int)
    model = GradientBoostingBaseline(random_state=0).fit(x, y)
    assert model.min_samples_leaf_ == 4 and model.score(x, y) > 0.9  # the default leaf of 20 allows one split


def row(method: str, budget: object, mean: float, std: float = 0.01) -> dict:
    return {"method": method, "labels_per_class": budget, "accuracy_mean": mean, "accuracy_std": std}


def test_the_verdict_says_so_when_trees_win() -> None:
    results = [row("linear_probe", 10, 0.53), row("supervised", 10, 0.40), row("gradient_boosting", 10, 0.40),
               row("linear_probe", "all", 0.73), row("supervised", "all", 0.77), row("gradient_boosting", "all", 0.78)]
    lines = verdict(results, "scarf")
    assert "With 10 labels per class, SCARF features beat gradient boosting on the raw columns by 13 points" in \
           " ".join(lines)
    assert "With all labels, gradient boosting on the raw columns beats SCARF features by 5 points " \
           "(73.0% vs 78.0%)." in lines
