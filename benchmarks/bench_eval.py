"""Wall-clock time of the full evaluation protocol on a trained run (the "Evaluate" button's cost).

Trains the default recipe (mnist5k + SimCLR + convnet) once if no finished run with that config is in the
store (or takes a run folder), then times ``evaluate_run`` with the Evaluate page's defaults: budgets
1/4/10/100/all, 3 repeats, linear probe, k-NN, supervised baseline and raw pixels, always recomputing.
The target (issue 14) is 60 s on 2 free CPU cores. It also prints when each method's last row arrived (the
quick methods run first, and the Evaluate page shows each row as it finishes). Then the same protocol once
more with the baseline fits kept by the first (:mod:`sslcore.evaluation.baseline_fits`): what evaluating
another run on the same data costs. ``--sequential-too`` also times the protocol with the networks trained
in this process one by one (as before they trained side by side in worker processes), and prints the ratio;
``--compare`` times, that way, the supervised networks in the contiguous (NCHW) layout instead of
channels_last; ``--fp32-too`` times the protocol with the networks forced to fp32 (where they train in bf16 by
default: GPUs, CPUs with native bf16): on a shared machine only a ratio measured in one run means anything.

    python benchmarks/bench_eval.py                      # default recipe, trained into runs/ if needed
    python benchmarks/bench_eval.py runs/<run-id>        # an existing run folder
    python benchmarks/bench_eval.py --sequential-too     # also the networks one by one in this process, and the ratio
    python benchmarks/bench_eval.py --compare            # also the NCHW-layout protocol, and the ratio
    python benchmarks/bench_eval.py --fp32-too           # also the networks in fp32 (where bf16 is their default)
    python benchmarks/bench_eval.py --no-augment-too     # also the supervised baseline without augmentation
    python benchmarks/bench_eval.py --smoke              # tiny digits version for CI (a few seconds)
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled
from emulation import add_emulation_flag, reexec_if_emulating  # noqa: E402

from sslcore.config import RunConfig, default_config  # noqa: E402
from sslcore.data import load_run_data  # noqa: E402
from sslcore.engine.device import configure_threads, describe_machine  # noqa: E402
from sslcore.engine.training_run import execute_run  # noqa: E402
from sslcore.evaluation import (  # noqa: E402
    evaluate_run,
    format_results_table,
    label_subsets,
    supervised_baseline,
)
from sslcore.evaluation.baseline_fits import kept_count  # noqa: E402
from sslcore.runs import Run, RunStore  # noqa: E402
from sslcore.runs.eval_manager import DEFAULT_BUDGETS  # noqa: E402

SMOKE_CONFIG = {"data.dataset": "digits", "train.epochs": 1, "encoder.width": 8, "train.snapshot_images": 2,
                "train.threads": 1}
SMOKE_SUPERVISED = {"max_steps": 20, "eval_every": 10, "steps_without_holdout": 10}


def find_or_train(store: RunStore, config: RunConfig) -> Run:
    """The newest completed run in ``store`` with exactly ``config``; trained now if there is none."""
    for run in store.list():
        if run.state == "completed" and run.config() == config:
            print(f"using run {run.path}")
            return run
    run = store.create(config, name="bench_eval")
    print(f"training {run.path} ...", flush=True)
    started = time.perf_counter()
    outcome = execute_run(run, console=sys.stdout)
    if outcome != "completed":
        raise SystemExit(f"training ended '{outcome}': {run.status().get('error')}")
    print(f"trained in {time.perf_counter() - started:.1f} s")
    return run


def cpu_time() -> float:
    """CPU seconds of this process and of its ended children (the evaluation's fit processes)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def method_seconds(result: dict[str, Any]) -> str:
    """Seconds per method, summed over budgets and repeats."""
    totals: dict[str, float] = {}
    for row in result["results"]:
        totals[row["method"]] = totals.get(row["method"], 0.0) + row["seconds_total"]
    return ", ".join(f"{m} {s:.1f} s" for m, s in totals.items())


def supervised_without_augmentation(run: Run, budgets: list, repeats: int, seed: int,
                                    overrides: dict[str, Any]) -> None:
    """The supervised baseline with ``augment=False`` on the protocol's own subsets (eval.json untouched)."""
    config = run.config()
    data = load_run_data(config.data)
    subsets = label_subsets(data.train.labels, budgets, repeats, seed)
    for budget in budgets:
        accuracies = []
        for r in range(repeats):
            idx = subsets[(budget, r)]
            model = supervised_baseline(config, data, {**overrides, "augment": False}, seed + r)
            model.fit(data.train.samples[idx], data.train.labels[idx])
            accuracies.append(model.score(data.test.samples, data.test.labels))
        print(f"supervised without augmentation, {budget} labels/class: "
              f"{100 * np.mean(accuracies):.1f} ± {100 * np.std(accuracies):.1f}")


def timed_evaluation(run: Run, budgets: list, repeats: int, overrides: dict[str, Any], label: str,
                     quiet: bool) -> tuple[float, float]:
    """Run the protocol once (recomputing); print its table and timing; return (wall s, CPU s)."""
    started, cpu_started = time.perf_counter(), cpu_time()
    progress = None if quiet else (lambda f, m: print(f"  [{100 * f:5.1f}%] {m}", flush=True))
    arrived: dict[str, float] = {}  # method -> seconds from the start to its last row (what the page shows)

    def on_row(row: dict[str, Any]) -> None:
        arrived[row["method"]] = time.perf_counter() - started

    result = evaluate_run(run, budgets, repeats, force=True, supervised=overrides, progress=progress, on_row=on_row)
    seconds, cpu_seconds = time.perf_counter() - started, cpu_time() - cpu_started
    print(f"--- {label}")
    print(format_results_table(result))
    # CPU seconds next to wall seconds: on a shared machine the wall clock also counts other people's work.
    print(f"evaluate_run ({label}): {seconds:.1f} s wall, {cpu_seconds:.1f} s CPU "
          f"(features {result['timing']['features_s']:.1f} s; fit seconds summed: {method_seconds(result)}; network "
          f"fits in {result['environment']['network_processes'] or 'this'} process(es), "
          f"{result['environment']['network_precision']})", flush=True)
    print("every row of a method shown after: " + ", ".join(f"{m} {s:.1f} s" for m, s in arrived.items()),
          flush=True)
    return seconds, cpu_seconds


def later_evaluation(run: Run, budgets: list, repeats: int, overrides: dict[str, Any], first_wall: float) -> None:
    """What evaluating another run on the same data costs once the baseline fits are kept: the same protocol
    again with its eval.json set aside, so the features, probes and k-NN are made anew and the baselines read
    back (the run's own figures are unchanged: they are restored afterwards)."""
    stored = run.path / "eval.json"
    aside = stored.with_name("eval.json.bench")
    stored.replace(aside)
    try:
        started = time.perf_counter()
        result = evaluate_run(run, budgets, repeats, supervised=overrides)
        seconds = time.perf_counter() - started
    finally:
        aside.replace(stored)
    kept = kept_count(result)
    print(f"a later evaluation on the same data (baseline fits kept: {kept} read back): {seconds:.1f} s wall, "
          f"{first_wall / seconds:.1f}x faster than the first ({method_seconds(result)})", flush=True)


def in_this_process() -> Any:
    """A context in which the protocol trains its networks in this process, one by one (as before session 9),
    so that patches of this process reach them: fits in worker processes would not see a mock."""
    return mock.patch("sslcore.evaluation.protocol.fit_processes", lambda *args, **kwargs: 0)


def networks_in_fp32(run: Run, budgets: list, repeats: int, overrides: dict[str, Any]) -> tuple[float, float]:
    """The protocol with the supervised networks forced to fp32 (``precision="fp32"``), side by side as by
    default (wall s, CPU s): speed and accuracy against the default run, where the networks train in bf16
    autocast (:func:`sslcore.evaluation.supervised.trains_in_bf16`); elsewhere both are fp32."""
    return timed_evaluation(run, budgets, repeats, {**overrides, "precision": "fp32"}, "supervised networks in fp32",
                            quiet=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", help="a trained run folder (default: find or train the default recipe)")
    parser.add_argument("--store", default="runs", help="run store to search and train into (default: runs)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads; 0 = all cores (default; 1 with --smoke)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sequential-too", action="store_true",
                        help="also time the protocol with the networks trained in this process, one by one")
    parser.add_argument("--compare", action="store_true",
                        help="also time the protocol with the supervised networks in the NCHW layout")
    parser.add_argument("--fp32-too", action="store_true",
                        help="also time the protocol with the networks in fp32 (where they train in bf16 by default)")
    parser.add_argument("--no-augment-too", action="store_true",
                        help="also report the supervised baseline trained without augmentation")
    parser.add_argument("--smoke", action="store_true", help="tiny digits run, budgets 1, 4 and all, 2 repeats")
    add_emulation_flag(parser)
    args = parser.parse_args()
    reexec_if_emulating(args)
    threads = configure_threads(args.threads if args.threads is not None else (1 if args.smoke else 0))
    budgets, repeats, overrides = list(DEFAULT_BUDGETS), args.repeats, {}
    if args.smoke:
        budgets, repeats, overrides = [1, 4, "all"], 2, SMOKE_SUPERVISED
    if args.run:
        run = RunStore(args.store).get(args.run)
    else:
        store = RunStore(tempfile.mkdtemp(prefix="bench_eval_") if args.smoke else args.store)
        run = find_or_train(store, default_config(**SMOKE_CONFIG) if args.smoke else default_config())
    configure_threads(threads)  # training set its own thread count; the benchmark uses the requested one
    print(describe_machine())
    print(f"{threads} torch thread(s); budgets {budgets}, {repeats} repeats")
    wall, cpu = timed_evaluation(run, budgets, repeats, overrides, "default protocol", quiet=args.compare)
    precision = json.loads((run.path / "eval.json").read_text())["environment"]["network_precision"]
    later_evaluation(run, budgets, repeats, overrides, wall)
    if args.sequential_too or args.compare:
        # The variants below patch this process only, so they and their reference train the networks here.
        with in_this_process():
            seq_wall, seq_cpu = timed_evaluation(run, budgets, repeats, overrides,
                                                 "networks trained in this process, one by one", quiet=True)
        print(f"networks side by side / one by one: {seq_wall / wall:.2f}x faster (wall), "
              f"{cpu / seq_cpu:.2f}x the CPU")
    if args.compare:
        # The layout is an implementation detail, not a protocol parameter: switched off here only.
        with in_this_process(), mock.patch("sslcore.evaluation.supervised.to_conv_layout",
                                           lambda model: torch.contiguous_format):
            old_wall, old_cpu = timed_evaluation(run, budgets, repeats, overrides, "NCHW layout (before issue 14)",
                                                 quiet=True)
        print(f"channels_last / NCHW, networks one by one: {seq_wall / old_wall:.2f}x wall, "
              f"{seq_cpu / old_cpu:.2f}x CPU")
    if args.fp32_too:
        fp32_wall, fp32_cpu = networks_in_fp32(run, budgets, repeats, overrides)
        print(f"networks in {precision} (the default here) against fp32, side by side: {fp32_wall / wall:.2f}x "
              f"faster (wall), {cpu / fp32_cpu:.2f}x the CPU")
    print(describe_machine())  # the load average again: it moves while the benchmark runs
    if args.no_augment_too:
        supervised_without_augmentation(run, budgets, repeats, 0, overrides)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
