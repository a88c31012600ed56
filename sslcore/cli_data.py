"""``sslcore data add | list | remove | label``: the user's own datasets from the command line.

``add`` imports a folder (inside the data root) or a zip of images, or a CSV table (``--target COLUMN`` for
its labels; none = unlabelled), and stores it under ``<data root>/user/<name>/``; ``list`` shows the stored
datasets; ``remove`` deletes one (refused while a run uses it); ``label`` adds labels later from a CSV
(file,label) or a folder of class folders. The data root is ``--data-root``, else ``$SSL_DATA_ROOT``, else
``data``. ``stage`` (no help line) is the Data page's worker: it imports into a hidden staging folder and
prints it as JSON, for the page to preview.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sslcore.cli_common import CLIError
from sslcore.cli_runs import confirm
from sslcore.config import ConfigError
from sslcore.userdata.sources import ImportLimits, ImportRefused

MiB = 1024 * 1024


def _fail(message: str) -> Exception:
    return CLIError(message)


def _options(args: argparse.Namespace):  # noqa: ANN202 - ImportOptions; its module imports the decoder stack
    from sslcore.userdata.importer import import_options

    if args.grey and args.rgb:
        raise _fail("--grey and --rgb contradict each other; give at most one")
    mode = "grey" if args.grey else "rgb" if args.rgb else "auto"
    return import_options(size=args.size, mode=mode, labels="none" if args.unlabelled else "auto")


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def _is_csv(args: argparse.Namespace) -> bool:
    """Whether ``args.path`` is a CSV table; the table options given for anything else are refused."""
    table = Path(args.path).suffix.lower() == ".csv"
    given = [f"--{flag}" for flag in ("target", "categorical", "numeric", "drop") if getattr(args, flag)]
    if given and not table:
        raise _fail(f"{given[0]} is for a CSV table, and {args.path} is not a .csv file")
    return table


def _stage(args: argparse.Namespace, max_bytes: int = 0, progress=None) -> Path:  # noqa: ANN001 - a callback
    """Import ``args.path`` into a staging folder: a CSV table, or a zip/folder of images."""
    root = Path(args.data_root)
    if _is_csv(args):
        from sslcore.data.csv_table import MAX_BYTES
        from sslcore.userdata.csv_import import stage_csv

        return stage_csv(Path(args.path), root, target=args.target, categorical=_names(args.categorical),
                         numeric=_names(args.numeric), drop=_names(args.drop), max_bytes=max_bytes or MAX_BYTES)
    from sslcore.userdata.importer import stage_import

    limits = ImportLimits(max_archive_bytes=max_bytes) if max_bytes else ImportLimits()
    return stage_import(Path(args.path), root, _options(args), limits, workers=args.workers, progress=progress)


def _progress(done: int, total: int) -> None:
    print(f"\r[{done / total:4.0%}] decoded {done:,} / {total:,} files", end="", file=sys.stderr, flush=True)


def cmd_data_add(args: argparse.Namespace) -> int:
    from sslcore.data import DATASETS
    from sslcore.userdata import store
    from sslcore.userdata.discovery import refresh_user_datasets

    store.sweep_stale(args.data_root)  # hidden leftovers of imports killed long ago
    refresh_user_datasets(args.data_root)
    try:
        store.check_name(args.name, DATASETS.names())  # before minutes of decoding, not after
        staging = _stage(args, progress=_progress)
    except (ImportRefused, ValueError) as e:
        print(file=sys.stderr)
        raise _fail(str(e)) from None
    print(file=sys.stderr)
    try:
        folder = store.commit(staging, args.name, DATASETS.names())
    except ValueError as e:
        store.discard(staging)
        raise _fail(str(e)) from None
    refresh_user_datasets(args.data_root)
    _describe(folder)
    print(folder)
    return 0


def _describe(folder: Path) -> None:
    from sslcore.userdata import store, summary

    manifest = store.read_manifest(folder)
    _, labels, strata = store.load_arrays(folder, manifest)
    print(f"{manifest.get('name') or folder.name}: {summary.headline(manifest, labels, strata)}", file=sys.stderr)
    for line in summary.class_lines(manifest)[:20]:
        print(f"  {line}", file=sys.stderr)
    print(f"  {summary.skipped_line(manifest)}", file=sys.stderr)
    for note in manifest.get("notes", []):  # a table's: formulas kept as text, ...
        print(f"  note: {note}", file=sys.stderr)
    for name, reason, detail in manifest.get("skipped_files", [])[:10]:
        print(f"    {name}: {reason} ({detail})", file=sys.stderr)


def cmd_data_stage(args: argparse.Namespace) -> int:
    try:
        staging = _stage(args, max_bytes=args.max_upload_mb * MiB)
    except (ImportRefused, ConfigError, ValueError) as e:
        print(json.dumps({"error": str(e)}))
        return 2
    print(json.dumps({"staging": str(staging)}))
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    from sslcore.userdata import store, summary

    folders = store.dataset_folders(args.data_root)
    if not folders:
        print(f"no datasets added in {store.store_dir(args.data_root)}/ "
              "(add one with `sslcore data add PATH --name NAME`)")
        return 0
    print(f"{'name':<20} {'images':>8} {'shape':>10} {'classes':>8} {'memory':>10}  content hash")
    for folder in folders:
        try:
            m = store.read_manifest(folder)
        except store.DatasetDamagedError as e:
            print(f"{folder.name:<20} damaged: {e}")
            continue
        shape = "x".join(str(s) for s in m["sample_shape"])
        classes = str(len(m["class_names"])) if m["class_names"] else "none"
        memory = summary.human_bytes(summary.memory_bytes(m))
        print(f"{folder.name:<20} {m['count']:>8,} {shape:>10} {classes:>8} {memory:>10}  {m['content_hash'][7:19]}")
    return 0


def cmd_data_remove(args: argparse.Namespace) -> int:
    from sslcore.userdata.usage import DatasetInUseError, remove_dataset, runs_using

    _, idle = runs_using(args.name, args.runs_dir)
    note = f" ({len(idle)} finished run(s) trained on it keep their results)" if idle else ""
    if not args.yes and not confirm(f"Remove dataset {args.name!r}{note}?"):
        print("not removed", file=sys.stderr)
        return 1
    try:
        remove_dataset(args.name, args.data_root, args.runs_dir)
    except (ValueError, DatasetInUseError) as e:
        raise _fail(str(e)) from None
    print(f"removed dataset {args.name!r}", file=sys.stderr)
    return 0


def cmd_data_label(args: argparse.Namespace) -> int:
    from sslcore.userdata.labels import apply_labels, labels_from_folder, read_label_csv
    from sslcore.userdata.usage import runs_using

    busy, _ = runs_using(args.name, args.runs_dir)
    if busy:
        raise _fail(f"dataset {args.name!r} is in use by run {busy[0].id}: label it when no run is training or "
                    "being evaluated on it")
    source = Path(args.source)
    try:
        mapping = (labels_from_folder(source, Path(args.data_root)) if source.is_dir()
                   else read_label_csv(source.read_bytes(), source.name))
        result = apply_labels(args.data_root, args.name, mapping, source.name)
    except FileNotFoundError:
        raise _fail(f"{source} does not exist") from None
    except (ImportRefused, ValueError, OSError) as e:
        raise _fail(str(e)) from None
    print(f"labelled {result['matched']:,} of {result['count']:,} images of {args.name!r} in "
          f"{len(result['class_names'])} classes", file=sys.stderr)
    if result["unmatched"]:
        print(f"  {len(result['unmatched'])} names matched no image, e.g. {result['unmatched'][0]!r}", file=sys.stderr)
    return 0


def add_data_commands(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``data`` command group to the main parser's subcommands; returns its parser."""
    from sslcore.userdata.store import default_data_root

    data = sub.add_parser("data",
                          help="your own datasets: add (folder or zip of images, CSV table), list, remove, label")
    group = data.add_subparsers(dest="data_command", required=True)
    add = group.add_parser("add", help="import a folder (inside the data root) or a zip of images, or a CSV table")
    stage = group.add_parser("stage")  # internal: the Data page's import worker; no help line on purpose
    for p in (add, stage):
        p.add_argument("path", metavar="PATH", help="a .zip, a folder inside the data root, or a .csv table")
        p.add_argument("--size", type=int, default=32, help="side of the stored square images (8 to 128; default 32)")
        p.add_argument("--grey", action="store_true", help="store grey images (default: grey only if all are grey)")
        p.add_argument("--rgb", action="store_true", help="store colour images even if all are grey")
        p.add_argument("--unlabelled", action="store_true", help="ignore class folders: import every image unlabelled")
        p.add_argument("--workers", type=int, default=0, help="decoding processes (default: one per core)")
        p.add_argument("--target", help="CSV: the column holding the labels (default: none, unlabelled)")
        p.add_argument("--categorical", help="CSV: columns to treat as categories (comma-separated)")
        p.add_argument("--numeric", help="CSV: columns to treat as numbers (comma-separated)")
        p.add_argument("--drop", help="CSV: columns to leave out, e.g. an identifier (comma-separated)")
    add.add_argument("--name", required=True, help="the dataset's name (letters, digits, _ and -)")
    add.set_defaults(func=cmd_data_add)
    stage.add_argument("--max-upload-mb", type=int, default=0)
    stage.set_defaults(func=cmd_data_stage)
    group.add_parser("list", help="list the datasets you added").set_defaults(func=cmd_data_list)
    remove = group.add_parser("remove", help="delete a dataset you added (refused while a run uses it)")
    remove.add_argument("name")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    remove.set_defaults(func=cmd_data_remove)
    label = group.add_parser("label", help="add labels: a CSV of file,label or a folder of class folders")
    label.add_argument("name")
    label.add_argument("source", metavar="FILE.csv|FOLDER")
    label.set_defaults(func=cmd_data_label)
    for p in (add, stage, group.choices["list"], remove, label):
        p.add_argument("--data-root", default=default_data_root(), help="data root (default: $SSL_DATA_ROOT or data)")
    for p in (remove, label):
        p.add_argument("--runs-dir", default="runs", help="folder of runs (default: runs)")
    return data
