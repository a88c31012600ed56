"""Shared checks and random draws of the augmentations: one place decides how parameters are sampled."""
from __future__ import annotations

import torch


def _check_images(x: torch.Tensor) -> None:
    if x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"images must be a float tensor (B, C, H, W), got {x.dtype} {tuple(x.shape)}")


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


def _uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator | None,
             device: torch.device) -> torch.Tensor:
    """float32 U(low, high) of ``shape``; always float32 so the stream does not depend on x's dtype."""
    return torch.rand(shape, generator=generator, device=device) * (high - low) + low


def _bernoulli(batch: int, p: float, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """bool (B, 1, 1, 1): True with probability p, ready to broadcast over (C, H, W)."""
    return (torch.rand(batch, generator=generator, device=device) < p).view(batch, 1, 1, 1)
