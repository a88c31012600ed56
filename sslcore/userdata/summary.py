"""What an import produced, in figures and plain lines: counts per class, skipped files and why, the size in
memory, and the train/test split a run with the default data settings will use. Shared by the CLI and the
Data page, so both describe a dataset in the same words.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from sslcore.config_schema import DataConfig
from sslcore.data import stratified_split
from sslcore.userdata.sources import human_bytes


def split_sizes(labels: np.ndarray, strata: np.ndarray | None = None, test_fraction: float | None = None,
                seed: int | None = None) -> tuple[int, int]:
    """(train, test) image counts of the seeded stratified split a run will make (DataConfig's defaults)."""
    defaults = DataConfig()
    groups = torch.from_numpy(np.asarray(labels if strata is None else strata, dtype=np.int64))
    train, test = stratified_split(groups, test_fraction or defaults.test_fraction,
                                   defaults.split_seed if seed is None else seed)
    return len(train), len(test)


def memory_bytes(manifest: dict[str, Any]) -> int:
    """Bytes the samples take in memory (as stored: uint8 images or float32 rows)."""
    per_value = np.dtype(manifest["dtype"]).itemsize
    return int(manifest["count"] * np.prod(manifest["sample_shape"]) * per_value)


def unit(manifest: dict[str, Any]) -> str:
    """What one sample is called: 'images', or 'rows' for a table."""
    return "rows" if manifest["kind"] == "table" else "images"


def class_lines(manifest: dict[str, Any]) -> list[str]:
    """'cats: 120 images' per class, plus the unlabelled count when there is one."""
    names, counts = manifest["class_names"], manifest.get("class_counts") or []
    lines = [f"{name}: {n:,} {unit(manifest)}" for name, n in zip(names, counts, strict=False)]
    unlabelled = manifest["count"] - sum(counts)
    if unlabelled:
        lines.append(f"(no label): {unlabelled:,} {unit(manifest)}")
    return lines


def skipped_line(manifest: dict[str, Any]) -> str:
    """'skipped 3 files: 2 not an image, 1 corrupt' (and hidden files ignored), or 'no file skipped'."""
    skipped = manifest.get("skipped") or {}
    total = sum(skipped.values())
    reasons = ", ".join(f"{n:,} {r}" for r, n in skipped.items())
    text = f"skipped {total:,} file{'s' if total != 1 else ''}: {reasons}" if total else "no file skipped"
    ignored = manifest.get("ignored") or 0
    return text + (f"; {ignored:,} hidden or system files ignored" if ignored else "")


def headline(manifest: dict[str, Any], labels: np.ndarray, strata: np.ndarray | None = None) -> str:
    """'1,200 colour 32×32 images in 3 classes · 3.5 MiB in memory · split 960 train / 240 test' (a table:
    '569 rows × 30 columns in 2 classes · ...')."""
    names = manifest["class_names"]
    classes = f"in {len(names)} classes" if names else "unlabelled"
    train, test = split_sizes(labels, strata)
    if manifest["kind"] == "table":
        what = f"{manifest['count']:,} rows × {manifest['sample_shape'][0]} columns"
    else:
        c, h, w = manifest["sample_shape"]
        what = f"{manifest['count']:,} {'colour' if c == 3 else 'grey'} {h}×{w} images"
    return (f"{what} {classes} · "
            f"{human_bytes(memory_bytes(manifest))} in memory · split {train:,} train / {test:,} test "
            f"(seeded, stratified, {DataConfig().test_fraction:.0%} test)")
