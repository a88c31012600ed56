"""Command line: ``python -m sslcore`` (or ``sslcore``) over the same config and engine as the dashboard.

Bad input exits with status 2 and one line naming the field, the value and what is allowed.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sslcore.cli_data import add_data_commands
from sslcore.config import ConfigError, RunConfig, config_from_dict, load_config_file, parse_assignments
from sslcore.data import DATASETS, DatasetUnavailableError
from sslcore.engine.device import DeviceUnavailableError
from sslcore.os_errors import describe_for_options
from sslcore.registry import UnknownNameError
from sslcore.runs import Run, RunNotFoundError, RunStore
from sslcore.runs.training_lock import RunInUseError, training_lock
from sslcore.userdata.store import default_data_root

if TYPE_CHECKING:
    from sslcore.evaluation.protocol import Budget

#: Shortcut flags of `train` and the config field each one sets.
TRAIN_SHORTCUTS = {"dataset": "data.dataset", "task": "task.name", "encoder": "encoder.name", "epochs": "train.epochs",
                   "batch_size": "train.batch_size", "lr": "train.lr", "seed": "train.seed", "device": "train.device",
                   "data_root": "data.root"}


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def cmd_datasets(args: argparse.Namespace) -> int:
    from sslcore.userdata.discovery import refresh_user_datasets

    refresh_user_datasets(args.data_root)  # the user's own datasets, listed with the built-in ones
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
    overrides = {field: str(getattr(args, flag)) for flag, field in TRAIN_SHORTCUTS.items()
                 if getattr(args, flag) is not None}
    if args.download:
        overrides["data.download"] = "true"
    overrides.update(parse_assignments(args.set or []))
    return overrides


def train_base(args: argparse.Namespace) -> dict:
    """The config that flags and --set edit: another run's (--from), a file's (--config), or the defaults."""
    if args.from_run and args.config:
        raise CLIError("--from and --config both give a starting config; use one of them")
    if args.from_run:
        return RunStore(args.runs_dir).get(args.from_run).config().to_dict()
    return load_config_file(args.config) if args.config else {}


def cmd_train(args: argparse.Namespace) -> int:
    """Train a new run; under ``torchrun --nproc-per-node N`` the N processes train that one run together."""
    from sslcore import distributed
    from sslcore.engine.training_run import check_inputs, execute_run

    config = config_from_dict(train_base(args), train_overrides(args))
    check_inputs(config)  # missing data or device: refused like bad input, before a run folder exists
    join_group(config.train.device)  # with several processes: agree on one run folder, made by rank 0
    run = Run(distributed.from_main(lambda: _create_run(args, config).path))
    if distributed.is_main():
        print(f"run {run.id}: {config.task.name} on {config.data.dataset} with {config.encoder.name}, "
              f"{config.train.epochs} epochs" + _processes_note(), file=sys.stderr)
    with _main_rank_training_lock(run):
        outcome = execute_run(run, console=sys.stderr)
    return _report_outcome(run, outcome)


def cmd_resume(args: argparse.Namespace) -> int:
    """Continue a run from its checkpoint, with any number of processes (torchrun), not only the original."""
    from sslcore import distributed
    from sslcore.engine.training_run import execute_run
    from sslcore.runs.actions import resume_blocker
    from sslcore.runs.summary import essential_damage

    run = RunStore(args.runs_dir).get(args.run)
    if essential_damage(run):  # unreadable status or config: not even the device to join on is known
        raise CLIError(resume_blocker(run))
    join_group(run.config().train.device)
    with _main_rank_training_lock(run):  # RunInUseError if another process trains it: checked and run under the lock
        problem = resume_blocker(run)
        if problem:
            raise CLIError(problem)
        if distributed.is_main():
            run.stop_path.unlink(missing_ok=True)
        distributed.barrier()  # no rank may see the old STOP file
        return _report_outcome(run, execute_run(run, resume=True, console=sys.stderr))


def _create_run(args: argparse.Namespace, config: RunConfig) -> Run:
    try:
        return RunStore(args.runs_dir).create(config, name=args.name)  # the rule rename follows (length, printable)
    except ValueError as e:
        raise CLIError(f"--name: {e}") from None


def _main_rank_training_lock(run: Run) -> contextlib.AbstractContextManager[None]:
    """The run's training lock, held by rank 0 only: the ranks of one torchrun job train the run together."""
    from sslcore import distributed

    return training_lock(run.path) if distributed.is_main() else contextlib.nullcontext()


def join_group(device: str) -> None:
    """Under torchrun, join the run's process group now; a device that cannot be used is a one-line error."""
    from sslcore import distributed

    if distributed.env_world().world_size > 1:
        try:
            distributed.join(device)
        except RuntimeError as e:
            raise CLIError(str(e)) from None


def _processes_note() -> str:
    from sslcore import distributed

    return f" on {distributed.world_size()} processes" if distributed.world_size() > 1 else ""


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
    from sslcore.engine.device import configure_threads
    from sslcore.evaluation.encoder_source import weights_path
    from sslcore.evaluation.protocol import evaluate_run, format_results_table

    run = RunStore(args.runs_dir).get(args.run)
    budgets = parse_budgets(args.labels_per_class)
    methods = parse_methods(args.methods)
    if args.repeats < 1:
        raise CLIError(f"--repeats {args.repeats} is not allowed: expected at least 1")
    try:
        weights_path(run)  # a training checkpoint, or an imported run's encoder weights
    except FileNotFoundError:
        raise CLIError(f"run {run.id} has no checkpoint yet; evaluate it after its first epoch") from None

    def progress(fraction: float, message: str) -> None:
        print(f"\r[{fraction:4.0%}] {message[:70]:<70}", end="", file=sys.stderr, flush=True)

    configure_threads(0)
    try:
        result = evaluate_run(run, budgets, repeats=args.repeats, seed=args.seed, methods=methods, progress=progress,
                              force=args.force)
    except ValueError as e:  # a budget larger than a class, a checkpoint that no longer fits its config
        raise CLIError(str(e)) from None
    print(file=sys.stderr)
    print(format_results_table(result))
    print(run.path / "eval.json")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from sslcore.runs.archive import ArchiveError, export_run  # late: torchvision is slow to import

    run = RunStore(args.runs_dir).get(args.run)
    try:
        out = export_run(run, Path(args.out), overwrite=args.force)
    except ArchiveError as e:
        raise CLIError(str(e)) from None
    print(f"exported run {run.id} ({out.stat().st_size / 1024:.0f} KiB)", file=sys.stderr)
    print(out)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from sslcore.runs.archive import ArchiveError, import_run

    try:
        run = import_run(Path(args.file), RunStore(args.runs_dir), name=args.name)
    except ArchiveError as e:  # the member and the rule it breaks, in one line
        raise CLIError(str(e)) from None
    print(f"imported {Path(args.file).name} as run {run.id} ({run.state})", file=sys.stderr)
    from sslcore.userdata.usage import dataset_problem

    if problem := dataset_problem(run):
        print(f"note: {problem}", file=sys.stderr)
    print(run.path)
    return 0


def confirm(question: str) -> bool:
    """Ask a yes/no question on the terminal; refuse outright when nobody can answer (no TTY)."""
    if not sys.stdin.isatty():
        raise CLIError(f"{question.rstrip('?')}: refusing without confirmation; pass --yes to confirm")
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def cmd_delete(args: argparse.Namespace) -> int:
    from sslcore.runs.actions import RunBusyError, delete_run, describe

    store = RunStore(args.runs_dir)
    run = store.get(args.run)
    if not args.yes and not confirm(f"Delete run {run.id} ({describe(run)})?"):
        print("not deleted", file=sys.stderr)
        return 1
    try:
        delete_run(store, run)
    except (ValueError, RunBusyError) as e:
        raise CLIError(str(e)) from None
    print(f"deleted run {run.id}", file=sys.stderr)
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    run = RunStore(args.runs_dir).get(args.run)
    try:
        name = run.rename(args.name)
    except ValueError as e:
        raise CLIError(str(e)) from None
    print(f"run {run.id} is now called {name!r}", file=sys.stderr)
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    run = RunStore(args.runs_dir).get(args.run)
    current = run.tags()
    tags = [t for t in current if t not in args.tags] if args.remove else current + list(args.tags)
    try:
        tags = run.set_tags(tags)
    except ValueError as e:
        raise CLIError(str(e)) from None
    print(" ".join(tags) if tags else f"run {run.id} has no tags")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Entry point of a job-manager process: wait for a slot, then train (or resume) the run."""
    from sslcore.runs.process_manager import run_worker

    return run_worker(Path(args.run_dir), resume=args.resume, slots=args.slots, threads=args.threads,
                      processes=args.processes)


def cmd_rank(args: argparse.Namespace) -> int:
    """Entry point of one process of a run trained by several (started by torchrun for a job-manager worker)."""
    from sslcore import distributed
    from sslcore.engine.training_run import execute_run

    run = Run(Path(args.run_dir))
    outcome = execute_run(run, resume=args.resume, console=sys.stdout if distributed.env_world().is_main else None,
                          threads=args.threads)
    return 1 if outcome == "failed" else 0  # torchrun takes any other exit code for a crash of the whole run


def cmd_eval_worker(args: argparse.Namespace) -> int:
    """Entry point of an evaluation job's process (started by sslcore.runs.eval_manager.EvalJobManager)."""
    import json

    from sslcore.runs.eval_manager import EvalRequest
    from sslcore.runs.eval_worker import run_eval_worker

    methods = parse_methods(args.methods)
    request = EvalRequest(tuple(parse_budgets(args.budgets)), args.repeats, args.seed,
                          EvalRequest.methods if methods is None else tuple(methods), json.loads(args.supervised),
                          args.force)
    return run_eval_worker(Path(args.run_dir), request.checked(), slots=args.slots)


def _report_outcome(run: Run, outcome: str) -> int:
    from sslcore import distributed

    if not distributed.env_world().is_main:  # rank 0 speaks for the run
        return 0 if outcome == "completed" else 1
    status = run.status()
    if outcome == "failed":
        print(f"run {run.id} failed: {status.get('error')}", file=sys.stderr)
    elif outcome == "cancelled":
        print(f"run {run.id} cancelled; resume with: python -m sslcore resume {run.id}", file=sys.stderr)
    print(run.path)  # the last line: the run folder, for scripts
    return 0 if outcome == "completed" else 1


def cmd_list(args: argparse.Namespace) -> int:
    from sslcore.runs.summary import format_summaries, summarize

    runs = RunStore(args.runs_dir).list()
    if not runs:
        print(f"no runs in {args.runs_dir}/")
        return 0
    print(format_summaries([summarize(run) for run in runs]))  # a run whose process is gone is marked failed first
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sslcore", description="Self-supervised learning you can watch.")
    sub = parser.add_subparsers(dest="command", required=True)
    datasets = sub.add_parser("datasets", help="list datasets (built in, and yours under the data root)")
    datasets.add_argument("--data-root", default=default_data_root(),
                          help="data root (default: $SSL_DATA_ROOT or data)")
    datasets.set_defaults(func=cmd_datasets)
    add_data_commands(sub)
    sub.add_parser("tasks", help="list pretext tasks").set_defaults(func=cmd_tasks)
    sub.add_parser("encoders", help="list encoders").set_defaults(func=cmd_encoders)

    train = sub.add_parser("train", help="train a pretext task; prints the run folder on the last line")
    for flag in TRAIN_SHORTCUTS:
        train.add_argument("--" + flag.replace("_", "-"), dest=flag, help=f"sets {TRAIN_SHORTCUTS[flag]}")
    train.add_argument("--download", action="store_true", help="download the dataset if its files are missing")
    train.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE",
                       help="set any config field (repeatable)")
    train.add_argument("--config", help="JSON config file (full or partial); flags and --set override it")
    train.add_argument("--from", dest="from_run", metavar="RUN",
                       help="start from another run's config (train it again); flags and --set edit it")
    train.add_argument("--name", help="a name for the run")
    train.set_defaults(func=cmd_train)

    resume = sub.add_parser("resume", help="continue a cancelled or failed run from its last checkpoint")
    resume.add_argument("run", help="run id or folder")
    resume.set_defaults(func=cmd_resume)

    evaluate = sub.add_parser("eval",
                              help="linear probe, k-NN, supervised and raw-pixel baselines across label budgets")
    evaluate.add_argument("run", help="run id or folder")
    evaluate.add_argument("--labels-per-class", default="4,all", help="comma-separated budgets, e.g. 1,4,10,all")
    evaluate.add_argument("--repeats", type=int, default=3, help="labelled subsets per budget (different seeds)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--methods", help="comma-separated subset of linear_probe,knn,supervised,raw_pixels,finetune "
                          "(default: all but finetune)")
    evaluate.add_argument("--force", action="store_true", help="recompute even if eval.json is up to date")
    evaluate.set_defaults(func=cmd_eval)

    listing = sub.add_parser("list", help="list runs")
    listing.set_defaults(func=cmd_list)

    export = sub.add_parser("export", help="write a run as one zip: config, metrics, encoder weights, eval, README")
    export.add_argument("run", help="run id or folder")
    export.add_argument("--out", required=True, metavar="FILE.zip", help="the zip file to write")
    export.add_argument("--force", action="store_true", help="overwrite FILE.zip if it exists")
    export.set_defaults(func=cmd_export)

    importing = sub.add_parser("import", help="add an exported run zip to the runs folder (checked first)")
    importing.add_argument("file", metavar="FILE.zip")
    importing.add_argument("--name", help="a name for the imported run (default: its original name)")
    importing.set_defaults(func=cmd_import)

    delete = sub.add_parser("delete", help="delete a run (a running one is stopped first)")
    delete.add_argument("run", help="run id or folder")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(func=cmd_delete)

    rename = sub.add_parser("rename", help="give a run a new name")
    rename.add_argument("run", help="run id or folder")
    rename.add_argument("name")
    rename.set_defaults(func=cmd_rename)

    tag = sub.add_parser("tag", help="add tags to a run (or remove them with --remove); prints its tags")
    tag.add_argument("run", help="run id or folder")
    tag.add_argument("tags", nargs="+", metavar="TAG")
    tag.add_argument("--remove", action="store_true", help="remove these tags instead of adding them")
    tag.set_defaults(func=cmd_tag)

    worker = sub.add_parser("worker")  # internal: the job manager's process; no help line on purpose
    worker.add_argument("run_dir")
    worker.add_argument("--resume", action="store_true")
    worker.add_argument("--slots", type=int, default=2)
    worker.add_argument("--threads", type=int, default=0)
    worker.add_argument("--processes", type=int, default=1)
    worker.set_defaults(func=cmd_worker)

    rank = sub.add_parser("rank")  # internal: one of a worker's torchrun processes; no help line on purpose
    rank.add_argument("run_dir")
    rank.add_argument("--resume", action="store_true")
    rank.add_argument("--threads", type=int, default=0)
    rank.set_defaults(func=cmd_rank)

    eval_worker = sub.add_parser("eval-worker")  # internal: an evaluation job's process; no help line on purpose
    eval_worker.add_argument("run_dir")
    eval_worker.add_argument("--budgets", default="1,4,10,100,all")
    eval_worker.add_argument("--repeats", type=int, default=3)
    eval_worker.add_argument("--seed", type=int, default=0)
    eval_worker.add_argument("--methods")
    eval_worker.add_argument("--supervised", default="{}", help="overrides of the supervised baseline, as JSON")
    eval_worker.add_argument("--slots", type=int, default=2)
    eval_worker.add_argument("--force", action="store_true")
    eval_worker.set_defaults(func=cmd_eval_worker)

    for p in (train, resume, evaluate, listing, export, importing, delete, rename, tag):
        p.add_argument("--runs-dir", default="runs", help="folder of runs (default: runs)")
    return parser


#: Options that name a path, so an OS error on that path can say which option to fix.
PATH_OPTIONS = ("runs_dir", "config", "data_root", "out")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; bad input and OS errors on the user's paths end in one line on stderr and status 2."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.func
    try:
        return handler(args)
    except (CLIError, ConfigError, UnknownNameError, RunNotFoundError, RunInUseError, DatasetUnavailableError,
            DeviceUnavailableError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the one place an OS error on a runs folder, config file or output path is worded
        paths = {"--" + option.replace("_", "-"): getattr(args, option, None) for option in PATH_OPTIONS}
        print(f"error: {describe_for_options(e, paths)}", file=sys.stderr)
        return 2
