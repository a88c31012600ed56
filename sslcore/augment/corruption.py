"""Corruptions for the autoencoder tasks: Gaussian and salt-and-pepper noise, and random patch masks.
Batched, per-sample random draws; see :mod:`sslcore.augment` for the shared contract."""
from __future__ import annotations

import math

import torch

from sslcore.augment._sampling import _check_images, _check_probability


def gaussian_noise(x: torch.Tensor, generator: torch.Generator | None, *, std: float) -> torch.Tensor:
    """Add N(0, std^2) noise per pixel and channel, clamped to [0, 1]. x: (B, C, H, W) -> same."""
    _check_images(x)
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std}")
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (x + std * noise).clamp(0.0, 1.0)


def salt_and_pepper(x: torch.Tensor, generator: torch.Generator | None, *, amount: float) -> torch.Tensor:
    """Set each pixel, with probability ``amount``, to 0 or 1 (even odds), in all channels alike.

    x: (B, C, H, W) -> (B, C, H, W) in [0, 1]; ``amount`` is the expected fraction of pixels hit.
    """
    _check_images(x)
    _check_probability("amount", amount)
    b, _, h, w = x.shape
    hit = torch.rand((b, 1, h, w), generator=generator, device=x.device) < amount
    salt = torch.rand((b, 1, h, w), generator=generator, device=x.device) < 0.5
    return torch.where(hit, salt.to(x.dtype), x.clamp(0.0, 1.0))


def random_patch_mask(batch: int, channels: int, height: int, width: int, patch_size: int,
                      mask_ratio: float, generator: torch.Generator | None,
                      device: torch.device | str) -> torch.Tensor:
    """Hide a random subset of square patches per sample, MAE-style (He et al., 2022).

    Returns bool (batch, 1, height, width), True = hidden, shared across the ``channels`` channels.
    Patches lie on a ceil(H/p) x ceil(W/p) grid cropped to H x W (edge patches may be smaller).
    Each sample hides exactly round(mask_ratio * num_patches) patches: the argsort of per-sample
    uniform noise picks them, so every subset of that size is equally likely.
    """
    if batch < 1 or channels < 1:
        raise ValueError(f"batch and channels must be >= 1, got batch={batch}, channels={channels}")
    if not 1 <= patch_size <= min(height, width):
        raise ValueError(f"patch_size must be between 1 and min(height, width) = {min(height, width)} "
                         f"for {height}x{width} images, got {patch_size}")
    _check_probability("mask_ratio", mask_ratio)
    grid_h, grid_w = math.ceil(height / patch_size), math.ceil(width / patch_size)
    num_patches = grid_h * grid_w
    num_hidden = round(mask_ratio * num_patches)
    noise = torch.rand((batch, num_patches), generator=generator, device=device)
    hidden_ids = noise.argsort(dim=1)[:, :num_hidden]
    hidden = torch.zeros((batch, num_patches), dtype=torch.bool, device=device)
    hidden.scatter_(1, hidden_ids, True)
    pixels = hidden.view(batch, 1, grid_h, grid_w)
    pixels = pixels.repeat_interleave(patch_size, dim=2).repeat_interleave(patch_size, dim=3)
    return pixels[:, :, :height, :width].contiguous()
