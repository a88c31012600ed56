"""``sslcore list | export | import | delete | rename | tag``: the run folders themselves."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sslcore.cli_common import CLIError, add_runs_dir
from sslcore.runs import RunStore


def cmd_list(args: argparse.Namespace) -> int:
    from sslcore.runs.summary import format_summaries, summarize, summary_json

    runs = RunStore(args.runs_dir).list()
    summaries = [summarize(run) for run in runs]  # a run whose process is gone is marked failed first
    if args.json:  # one JSON object a line, for scripts; no line at all for no runs
        for summary in summaries:
            print(summary_json(summary))
    elif not runs:
        print(f"no runs in {args.runs_dir}/")
    else:
        print(format_summaries(summaries))
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


def add_run_commands(sub: argparse._SubParsersAction) -> None:
    listing = sub.add_parser("list", help="list runs")
    listing.add_argument("--json", action="store_true",
                         help="one JSON object a line per run (accuracies as fractions, times in seconds since "
                              "the epoch, null where unknown), for scripts")
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
    add_runs_dir(listing, export, importing, delete, rename, tag)
