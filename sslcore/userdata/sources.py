"""The files of an import source (a folder under the data root, or a zip), checked and capped before decoding.

A zip's member list is checked with the run importer's own rules (:func:`check_member_name`,
:func:`check_member_type`: no ``..``, absolute paths, links, devices or encryption); any breach refuses the
whole zip. Caps on the number of files, their sizes and the archive's size are checked from the listing,
before a byte is inflated, and each message gives the cap. Layout: files inside sub-folders are labelled
by their first folder (ImageFolder); a flat set is unlabelled; a zip's single top folder (the folder that
was zipped) is not a class. Hidden and system files (``.DS_Store``, ``__MACOSX/``, ``Thumbs.db``) are ignored.
"""
from __future__ import annotations

import functools
import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from sslcore.runs.archive_checks import ArchiveError, check_member_name, check_member_type
from sslcore.userdata.decode import NOT_IMAGE, TOO_LARGE, Locator

MiB = 1024 * 1024
_SYSTEM_FILES = {"thumbs.db", "desktop.ini", "__macosx"}
UNSORTED = "not in a class folder"


def human_bytes(n: float) -> str:
    """'3.5 MiB', '12.0 KiB', '100 bytes': sizes in messages, readable at any scale."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{int(n):,} bytes"


class ImportRefused(ValueError):
    """An import that cannot go ahead; the message says what, with the cap or rule, in one line."""


@dataclass(frozen=True)
class ImportLimits:
    """Caps on one import, so an upload cannot fill the memory or the disk."""

    max_archive_bytes: int = 2048 * MiB  # the Data page passes the server's maxUploadSize instead
    max_files: int = 100_000
    max_file_bytes: int = 64 * MiB
    max_total_bytes: int = 8192 * MiB  # all files together, uncompressed
    max_pixels: int = 50_000_000  # per image, from its header: below PIL's MAX_IMAGE_PIXELS (89.5 M)
    max_decoded_bytes: int = 2048 * MiB  # the stored arrays


@dataclass(frozen=True)
class Candidate:
    """One file to decode: ``name`` relative to the source ('/'-separated), its class folder or None."""

    name: str
    label: str | None
    locator: Locator


@dataclass
class Scan:
    """What a source holds: files to decode, files already skipped (name, reason, detail), how many ignored."""

    source: dict[str, str]
    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    ignored: int = 0
    labelled: bool = False


@functools.lru_cache(maxsize=4096)
def _hidden_name(name: str) -> bool:
    return name.startswith(".") or name.lower() in _SYSTEM_FILES


def _hidden(parts: tuple[str, ...]) -> bool:
    # map/any over a cached per-name check: folder names repeat for every file under them.
    return any(map(_hidden_name, parts))


def _files_of_zip(path: Path, limits: ImportLimits) -> list[tuple[tuple[str, ...], int, Locator]]:
    size = path.stat().st_size
    if size > limits.max_archive_bytes:
        raise ImportRefused(f"{path.name} is {human_bytes(size)}, over the {human_bytes(limits.max_archive_bytes)} "
                            "an upload may have")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            if len(infos) > 2 * limits.max_files:  # folders count as members too
                raise ImportRefused(f"{path.name} has {len(infos):,} members, "
                                    f"over the cap of {limits.max_files:,} files")
            for info in infos:
                check_member_name(info.filename)
                check_member_type(info)
    except ArchiveError as e:
        raise ImportRefused(f"{path.name} is refused: {e}") from None
    except (zipfile.BadZipFile, OSError) as e:
        raise ImportRefused(f"{path.name} is not a readable zip file ({e})") from None
    return [(PurePosixPath(i.filename).parts, i.file_size, ("zip", str(path), i.filename))
            for i in infos if not i.is_dir()]


def _files_of_folder(path: Path, data_root: Path) -> list[tuple[tuple[str, ...], int, Locator]]:
    root, folder = data_root.resolve(), path.resolve()
    if not path.is_dir():
        raise ImportRefused(f"{path} is not a folder")
    if not folder.is_relative_to(root) or folder == root:
        raise ImportRefused(f"{path} is refused: a folder to import must be inside the data root {root}/")
    if folder.is_relative_to(root / "user"):
        raise ImportRefused(f"{path} is refused: it is inside the stored datasets ({root / 'user'}/)")
    files: list[tuple[tuple[str, ...], int, Locator]] = []
    _walk(str(folder), (), files)
    return files


def _walk(directory: str, parts: tuple[str, ...], out: list[tuple[tuple[str, ...], int, Locator]]) -> None:
    """Files under ``directory`` in name order (plain strings and scandir: 10,000 Path objects cost more than the
    listing). Links, to files or folders, are listed as links and never followed."""
    with os.scandir(directory) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.is_dir(follow_symlinks=False):
                _walk(entry.path, parts + (entry.name,), out)
                continue
            info = entry.stat(follow_symlinks=False)
            kind = "link" if stat.S_ISLNK(info.st_mode) else "file" if stat.S_ISREG(info.st_mode) else "other"
            out.append((parts + (entry.name,), info.st_size, (kind, entry.path)))


def scan_source(path: Path, data_root: Path, limits: ImportLimits, labels: str = "auto") -> Scan:
    """The files of ``path`` (a .zip, or a folder inside ``data_root``) and how they are labelled.

    labels: "auto" (sub-folders are classes) or "none" (everything unlabelled). ImportRefused on any
    breach of the rules or caps.
    """
    if not path.exists():
        raise ImportRefused(f"{path} does not exist")
    is_zip = path.is_file()
    listing = _files_of_zip(path, limits) if is_zip else _files_of_folder(path, data_root)
    scan = Scan({"type": "zip" if is_zip else "folder", "name": path.name})
    visible = [(parts, size, loc) for parts, size, loc in listing if not _hidden(parts)]
    scan.ignored = len(listing) - len(visible)
    if len(visible) > limits.max_files:
        raise ImportRefused(f"{path.name} holds {len(visible):,} files, over the cap of {limits.max_files:,}")
    total = sum(size for _, size, _ in visible)
    if total > limits.max_total_bytes:
        raise ImportRefused(f"{path.name} holds {human_bytes(total)} of files, over the cap of "
                            f"{human_bytes(limits.max_total_bytes)}")
    tops = {parts[0] for parts, _, _ in visible}
    if is_zip and len(tops) == 1 and all(len(parts) > 1 for parts, _, _ in visible):
        visible = [(parts[1:], size, loc) for parts, size, loc in visible]  # the folder that was zipped
    scan.labelled = labels == "auto" and any(len(parts) > 1 for parts, _, _ in visible)
    for parts, size, locator in visible:
        name = "/".join(parts)
        label = parts[0] if scan.labelled and len(parts) > 1 else None
        if scan.labelled and label is None:
            scan.skipped.append((name, UNSORTED, "a file beside the class folders, not inside one"))
        elif locator[0] in ("link", "other"):
            scan.skipped.append((name, NOT_IMAGE, "a link or special file (not followed)"))
        elif size > limits.max_file_bytes:
            scan.skipped.append((name, TOO_LARGE, f"{human_bytes(size)}, over the {human_bytes(limits.max_file_bytes)} "
                                                  "cap on one file"))
        elif not name.isprintable():
            scan.skipped.append((name.encode("unicode_escape").decode(), NOT_IMAGE, "control characters in its name"))
        else:
            scan.candidates.append(Candidate(name, label, locator))
    return scan
