"""One readable line for an operating-system error on a path: what went wrong, and where.

Python's own text (``[Errno 20] Not a directory: 'runs/x'``) names the failing call's errno, not the
person's mistake; torch's is worse (a full disk while saving reads ``enforce fail at inline_container.cc``).
Every place that reports an OSError to a person (the CLI's error boundary, a run's failure reason, the
dashboard) words it here, so one rule holds everywhere: a plain line naming the path.
"""
from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from pathlib import Path

#: Hints for errors a person can fix; the key is the errno.
_HINTS = {
    errno.ENOSPC: "free some space there",
    errno.EDQUOT: "free some space there or raise the quota",
    errno.EROFS: "choose a folder on a writable file system",
    errno.EACCES: "choose a folder you may write to, or change its permissions",
    errno.EPERM: "choose a folder you may write to, or change its permissions",
}


def _blocking_file(path: Path) -> Path | None:
    """The file that stands where ``path`` or one of its parent folders should be, if any."""
    for candidate in (path, *path.parents):
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return None


def describe_os_error(error: OSError) -> str:
    """``error`` as one line such as '/data/runs is a file, not a folder' or 'no space left on device
    while writing /runs/x/checkpoints/last.pt: free some space there'."""
    where = error.filename if error.filename is not None else None
    code = error.errno
    if where is None:
        return (error.strerror or str(error)).strip() or type(error).__name__
    path = Path(os.fsdecode(where))
    if code in (errno.ENOTDIR, errno.EEXIST):
        blocker = _blocking_file(path)
        if blocker is not None:
            return f"{blocker} is a file, not a folder" + ("" if blocker == path else f" (needed for {path})")
    if code == errno.EISDIR:
        return f"{path} is a folder, not a file"
    if code == errno.ENOENT:
        return f"no such file or folder: {path}"
    if code in (errno.ENOSPC, errno.EDQUOT):
        text = "no space left on device" if code == errno.ENOSPC else "disk quota exceeded"
        return f"{text} while writing {path}: {_HINTS[code]}"
    text = (error.strerror or type(error).__name__).lower()
    hint = _HINTS.get(code) if code is not None else None
    return f"{text}: {path}" + (f" ({hint})" if hint else "")


def with_path(error: OSError, path: str | os.PathLike[str]) -> OSError:
    """``error`` with ``path`` as its filename when the raiser did not say which file (a failed ``write``)."""
    if error.filename is None:
        error.filename = os.fspath(path)
    return error


def describe_for_options(error: OSError, options: Mapping[str, str | os.PathLike[str] | None]) -> str:
    """:func:`describe_os_error`, led by the option (e.g. '--runs-dir') whose path the error concerns.

    The option naming that very path wins; then one whose folder holds it; then one it is a parent of
    (a file standing where the option's folder should be created). No match: the line alone.
    """
    line = describe_os_error(error)
    if error.filename is None:
        return line
    failed = Path(os.fsdecode(error.filename)).absolute()
    given = {option: Path(value).absolute() for option, value in options.items() if value}
    for related in (lambda p: p == failed, lambda p: p in failed.parents, lambda p: failed in p.parents):
        for option, path in given.items():
            if related(path):
                return f"{option}: {line}"
    return line
