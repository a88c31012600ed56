"""Every loss against a slow, obviously-correct Python loop on a small random batch (within 1e-5)."""
from __future__ import annotations

import math

import pytest
import torch

from sslcore.losses import (
    barlow_twins_loss,
    dino_center,
    dino_loss,
    info_nce_loss,
    negative_cosine_loss,
    nt_xent_loss,
    vicreg_loss,
)

B, D = 6, 5


def close(value: torch.Tensor, reference: float) -> bool:
    return float(value.detach()) == pytest.approx(reference, rel=1e-5, abs=1e-5)


def batch(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def softmax(logits: list[float]) -> list[float]:
    top = max(logits)
    e = [math.exp(v - top) for v in logits]
    return [v / sum(e) for v in e]


def test_nt_xent_matches_a_loop() -> None:
    z1, z2, t = batch(B, D, seed=1), batch(B, D, seed=2), 0.3
    z = (z1.tolist() + z2.tolist())
    losses, hits = [], 0
    for i in range(2 * B):
        partner = (i + B) % (2 * B)
        others = [j for j in range(2 * B) if j != i]
        den = sum(math.exp(cos(z[i], z[j]) / t) for j in others)
        losses.append(-math.log(math.exp(cos(z[i], z[partner]) / t) / den))
        hits += max(others, key=lambda j: cos(z[i], z[j])) == partner
    loss, acc = nt_xent_loss(z1, z2, t)
    assert close(loss, sum(losses) / len(losses)) and close(acc, hits / (2 * B))


def test_info_nce_matches_a_loop() -> None:
    q, k, t = batch(B, D, seed=3), batch(B, D, seed=4), 0.2
    losses, hits = [], 0
    for i in range(B):
        sims = [cos(q[i].tolist(), k[j].tolist()) / t for j in range(B)]
        losses.append(-math.log(math.exp(sims[i]) / sum(math.exp(s) for s in sims)))
        hits += max(range(B), key=lambda j: sims[j]) == i
    loss, acc = info_nce_loss(q, k, t)
    assert close(loss, sum(losses) / B) and close(acc, hits / B)


def test_negative_cosine_matches_a_loop_and_stops_the_gradient_on_the_target() -> None:
    p, z = batch(B, D, seed=5).requires_grad_(), batch(B, D, seed=6).requires_grad_()
    loss = negative_cosine_loss(p, z)
    assert close(loss, -sum(cos(p[i].tolist(), z[i].tolist()) for i in range(B)) / B)
    loss.backward()
    assert p.grad is not None and p.grad.abs().sum() > 0
    assert z.grad is None, "no gradient may reach the target branch"


def _standardised_columns(z: list[list[float]]) -> list[list[float]]:
    n, d = len(z), len(z[0])
    out = [[0.0] * d for _ in range(n)]
    for j in range(d):
        col = [z[b][j] for b in range(n)]
        mean = sum(col) / n
        std = math.sqrt(sum((v - mean) ** 2 for v in col) / n)
        for b in range(n):
            out[b][j] = (col[b] - mean) / std
    return out


def test_barlow_twins_matches_a_loop() -> None:
    z1, z2, lam = batch(B, D, seed=7), batch(B, D, seed=8), 0.05
    a, b = _standardised_columns(z1.tolist()), _standardised_columns(z2.tolist())
    total = 0.0
    for i in range(D):
        for j in range(D):
            c = sum(a[n][i] * b[n][j] for n in range(B)) / B
            total += (1 - c) ** 2 if i == j else lam * c ** 2
    assert close(barlow_twins_loss(z1, z2, lam), total)


def test_barlow_twins_is_zero_for_identical_decorrelated_views() -> None:
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])  # standardised, uncorrelated columns
    assert float(barlow_twins_loss(z, z.clone(), 1.0)) == pytest.approx(0.0, abs=1e-6)


def _vicreg_reference(z1: list[list[float]], z2: list[list[float]], weights: tuple[float, float, float]) -> float:
    n, d = len(z1), len(z1[0])
    invariance = sum((z1[b][j] - z2[b][j]) ** 2 for b in range(n) for j in range(d)) / (n * d)
    variance = covariance = 0.0
    for z in (z1, z2):
        means = [sum(z[b][j] for b in range(n)) / n for j in range(d)]
        cov = [[sum((z[b][i] - means[i]) * (z[b][j] - means[j]) for b in range(n)) / (n - 1) for j in range(d)]
               for i in range(d)]
        variance += sum(max(0.0, 1 - math.sqrt(cov[j][j] + 1e-4)) for j in range(d)) / d / 2
        covariance += sum(cov[i][j] ** 2 for i in range(d) for j in range(d) if i != j) / d
    return weights[0] * invariance + weights[1] * variance + weights[2] * covariance


def test_vicreg_matches_a_loop() -> None:
    # Scaled down so that some dimensions have std < 1 and the variance hinge is active.
    z1, z2 = 0.6 * batch(B, D, seed=9), 0.6 * batch(B, D, seed=10)
    weights = (25.0, 25.0, 1.0)
    loss, terms = vicreg_loss(z1, z2, *weights)
    assert float(terms["variance"]) > 0, "the test must exercise the variance hinge"
    assert close(loss, _vicreg_reference(z1.tolist(), z2.tolist(), weights))


def test_dino_matches_a_loop_and_skips_same_view_pairs() -> None:
    v_s, v_t, k = 4, 2, 7  # two global views seen by both, two small crops seen by the student only
    student, teacher, center = batch(v_s, B, k, seed=11), batch(v_t, B, k, seed=12), 0.3 * batch(k, seed=13)
    ts, tt = 0.1, 0.04
    terms = []
    for t in range(v_t):
        for s in range(v_s):
            if s == t:
                continue
            per_image = []
            for b in range(B):
                q = softmax([(teacher[t, b, j].item() - center[j].item()) / tt for j in range(k)])
                p = softmax([student[s, b, j].item() / ts for j in range(k)])
                per_image.append(-sum(q[j] * math.log(p[j]) for j in range(k)))
            terms.append(sum(per_image) / B)
    assert len(terms) == v_t * v_s - v_t
    assert close(dino_loss(student, teacher, center, ts, tt), sum(terms) / len(terms))


def test_dino_center_is_an_ema_of_the_teacher_mean() -> None:
    teacher, center, m = batch(2, B, D, seed=14), batch(D, seed=15), 0.9
    new = dino_center(center, teacher, m)
    for j in range(D):
        mean = sum(teacher[v, b, j].item() for v in range(2) for b in range(B)) / (2 * B)
        assert close(new[j], m * center[j].item() + (1 - m) * mean)


def test_dino_teacher_gets_no_gradient() -> None:
    student, teacher = batch(2, B, D, seed=16).requires_grad_(), batch(2, B, D, seed=17).requires_grad_()
    dino_loss(student, teacher, torch.zeros(D), 0.1, 0.04).backward()
    assert student.grad is not None and teacher.grad is None


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_losses_return_float32_scalars_for_any_input_dtype(dtype: torch.dtype) -> None:
    z1, z2 = batch(B, D, seed=18).to(dtype), batch(B, D, seed=19).to(dtype)
    outputs = [nt_xent_loss(z1, z2, 0.2)[0], info_nce_loss(z1, z2, 0.2)[0], negative_cosine_loss(z1, z2),
               barlow_twins_loss(z1, z2, 0.01), vicreg_loss(z1, z2, 25, 25, 1)[0],
               dino_loss(torch.stack([z1, z2]), torch.stack([z2, z1]), torch.zeros(D), 0.1, 0.04)]
    assert all(o.dtype == torch.float32 and o.ndim == 0 and torch.isfinite(o) for o in outputs)
