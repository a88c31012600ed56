"""Does self-supervision pay off on tables? The tabular recipe, measured against the baselines trees set.

For each table (synthetic_table with its default row/column counts, breast_cancer, wine): trains every
tabular pretext task with the dataset's recipe below, then runs the evaluation protocol on the same labelled
rows for every method: the linear probe and k-NN on each task's frozen features, and, once per table (they do
not depend on the features), the MLP of the same shape trained from scratch, logistic regression on the raw
columns and gradient-boosted trees on the raw columns. Prints one table per dataset (test accuracy in %, mean
± std over the repeats) and tabular_autoencoder's test reconstruction error at epoch 0 and at the end.

    .venv/bin/python benchmarks/bench_tabular.py            # the README's figures (a few minutes on 2 cores)
    .venv/bin/python benchmarks/bench_tabular.py --smoke    # seconds; run by the test suite
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sslcore.config import default_config  # noqa: E402
from sslcore.data import load_run_data  # noqa: E402
from sslcore.engine.device import describe_machine  # noqa: E402
from sslcore.engine.training_run import execute_run  # noqa: E402
from sslcore.evaluation.protocol import evaluate_run  # noqa: E402
from sslcore.evaluation.results import method_label  # noqa: E402
from sslcore.runs import Run, RunStore  # noqa: E402

TASKS = ("tabular_autoencoder", "vime", "scarf")
BASELINES = ("supervised", "raw_columns", "gradient_boosting")
#: Per table: training settings (small tables get small batches and more epochs, for enough steps).
RECIPES: dict[str, dict[str, Any]] = {
    "synthetic_table": {"train.epochs": 20, "train.batch_size": 256},
    "breast_cancer": {"train.epochs": 100, "train.batch_size": 64},
    "wine": {"train.epochs": 200, "train.batch_size": 32},
}
BUDGETS: tuple[int | str, ...] = (4, 10, 100, "all")


def train(store: RunStore, overrides: dict[str, Any]) -> tuple[Run, float]:
    run = store.create(default_config(**overrides))
    started = time.perf_counter()
    outcome = execute_run(run)
    if outcome != "completed":
        raise SystemExit(f"training {overrides} ended {outcome}: {run.status().get('error')}")
    return run, time.perf_counter() - started


def budgets_for(run: Run, wanted: tuple[Any, ...]) -> list[Any]:
    """The wanted budgets that every class of the run's training split can supply."""
    smallest = int(load_run_data(run.config().data).train.labels.bincount().min())
    return [b for b in wanted if b == "all" or b <= smallest]


def cell(rows: dict[tuple[str, Any], dict[str, Any]], method: str, budget: Any) -> str:
    row = rows.get((method, budget))
    return "-" if row is None else f"{100 * row['accuracy_mean']:.1f} ± {100 * row['accuracy_std']:.1f}"


def print_table(dataset: str, budgets: list[Any], results: dict[str, dict[tuple[str, Any], dict[str, Any]]]) -> None:
    """Rows = budgets; columns = each task's linear probe and k-NN, then the baselines."""
    columns = [(task, m) for task in results for m in ("linear_probe", "knn")]
    columns += [(next(iter(results)), m) for m in BASELINES]
    header = ["labels/class"] + [f"{t} {method_label(m)}" if m in ("linear_probe", "knn") else method_label(m)
                                 for t, m in columns]
    lines = [header] + [[str(b)] + [cell(results[t], m, b) for t, m in columns] for b in budgets]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print(f"\n{dataset}: test accuracy (%)")
    for line in lines:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny runs on a small synthetic table, for CI")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads per job (1: these MLPs are tiny, see the README)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--datasets", default=",".join(RECIPES))
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--set", action="append", default=[], help="extra config override, e.g. task.temperature=0.5")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.set)
    datasets, tasks = args.datasets.split(","), args.tasks.split(",")
    repeats, budgets, supervised = args.repeats, BUDGETS, None
    if args.smoke:
        datasets, repeats, budgets, supervised = ["synthetic_table"], 1, (4, "all"), {"max_steps": 20}
    print(describe_machine(), f"· {args.threads} thread(s) per job (a shared machine: other jobs may be running)")
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(tmp)
        for dataset in datasets:
            recipe = {"data.dataset": dataset, "train.threads": args.threads, **RECIPES.get(dataset, {}), **extra}
            if args.smoke:
                recipe.update({"data.synthetic_rows": 600, "train.epochs": 1, "train.batch_size": 64})
            results: dict[str, dict[tuple[str, Any], dict[str, Any]]] = {}
            for i, task in enumerate(tasks):
                run, seconds = train(store, {**recipe, "task.name": task})
                chosen = budgets_for(run, budgets)
                methods = ["linear_probe", "knn"] + (list(BASELINES) if i == 0 else [])
                started = time.perf_counter()
                result = evaluate_run(run, chosen, repeats=repeats, methods=methods, supervised=supervised)
                results[task] = {(r["method"], r["labels_per_class"]): r for r in result["results"]}
                print(f"{dataset} {task}: trained {run.config().train.epochs} epochs in {seconds:.1f} s, "
                      f"evaluated in {time.perf_counter() - started:.1f} s")
                mse = [r["test_recon_mse"] for r in run.metrics("epoch") if "test_recon_mse" in r]
                if task == "tabular_autoencoder" and mse:
                    print(f"  test reconstruction MSE {mse[0]:.4f} (epoch 0) -> {mse[-1]:.4f} (epoch {len(mse) - 1}): "
                          f"x{mse[0] / mse[-1]:.1f} lower")
            print_table(dataset, chosen, results)
    print(describe_machine())  # the load average again: it moves while the benchmark runs


if __name__ == "__main__":
    main()
