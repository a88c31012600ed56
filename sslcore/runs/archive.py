"""A run as one zip file: export it to share or keep, import it back as a run.

An export holds ``config.json``, ``status.json`` (no pid or host details), ``metrics.jsonl`` (the exact
curves) and ``metrics.csv`` (the same records for spreadsheets), ``encoder.safetensors`` (the final encoder
with its input normalisation), ``eval.json`` if the run was evaluated, ``snapshots/epoch_NNNN.npz`` and a
``README.md`` with a snippet that loads the encoder. An import checks all of it first (see
:mod:`sslcore.runs.archive_checks`) and only then moves the finished folder into the store in one rename.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import tempfile
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from safetensors.torch import save as save_safetensors

from sslcore.atomic import write_atomic
from sslcore.config import RunConfig, config_from_dict
from sslcore.data import DatasetUnavailableError
from sslcore.runs.archive_checks import (
    ArchiveError,
    ArchiveLimits,
    check_config,
    check_encoder,
    check_members,
    check_metrics,
    check_snapshot,
    check_status,
    read_json_object,
)
from sslcore.runs.archive_readme import readme_text
from sslcore.runs.eval_results import parse_eval_results
from sslcore.runs.files import DamagedFileError, write_json_atomic
from sslcore.runs.store import (
    ACTIVE_STATES,
    FINAL_STATES,
    INTERRUPTED_REASON,
    Run,
    RunStore,
    clean_run_name,
    new_run_id,
)
from sslcore.runs.summary import essential_damage
from sslcore.runs.weights import (
    ENCODER_FILE,
    IMAGE_SHAPE_KEY,
    build_config_encoder,
    final_encoder_state,
    format_image_shape,
    load_encoder,
    load_run_encoder,
    run_image_shape,
)
from sslcore.userdata.store import default_data_root

__all__ = ["ArchiveError", "ArchiveLimits", "export_run", "import_run", "load_encoder", "load_run_encoder"]

#: status.json fields an export keeps; pid, process identity, traceback (local paths) and queue times stay home.
EXPORTED_STATUS_KEYS = ("name", "tags", "state", "created", "started", "ended", "epochs", "error", "device",
                        "dataset_size", IMAGE_SHAPE_KEY, "dataset")
MAX_EXPORTED_SNAPSHOTS = 200  # first, last and evenly spaced between: stays under an import's member cap
_CHUNK = 1024 * 1024


# --------------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------------

def export_run(run: Run, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``run`` as one zip at ``out`` (atomically: a half-written zip is never left there); returns ``out``.

    ArchiveError if the run is still training, has no weights yet, or ``out`` exists and not ``overwrite``.
    """
    out = Path(out)
    damage = essential_damage(run)
    if damage:  # its status or config cannot be read: nothing trustworthy to describe it with
        raise ArchiveError(f"cannot export run {run.id}: it is damaged ({damage})")
    if run.state in ACTIVE_STATES and run.is_alive():
        raise ArchiveError(f"run {run.id} is still {run.state}; stop it or let it finish before exporting")
    if out.exists() and not overwrite:
        raise ArchiveError(f"{out} already exists; choose another file or allow overwriting (--force)")
    if not out.parent.is_dir():
        raise ArchiveError(f"cannot write {out}: folder {out.parent} does not exist")
    members = export_members(run)
    _check_export_sizes(members)

    def write_zip(f: BinaryIO) -> None:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, content in members.items():
                zf.write(content, name) if isinstance(content, Path) else zf.writestr(name, content)

    write_atomic(out, write_zip, permissions=0o644)  # mkstemp's 0600 would surprise whoever the file is for
    return out


def export_members(run: Run) -> dict[str, bytes | Path]:
    """Archive member name -> its bytes (or a file to copy), in the order a person reads them."""
    config = run.config()
    try:
        state = final_encoder_state(run)
        image_shape = run_image_shape(run, config)
    except (FileNotFoundError, ValueError, DatasetUnavailableError) as e:  # no weights, or no way to size them
        raise ArchiveError(f"cannot export run {run.id}: {e}") from None
    encoder = build_config_encoder(config, image_shape)
    try:
        encoder.load_state_dict(state)  # proves the exported weights fit the exported config
    except RuntimeError as e:
        raise ArchiveError(f"cannot export run {run.id}: its weights do not fit its config ({e})") from None
    records = run.metrics()
    status = exported_status(run, image_shape)
    epochs_done = max((r.get("epoch", 0) for r in records if r.get("kind") == "epoch"), default=0)
    members: dict[str, bytes | Path] = {
        "README.md": readme_text(run.id, config, status, image_shape, encoder.feature_dim, epochs_done).encode(),
        "config.json": _json_bytes(config.to_dict()),
        "status.json": _json_bytes(status),
        "metrics.csv": metrics_csv(records).encode(),
        "metrics.jsonl": "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records).encode(),
        "encoder.safetensors": encoder_bytes(encoder.state_dict(), config, image_shape),
    }
    try:
        evaluation = run.eval_results()
    except DamagedFileError as e:
        raise ArchiveError(f"cannot export run {run.id}: {e}") from None
    if evaluation is not None:
        members["eval.json"] = _json_bytes(evaluation)
    for path in pick_snapshots(run.snapshot_files(), MAX_EXPORTED_SNAPSHOTS):
        members[f"snapshots/{path.name}"] = path
    return members


def exported_status(run: Run, image_shape: tuple[int, ...]) -> dict[str, Any]:
    """The run's status without process details, plus where and when it came from."""
    raw = run.status()
    status = {k: raw[k] for k in EXPORTED_STATUS_KEYS if k in raw}
    if status.get("state") not in FINAL_STATES:  # it says running, but its process is gone
        status.update(state="failed", error=INTERRUPTED_REASON)
    return {**status, IMAGE_SHAPE_KEY: list(image_shape), "run_id": run.id, "exported_at": time.time()}


def encoder_bytes(state: dict[str, Any], config: RunConfig, image_shape: tuple[int, ...]) -> bytes:
    """The encoder's state_dict as safetensors, with what is needed to rebuild it in the metadata."""
    metadata = {"format": "pt", "sslcore": "encoder", "encoder": config.encoder.name,
                "width": str(config.encoder.width), IMAGE_SHAPE_KEY: format_image_shape(image_shape)}
    return save_safetensors({k: v.detach().contiguous().cpu() for k, v in state.items()}, metadata=metadata)


def metrics_csv(records: list[dict[str, Any]]) -> str:
    """Step and epoch records as CSV: one row each, columns = every key seen (kind, step, epoch first)."""
    columns = list(dict.fromkeys(["kind", "step", "epoch", *(k for r in records for k in r)]))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def pick_snapshots(paths: list[Path], limit: int) -> list[Path]:
    """At most ``limit`` of ``paths``: all if they fit, else the first, the last and evenly spaced ones."""
    if len(paths) <= limit:
        return paths
    keep = sorted(set(np.linspace(0, len(paths) - 1, limit).round().astype(int).tolist()))
    return [paths[i] for i in keep]


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, indent=1).encode()


def _check_export_sizes(members: dict[str, bytes | Path]) -> None:
    """Refuse to write an archive that an import (with the default limits) would refuse."""
    limits = ArchiveLimits()
    sizes = {n: c.stat().st_size if isinstance(c, Path) else len(c) for n, c in members.items()}
    for name, size in sizes.items():
        if size > limits.max_member_bytes:
            raise ArchiveError(f"cannot export: {name} is {size / 2**20:.0f} MiB, over the "
                               f"{limits.max_member_bytes / 2**20:g} MiB an import accepts")
    if sum(sizes.values()) > limits.max_total_bytes:
        raise ArchiveError(f"cannot export: over {limits.max_total_bytes / 2**20:g} MiB in all")


# --------------------------------------------------------------------------------------------------
# import
# --------------------------------------------------------------------------------------------------

def import_run(path: str | Path, store: RunStore, *, name: str | None = None,
               limits: ArchiveLimits = ArchiveLimits(), data_root: str | None = None) -> Run:
    """Check the archive at ``path`` and add it to ``store`` as a new run; ArchiveError if it is refused.

    Nothing is written before the member list passes; the contents are then checked in a hidden staging
    folder inside the runs folder, which becomes the run in one rename. A refused archive leaves nothing.
    data_root: this machine's data folder, which replaces the archive's ``data.root`` (a path on the machine
    that exported it, or anything its author wrote); default ``$SSL_DATA_ROOT``, else ``data``.
    """
    path = Path(path)
    data_root = data_root or default_data_root()
    try:
        display_name = None if name is None else clean_run_name(name)
    except ValueError as e:
        raise ArchiveError(str(e)) from None
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise ArchiveError(f"{path} does not exist") from None
    except (zipfile.BadZipFile, OSError) as e:
        raise ArchiveError(f"{path.name} is not a readable zip file ({e})") from None
    with zf:
        members = check_members(zf, limits)
        made_root = not store.root.exists()
        store.root.mkdir(parents=True, exist_ok=True)
        try:
            return _import_checked(zf, members, store, path.name, display_name, limits, data_root)
        except BaseException:
            if made_root:
                with contextlib.suppress(OSError):
                    store.root.rmdir()
            raise


def _import_checked(zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], store: RunStore, source: str,
                    name: str | None, limits: ArchiveLimits, data_root: str) -> Run:
    # The staging folder's run sits one level down, so the store never lists a half-imported run.
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=store.root))
    try:
        folder = staging / "run"
        extract_members(zf, members, folder, limits)
        status, config = checked_status(folder, members, source, name, limits)
        # Datasets are read from this machine's data root only; the dataset itself may be missing here (stored).
        config = config_from_dict(config.to_dict(), {"data.root": data_root}, stored=True)
        write_json_atomic(folder / "config.json", config.to_dict())
        write_json_atomic(folder / "status.json", status)
        return _move_into(store, folder, status["imported_from"]["run_id"], config)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def member_target(name: str) -> str | None:
    """Where an archive member goes in the run folder; None for files a run folder does not keep."""
    if name == "encoder.safetensors":
        return f"checkpoints/{ENCODER_FILE}"
    return None if name in ("metrics.csv", "README.md") else name


def extract_members(zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], folder: Path,
                    limits: ArchiveLimits) -> None:
    """Copy the kept members into ``folder``, enforcing the size caps on the bytes actually inflated."""
    root = folder.resolve(strict=False)
    total = 0
    for name, info in members.items():
        target = member_target(name)
        if target is None:
            continue
        dest = folder / target
        if not dest.resolve(strict=False).is_relative_to(root):  # names were checked; this guards the mapping
            raise ArchiveError(f"member {name!r} is refused: it would be written outside the run folder")
        dest.parent.mkdir(parents=True, exist_ok=True)
        total += _copy_capped(zf, info, dest, limits, limits.max_total_bytes - total)


def _copy_capped(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, limits: ArchiveLimits, room: int) -> int:
    written = 0
    try:
        with zf.open(info) as src, open(dest, "xb") as out:
            while chunk := src.read(_CHUNK):
                written += len(chunk)
                if written > min(info.file_size, limits.max_member_bytes):
                    raise ArchiveError(f"member {info.filename!r} is refused: it inflates past the "
                                       f"{min(info.file_size, limits.max_member_bytes)} bytes its header declares")
                if written > room:
                    raise ArchiveError(f"the archive is refused: over {limits.max_total_bytes / 2**20:g} MiB "
                                       "uncompressed in all")
                out.write(chunk)
    except (zipfile.BadZipFile, EOFError, zlib.error) as e:  # a bad CRC, truncated data, broken deflate stream
        raise ArchiveError(f"member {info.filename!r} is refused: its data is corrupt ({e})") from None
    return written


def checked_status(folder: Path, members: dict[str, zipfile.ZipInfo], source: str, name: str | None,
                   limits: ArchiveLimits) -> tuple[dict[str, Any], RunConfig]:
    """Check every extracted file; returns the imported run's status.json and its config."""
    config = check_config(folder / "config.json")
    image_shape = check_encoder(folder / "checkpoints" / ENCODER_FILE, config)
    if "metrics.jsonl" in members:
        check_metrics(folder / "metrics.jsonl")
    if "eval.json" in members:
        try:  # the same check every reader of eval.json relies on
            parse_eval_results(read_json_object(folder / "eval.json", "eval.json"))
        except DamagedFileError as e:
            raise ArchiveError(f"eval.json is refused: {e}") from None
    for member in members:
        if member.startswith("snapshots/"):
            check_snapshot(folder / member, member, limits)
    original: dict[str, Any] = {}
    if "status.json" in members:
        original = check_status(folder / "status.json", EXPORTED_STATUS_KEYS + ("run_id", "exported_at"))
    status = {k: original[k] for k in EXPORTED_STATUS_KEYS if k in original}
    status.update(state=original.get("state", "completed"), created=time.time(), epochs=config.train.epochs,
                  name=name or original.get("name") or f"{config.task.name} on {config.data.dataset} (imported)",
                  **{IMAGE_SHAPE_KEY: list(image_shape)})
    status["imported_from"] = {"file": source, "run_id": original.get("run_id"), "created": original.get("created"),
                               "exported_at": original.get("exported_at"), "imported_at": time.time()}
    return status, config


def _move_into(store: RunStore, folder: Path, original_id: str | None, config: RunConfig) -> Run:
    """Rename the checked folder into the store, under its original id unless that one is taken."""
    run_id = original_id if original_id and not (store.root / original_id).exists() else new_run_id(config)
    while (store.root / run_id).exists():
        run_id = new_run_id(config)
    os.rename(folder, store.root / run_id)
    return Run(store.root / run_id)
