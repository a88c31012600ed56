"""Import a folder or a zip of images as a staged dataset: scan, decode in parallel, check, write.

Decoding runs in a pool of worker processes (one per available core) over chunks of files; each worker
reads its files itself (from the folder, or by opening the zip), so no file's bytes pass through this
process and memory stays near the size of the stored arrays: results are written into one preallocated
uint8 buffer, grey until the first colour image arrives (mode "auto"), then compacted in place.

The pool forks (no re-import of ``__main__``, no torch in the workers' start-up), so call this from a
single-threaded process: the CLI, a benchmark, or the worker subprocess the Data page starts.
"""
from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sslcore.config_schema import build_section, param
from sslcore.userdata import store
from sslcore.userdata.decode import DUPLICATE, DecodedChunk, DecodeOptions, close_archives, decode_chunk
from sslcore.userdata.sources import Candidate, ImportLimits, ImportRefused, Scan, human_bytes, scan_source

MIN_IMAGES = 10
MIN_PER_CLASS = 2
MAX_CLASS_NAME = 100
CHUNK = 128  # files per unit of work: big enough to amortise the inter-process hop, small enough to balance
MAX_LISTED_SKIPS = 200  # skipped files named in the manifest (all are counted)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImportOptions:
    """How images are normalised and labelled on import (validated like any config section: ``import.*``)."""

    size: int = param(32, "Side of the stored square images in pixels: the shorter side is resized to it, then "
                          "the centre is cropped.", min=8, max=128)
    mode: str = param("auto", "Colour: auto stores grey if every image is grey, else colour; rgb or grey force one.",
                      choices=("auto", "rgb", "grey"))
    labels: str = param("auto", "auto: sub-folders are classes (a flat folder is unlabelled); none: import every "
                                "image unlabelled.", choices=("auto", "none"))


def import_options(**values: Any) -> ImportOptions:
    """ImportOptions from field values; ConfigError naming the field, the value and what is allowed."""
    return build_section(ImportOptions, "import", values)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def start_pool(workers: int) -> ProcessPoolExecutor | None:
    """``workers`` decoding processes (0: one per core), forked now; None when decoding happens here.

    Started before the source is scanned, so the fork overlaps the scan instead of following it.
    """
    workers = workers or available_cores()
    if workers <= 1:
        return None
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    pool.submit(os.getpid)  # a fork-context pool starts all its processes at the first submit
    return pool


def decode_all(candidates: list[Candidate], options: DecodeOptions, workers: int = 0,
               progress: Progress | None = None, pool: ProcessPoolExecutor | None = None,
               ) -> Iterator[DecodedChunk]:
    """Every candidate decoded, chunk by chunk in order, by ``workers`` processes (0: one per core; 1: here),
    or by ``pool`` (from :func:`start_pool`; shut down here at the end)."""
    jobs = [(i, c.locator) for i, c in enumerate(candidates)]
    chunks = [jobs[k:k + CHUNK] for k in range(0, len(jobs), CHUNK)]
    if pool is None and len(chunks) > 1:
        pool = start_pool(min(workers or available_cores(), len(chunks)))
    done = 0
    if pool is None or len(chunks) <= 1:
        results: Iterator[DecodedChunk] = (decode_chunk(chunk, options) for chunk in chunks)
    else:
        results = pool.map(decode_chunk, chunks, [options] * len(chunks))  # in order; each result freed once read
    try:
        for chunk in results:
            yield chunk
            done += chunk.count
            if progress is not None:
                progress(done, len(jobs))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        close_archives()


class _Buffer:
    """Decoded images in one uint8 (N, C, S, S) array; C grows from 1 to 3 at the first colour image."""

    def __init__(self, count: int, size: int, mode: str) -> None:
        self.mode = mode
        self.array = np.zeros((count, 3 if mode == "rgb" else 1, size, size), np.uint8)

    def put(self, at: list[int], pixels: np.ndarray) -> None:
        """Images uint8 (n, S, S, 3) (colour) or (n, S, S) (grey) into the rows ``at`` (n,)."""
        if not at:
            return
        if pixels.ndim == 4:  # colour
            if self.array.shape[1] == 1:
                wider = np.empty((self.array.shape[0], 3, *self.array.shape[2:]), np.uint8)
                wider[:] = self.array  # grey so far: the same value in all three channels
                self.array = wider
            self.array[at] = pixels.transpose(0, 3, 1, 2)
        else:
            self.array[at] = pixels[:, None]  # broadcast over 1 or 3 channels

    def compact(self, keep: list[int]) -> np.ndarray:
        """The rows ``keep`` (ascending) moved to the front, in place; returns that prefix (a view)."""
        for j, i in enumerate(keep):
            if i != j:
                self.array[j] = self.array[i]
        return self.array[:len(keep)]


def _check_classes(class_names: list[str], labels: np.ndarray) -> None:
    if len(class_names) < 2:
        only = f" ({class_names[0]!r})" if class_names else ""
        raise ImportRefused(f"only one class folder{only} holds images: a labelled dataset needs at least 2 classes. "
                            "Import it as unlabelled (labels = none, or --unlabelled), or add class folders")
    counts = np.bincount(labels, minlength=len(class_names))
    small = [f"{name!r} has {n}" for name, n in zip(class_names, counts, strict=True) if n < MIN_PER_CLASS]
    if small:
        raise ImportRefused(f"each class needs at least {MIN_PER_CLASS} images (one to train, one to test): "
                            f"{', '.join(small[:5])}. Add images, remove those folders, or import as unlabelled")
    bad = [n for n in class_names if not n.isprintable() or len(n) > MAX_CLASS_NAME]
    if bad:
        raise ImportRefused(f"class folder {bad[0]!r} is not allowed as a class name: expected 1 to "
                            f"{MAX_CLASS_NAME} printable characters")


def _skip_summary(skipped: list[tuple[str, str, str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _, reason, _ in skipped:
        counts[reason] = counts.get(reason, 0) + 1
    return counts


def assemble(scan: Scan, options: ImportOptions, chunks: Iterator[DecodedChunk],
             ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Samples uint8 (N, C, S, S), labels int64 (N,) (-1 if unlabelled) and the manifest's report fields."""
    candidates = scan.candidates
    buffer = _Buffer(len(candidates), options.size, options.mode)
    digests: list[str | None] = [None] * len(candidates)
    skipped = list(scan.skipped)
    for chunk in chunks:
        buffer.put(chunk.grey_at, chunk.grey)
        buffer.put(chunk.colour_at, chunk.colour)
        for index, sha in chunk.digests:
            digests[index] = sha
        skipped += [(candidates[index].name, why.reason, why.detail) for index, why in chunk.skipped]
    first_of: dict[str, str] = {}
    keep = []
    for index, digest in enumerate(digests):
        if digest is None:
            continue
        if digest in first_of:
            skipped.append((candidates[index].name, DUPLICATE, f"the same file as {first_of[digest]}"))
            continue
        first_of[digest] = candidates[index].name
        keep.append(index)
    kept = [candidates[i] for i in keep]
    if len(kept) < MIN_IMAGES:
        summary = ", ".join(f"{n} {r}" for r, n in _skip_summary(skipped).items()) or "none"
        raise ImportRefused(f"{scan.source['name']}: only {len(kept)} usable images, at least {MIN_IMAGES} are "
                            f"needed (skipped: {summary})")
    class_names = sorted({c.label for c in kept if c.label is not None}) if scan.labelled else []
    index_of = {name: i for i, name in enumerate(class_names)}
    labels = np.array([index_of[c.label] if scan.labelled and c.label is not None else -1 for c in kept],
                      dtype=np.int64)
    if scan.labelled:
        _check_classes(class_names, labels)
    samples = buffer.compact(keep)
    counts = np.bincount(labels[labels >= 0], minlength=len(class_names))
    report = {"class_names": class_names, "class_counts": counts.tolist(),
              "files": [c.name for c in kept], "source": scan.source, "created": time.time(),
              "options": {"size": options.size, "mode": options.mode, "labels": options.labels},
              "skipped": _skip_summary(skipped), "skipped_files": [list(s) for s in skipped[:MAX_LISTED_SKIPS]],
              "ignored": scan.ignored}
    return samples, labels, report


def stage_import(source: str | Path, root: str | Path, options: ImportOptions = ImportOptions(),
                 limits: ImportLimits = ImportLimits(), *, workers: int = 0,
                 progress: Progress | None = None) -> Path:
    """Import the images of ``source`` (a zip, or a folder inside ``root``) into a hidden staging folder of
    the store under ``root``; returns it (see :func:`sslcore.userdata.store.commit` to name and keep it).

    ImportRefused (one line, with the cap or rule) if the source cannot be imported; nothing is left then.
    """
    pool = start_pool(workers)
    try:
        scan = scan_source(Path(source), Path(root), limits, options.labels)
        channels = 1 if options.mode == "grey" else 3
        decoded_bytes = len(scan.candidates) * channels * options.size ** 2
        if decoded_bytes > limits.max_decoded_bytes:
            raise ImportRefused(f"{len(scan.candidates):,} images of {channels}x{options.size}x{options.size} could "
                                f"take up to {human_bytes(decoded_bytes)} in memory, over the cap of "
                                f"{human_bytes(limits.max_decoded_bytes)}: choose a smaller size or import fewer "
                                "images")
    except BaseException:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    decode = DecodeOptions(options.size, options.mode, limits.max_pixels, max_file_bytes=limits.max_file_bytes)
    samples, labels, report = assemble(scan, options, decode_all(scan.candidates, decode, workers, progress, pool))
    return store.stage(root, samples, labels, {"kind": "image", "name": None, **report})
