"""Do the supervised networks learn as much in bf16 as in fp32? Paired fits, speed and accuracy.

For each repeat r, one stratified labelled subset of the default dataset (k labels per class, seed r; "all" =
every training image) is fitted twice by the supervised baseline (the default run's CNN, the Evaluate page's
settings), in fp32 and in bf16 autocast, with the same seed, one after the other in this process. Printed per
budget: the mean test accuracy each way, the mean paired difference (bf16 - fp32) and its standard error, and
the mean seconds per fit each way. A few repeats cannot tell a small loss from the spread between subsets
(at 4 labels per class one repeat differs from the next by 5-10 points); a paired difference over many can.

    .venv/bin/python benchmarks/bench_network_precision.py --budgets 1,4,10,100,all --repeats 12  # ~20 min
    .venv/bin/python benchmarks/bench_network_precision.py --smoke     # digits, tiny fits: seconds, for the tests

The fits run single-threaded (as the evaluation's worker processes run them). On a CPU without native bf16
the bf16 fits are only slower; the evaluation trains in bf16 only where it is fast (see
:func:`sslcore.evaluation.supervised.trains_in_bf16`).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled
from sslcore.config import RunConfig, default_config  # noqa: E402
from sslcore.data import DatasetSplit, load_run_data, stratified_subset  # noqa: E402
from sslcore.engine.device import describe_machine  # noqa: E402
from sslcore.evaluation import supervised_baseline  # noqa: E402
from sslcore.evaluation.protocol import parse_budgets  # noqa: E402

SMOKE_SETTINGS = {"max_steps": 8, "eval_every": 4, "steps_without_holdout": 4}


def paired_fit(config: RunConfig, data: DatasetSplit, budget: int | str, repeat: int,
               settings: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """{precision: (test accuracy %, seconds)} of the two fits of one labelled subset."""
    labels = data.train.labels
    index = torch.arange(len(labels)) if budget == "all" else stratified_subset(labels, int(budget), repeat)
    out = {}
    for precision in ("fp32", "bf16"):
        model = supervised_baseline(config, data, {**settings, "precision": precision}, repeat, "cpu")
        started = time.perf_counter()
        model.fit(data.train.samples[index], labels[index])
        seconds = time.perf_counter() - started
        out[precision] = (100 * model.score(data.test.samples, data.test.labels), seconds)
    return out


def report(budget: int | str, fits: list[dict[str, tuple[float, float]]]) -> None:
    fp32, bf16 = ([f[p][0] for f in fits] for p in ("fp32", "bf16"))
    differences = [b - a for a, b in zip(fp32, bf16, strict=True)]
    error = statistics.stdev(differences) / len(differences) ** 0.5 if len(differences) > 1 else float("nan")
    seconds = {p: statistics.mean(f[p][1] for f in fits) for p in ("fp32", "bf16")}
    print(f"{budget!s:>4} labels/class, {len(fits)} pairs: fp32 {statistics.mean(fp32):5.1f}  bf16 "
          f"{statistics.mean(bf16):5.1f}  paired difference {statistics.mean(differences):+5.2f} (standard error "
          f"{error:.2f})  s/fit fp32 {seconds['fp32']:.1f}, bf16 {seconds['bf16']:.1f} "
          f"({seconds['fp32'] / seconds['bf16']:.2f}x)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="4,100", help="labels per class, comma-separated, or all")
    parser.add_argument("--repeats", type=int, default=6, help="paired fits per budget")
    parser.add_argument("--first-seed", type=int, default=0, help="seed of the first repeat (to extend a series)")
    parser.add_argument("--smoke", action="store_true", help="digits, tiny fits: seconds, for the tests")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = default_config(**({"data.dataset": "digits"} if args.smoke else {}))
    budgets, repeats = ([2], 2) if args.smoke else (parse_budgets(args.budgets), args.repeats)
    settings = SMOKE_SETTINGS if args.smoke else {}
    print(describe_machine())
    data = load_run_data(config.data)
    print(f"{config.data.dataset}: {len(data.train)} train / {len(data.test)} test; one thread; fp32, then bf16, "
          "per subset")
    for budget in budgets:
        report(budget, [paired_fit(config, data, budget, r, settings)
                        for r in range(args.first_seed, args.first_seed + repeats)])
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
