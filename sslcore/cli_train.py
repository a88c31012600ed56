"""``sslcore train`` and ``sslcore resume``: train a run (with torchrun, several processes train one run)."""
from __future__ import annotations

import argparse
import contextlib
import sys

from sslcore.cli_common import CLIError, add_runs_dir
from sslcore.config import RunConfig, config_from_dict, load_config_file, parse_assignments
from sslcore.runs import Run, RunStore
from sslcore.runs.training_lock import training_lock

#: Shortcut flags of `train` and the config field each one sets.
TRAIN_SHORTCUTS = {"dataset": "data.dataset", "task": "task.name", "encoder": "encoder.name", "epochs": "train.epochs",
                   "batch_size": "train.batch_size", "lr": "train.lr", "seed": "train.seed", "device": "train.device",
                   "data_root": "data.root"}


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


def add_train_commands(sub: argparse._SubParsersAction) -> None:
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
    add_runs_dir(train, resume)
