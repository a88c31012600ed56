"""Quality bar of the default recipe, printed as figures (not asserted: these machines are noisy).

Full: trains the default SimCLR recipe on mnist5k (convnet), times it, then runs the evaluation protocol
(budgets 4 and all, 3 repeats) and times that; then trains each autoencoder-family task with its
defaults and prints test reconstruction error at epoch 0 and at the end; then trains each other two-view
method (MoCo v3, BYOL, SimSiam, Barlow Twins, VICReg, DINO) with its defaults and prints its wall time
against SimCLR's and its linear probe at 4 labels per class (against raw pixels) and with all labels.

    .venv/bin/python benchmarks/bench_recipe.py            # the figures in the README (several minutes)
    .venv/bin/python benchmarks/bench_recipe.py --smoke    # seconds, on digits; run by the test suite
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sslcore.config import default_config  # noqa: E402
from sslcore.engine.job import execute_run  # noqa: E402
from sslcore.evaluation.protocol import evaluate_run, format_results_table  # noqa: E402
from sslcore.runs import RunStore  # noqa: E402

AUTOENCODERS = ("autoencoder", "denoising_autoencoder", "masked_autoencoder")
TWO_VIEW = ("moco", "byol", "simsiam", "barlow_twins", "vicreg", "dino")


def train(store: RunStore, overrides: dict) -> tuple[object, float]:
    run = store.create(default_config(**overrides))
    started = time.perf_counter()
    outcome = execute_run(run)
    if outcome != "completed":
        raise SystemExit(f"training {overrides} ended {outcome}: {run.status().get('error')}")
    return run, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny digits version for CI")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--two-view", default=",".join(TWO_VIEW),
                        help="comma-separated two-view methods to train after SimCLR (empty: none)")
    args = parser.parse_args()
    base = {"train.threads": args.threads}
    if args.smoke:
        base.update({"data.dataset": "digits", "train.epochs": 1, "encoder.width": 8})
    budgets, repeats = ([1, "all"], 1) if args.smoke else ([4, "all"], 3)
    supervised = {"max_steps": 20} if args.smoke else None

    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(tmp)
        run, simclr_seconds = train(store, {**base, "task.name": "simclr"})
        seconds = simclr_seconds
        print(f"simclr on {run.config().data.dataset}: trained {run.config().train.epochs} epochs in {seconds:.1f} s "
              f"({args.threads} threads)")
        started = time.perf_counter()
        result = evaluate_run(run, budgets, repeats=repeats, supervised=supervised)
        print(f"evaluation (budgets {budgets}, {repeats} repeats) took {time.perf_counter() - started:.1f} s")
        print(format_results_table(result))
        for task in AUTOENCODERS:
            run, seconds = train(store, {**base, "task.name": task})
            mse = [r["test_recon_mse"] for r in run.metrics("epoch")]
            print(f"{task:<22} test reconstruction MSE {mse[0]:.4f} (epoch 0) -> {mse[-1]:.4f} "
                  f"(epoch {len(mse) - 1}): x{mse[0] / mse[-1]:.1f} lower, {seconds:.1f} s")
        for task in filter(None, args.two_view.split(",")):
            run, seconds = train(store, {**base, "task.name": task})
            result = evaluate_run(run, budgets, repeats=repeats, methods=("linear_probe", "raw_pixels"))
            rows = {(r["method"], str(r["labels_per_class"])): r for r in result["results"]}
            few, probe = str(budgets[0]), rows[("linear_probe", "all")]["accuracy_mean"]
            print(f"{task:<13} linear probe {100 * rows[('linear_probe', few)]['accuracy_mean']:.1f} "
                  f"(raw pixels {100 * rows[('raw_pixels', few)]['accuracy_mean']:.1f}) at {few} labels per class, "
                  f"{100 * probe:.1f} with all; trained in {seconds:.1f} s = {seconds / simclr_seconds:.2f}x SimCLR's")


if __name__ == "__main__":
    main()
