"""Collapse diagnostics: is the embedding space still spread out, or has it folded onto a few directions?

Self-supervised methods without negatives (BYOL, SimSiam, DINO, ...) can satisfy their loss with a
constant output ("complete collapse") or with embeddings on a low-dimensional subspace ("dimensional
collapse"). The figures here are pure functions of a feature matrix (N, D), computed every epoch on a
fixed held-out subset by the trainer's monitor:

- ``emb_std``: the std over images of each dimension of the L2-normalised embeddings, averaged over
  dimensions. Embeddings spread evenly on the sphere give about 1/sqrt(D); a collapsed encoder gives 0
  (the SimSiam paper, Chen & He 2021, Fig. 2).
- ``eff_rank``: RankMe (Garrido et al. 2023): exp of the entropy of the normalised singular values of
  the embedding matrix; between 1 (one direction) and min(N, D).
- ``head_std``, ``head_rank``: the same for the projection head's outputs, for tasks that have one. A
  method can collapse there first: its head learns to output a constant while the encoder's features,
  no longer trained by any useful signal, still look spread out.
- ``alignment`` and ``uniformity`` (Wang & Isola 2020), for methods that train on two views: the mean
  squared distance between the two views' normalised embeddings (lower: views agree), and the log of the
  mean Gaussian potential between all pairs (lower: spread more uniformly; collapse sends it to 0).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

#: RankMe's epsilon, added to every normalised singular value before the entropy (Garrido et al. 2023).
RANKME_EPS = 1e-7


def embedding_std(features: torch.Tensor) -> float:
    """Mean over dimensions of the per-dimension std of L2-normalised ``features`` (N, D); 0 when collapsed."""
    z = F.normalize(features.double(), dim=1)
    return float(z.std(dim=0, correction=0).mean())


def effective_rank(features: torch.Tensor) -> float:
    """RankMe effective rank of ``features`` (N, D): exp(-sum p log p), p = singular values / their sum + eps.

    The singular values come from the eigenvalues of the smaller Gram matrix (min(N, D) square, in float64):
    the same values to ~1e-13 of the largest, several times faster than an SVD of the features (the monitor
    takes this every epoch, on two spaces).
    """
    x = features.double()
    gram = x.T @ x if x.shape[0] >= x.shape[1] else x @ x.T
    singular = torch.linalg.eigvalsh(gram).clamp_min(0.0).sqrt()
    total = singular.sum()
    if total <= 0:  # all zeros: not even one direction
        return 0.0
    p = singular / total + RANKME_EPS
    return float(torch.exp(-(p * p.log()).sum()))


def alignment(view1: torch.Tensor, view2: torch.Tensor, alpha: float = 2.0) -> float:
    """Mean ||f(x) - f(x')||^alpha over the N pairs of normalised embeddings (N, D) of two views; 0 to 4."""
    z1, z2 = F.normalize(view1.double(), dim=1), F.normalize(view2.double(), dim=1)
    return float((z1 - z2).norm(dim=1).pow(alpha).mean())


def uniformity(features: torch.Tensor, t: float = 2.0) -> float:
    """log of the mean exp(-t ||z_i - z_j||^2) over pairs i < j of normalised ``features`` (N, D); <= 0."""
    z = F.normalize(features.double(), dim=1)
    squared = torch.pdist(z).pow(2)
    if squared.numel() == 0:
        return 0.0
    return float(torch.logsumexp(-t * squared, dim=0) - math.log(squared.numel()))


def collapse_metrics(features: torch.Tensor, views: tuple[torch.Tensor, torch.Tensor] | None = None,
                     head: torch.Tensor | None = None) -> dict[str, float]:
    """The epoch record's figures for held-out encoder ``features`` (N, D): emb_std, eff_rank, emb_dim (D, so
    a page can say "rank 3 of 512"); for the projection ``head`` outputs (N, D') of the same images, when the
    task has a head, head_std, head_rank, head_dim; alignment/uniformity of two ``views``' embeddings (M, .)."""
    features = features.detach()  # figures, not a loss: no autograd graph even if called outside no_grad
    head = None if head is None else head.detach()
    views = None if views is None else (views[0].detach(), views[1].detach())
    if not bool(torch.isfinite(features).all()):  # a diverging run: no figures (an SVD of NaNs fails)
        return {}
    found = {"emb_std": embedding_std(features), "eff_rank": effective_rank(features), "emb_dim": features.shape[1]}
    if head is not None and bool(torch.isfinite(head).all()):
        found.update(head_std=embedding_std(head), head_rank=effective_rank(head), head_dim=head.shape[1])
    if views is not None and all(bool(torch.isfinite(v).all()) for v in views):
        # Each view's uniformity, averaged, as in Wang & Isola's reference code.
        found.update(alignment=alignment(*views), uniformity=(uniformity(views[0]) + uniformity(views[1])) / 2)
    return found


class Space(NamedTuple):
    """Where collapse is looked for: the record keys of one embedding space's figures, and its name."""

    rank: str
    std: str
    dim: str
    name: str


SPACES = (Space("eff_rank", "emb_std", "emb_dim", "the encoder's features"),
          Space("head_rank", "head_std", "head_dim", "the projection head's outputs"))
#: The rule behind "this run is collapsing", judged on trained epochs only (at epoch 0 an untrained head's
#: BatchNorm still has its initial statistics, and its outputs look collapsed). Measured on our default runs
#: (digits, convnet, D = 512): healthy encoder features keep eff_rank at 50-105 and emb_std at
#: 0.22-0.5 / sqrt(D); SimCLR's head (D' = 128) reaches eff_rank 32-42 and head_std 0.5-1.0 / sqrt(D') after
#: one epoch; a head trained without negatives, predictor or stop-gradient stays at head_std 0.05 / sqrt(D').
RANK_FLOOR = 0.05  # eff_rank below 5% of D
STD_FLOOR = 0.1    # emb_std below a tenth of the evenly-spread 1/sqrt(D)
FALL = 0.5         # "falling": below half of the best value earlier in the run


def collapse_warning(records: Sequence[Mapping[str, Any]]) -> str | None:
    """One plain paragraph when the latest of the epoch ``records`` (in epoch order) shows collapse; else None.

    In either space (encoder features, head outputs) of dimension D, the latest trained epoch is below a
    floor (eff_rank < RANK_FLOOR * D, or emb_std < STD_FLOOR / sqrt(D)) and either it fell there (below
    FALL times the best earlier value) or the trained epoch before was below a floor too: one low epoch
    right after the start is not yet a verdict.
    """
    for space in SPACES:
        message = _space_warning(records, space)
        if message is not None:
            return message
    return None


def _below_floor(record: Mapping[str, Any], space: Space) -> tuple[bool, bool]:
    d = float(record[space.dim])
    return float(record[space.rank]) < RANK_FLOOR * d, float(record[space.std]) < STD_FLOOR / math.sqrt(d)


def _space_warning(records: Sequence[Mapping[str, Any]], space: Space) -> str | None:
    rows = [r for r in records if r.get(space.rank) is not None and r.get(space.std) is not None and r.get(space.dim)]
    trained = [r for r in rows if r.get("epoch", 0) >= 1]
    if not trained:
        return None
    last, earlier = trained[-1], rows[:rows.index(trained[-1])]
    low_rank, low_std = _below_floor(last, space)
    if not (low_rank or low_std):
        return None
    rank, std = float(last[space.rank]), float(last[space.std])
    best_rank = max((float(r[space.rank]) for r in earlier), default=rank)
    best_std = max((float(r[space.std]) for r in earlier), default=std)
    fell = (low_rank and rank < FALL * best_rank) or (low_std and std < FALL * best_std)
    if not fell and not (len(trained) > 1 and any(_below_floor(trained[-2], space))):
        return None
    d = int(last[space.dim])
    what = "collapsed to almost one point" if low_std else "been squeezed onto a few directions"
    return (f"This run is collapsing: at epoch {last.get('epoch', '?')} {space.name} on the test images have {what}. "
            f"Effective rank {rank:.1f} of {d} (best so far {best_rank:.1f}); spread {std:.4f} "
            f"(about {1 / math.sqrt(d):.3f} for evenly spread embeddings, best so far {best_std:.4f}). "
            "The loss can keep falling while this happens, but the features no longer tell images apart.")
