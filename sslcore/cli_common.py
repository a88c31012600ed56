"""What every command group of the command line shares: the one-line error and the runs-folder option."""
from __future__ import annotations

import argparse


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def add_runs_dir(*parsers: argparse.ArgumentParser) -> None:
    """The ``--runs-dir`` option of the commands that work on runs."""
    for p in parsers:
        p.add_argument("--runs-dir", default="runs", help="folder of runs (default: runs)")
