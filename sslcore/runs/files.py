"""Crash-safe file primitives for the run store: atomic JSON replace and append-only JSON lines."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable


def write_json_atomic(path: Path, obj: Any) -> None:
    """Replace ``path`` with ``obj`` as JSON so readers see the old or the new file, never a torn one.

    Temp file in the same folder (same filesystem, so os.replace is atomic) + fsync before the rename.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path, default: Any = None) -> Any:
    """The JSON in ``path``, or ``default`` if it does not exist."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


def append_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Append one JSON object per line. A crash can tear at most the last line, which readers skip."""
    lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
    with open(path, "a") as f:
        f.write(lines)
        f.flush()


def write_jsonl_atomic(path: Path, records: Iterable[dict[str, Any]]) -> None:
    """Rewrite a JSON-lines file atomically (used only when a resume trims records past its checkpoint)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All complete JSON lines of ``path``; a torn or corrupt line (from a crash mid-write) is skipped."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
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
