"""Atomic file replacement: a reader sees the old file or the whole new one, never a torn one.

Every file the dashboard reads while a job writes it (status, eval results, cached maps, snapshots,
checkpoints) goes through :func:`write_atomic`.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from sslcore.os_errors import with_path


def write_atomic(path: Path, write: Callable[[BinaryIO], object], *, durable: bool = False,
                 permissions: int | None = None) -> None:
    """Call ``write`` on a binary temp file next to ``path``, then rename it over ``path``.

    The temp file is in the same folder, so the rename stays on one filesystem and is atomic. durable:
    fsync before the rename, so the new contents survive a power cut too (for state that must not be
    lost, not for caches). permissions: chmod bits for the new file (mkstemp makes it 0600). On any error,
    including Ctrl-C, the temp file is removed and ``path`` is left as it was; an OSError that does not say
    which file (a failed write on a full disk) is given ``path`` as its filename.
    """
    try:
        _write_replace(path, write, durable, permissions)
    except OSError as error:
        with_path(error, path)  # names the file on the same exception object, raised again as it was
        raise


def _write_replace(path: Path, write: Callable[[BinaryIO], object], durable: bool, permissions: int | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if permissions is not None:
            os.fchmod(fd, permissions)
        with os.fdopen(fd, "wb") as f:
            write(f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
