"""Loss functions as pure tensor functions (shapes in each docstring).

Every loss computes in float32 whatever the input dtype: exponentials, squared correlations and
cross-entropies lose too much in bf16. Each has a reference test against a slow Python loop
(tests/test_losses.py).

Losses that compare a sample with the rest of the batch see the GLOBAL batch when several processes train
one run: they gather the embeddings of every rank (:func:`sslcore.distributed.gather`, gradients included),
and each rank scores its own rows against all of them, so the mean over ranks is the single-process loss:
NT-Xent and InfoNCE (every key of the global batch is a negative). Barlow Twins and VICReg are functions of
batch statistics (standardisation, cross-correlation, variance, covariance), so every rank computes the
whole loss on the gathered batch; DINO's centre is the mean over the global batch. Per-sample losses (the
BYOL/SimSiam cosine, DINO's cross-entropy against a given centre) need no gather: the mean of the ranks'
means is the mean over the global batch, since every rank has the same number of rows.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from sslcore import distributed


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """SimCLR's normalised-temperature cross-entropy (Chen et al. 2020).

    z1, z2: (B, D) projections of two views of the same B images (this rank's slice of the global batch
    of N = world size * B images). Each embedding must pick its partner among the 2N - 1 others of the
    global batch by cosine similarity / temperature.
    Returns (scalar loss, top-1 accuracy of picking the partner (scalar)), both over this rank's 2B rows.
    """
    b = z1.shape[0]
    # fp32: exp(sim / t) overflows bf16's precision
    all1, all2 = distributed.gather(F.normalize(z1.float(), dim=1)), distributed.gather(F.normalize(z2.float(), dim=1))
    n = all1.shape[0]
    z = torch.cat([all1, all2])  # (2N, D): every rank's first views, then every rank's second views
    mine = distributed.local_rows(b, z.device)
    rows = torch.cat([mine, mine + n])  # (2B,) this rank's embeddings within z
    sim = z[rows] @ z.T / temperature  # (2B, 2N)
    sim[torch.arange(2 * b, device=z.device), rows] = float("-inf")  # an embedding is not its own positive
    partner = torch.cat([mine + n, mine])
    loss = F.cross_entropy(sim, partner)
    accuracy = (sim.argmax(dim=1) == partner).float().mean()
    return loss, accuracy


def info_nce_loss(q: torch.Tensor, k: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE in MoCo v3's form (Chen, Xie & He 2021): queries against the keys of the same batch.

    q: (B, D) queries (online branch); k: (B, D) keys (momentum branch, normally detached by the caller).
    Query i's positive is key i; the other keys of the global batch (N = world size * B of them; B in one
    process) are its negatives (no queue). Cosine similarity divided by ``temperature``, cross-entropy over
    the N keys. Returns (scalar loss, top-1 accuracy of picking the positive key (scalar)), over this rank's rows.
    """
    q = F.normalize(q.float(), dim=1)
    keys = distributed.gather(F.normalize(k.float(), dim=1))  # (N, D)
    logits = q @ keys.T / temperature  # (B, N)
    target = distributed.local_rows(q.shape[0], q.device)  # where this rank's keys sit among the N
    return F.cross_entropy(logits, target), (logits.argmax(dim=1) == target).float().mean()


def negative_cosine_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mean negative cosine similarity with a stop-gradient on the target (SimSiam, Chen & He 2021).

    p: (B, D) predictions of the online branch; z: (B, D) targets. No gradient flows into ``z``
    (it is detached here, so a caller cannot forget). Returns a scalar in [-1, 1]; BYOL's
    ``2 - 2 cos`` (Grill et al. 2020) is ``2 + 2 * negative_cosine_loss(p, z)``.
    """
    return -F.cosine_similarity(p.float(), z.detach().float(), dim=1).mean()


def _standardise_over_batch(z: torch.Tensor) -> torch.Tensor:
    """(B, D) -> (B, D) with each dimension at mean 0 and std 1 over the batch (biased std, as BatchNorm)."""
    return (z - z.mean(dim=0)) / z.std(dim=0, unbiased=False).clamp_min(1e-6)


def _off_diagonal(m: torch.Tensor) -> torch.Tensor:
    """The off-diagonal entries of a square (D, D) matrix, flattened to (D * (D - 1),)."""
    d = m.shape[0]
    return m.flatten()[:-1].view(d - 1, d + 1)[:, 1:].flatten()


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambda_offdiag: float) -> torch.Tensor:
    """Barlow Twins redundancy reduction (Zbontar et al. 2021).

    z1, z2: (B, D) projections of two views (gathered into the global batch of N rows when several
    processes train). Each dimension is standardised over the batch, then C = z1^T z2 / N is their (D, D)
    cross-correlation. Loss = sum_i (1 - C_ii)^2 (invariance) + lambda_offdiag * sum_{i != j} C_ij^2
    (redundancy reduction). Returns a scalar, the same on every rank.
    """
    z1, z2 = distributed.gather(z1.float()), distributed.gather(z2.float())  # statistics of the global batch
    c = _standardise_over_batch(z1).T @ _standardise_over_batch(z2) / z1.shape[0]
    on_diagonal = (1.0 - torch.diagonal(c)).pow(2).sum()
    return on_diagonal + lambda_offdiag * _off_diagonal(c).pow(2).sum()


def vicreg_terms(z1: torch.Tensor, z2: torch.Tensor, eps: float = 1e-4) -> dict[str, torch.Tensor]:
    """The three unweighted VICReg terms (Bardes, Ponce & LeCun 2022), each a scalar.

    z1, z2: (B, D) expander outputs of two views, gathered into the global batch when several processes
    train (the variance and covariance are statistics of the whole batch), so every rank gets the same terms.
    invariance: mean squared distance between the views, mean over B and D.
    variance: hinge on each dimension's std over the batch, mean(relu(1 - sqrt(var + eps))), averaged over
    the two branches (it keeps every dimension alive: the anti-collapse term).
    covariance: sum of squared off-diagonal covariances / D, summed over the two branches (decorrelates dims).
    """
    z1, z2 = distributed.gather(z1.float()), distributed.gather(z2.float())
    d = z1.shape[1]
    terms = {"invariance": F.mse_loss(z1, z2), "variance": z1.new_zeros(()), "covariance": z1.new_zeros(())}
    for z in (z1, z2):
        z = z - z.mean(dim=0)
        std = torch.sqrt(z.var(dim=0) + eps)
        terms["variance"] = terms["variance"] + F.relu(1.0 - std).mean() / 2
        cov = z.T @ z / (z.shape[0] - 1)  # (D, D)
        terms["covariance"] = terms["covariance"] + _off_diagonal(cov).pow(2).sum() / d
    return terms


def vicreg_loss(z1: torch.Tensor, z2: torch.Tensor, invariance_weight: float, variance_weight: float,
                covariance_weight: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """VICReg: the weighted sum of :func:`vicreg_terms`. z1, z2: (B, D). Returns (scalar loss, the terms)."""
    terms = vicreg_terms(z1, z2)
    loss = (invariance_weight * terms["invariance"] + variance_weight * terms["variance"]
            + covariance_weight * terms["covariance"])
    return loss, terms


def dino_loss(student: torch.Tensor, teacher: torch.Tensor, center: torch.Tensor, student_temperature: float,
              teacher_temperature: float | torch.Tensor) -> torch.Tensor:
    """DINO's self-distillation cross-entropy (Caron et al. 2021).

    student: (V_s, B, K) logits of the student for V_s views (the first V_t are the global views the
    teacher saw, in the same order, then any small crops); teacher: (V_t, B, K) logits of the teacher;
    center: (K,) running mean of the teacher's logits; ``teacher_temperature``: a number or a scalar
    tensor (DINO warms it up during training). The teacher is centred (subtract ``center``:
    stops one prototype from winning every image) and sharpened (a low ``teacher_temperature``: stops
    the uniform answer), and carries no gradient. Every student view is trained to match every teacher
    view except its own: mean over the V_t * V_s - V_t pairs of sum_k -P_teacher log P_student.
    Returns a scalar.
    """
    teacher_probs = F.softmax((teacher.detach().float() - center) / teacher_temperature, dim=-1)  # (V_t, B, K)
    student_logp = F.log_softmax(student.float() / student_temperature, dim=-1)  # (V_s, B, K)
    # cross[t, s] = mean over the batch of the cross-entropy between teacher view t and student view s
    cross = -torch.einsum("tbk,sbk->ts", teacher_probs, student_logp) / student.shape[1]
    v_t, v_s = teacher.shape[0], student.shape[0]
    same_view = torch.eye(v_t, v_s, dtype=torch.bool, device=cross.device)
    return cross[~same_view].mean()


def dino_center(center: torch.Tensor, teacher: torch.Tensor, momentum: float) -> torch.Tensor:
    """DINO's centre update, as a new tensor: an EMA of the teacher's mean logit over views and batch.

    center: (K,); teacher: (V_t, B, K) teacher logits; returns (K,) = m * center + (1 - m) * mean, the mean
    over the GLOBAL batch when several processes train (every rank's batch mean, averaged: equal batches),
    so the ranks' centres stay identical.
    """
    batch_mean = distributed.gather(teacher.detach().float().mean(dim=(0, 1))[None]).mean(dim=0)  # (K,)
    return center * momentum + batch_mean * (1.0 - momentum)
