"""Command line: ``python -m sslcore`` (or ``sslcore``) over the same config and engine as the dashboard.

Bad input exits with status 2 and one line naming the field, the value and what is allowed. One module per
command group: :mod:`.cli_train` (train, resume), :mod:`.cli_eval` (eval), :mod:`.cli_runs` (list, export,
import, delete, rename, tag), :mod:`.cli_data` (data ...), :mod:`.cli_workers` (the job managers' processes);
the catalogue (datasets, tasks, encoders), the parser and the error handling are here.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from sslcore.cli_common import CLIError
from sslcore.cli_data import add_data_commands
from sslcore.cli_eval import add_eval_commands
from sslcore.cli_runs import add_run_commands
from sslcore.cli_train import add_train_commands
from sslcore.cli_workers import add_worker_commands
from sslcore.config import ConfigError
from sslcore.data import DATASETS, DatasetUnavailableError
from sslcore.engine.device import DeviceUnavailableError
from sslcore.os_errors import describe_for_options
from sslcore.process_exit import exit_without_teardown
from sslcore.registry import UnknownNameError
from sslcore.runs import RunNotFoundError
from sslcore.runs.training_lock import RunInUseError
from sslcore.userdata.store import default_data_root


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sslcore", description="Self-supervised learning you can watch.")
    # A metavar, so the usage line does not list the job manager's internal commands (worker, rank, eval-worker)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    datasets = sub.add_parser("datasets", help="list datasets (built in, and yours under the data root)")
    datasets.add_argument("--data-root", default=default_data_root(),
                          help="data root (default: $SSL_DATA_ROOT or data)")
    datasets.set_defaults(func=cmd_datasets)
    add_data_commands(sub)
    sub.add_parser("tasks", help="list pretext tasks").set_defaults(func=cmd_tasks)
    sub.add_parser("encoders", help="list encoders").set_defaults(func=cmd_encoders)
    add_train_commands(sub)
    add_eval_commands(sub)
    add_run_commands(sub)
    add_worker_commands(sub)
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
    except BrokenPipeError:  # the reader stopped early (`sslcore list --json | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # what is still buffered goes nowhere
        return 0
    except OSError as e:  # the one place an OS error on a runs folder, config file or output path is worded
        paths = {"--" + option.replace("_", "-"): getattr(args, option, None) for option in PATH_OPTIONS}
        print(f"error: {describe_for_options(e, paths)}", file=sys.stderr)
        return 2


def run(argv: Sequence[str] | None = None) -> NoReturn:
    """The ``sslcore`` command and ``python -m sslcore``: :func:`main`, then an exit that skips the interpreter's
    module teardown (:mod:`sslcore.process_exit`: ~0.9 s saved on every command that imported torch)."""
    exit_without_teardown(main(argv))
