"""Loss functions as pure tensor functions (shapes in each docstring).

Losses that compare a sample with the rest of the batch see the GLOBAL batch when several processes train
one run: they gather the embeddings of every rank (:func:`sslcore.distributed.gather`, gradients included),
and each rank scores its own rows against all of them, so the mean over ranks is the single-process loss.
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
