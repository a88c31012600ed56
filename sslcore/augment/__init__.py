"""Batched image augmentations with per-sample random parameters, on the input's device.

Every function takes float images ``x`` of shape (B, C, H, W) with values in [0, 1] and returns a
new tensor of the same shape and dtype. There is no per-image Python loop: random parameters are
drawn as (B,)-shaped tensors and applied with broadcasting, ``einsum`` or one ``grid_sample`` call,
so a batch costs a handful of kernels on CPU, CUDA or MPS alike (the approach of
``kornia.augmentation``). Random functions take ``generator``: a ``torch.Generator`` on the same
device as ``x`` (or ``None`` for torch's default one). Every draw goes through it, and the number of
draws does not depend on the outcome, so a seeded run is reproducible and a resumed run that
restores the generator state continues the same stream.

The view recipe :class:`ViewAugment` follows SimCLR (Chen et al., 2020, "A Simple Framework for
Contrastive Learning of Visual Representations"): random resized crop, flip, colour jitter and
random grayscale.

Split along its seams: :mod:`.geometric` (crop, flip, quarter turns), :mod:`.photometric` (colour jitter,
grayscale), :mod:`.corruption` (the autoencoders' noise and patch masks); this package re-exports them
with the view recipe, so ``from sslcore.augment import X`` is the import to use.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from sslcore.augment._sampling import _check_probability
from sslcore.augment.corruption import gaussian_noise, random_patch_mask, salt_and_pepper
from sslcore.augment.geometric import random_horizontal_flip, random_resized_crop, rotate90
from sslcore.augment.photometric import color_jitter, random_grayscale

__all__ = [
    "random_resized_crop",
    "random_horizontal_flip",
    "color_jitter",
    "random_grayscale",
    "gaussian_noise",
    "salt_and_pepper",
    "random_patch_mask",
    "rotate90",
    "ViewAugment",
    "default_view_augment",
]


@dataclass(frozen=True)
class ViewAugment:
    """A SimCLR-style recipe for one random view (Chen et al., 2020): crop, flip, jitter, grayscale.

    crop_scale_min/max: area fraction range of the random resized crop; rotation_deg: max |angle| of
    the crop's rotation; flip: random horizontal flip with p = 0.5; jitter_strength: SimCLR's colour
    distortion strength s (brightness = contrast = saturation = 0.8 s, hue = 0.2 s; 0 turns it off);
    jitter_p: probability of applying jitter; grayscale_p: probability of random grayscale (RGB only).
    Gaussian blur is left out: SimCLR drops it for small images (CIFAR-10), and at 28-32 px it mostly
    erases the signal.
    """

    crop_scale_min: float = 0.2
    crop_scale_max: float = 1.0
    rotation_deg: float = 0.0
    flip: bool = True
    jitter_strength: float = 0.5
    jitter_p: float = 0.8
    grayscale_p: float = 0.2

    def __post_init__(self) -> None:
        if not 0.0 < self.crop_scale_min <= self.crop_scale_max <= 1.0:
            raise ValueError("crop_scale_min and crop_scale_max must satisfy 0 < min <= max <= 1, got "
                             f"crop_scale_min={self.crop_scale_min}, crop_scale_max={self.crop_scale_max}")
        if not 0.0 <= self.rotation_deg <= 180.0:
            raise ValueError(f"rotation_deg must be in [0, 180], got {self.rotation_deg}")
        if not 0.0 <= self.jitter_strength <= 1.25:  # 1.25 keeps brightness factor >= 0 and hue <= 0.25
            raise ValueError(f"jitter_strength must be in [0, 1.25], got {self.jitter_strength}")
        _check_probability("jitter_p", self.jitter_p)
        _check_probability("grayscale_p", self.grayscale_p)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """x: (B, C, H, W) float in [0, 1] -> one random view per sample, (B, C, H, W)."""
        out = random_resized_crop(x, generator, scale=(self.crop_scale_min, self.crop_scale_max),
                                  max_rotation_deg=self.rotation_deg)
        if self.flip:
            out = random_horizontal_flip(out, generator, p=0.5)
        if self.jitter_strength > 0 and self.jitter_p > 0:
            s = self.jitter_strength
            out = color_jitter(out, generator, brightness=0.8 * s, contrast=0.8 * s, saturation=0.8 * s,
                               hue=0.2 * s, p=self.jitter_p)
        if self.grayscale_p > 0 and x.shape[1] == 3:
            out = random_grayscale(out, generator, p=self.grayscale_p)
        return out


def default_view_augment(channels: int, height: int) -> ViewAugment:
    """A sensible :class:`ViewAugment` for images of ``channels`` channels and ``height`` pixels.

    Colour images get SimCLR's CIFAR recipe: crop scale (0.2, 1) (ImageNet's 0.08 leaves too little of
    a 32 px image), flip, colour jitter 0.4/0.4/0.4/0.1 with p = 0.8, grayscale p = 0.2. SimCLR shows
    crop + colour distortion is the pair that matters: without colour jitter the colour histogram alone
    tells two crops of one image apart.
    Grey images (digit-like; any C != 3 gets this recipe) get no flip, since digits are not mirror-symmetric
    (a mirrored 2 or 5 is not a digit, and the network would learn to ignore handedness); a milder crop, since
    a small crop of a stroke drawing can turn one digit into another (a 7 cropped to its stem looks like a 1),
    milder still on tiny 8x8 images; a small rotation of +-10 degrees as in handwriting; brightness and
    contrast jitter, as saturation and hue do not exist for one channel.
    """
    if channels < 1 or height < 1:
        raise ValueError(f"channels and height must be >= 1, got channels={channels}, height={height}")
    if channels == 3:
        return ViewAugment(crop_scale_min=0.2, rotation_deg=0.0, flip=True, jitter_strength=0.5,
                           jitter_p=0.8, grayscale_p=0.2)
    return ViewAugment(crop_scale_min=0.6 if height < 16 else 0.4, rotation_deg=10.0, flip=False,
                       jitter_strength=0.5, jitter_p=0.8, grayscale_p=0.0)
