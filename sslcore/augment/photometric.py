"""Photometric augmentations: what the pixels look like (colour jitter, random grayscale). Batched,
per-sample random parameters applied as per-sample 3x3 colour matrices; see :mod:`sslcore.augment`."""
from __future__ import annotations

import math
from functools import lru_cache

import torch

from sslcore.augment._sampling import _bernoulli, _check_images, _check_probability, _uniform

# ITU-R BT.601 luma weights, as torchvision's rgb_to_grayscale.
_LUMA = (0.299, 0.587, 0.114)
# RGB -> YIQ (NTSC). A hue shift is a rotation of the (I, Q) chroma plane: a 3x3 matrix per sample
# instead of an RGB -> HSV -> RGB round trip with its branches. It approximates HSV hue rotation.
_RGB_TO_YIQ = (
    (0.299, 0.587, 0.114),
    (0.596, -0.274, -0.322),
    (0.211, -0.523, 0.312),
)


def _grayscale(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> (B, 1, H, W) luma."""
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device)
    return torch.einsum("c,bchw->bhw", w, x).unsqueeze(1)


@lru_cache(maxsize=1)
def _hue_rotation_terms() -> torch.Tensor:
    """(3, 3, 3) float32 (P, A, Q) with T^-1 R(a) T = P + cos(a) A + sin(a) Q, T = RGB -> YIQ.

    Computed once in float64 on the CPU (MPS has no float64), so grey maps to grey to ~1e-7.
    """
    yiq = torch.tensor(_RGB_TO_YIQ, dtype=torch.float64)
    inv = torch.linalg.inv(yiq)
    turn = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    terms = [torch.outer(inv[:, 0], yiq[0]), inv[:, 1:] @ yiq[1:], inv[:, 1:] @ turn @ yiq[1:]]
    return torch.stack(terms).to(torch.float32)


def _saturation_hue_matrix(sat: torch.Tensor, hue: torch.Tensor) -> torch.Tensor:
    """Per-sample (B, 3, 3) RGB matrix: saturation blend with luma, then a YIQ hue rotation.

    sat: (B,) factors (1 = unchanged); hue: (B,) shifts in turns (0 = unchanged). Both maps send
    grey (r = g = b) to the same grey, so grey images stay grey.
    """
    consts = _hue_rotation_terms().to(device=sat.device)
    a = hue * (2.0 * math.pi)
    hue_m = consts[0] + torch.cos(a)[:, None, None] * consts[1] + torch.sin(a)[:, None, None] * consts[2]
    luma = torch.tensor(_LUMA, device=sat.device).expand(3, 3)
    eye = torch.eye(3, device=sat.device)
    sat_m = sat[:, None, None] * eye + (1.0 - sat)[:, None, None] * luma
    return hue_m @ sat_m


def color_jitter(x: torch.Tensor, generator: torch.Generator | None, *, brightness: float = 0.4,
                 contrast: float = 0.4, saturation: float = 0.4, hue: float = 0.1,
                 p: float = 0.8) -> torch.Tensor:
    """Per-sample brightness, contrast, saturation and hue jitter, applied with probability p.

    x: (B, C, H, W) -> (B, C, H, W), clamped to [0, 1]. Factors are drawn as torchvision's ColorJitter:
    brightness/contrast/saturation ~ U(max(0, 1 - v), 1 + v), hue shift ~ U(-hue, hue) in turns.
    Order is fixed (brightness, contrast, then saturation and hue as one 3x3 matrix per sample) where
    torchvision shuffles it per image; saturation and hue need RGB, so for C != 3 only brightness and
    contrast apply. Hue is a rotation in YIQ space, a cheap approximation of an HSV hue shift.
    """
    _check_images(x)
    _check_probability("p", p)
    for name, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if not 0.0 <= hue <= 0.5:
        raise ValueError(f"hue must be in [0, 0.5], got {hue}")
    b, c = x.shape[:2]
    dev = x.device
    apply = _bernoulli(b, p, generator, dev)
    bright = _uniform((b,), max(0.0, 1 - brightness), 1 + brightness, generator, dev)
    contr = _uniform((b,), max(0.0, 1 - contrast), 1 + contrast, generator, dev)
    sat = _uniform((b,), max(0.0, 1 - saturation), 1 + saturation, generator, dev)
    shift = _uniform((b,), -hue, hue, generator, dev)
    out = (x * bright.to(x.dtype).view(b, 1, 1, 1)).clamp(0.0, 1.0)
    grey = _grayscale(out) if c == 3 else out
    mean = grey.mean(dim=(1, 2, 3), keepdim=True)
    cf = contr.to(x.dtype).view(b, 1, 1, 1)
    out = (cf * out + (1 - cf) * mean).clamp(0.0, 1.0)
    if c == 3:
        matrix = _saturation_hue_matrix(sat, shift).to(x.dtype)
        out = torch.einsum("bij,bjhw->bihw", matrix, out).clamp(0.0, 1.0)
    return torch.where(apply, out, x)


def random_grayscale(x: torch.Tensor, generator: torch.Generator | None, *, p: float = 0.2) -> torch.Tensor:
    """Replace each RGB sample by its luma (kept as 3 channels) with probability p.

    x: (B, C, H, W) -> (B, C, H, W). A copy of x for C != 3 (already grey or not RGB); the draw is
    still made so the generator stream does not depend on C.
    """
    _check_images(x)
    _check_probability("p", p)
    apply = _bernoulli(x.shape[0], p, generator, x.device)
    if x.shape[1] != 3:
        return x.clone()
    return torch.where(apply, _grayscale(x).expand_as(x), x)
