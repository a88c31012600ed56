"""Seeded, stratified index selection: train/test splits, k-per-class subsets and label budgets.

All functions take ``labels`` as an integer tensor of shape (N,) and return sorted int64 index
tensors into it. Randomness comes from a private ``torch.Generator`` seeded with ``seed``, so the
global RNG is neither used nor disturbed, and the same ``(labels, seed)`` always gives the same result.

Every function ranks the samples of each class by one seeded shuffle (see :func:`_class_ranks`) and
keeps the first few of each class. Because that shuffle does not depend on how many are kept, results
for one seed are nested: ``stratified_subset(labels, 5, s)`` is contained in
``stratified_subset(labels, 10, s)``, which makes label-efficiency curves compare like with like.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["stratified_split", "stratified_subset", "stratified_sample"]


class _Ranked(NamedTuple):
    """Per-class random ranks of N samples in C classes."""

    classes: torch.Tensor  # (C,) distinct label values, ascending
    counts: torch.Tensor  # (C,) samples per class
    class_index: torch.Tensor  # (N,) position of each sample's label in ``classes``
    rank: torch.Tensor  # (N,) random rank of each sample inside its class, in [0, count)


def _class_ranks(labels: torch.Tensor, seed: int) -> _Ranked:
    """Rank each sample of ``labels`` (integer (N,)) among its class, in a seeded random order."""
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D tensor (N,), got shape {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got {labels.dtype}")
    labels = labels.detach().cpu()
    classes, class_index, counts = torch.unique(labels, sorted=True, return_inverse=True, return_counts=True)
    generator = torch.Generator().manual_seed(seed)
    shuffled = torch.randperm(labels.numel(), generator=generator)
    # A stable sort by class keeps the random order inside each class: grouped[j] is a sample index.
    grouped = shuffled[torch.argsort(class_index[shuffled], stable=True)]
    class_start = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(class_index)
    rank[grouped] = torch.arange(labels.numel()) - class_start[class_index[grouped]]
    return _Ranked(classes, counts, class_index, rank)


def _keep_first(quota: torch.Tensor, ranked: _Ranked) -> torch.Tensor:
    """Sorted int64 indices (M,) of the samples whose rank is below their class's quota (C,)."""
    return torch.nonzero(ranked.rank < quota[ranked.class_index]).flatten()


def _proportional(counts: torch.Tensor, total: int) -> torch.Tensor:
    """Share ``total`` (<= counts.sum()) across classes in proportion to ``counts`` (C,), exactly.

    Largest-remainder apportionment in integer arithmetic (no float rounding drift); ties go to the
    lower class index. Each share is <= its count because a class only gets a +1 when its exact share
    has a non-zero remainder, i.e. is below its count.
    """
    if total == 0:
        return torch.zeros_like(counts)
    n = int(counts.sum())
    scaled = counts.to(torch.int64) * total
    share, remainder = scaled // n, scaled % n
    missing = total - int(share.sum())
    order = torch.argsort(remainder, descending=True, stable=True)
    share[order[:missing]] += 1
    return share


def stratified_split(labels: torch.Tensor, test_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split sample indices into train and test, keeping each class's proportion on both sides.

    labels: integer (N,). Returns ``(train_idx, test_idx)``, sorted int64 tensors that partition
    ``range(N)``. About ``round(N * test_fraction)`` samples go to test, shared across classes in
    proportion to their size; every class with >= 2 samples has at least one sample on each side,
    and a class with a single sample goes to train (it could not be both trained and tested on).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be strictly between 0 and 1, got {test_fraction}")
    ranked = _class_ranks(labels, seed)
    counts = ranked.counts
    n_test = _proportional(counts, round(labels.numel() * test_fraction))
    # Clamp into [1, count - 1] so both sides see the class; a singleton class gets 0 (all to train).
    n_test = torch.minimum(n_test.clamp(min=1), counts - 1)
    test_idx = _keep_first(n_test, ranked)
    train_mask = torch.ones(labels.numel(), dtype=torch.bool)
    train_mask[test_idx] = False
    return torch.nonzero(train_mask).flatten(), test_idx


def stratified_subset(labels: torch.Tensor, per_class: int, seed: int, *, allow_fewer: bool = False) -> torch.Tensor:
    """Seeded selection of ``per_class`` samples from every class present in ``labels``.

    labels: integer (N,). Returns sorted int64 indices (M,); M = per_class * C when no class is short.
    A class with fewer than ``per_class`` samples is an error by default, because silently taking
    fewer would make a label budget unequal across classes; with ``allow_fewer=True`` all samples of
    such a class are taken instead.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    ranked = _class_ranks(labels, seed)
    short = ranked.counts < per_class
    if short.any() and not allow_fewer:
        pairs = zip(ranked.classes[short].tolist(), ranked.counts[short].tolist(), strict=True)
        detail = ", ".join(f"class {c} has {n}" for c, n in pairs)
        raise ValueError(f"cannot take {per_class} samples per class: {detail} "
                         "(pass allow_fewer=True to take all of them)")
    return _keep_first(torch.clamp(ranked.counts, max=per_class), ranked)


def stratified_sample(labels: torch.Tensor, total: int, seed: int) -> torch.Tensor:
    """Seeded selection of exactly ``total`` samples with class proportions kept.

    labels: integer (N,). Returns sorted int64 indices (total,). If ``total`` is at least the number
    of classes, every class keeps at least one sample (so a small budget still covers all classes);
    the rest is shared in proportion to class sizes. ``total >= N`` returns every index.
    """
    if total < 1:
        raise ValueError(f"total must be >= 1, got {total}")
    ranked = _class_ranks(labels, seed)
    if total >= labels.numel():
        return torch.arange(labels.numel())
    n_classes = ranked.classes.numel()
    if total >= n_classes:
        quota = 1 + _proportional(ranked.counts - 1, total - n_classes)
    else:
        quota = _proportional(ranked.counts, total)
    return _keep_first(quota, ranked)
