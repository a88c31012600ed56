"""Checks on a run archive (zip) from outside: its member list before anything is written, then its contents.

Every refusal is an :class:`ArchiveError` whose message names the member and the rule it breaks. The
member list is checked from the zip's headers alone; sizes are enforced again while extracting (a header
can lie), and the contents (config, weights, metrics, snapshots) are parsed before the run exists.
"""
from __future__ import annotations

import json
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from safetensors import safe_open
from safetensors.torch import load_file

from sslcore.config import RunConfig, config_from_dict
from sslcore.runs.store import FINAL_STATES, MAX_NAME_CHARS, MAX_TAG_CHARS, MAX_TAGS, TAG_PATTERN
from sslcore.runs.weights import IMAGE_SHAPE_KEY, build_config_encoder, parse_image_shape

MiB = 1024 * 1024
#: Files an archive may hold, each exactly once (plus per-epoch snapshots); the first two are required.
REQUIRED_MEMBERS = ("config.json", "encoder.safetensors")
OPTIONAL_MEMBERS = ("status.json", "metrics.jsonl", "metrics.csv", "eval.json", "README.md")
SNAPSHOT_MEMBER = re.compile(r"snapshots/epoch_\d{4}\.npz")
SNAPSHOT_FOLDER = "snapshots/"
_COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # safe as a folder name: no '/', no leading '.'


class ArchiveError(ValueError):
    """A run archive that cannot be written or is refused on import; the message says which member and why."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Caps on an imported archive, so a hostile or broken zip cannot fill the disk or the memory."""

    max_members: int = 256
    max_member_bytes: int = 256 * MiB  # a ResNet-18's weights are ~45 MiB; a long run's metrics a few MiB
    max_total_bytes: int = 1024 * MiB
    max_snapshot_array_bytes: int = 64 * MiB  # the arrays inside one snapshot .npz (itself a zip)


# --------------------------------------------------------------------------------------------------
# the member list (headers only; nothing is written yet)
# --------------------------------------------------------------------------------------------------

def check_member_name(name: str) -> None:
    """Refuse names that could land outside the run folder, before any allow-list comparison."""
    if "\x00" in name or "\\" in name:
        raise ArchiveError(f"member {name!r} is refused: its name holds a backslash or NUL character")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise ArchiveError(f"member {name!r} is refused: it is an absolute path")
    if ".." in PurePosixPath(name).parts:
        raise ArchiveError(f"member {name!r} is refused: it climbs out of the archive with '..'")


def check_member_type(info: zipfile.ZipInfo) -> None:
    """Only plain files (and the snapshots folder): no links, devices, encryption or exotic compression."""
    mode = info.external_attr >> 16  # Unix mode bits, when the zip was made on Unix
    if stat.S_ISLNK(mode):
        raise ArchiveError(f"member {info.filename!r} is refused: it is a symbolic link")
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise ArchiveError(f"member {info.filename!r} is refused: it is not a regular file")
    if info.flag_bits & 0x1:
        raise ArchiveError(f"member {info.filename!r} is refused: it is encrypted")
    if info.compress_type not in _COMPRESSIONS:
        raise ArchiveError(f"member {info.filename!r} is refused: compression method {info.compress_type} "
                           "(expected stored or deflated)")


def is_allowed_name(name: str) -> bool:
    return name in REQUIRED_MEMBERS or name in OPTIONAL_MEMBERS or SNAPSHOT_MEMBER.fullmatch(name) is not None


def check_members(zf: zipfile.ZipFile, limits: ArchiveLimits) -> dict[str, zipfile.ZipInfo]:
    """The archive's files by name, after checking every header; ArchiveError at the first problem."""
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise ArchiveError(f"the archive has {len(infos)} members: at most {limits.max_members} are allowed")
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        name = info.filename
        check_member_name(name)
        check_member_type(info)
        if info.is_dir():
            if name != SNAPSHOT_FOLDER:
                raise ArchiveError(f"member {name!r} is refused: the only folder allowed is {SNAPSHOT_FOLDER}")
            continue
        if not is_allowed_name(name):
            allowed = ", ".join(REQUIRED_MEMBERS + OPTIONAL_MEMBERS)
            raise ArchiveError(f"member {name!r} is refused: expected only {allowed} and snapshots/epoch_NNNN.npz")
        if name in members:
            raise ArchiveError(f"member {name!r} is refused: it appears twice")
        if info.file_size > limits.max_member_bytes:
            raise ArchiveError(f"member {name!r} is refused: {info.file_size / MiB:.1f} MiB uncompressed, over the "
                               f"{limits.max_member_bytes / MiB:g} MiB a member may have")
        total += info.file_size
        if total > limits.max_total_bytes:
            raise ArchiveError(f"the archive is refused: over {limits.max_total_bytes / MiB:g} MiB uncompressed in all")
        members[name] = info
    missing = [m for m in REQUIRED_MEMBERS if m not in members]
    if missing:
        raise ArchiveError(f"the archive is refused: it has no {missing[0]} (is it an sslcore run export?)")
    return members


# --------------------------------------------------------------------------------------------------
# contents (extracted into a hidden staging folder; the run does not exist yet)
# --------------------------------------------------------------------------------------------------

def read_json_object(path: Path, member: str) -> dict[str, Any]:
    try:
        value = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ArchiveError(f"{member} is refused: it is not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise ArchiveError(f"{member} is refused: expected a JSON object, got {type(value).__name__}")
    return value


def check_config(path: Path) -> RunConfig:
    """The run config, validated as a config typed by a person would be; its dataset may be missing here (a
    dataset of the exporter's own: the import says so, see ``sslcore.userdata.usage.dataset_problem``)."""
    try:
        return config_from_dict(read_json_object(path, "config.json"), stored=True)
    except ArchiveError:
        raise
    except ValueError as e:  # ConfigError and UnknownNameError name the field and what is allowed
        raise ArchiveError(f"config.json is refused: {e}") from None


def check_encoder(path: Path, config: RunConfig) -> tuple[int, ...]:
    """Check the weights load and fit ``config``'s encoder (keys, shapes, dtypes); returns the image shape."""
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path))
    except Exception as e:  # noqa: BLE001 - the parser's own message says what is wrong with the bytes
        raise ArchiveError(f"encoder.safetensors is refused: not a readable safetensors file ({e})") from None
    try:
        image_shape = parse_image_shape(metadata.get(IMAGE_SHAPE_KEY))
    except ValueError as e:
        raise ArchiveError(f"encoder.safetensors is refused: its metadata {IMAGE_SHAPE_KEY!r}: {e}") from None
    expected = build_config_encoder(config, image_shape).state_dict()
    for key in sorted(set(expected) | set(tensors)):
        if key not in tensors or key not in expected:
            where = "is missing" if key not in tensors else "is not part of"
            raise ArchiveError(f"encoder.safetensors is refused: tensor {key!r} {where} the {config.encoder.name} "
                               "encoder that config.json describes")
        got, want = tensors[key], expected[key]
        if got.shape != want.shape or got.dtype != want.dtype:
            raise ArchiveError(f"encoder.safetensors is refused: tensor {key!r} is {got.dtype} {tuple(got.shape)}, "
                               f"but config.json's encoder needs {want.dtype} {tuple(want.shape)}")
    return image_shape


def check_metrics(path: Path) -> None:
    """Every line of metrics.jsonl must be one JSON object (an export never has a torn line)."""
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            value = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            value = None
        if not isinstance(value, dict):
            raise ArchiveError(f"metrics.jsonl is refused: line {number} is not a JSON object")


def check_snapshot(path: Path, member: str, limits: ArchiveLimits) -> None:
    """A snapshot must be a plain-array .npz (no pickles) with ``task`` (``kind`` in older files) and ``epoch``,
    and small once loaded.

    An .npz is itself a zip, so its inner sizes are capped before numpy inflates anything.
    """
    try:
        with zipfile.ZipFile(path) as inner:
            declared = sum(i.file_size for i in inner.infolist())
        if declared > limits.max_snapshot_array_bytes:
            raise ArchiveError(f"{member} is refused: its arrays are {declared / MiB:.1f} MiB, over "
                               f"{limits.max_snapshot_array_bytes / MiB:g} MiB")
        with np.load(path, allow_pickle=False) as npz:
            files = list(npz.files)
            arrays = [npz[key] for key in files]  # reads each array: a lying .npy header fails here
    except ArchiveError:
        raise
    except Exception as e:  # noqa: BLE001 - numpy/zipfile say what is wrong
        raise ArchiveError(f"{member} is refused: not a readable snapshot ({e})") from None
    if not ("task" in files or "kind" in files) or "epoch" not in files:
        raise ArchiveError(f"{member} is refused: a snapshot needs the arrays 'task' (or 'kind') and 'epoch'")
    if sum(a.nbytes for a in arrays) > limits.max_snapshot_array_bytes:
        raise ArchiveError(f"{member} is refused: its arrays are larger than their headers declare")


def _dataset_record_ok(value: Any) -> bool:
    """{"name": ..., "content_hash"/"labels_hash": "sha256:<64 hex>"} as a run records its dataset."""
    return (isinstance(value, dict) and set(value) <= {"name", "content_hash", "labels_hash"}
            and isinstance(value.get("name"), str) and 0 < len(value["name"]) <= 100
            and all(isinstance(value[k], str) and re.fullmatch(r"sha256:[0-9a-f]{64}", value[k])
                    for k in ("content_hash", "labels_hash") if k in value))


def _check_status_field(key: str, value: Any) -> bool:
    """Whether an exported status value has the type (and range) the run store writes."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    checks = {
        "name": lambda: isinstance(value, str) and 0 < len(value) <= MAX_NAME_CHARS and value.isprintable(),
        "tags": lambda: isinstance(value, list) and len(value) <= MAX_TAGS and all(
            isinstance(t, str) and len(t) <= MAX_TAG_CHARS and TAG_PATTERN.fullmatch(t) for t in value),
        "state": lambda: value in FINAL_STATES,
        "error": lambda: value is None or (isinstance(value, str) and len(value) <= 4000),
        "device": lambda: isinstance(value, str) and len(value) <= 40,
        "run_id": lambda: isinstance(value, str) and _RUN_ID.fullmatch(value) is not None,
        IMAGE_SHAPE_KEY: lambda: isinstance(value, list) and _is_sample_shape(value),
        "dataset": lambda: _dataset_record_ok(value),
    }
    return checks[key]() if key in checks else (value is None or number)


def _is_sample_shape(value: list[Any]) -> bool:
    """(C, H, W) of images or (F,) of a table, within the bounds an encoder may be built for."""
    try:
        parse_image_shape(value)
    except ValueError:
        return False
    return True


def check_status(path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """The exported status, reduced to ``keys``; a value of the wrong type is refused by name."""
    raw = read_json_object(path, "status.json")
    status = {k: raw[k] for k in keys if k in raw}
    for key, value in status.items():
        if not _check_status_field(key, value):
            expected = f": expected one of {', '.join(FINAL_STATES)}" if key == "state" else ""
            raise ArchiveError(f"status.json is refused: {key} = {value!r} is not a valid value{expected}")
    return status
