"""Collapse diagnostics on hand-made embeddings whose answers are known, and the rule that warns a user."""
from __future__ import annotations

import math

import pytest
import torch

from sslcore.evaluation.collapse import (
    alignment,
    collapse_metrics,
    collapse_warning,
    effective_rank,
    embedding_std,
    uniformity,
)


def gaussian(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def test_identical_rows_have_rank_one_and_no_spread() -> None:
    collapsed = torch.ones(300, 64) * torch.linspace(-1, 2, 64)
    assert effective_rank(collapsed) == pytest.approx(1.0, abs=0.01)
    assert embedding_std(collapsed) == pytest.approx(0.0, abs=1e-9)
    assert effective_rank(torch.zeros(10, 8)) == 0.0


def test_an_isotropic_gaussian_has_rank_near_d_and_spread_near_one_over_sqrt_d() -> None:
    d = 32
    z = gaussian(4000, d)
    assert effective_rank(z) > 0.95 * d
    assert embedding_std(z) == pytest.approx(1 / math.sqrt(d), rel=0.05)


def test_embeddings_on_a_k_dimensional_subspace_have_rank_near_k() -> None:
    basis = torch.linalg.qr(gaussian(64, 5, seed=1))[0].T  # 5 orthonormal directions in 64 dimensions
    z = gaussian(3000, 5, seed=2) @ basis
    assert effective_rank(z) == pytest.approx(5.0, rel=0.05)
    assert effective_rank(z) < effective_rank(gaussian(3000, 64))


def test_alignment_is_zero_for_identical_views_and_four_for_opposite_ones() -> None:
    z = gaussian(100, 16)
    assert alignment(z, 3 * z) == pytest.approx(0.0, abs=1e-12)  # scale does not matter: normalised first
    assert alignment(z, -z) == pytest.approx(4.0)


def test_uniformity_is_zero_when_collapsed_and_strongly_negative_when_spread() -> None:
    assert uniformity(torch.ones(50, 16)) == pytest.approx(0.0, abs=1e-12)
    # On a high-dimensional sphere random pairs sit at squared distance about 2: log E exp(-2 * 2) = -4.
    assert uniformity(gaussian(500, 128)) == pytest.approx(-4.0, abs=0.3)


def test_the_epoch_figures_include_two_view_ones_only_for_two_views() -> None:
    z = gaussian(200, 16)
    single = collapse_metrics(z)
    assert set(single) == {"emb_std", "eff_rank", "emb_dim"} and single["emb_dim"] == 16
    paired = collapse_metrics(z, (z, z + 0.1 * gaussian(200, 16, seed=3)))
    assert 0.0 < paired["alignment"] < 0.1 and paired["uniformity"] < -1.0


def records(ranks: list[float], stds: list[float], d: int = 512) -> list[dict[str, float]]:
    return [{"kind": "epoch", "epoch": e, "eff_rank": r, "emb_std": s, "emb_dim": d}
            for e, (r, s) in enumerate(zip(ranks, stds, strict=True))]


def test_a_run_whose_embeddings_fold_up_gets_a_plain_warning() -> None:
    message = collapse_warning(records([105.0, 60.0, 3.2], [0.012, 0.006, 0.0004]))
    assert message is not None
    assert message.startswith("This run is collapsing: at epoch 2")
    assert "collapsed to almost one point" in message and "Effective rank 3.2 of 512" in message


def test_a_rank_that_folds_while_the_spread_holds_is_dimensional_collapse() -> None:
    message = collapse_warning(records([105.0, 40.0, 12.0], [0.012, 0.011, 0.010]))
    assert message is not None and "squeezed onto a few directions" in message


def test_embeddings_that_stay_collapsed_for_two_trained_epochs_get_the_warning() -> None:
    assert collapse_warning(records([10.0, 9.0], [0.001, 0.001])) is None  # one low epoch: not yet a verdict
    message = collapse_warning(records([10.0, 9.0, 9.5], [0.001, 0.001, 0.001]))
    assert message is not None and message.startswith("This run is collapsing: at epoch 2")


@pytest.mark.parametrize("ranks, stds", [
    ([105.0, 102.0, 103.0], [0.0116, 0.020, 0.021]),  # SimCLR on digits, measured
    ([105.0, 54.0, 75.0], [0.0116, 0.0099, 0.0139]),  # rotation: halves after epoch 1, then recovers
    ([105.0], [0.0116]),                              # epoch 0 alone
    ([2.0], [0.0001]),                                # epoch 0 is never judged (untrained)
])
def test_healthy_runs_get_no_warning(ranks: list[float], stds: list[float]) -> None:
    assert collapse_warning(records(ranks, stds)) is None


def with_head(head: list[tuple[float, float]]) -> list[dict[str, float]]:
    """Healthy encoder features with the given projection head figures (rank, std) per epoch, D' = 128."""
    rows = records([105.0, 98.0, 102.0, 103.0], [0.0116, 0.0165, 0.0203, 0.0214])
    return [{**r, "head_rank": rank, "head_std": std, "head_dim": 128}
            for r, (rank, std) in zip(rows, head, strict=True)]


def test_a_head_that_never_spreads_out_is_collapse_even_with_healthy_features() -> None:
    # Measured: a two-view cosine loss without negatives, predictor or stop-gradient, on digits.
    message = collapse_warning(with_head([(5.3, 0.0038), (6.6, 0.0049), (6.6, 0.0049), (6.6, 0.0049)]))
    assert message is not None and "the projection head's outputs" in message and "of 128" in message
    # Measured: SimCLR's head starts collapsed (untrained BatchNorm statistics) and spreads out at once.
    assert collapse_warning(with_head([(5.3, 0.0038), (32.0, 0.0427), (41.8, 0.0805), (39.7, 0.0842)])) is None


def test_records_without_the_figures_get_no_warning() -> None:
    assert collapse_warning([{"kind": "epoch", "epoch": 0, "loss": 1.0}, {"kind": "epoch", "epoch": 1}]) is None


def test_non_finite_embeddings_give_no_figures_rather_than_an_error() -> None:
    z = gaussian(20, 8)
    z[3, 2] = float("nan")
    assert collapse_metrics(z) == {}
    assert set(collapse_metrics(gaussian(20, 8), head=z)) == {"emb_std", "eff_rank", "emb_dim"}
