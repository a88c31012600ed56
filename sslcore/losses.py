"""Loss functions as pure tensor functions (shapes in each docstring)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """SimCLR's normalised-temperature cross-entropy (Chen et al. 2020).

    z1, z2: (B, D) projections of two views of the same B images. Each of the 2B embeddings must pick
    its partner among the 2B - 1 others by cosine similarity / temperature.
    Returns (scalar loss, top-1 accuracy of picking the partner (scalar)).
    """
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)  # (2B, D); fp32: exp(sim / t) overflows bf16's precision
    sim = z @ z.T / temperature  # (2B, 2B)
    sim.fill_diagonal_(float("-inf"))  # an embedding is not its own positive
    partner = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    loss = F.cross_entropy(sim, partner)
    accuracy = (sim.argmax(dim=1) == partner).float().mean()
    return loss, accuracy
