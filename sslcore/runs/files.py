"""Crash-safe file primitives for the run store: atomic JSON replace and append-only JSON lines.

Run folders are also edited by hand, copied across file systems and imported from archives, so a reader
must expect a file that is not UTF-8 or not JSON: :func:`read_json_object` says so with a
:class:`DamagedFileError` naming the file, and :func:`read_jsonl` skips lines it cannot decode.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, overload

from sslcore.atomic import write_atomic


def write_json_atomic(path: Path, obj: Any) -> None:
    """Replace ``path`` with ``obj`` as JSON so readers see the old or the new file, never a torn one (durable)."""
    text = json.dumps(obj, indent=1)
    write_atomic(path, lambda f: f.write(text.encode()), durable=True)


class DamagedFileError(ValueError):
    """A run file exists but is not what it should be (not UTF-8, not JSON, not a JSON object)."""


def read_json(path: Path, default: Any = None) -> Any:
    """The JSON in ``path``, or ``default`` if it does not exist (ValueError if it is not UTF-8 JSON)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


@overload
def read_json_object(path: Path, default: dict[str, Any]) -> dict[str, Any]: ...


@overload
def read_json_object(path: Path, default: None = None) -> dict[str, Any] | None: ...


def read_json_object(path: Path, default: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The JSON object in ``path``, or ``default`` if the file does not exist.

    DamagedFileError, naming the file and what is wrong in one line, if it is unreadable, not UTF-8,
    not JSON or not an object.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return default
    except OSError as e:
        raise DamagedFileError(f"{path.name} cannot be read ({e.strerror or e})") from None
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise DamagedFileError(f"{path.name} is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise DamagedFileError(f"{path.name} is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    if not isinstance(value, dict):
        raise DamagedFileError(f"{path.name} holds a JSON {type(value).__name__}, not an object")
    return value


def append_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append one JSON object per line. A crash can tear at most the last line, which readers skip."""
    lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
    with open(path, "a") as f:
        f.write(lines)
        f.flush()


def write_jsonl_atomic(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Rewrite a JSON-lines file atomically (used only when a resume trims records past its checkpoint)."""
    text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
    write_atomic(path, lambda f: f.write(text.encode()), durable=True)


def read_jsonl(path: Path, containing: str | None = None) -> list[dict[str, Any]]:
    """All complete JSON lines of ``path``; a torn or corrupt line (from a crash mid-write) is skipped.

    containing: decode only the lines with this substring (e.g. '"kind":"epoch"' skips the far more
    numerous step lines without parsing them; records are written compactly, see :func:`append_jsonl`).
    """
    try:
        # Undecodable bytes become U+FFFD, so such a line fails to parse and is skipped like a torn one.
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        if containing is not None and containing not in line:
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            records.append(value)
    return records


def truncate_torn_tail(path: Path) -> None:
    """Drop a partial last line left by a killed writer, so appends after a resume start on a fresh line."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)
