"""Figures for mae (on vit_tiny), jigsaw and colorization, printed (not asserted: these machines are noisy).

Full: trains SimCLR's default recipe (the wall-time yardstick), then each task with its defaults (mae with
vit_tiny and jigsaw on mnist5k, colorization on shapes), prints the wall time, the task's test metric at epoch
0 and at the end, and evaluates the features at 4 and all labels per class: linear probe against raw pixels
and the same encoder trained supervised, plus fine-tuning for mae (MAE's features are known to need it).

    .venv/bin/python benchmarks/bench_vision.py                 # the figures in the README (long)
    .venv/bin/python benchmarks/bench_vision.py --tasks mae     # one task
    .venv/bin/python benchmarks/bench_vision.py --smoke         # seconds, on digits / a small shapes; CI
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_recipe import train  # noqa: E402  (this folder is on the path when a script runs)
from sslcore.data import load_dataset  # noqa: E402
from sslcore.evaluation.protocol import evaluate_run, format_results_table  # noqa: E402
from sslcore.runs import Run, RunStore  # noqa: E402

#: task -> (its default recipe's overrides, the epoch metric it is judged by, the evaluation methods)
RECIPES = {
    "mae": ({"encoder.name": "vit_tiny"}, "test_recon_mse",
            ["linear_probe", "raw_pixels", "supervised", "finetune"]),
    "jigsaw": ({}, "test_jigsaw_acc", ["linear_probe", "raw_pixels", "supervised"]),
    "colorization": ({"data.dataset": "shapes"}, "test_recon_mse", ["linear_probe", "raw_pixels", "supervised"]),
}


def position_mean_error(run: Run) -> float:
    """Test MSE of guessing every pixel as the training images' mean at that pixel: what a model that
    ignores the visible context can reach (a masked model's error below this uses the context)."""
    d = run.config().data
    data = load_dataset(d.dataset, test_fraction=d.test_fraction, seed=d.split_seed, train_limit=d.train_limit)
    mean = data.train.images.float().div(255).mean(dim=0)
    return float(((data.test.images.float().div(255) - mean) ** 2).mean())


def timed_train(store: RunStore, overrides: dict) -> tuple[Run, float, float]:
    """(run, wall seconds, CPU seconds of this process): on a shared machine the CPU time is the fairer yardstick."""
    cpu = time.process_time()
    run, seconds = train(store, overrides)
    return run, seconds, time.process_time() - cpu


def report_training(task: str, run: Run, seconds: tuple[float, float], metric: str,
                    yardstick: tuple[float, float]) -> None:
    values = [r[metric] for r in run.metrics("epoch")]
    change = f"x{values[0] / values[-1]:.1f} lower" if metric.endswith("mse") else f"{values[-1]:.1%}"
    print(f"{task} on {run.config().data.dataset} with {run.config().encoder.name}: {seconds[0]:.1f} s wall "
          f"({seconds[0] / yardstick[0]:.2f}x simclr), {seconds[1]:.1f} s CPU ({seconds[1] / yardstick[1]:.2f}x); "
          f"{metric} {values[0]:.4f} (epoch 0) -> {values[-1]:.4f} (epoch {len(values) - 1}): {change}")
    if task == "mae":
        print(f"  pixel-mean guess (uses no context): test MSE {position_mean_error(run):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny version for CI")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tasks", default=",".join(RECIPES), help="comma-separated subset of " + ", ".join(RECIPES))
    args = parser.parse_args()
    # One thread for the smoke run: the ViT's many small kernels make spinning OpenMP threads cost minutes of
    # CPU on a busy 2-core machine (measured: 64 s of CPU with 2 threads, 1.9 s with one, same work).
    threads = 1 if args.smoke else args.threads
    torch.set_num_threads(threads)
    base = {"train.threads": threads}
    if args.smoke:
        base.update({"data.dataset": "digits", "train.epochs": 1, "encoder.width": 8, "data.train_limit": 200,
                     "train.knn_k": 0, "train.snapshot_images": 2})
    budgets, repeats = (["all"], 1) if args.smoke else ([4, "all"], 3)
    supervised = {"max_steps": 20} if args.smoke else None

    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(tmp)
        _, *yardstick = timed_train(store, {**base, "task.name": "simclr"})
        print(f"simclr (the yardstick): {yardstick[0]:.1f} s wall, {yardstick[1]:.1f} s CPU ({threads} threads)")
        for task in args.tasks.split(","):
            overrides, metric, methods = RECIPES[task]
            run, *seconds = timed_train(store, {**base, **overrides, "task.name": task})
            report_training(task, run, tuple(seconds), metric, tuple(yardstick))
            started = time.perf_counter()
            result = evaluate_run(run, budgets, repeats=repeats, methods=methods, supervised=supervised)
            print(f"  evaluation (budgets {budgets}, {repeats} repeats) took {time.perf_counter() - started:.1f} s")
            print(format_results_table(result))


if __name__ == "__main__":
    main()
