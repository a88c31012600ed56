"""Command line: ``python -m sslcore`` (or ``sslcore``) over the same config and engine as the dashboard.

Bad input exits with status 2 and one line naming the field, the value and what is allowed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from sslcore.config import ConfigError, config_from_dict, load_config_file, parse_assignments
from sslcore.data import DATASETS, DatasetUnavailableError
from sslcore.registry import UnknownNameError
from sslcore.runs import RunNotFoundError, RunStore

#: Shortcut flags of `train` and the config field each one sets.
TRAIN_SHORTCUTS = {"dataset": "data.dataset", "task": "task.name", "encoder": "encoder.name", "epochs": "train.epochs",
                   "batch_size": "train.batch_size", "lr": "train.lr", "seed": "train.seed", "device": "train.device",
                   "data_root": "data.root"}


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def cmd_datasets(args: argparse.Namespace) -> int:
    for entry in DATASETS:
        print(f"{entry.name:<15} {entry.description}")
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from sslcore.tasks import TASKS

    for entry in TASKS:
        print(f"{entry.name:<23} {entry.description}")
    return 0


def cmd_encoders(args: argparse.Namespace) -> int:
    from sslcore.models import ENCODERS

    for entry in ENCODERS:
        print(f"{entry.name:<10} {entry.description}")
    return 0


def train_overrides(args: argparse.Namespace) -> dict[str, str]:
    """Dotted overrides from the shortcut flags, then --set (which wins)."""
    overrides = {field: str(getattr(args, flag)) for flag, field in TRAIN_SHORTCUTS.items() if getattr(args, flag) is not None}
    if args.download:
        overrides["data.download"] = "true"
    overrides.update(parse_assignments(args.set or []))
    return overrides


def cmd_train(args: argparse.Namespace) -> int:
    from sslcore.engine.job import execute_run

    base = load_config_file(args.config) if args.config else {}
    config = config_from_dict(base, train_overrides(args))
    run = RunStore(args.runs_dir).create(config, name=args.name)
    print(f"run {run.id}: {config.task.name} on {config.data.dataset} with {config.encoder.name}, "
          f"{config.train.epochs} epochs", file=sys.stderr)
    outcome = execute_run(run, console=sys.stderr)
    return _report_outcome(run, outcome)


def cmd_resume(args: argparse.Namespace) -> int:
    from sslcore.engine.job import execute_run

    run = RunStore(args.runs_dir).get(args.run)
    if run.state in ("running", "queued") and run.is_alive():
        raise CLIError(f"run {run.id} is still {run.state}; stop it before resuming")
    if not (run.checkpoint_dir / "last.pt").exists():
        raise CLIError(f"run {run.id} has no checkpoint to resume from; train it again instead")
    run.stop_path.unlink(missing_ok=True)
    return _report_outcome(run, execute_run(run, resume=True, console=sys.stderr))


def parse_budgets(text: str) -> list[int | str]:
    """'4,10,all' -> [4, 10, 'all'], with a clear error for anything else."""
    budgets: list[int | str] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        if part == "all":
            budgets.append("all")
        elif part.isdigit() and int(part) > 0:
            budgets.append(int(part))
        else:
            raise CLIError(f"--labels-per-class {text!r}: {part!r} is not allowed: expected positive integers or 'all', "
                           "comma-separated (e.g. 4,10,all)")
    if not budgets:
        raise CLIError("--labels-per-class is empty: expected e.g. 4,10,all")
    return budgets


def cmd_eval(args: argparse.Namespace) -> int:
    from sslcore.evaluation.protocol import METHODS, evaluate_run, format_results_table

    run = RunStore(args.runs_dir).get(args.run)
    budgets = parse_budgets(args.labels_per_class)
    methods = [m.strip() for m in args.methods.split(",")] if args.methods else list(METHODS)
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise CLIError(f"--methods: {unknown[0]!r} is not allowed: expected some of {', '.join(METHODS)}")
    if args.repeats < 1:
        raise CLIError(f"--repeats {args.repeats} is not allowed: expected at least 1")
    if not (run.checkpoint_dir / "last.pt").exists():
        raise CLIError(f"run {run.id} has no checkpoint yet; evaluate it after its first epoch")

    def progress(fraction: float, message: str) -> None:
        print(f"\r[{fraction:4.0%}] {message[:70]:<70}", end="", file=sys.stderr, flush=True)

    result = evaluate_run(run, budgets, repeats=args.repeats, seed=args.seed, methods=methods, progress=progress,
                          force=args.force)
    print(file=sys.stderr)
    print(format_results_table(result))
    print(run.path / "eval.json")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Entry point of a job-manager process: wait for a slot, then train (or resume) the run."""
    from sslcore.runs.jobs import run_worker

    return run_worker(Path(args.run_dir), resume=args.resume, slots=args.slots, threads=args.threads)


def _report_outcome(run, outcome: str) -> int:  # noqa: ANN001
    status = run.status()
    if outcome == "failed":
        print(f"run {run.id} failed: {status.get('error')}", file=sys.stderr)
    elif outcome == "cancelled":
        print(f"run {run.id} cancelled; resume with: python -m sslcore resume {run.id}", file=sys.stderr)
    print(run.path)  # the last line: the run folder, for scripts
    return 0 if outcome == "completed" else 1


def cmd_list(args: argparse.Namespace) -> int:
    runs = RunStore(args.runs_dir).list()
    if not runs:
        print(f"no runs in {args.runs_dir}/")
        return 0
    print(f"{'run id':<45} {'state':<10} {'epoch':>9} {'loss':>8} {'kNN acc':>8}")
    for run in runs:
        status, epochs = run.status(), run.metrics("epoch")
        last = epochs[-1] if epochs else {}
        loss = f"{last['loss']:.4f}" if "loss" in last else "-"
        knn = f"{last['knn_acc']:.3f}" if "knn_acc" in last else "-"
        done = f"{last.get('epoch', 0)}/{status.get('epochs', '?')}"
        print(f"{run.id:<45} {status.get('state', '?'):<10} {done:>9} {loss:>8} {knn:>8}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sslcore", description="Self-supervised learning you can watch.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("datasets", help="list datasets").set_defaults(func=cmd_datasets)
    sub.add_parser("tasks", help="list pretext tasks").set_defaults(func=cmd_tasks)
    sub.add_parser("encoders", help="list encoders").set_defaults(func=cmd_encoders)

    train = sub.add_parser("train", help="train a pretext task; prints the run folder on the last line")
    for flag in TRAIN_SHORTCUTS:
        train.add_argument("--" + flag.replace("_", "-"), dest=flag, help=f"sets {TRAIN_SHORTCUTS[flag]}")
    train.add_argument("--download", action="store_true", help="download the dataset if its files are missing")
    train.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE", help="set any config field (repeatable)")
    train.add_argument("--config", help="JSON config file (full or partial); flags and --set override it")
    train.add_argument("--name", help="a name for the run")
    train.set_defaults(func=cmd_train)

    resume = sub.add_parser("resume", help="continue a cancelled or failed run from its last checkpoint")
    resume.add_argument("run", help="run id or folder")
    resume.set_defaults(func=cmd_resume)

    evaluate = sub.add_parser("eval", help="linear probe, k-NN, supervised and raw-pixel baselines across label budgets")
    evaluate.add_argument("run", help="run id or folder")
    evaluate.add_argument("--labels-per-class", default="4,all", help="comma-separated budgets, e.g. 1,4,10,all")
    evaluate.add_argument("--repeats", type=int, default=3, help="labelled subsets per budget (different seeds)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--methods", help="comma-separated subset of linear_probe,knn,supervised,raw_pixels")
    evaluate.add_argument("--force", action="store_true", help="recompute even if eval.json is up to date")
    evaluate.set_defaults(func=cmd_eval)

    listing = sub.add_parser("list", help="list runs")
    listing.set_defaults(func=cmd_list)

    worker = sub.add_parser("worker", help=argparse.SUPPRESS)
    worker.add_argument("run_dir")
    worker.add_argument("--resume", action="store_true")
    worker.add_argument("--slots", type=int, default=2)
    worker.add_argument("--threads", type=int, default=0)
    worker.set_defaults(func=cmd_worker)

    for p in (train, resume, evaluate, listing):
        p.add_argument("--runs-dir", default="runs", help="folder of runs (default: runs)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.func
    try:
        return handler(args)
    except (CLIError, ConfigError, UnknownNameError, RunNotFoundError, DatasetUnavailableError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
