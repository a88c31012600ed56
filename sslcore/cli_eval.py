"""``sslcore eval``: the label-efficiency protocol on a run, in this process; the budget and method parsing
that the evaluation job's worker shares."""
from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from sslcore.cli_common import CLIError, add_runs_dir
from sslcore.runs import RunStore

if TYPE_CHECKING:
    from sslcore.evaluation.protocol import Budget

def parse_budgets(text: str) -> list[Budget]:
    """'4,10,all' -> [4, 10, 'all']; a CLIError naming the option for anything else."""
    from sslcore.evaluation.protocol import parse_budgets as parse

    try:
        return parse(text)
    except ValueError as error:
        raise CLIError(f"--labels-per-class {text!r}: {error}") from None


def parse_methods(text: str | None) -> list[str] | None:
    """'knn,supervised' -> ['knn', 'supervised']; None -> None (the defaults for the run's kind of data);
    a clear error for unknown ones."""
    from sslcore.evaluation.methods import ALL_METHODS, ALL_TABLE_METHODS

    if not text:
        return None
    known = list(dict.fromkeys(ALL_METHODS + ALL_TABLE_METHODS))
    methods = [m.strip() for m in text.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(known))
    if unknown or not methods:
        raise CLIError(f"--methods: {(unknown or [''])[0]!r} is not allowed: expected some of {', '.join(known)}")
    return methods


def cmd_eval(args: argparse.Namespace) -> int:
    from sslcore.engine.callbacks import format_duration
    from sslcore.engine.device import configure_threads
    from sslcore.evaluation.encoder_source import weights_path
    from sslcore.evaluation.protocol import evaluate_run, format_results_table
    from sslcore.evaluation.results import budget_amount, method_label, score_text
    from sslcore.evaluation.supervised import PRECISIONS

    run = RunStore(args.runs_dir).get(args.run)
    budgets = parse_budgets(args.labels_per_class)
    methods = parse_methods(args.methods)
    if args.repeats < 1:
        raise CLIError(f"--repeats {args.repeats} is not allowed: expected at least 1")
    if args.network_precision not in PRECISIONS:
        raise CLIError(f"--network-precision {args.network_precision!r} is not allowed: expected one of "
                       f"{', '.join(PRECISIONS)}")
    try:
        weights_path(run)  # a training checkpoint, or an imported run's encoder weights
    except FileNotFoundError:
        raise CLIError(f"run {run.id} has no checkpoint yet; evaluate it after its first epoch") from None

    # On a terminal, a progress line rewritten in place; in a log file or a pipe, only the finished rows (a
    # carriage return there glues every progress message onto one line).
    interactive = sys.stderr.isatty()
    started = time.perf_counter()

    def progress(fraction: float, message: str) -> None:
        if interactive:
            clock = format_duration(time.perf_counter() - started)
            print(f"\r[{fraction:4.0%} {clock:>5}] {message[:64]:<64}", end="", file=sys.stderr, flush=True)

    def finished(row: dict) -> None:  # the quick methods' figures, while the networks still train
        line = f"{method_label(row['method'])} · {budget_amount(row['labels_per_class'])}: {score_text(row)} %"
        print(f"\r{line:<77}" if interactive else line, file=sys.stderr, flush=True)

    configure_threads(0)
    try:
        result = evaluate_run(run, budgets, repeats=args.repeats, seed=args.seed, methods=methods, progress=progress,
                              force=args.force, on_row=finished, supervised={"precision": args.network_precision})
    except ValueError as e:  # a budget larger than a class, a checkpoint that no longer fits its config
        raise CLIError(str(e)) from None
    if interactive:
        print(file=sys.stderr)  # end the progress line
    print(format_results_table(result))
    print(run.path / "eval.json")
    return 0


def add_eval_commands(sub: argparse._SubParsersAction) -> None:
    evaluate = sub.add_parser("eval",
                              help="linear probe, k-NN, supervised and raw-pixel baselines across label budgets")
    evaluate.add_argument("run", help="run id or folder")
    evaluate.add_argument("--labels-per-class", default="4,all", help="comma-separated budgets, e.g. 1,4,10,all")
    evaluate.add_argument("--repeats", type=int, default=3, help="labelled subsets per budget (different seeds)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--methods", help="comma-separated subset of linear_probe,knn,supervised,raw_pixels,finetune "
                          "(default: all but finetune)")
    evaluate.add_argument("--network-precision", default="auto",
                          help="what the supervised baseline and fine-tuning train in: auto = bf16 autocast where "
                          "the SSL trainer uses it (GPUs, convolutional networks on CPUs with native bf16), else fp32")
    evaluate.add_argument("--force", action="store_true", help="recompute even if eval.json is up to date, and fit the "
                          "baselines again instead of reading those kept from an earlier evaluation on the same data")
    evaluate.set_defaults(func=cmd_eval)
    add_runs_dir(evaluate)
