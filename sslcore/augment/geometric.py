"""Geometric augmentations: where the pixels go (random resized crop with an optional small rotation,
horizontal flip, quarter turns). Batched, per-sample random parameters, one ``grid_sample`` or ``gather``
call per batch; see :mod:`sslcore.augment` for the shared contract."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from sslcore.augment._sampling import _bernoulli, _check_images, _check_probability, _uniform

# Candidates per sample for the crop's (area, aspect) rejection sampling, as torchvision's 10 tries.
_CROP_TRIES = 10


def _crop_theta(b: int, h: int, w: int, scale: tuple[float, float], ratio: tuple[float, float],
                max_rotation_deg: float, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """float32 (B, 2, 3) affine maps from output to input normalised coords, one random crop each."""
    area = _uniform((b, _CROP_TRIES), scale[0], scale[1], generator, device)
    aspect = torch.exp(_uniform((b, _CROP_TRIES), math.log(ratio[0]), math.log(ratio[1]), generator, device))
    # Crop width and height as fractions of the image's width and height.
    cw = torch.sqrt(area * aspect * (h / w))
    ch = torch.sqrt(area / aspect * (w / h))
    fits = (cw <= 1.0) & (ch <= 1.0)
    first = fits.int().argmax(dim=1, keepdim=True)  # argmax returns the first maximal index
    fallback_aspect = min(max(w / h, ratio[0]), ratio[1])
    any_fit = fits.any(dim=1)
    cw = torch.where(any_fit, cw.gather(1, first).squeeze(1), min(1.0, fallback_aspect * h / w))
    ch = torch.where(any_fit, ch.gather(1, first).squeeze(1), min(1.0, w / (fallback_aspect * h)))
    # Crop centre in normalised coordinates [-1, 1]; half-extent of the crop there is (cw, ch).
    cx = (1.0 - cw) * _uniform((b,), -1.0, 1.0, generator, device)
    cy = (1.0 - ch) * _uniform((b,), -1.0, 1.0, generator, device)
    angle = _uniform((b,), -1.0, 1.0, generator, device) * math.radians(max_rotation_deg)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # The rotation acts in pixel units, hence the h/w factors that keep angles right on non-square images.
    return torch.stack([
        torch.stack([cos * cw, -sin * ch * (h / w), cx], dim=1),
        torch.stack([sin * cw * (w / h), cos * ch, cy], dim=1),
    ], dim=1)


def _affine_grid(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, 2, 3) -> (B, H, W, 2) sampling grid, equal to ``F.affine_grid(theta, ..., align_corners=False)``.

    Built by broadcasting (grid = theta[:, :, 0] u + theta[:, :, 1] v + theta[:, :, 2]): on a 2-core
    CPU this measured ~10x faster than F.affine_grid's batched matmul over a homogeneous base grid.
    """
    u = (torch.arange(w, device=theta.device, dtype=theta.dtype) * 2 + 1) / w - 1  # pixel centres
    v = (torch.arange(h, device=theta.device, dtype=theta.dtype) * 2 + 1) / h - 1
    t = theta[:, None, None, :, :]  # (B, 1, 1, 2, 3)
    return t[..., 0] * u.view(1, 1, w, 1) + t[..., 1] * v.view(1, h, 1, 1) + t[..., 2]


def random_resized_crop(x: torch.Tensor, generator: torch.Generator | None, *,
                        scale: tuple[float, float] = (0.2, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3),
                        max_rotation_deg: float = 0.0,
                        padding_mode: str = "zeros") -> torch.Tensor:
    """Crop a random region of each sample and resample it back to (H, W) (Szegedy et al., 2015).

    x: (B, C, H, W) -> (B, C, H, W). Per sample: area fraction ~ U(scale), aspect w/h log-uniform in
    ``ratio`` (first of 10 candidates that fits, else the whole image with the ratio clamped, as
    torchvision), a uniform position inside the image, and a rotation ~ U(-max_rotation_deg, +max).
    Crop bounds are continuous (sub-pixel), not rounded to whole pixels.

    One affine grid + one bilinear ``grid_sample`` covers the whole batch. Since the crop is never
    larger than the image, resampling only magnifies, so bilinear needs no antialiasing. Without
    rotation the crop lies inside the image and padding never shows. With rotation the corners reach
    outside; ``padding_mode="zeros"`` (the default) fills them with black, which is the true background
    of digit-like images and what torchvision's RandomRotation fills with; "border" would smear edge
    pixels into streaks, a low-level cue a network can latch on to. "reflection" is also accepted.
    """
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(f"padding_mode must be 'zeros', 'border' or 'reflection', got {padding_mode!r}")
    _check_images(x)
    if not 0.0 < scale[0] <= scale[1] <= 1.0:
        raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got {scale}")
    if not 0.0 < ratio[0] <= ratio[1]:
        raise ValueError(f"ratio must satisfy 0 < min <= max, got {ratio}")
    if not 0.0 <= max_rotation_deg <= 180.0:
        raise ValueError(f"max_rotation_deg must be in [0, 180], got {max_rotation_deg}")
    b, _, h, w = x.shape
    theta = _crop_theta(b, h, w, scale, ratio, max_rotation_deg, generator, x.device)
    grid = _affine_grid(theta.to(x.dtype), h, w)
    # grid_sample's own "zeros" also blends black into the outer half-pixel ring of the image (between
    # the last pixel centre and the edge), darkening crop borders. So sample with "border" and zero only
    # the points outside the image; without rotation there are none and the mask pass is skipped.
    mode = "border" if padding_mode == "zeros" else padding_mode
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode=mode, align_corners=False)
    if padding_mode != "zeros" or max_rotation_deg == 0.0:
        return out
    inside = (grid.abs() <= 1.0).all(dim=-1).unsqueeze(1)
    return out * inside.to(out.dtype)


def random_horizontal_flip(x: torch.Tensor, generator: torch.Generator | None, *, p: float = 0.5) -> torch.Tensor:
    """Mirror each sample left-right with probability p. x: (B, C, H, W) -> (B, C, H, W), exact."""
    _check_images(x)
    _check_probability("p", p)
    return torch.where(_bernoulli(x.shape[0], p, generator, x.device), x.flip(-1), x)


def rotate90(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Rotate sample i by k[i] * 90 degrees counter-clockwise (RotNet, Gidaris et al., 2018).

    x: (B, C, H, H) square images (a quarter turn swaps H and W, which one batch tensor cannot hold,
    so H != W raises ValueError); k: int64 (B,) in {0, 1, 2, 3}, taken modulo 4 as torch.rot90 does.
    Returns (B, C, H, H), equal to ``torch.rot90(x[i], k[i], dims=(1, 2))`` per sample: an exact
    pixel permutation (one gather, no interpolation) that works for any dtype.
    """
    if x.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    if h != w:
        raise ValueError(f"rotate90 needs square images, got {h}x{w}")
    if k.dtype != torch.int64 or k.shape != (b,):
        raise ValueError(f"k must be int64 of shape ({b},), got {k.dtype} {tuple(k.shape)}")
    base = torch.arange(h * w, device=x.device).view(h, w)
    # sources[r][j] = flat index in x of output pixel j after r quarter turns.
    sources = torch.stack([torch.rot90(base, r, dims=(0, 1)).reshape(-1) for r in range(4)])
    index = sources[k.to(x.device).remainder(4)]  # (B, H*W)
    out = x.reshape(b, c, h * w).gather(2, index.unsqueeze(1).expand(b, c, h * w))
    return out.view(b, c, h, w)
