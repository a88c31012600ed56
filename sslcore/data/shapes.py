"""``shapes``: coloured geometric shapes on textured backgrounds, drawn from a seed (no files, no download).

An embedded colour dataset, so colour augmentations and colour-only tasks (colorization) work offline.
10 classes of shape, 500 images each, 32x32 RGB. Colour, size, position and rotation are drawn
independently of the class, and every shape fits in the same disc, so telling classes apart needs the
outline: the mean colour of an image says nothing about its class (see tests/data/test_shapes.py).
Shape and background take two of 12 palette colours, each of its own brightness, so colours can be
inferred from a grey picture (as colorization must) without telling anything about the class.

Drawing is vectorised: each shape is an inside/outside test on rotated, scaled pixel coordinates,
evaluated on a 2x2 supersampled grid (anti-aliased edges), for all images of a class at once.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from sslcore.data.base import ImageDataset
from sslcore.data.registry import register_dataset

SHAPE_NAMES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "ring", "hexagon", "bar",
                                "ellipse", "semicircle")
IMAGE_SIZE = 32
PER_CLASS = 500
SUPERSAMPLE = 2
PALETTE_SIZE = 12
LUMA = (0.299, 0.587, 0.114)
#: Shape radius in pixels (every shape fits in a disc of this radius around its centre).
RADIUS_RANGE = (6.0, 12.0)

Inside = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _polygon(n: int, radius: float = 1.0) -> Inside:
    """A regular n-gon with circumradius ``radius``: inside where rho * cos(angle to the nearest edge normal)
    <= apothem."""

    def inside(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        rho, phi = torch.hypot(u, v), torch.atan2(v, u)
        sector = 2 * math.pi / n
        offset = torch.remainder(phi, sector) - sector / 2
        return rho * torch.cos(offset) <= radius * math.cos(math.pi / n)

    return inside


def _star(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Five points: the boundary radius goes linearly from 1 (tips) to 0.45 (between them) with the angle."""
    rho, phi = torch.hypot(u, v), torch.atan2(v, u)
    sector = 2 * math.pi / 5
    t = (torch.remainder(phi, sector) / sector - 0.5).abs() * 2  # 1 at a tip, 0 halfway between tips
    return rho <= 0.45 + 0.55 * t


def _semicircle(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    # Shifted so its bounding box is centred, like the other shapes.
    v = v + 0.5
    return (u * u + v * v <= 1.0) & (v >= 0)


SHAPES: dict[str, Inside] = {
    "circle": lambda u, v: u * u + v * v <= 0.8,
    "square": lambda u, v: torch.maximum(u.abs(), v.abs()) <= 0.68,
    "triangle": _polygon(3),
    "star": _star,
    "cross": lambda u, v: ((u.abs() <= 0.28) & (v.abs() <= 0.95)) | ((v.abs() <= 0.28) & (u.abs() <= 0.95)),
    "ring": lambda u, v: (u * u + v * v <= 0.9) & (u * u + v * v >= 0.3),
    "hexagon": _polygon(6, 0.92),
    "bar": lambda u, v: (u.abs() <= 0.95) & (v.abs() <= 0.22),
    "ellipse": lambda u, v: u * u + (v / 0.5) ** 2 <= 0.9,
    "semicircle": _semicircle,
}


def _uniform(shape: tuple[int, ...], low: float, high: float, g: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=g)


def _coverage(labels: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Share of each pixel the image's shape covers: (N, S, S) float in [0, 1].

    Radius, centre (the shape stays inside the image) and rotation are drawn per image, whatever the class.
    """
    n, s, k = labels.shape[0], IMAGE_SIZE, SUPERSAMPLE
    radius = _uniform((n,), *RADIUS_RANGE, g)
    centre = radius[:, None] + torch.rand((n, 2), generator=g) * (s - 2 * radius[:, None])
    angle = _uniform((n,), 0.0, 2 * math.pi, g)
    grid = (torch.arange(s * k, dtype=torch.float32) + 0.5) / k  # sub-pixel centres in pixel units
    inside = torch.empty((n, s * k, s * k))
    for index, draw in enumerate(SHAPES.values()):
        rows = torch.nonzero(labels == index).flatten()
        r, (cx, cy) = radius[rows, None, None], centre[rows].T[:, :, None, None]
        x, y = (grid[None, None, :] - cx) / r, (grid[None, :, None] - cy) / r
        cos, sin = angle[rows].cos()[:, None, None], angle[rows].sin()[:, None, None]
        # (M, S*k, S*k) coordinates in the shape's own frame: rotated by -angle, radius 1
        inside[rows] = draw(cos * x + sin * y, cos * y - sin * x).float()
    return F.avg_pool2d(inside[:, None], k)[:, 0]


def palette() -> torch.Tensor:
    """(12, 3) vivid RGB colours in [0, 1], in order of brightness: colour r has luma (ITU-R BT.601)
    0.15 + 0.7 r / 11 and hue 5r/12 of the wheel, so colours close in brightness are far apart in hue.

    A colour can then be told from its grey level, as in photographs (skies are bright, foliage is dark);
    that is what colorization learns, and nothing about the class comes with it.
    """
    rank = torch.arange(PALETTE_SIZE, dtype=torch.float32)
    hue = torch.remainder(rank * 5, PALETTE_SIZE) / PALETTE_SIZE
    k = torch.remainder(torch.tensor([5.0, 3.0, 1.0])[None] + 6 * hue[:, None], 6)
    pure = 1 - torch.minimum(k, 4 - k).clamp(0, 1)  # HSV -> RGB at full saturation and value
    luma, target = pure @ torch.tensor(LUMA), (0.15 + 0.7 * rank / (PALETTE_SIZE - 1))[:, None]
    lighter = pure + (target - luma[:, None]) / (1 - luma[:, None]) * (1 - pure)  # mixed with white
    return torch.where(target > luma[:, None], lighter, pure * target / luma[:, None])


def _colours(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(foreground, background) RGB (N, 3): two palette colours at least 4 brightness steps (0.25 luma) apart,
    so the shape shows in grey too."""
    back = torch.randint(0, PALETTE_SIZE, (n,), generator=g)
    front = torch.remainder(back + torch.randint(4, PALETTE_SIZE - 3, (n,), generator=g), PALETTE_SIZE)
    colours = palette()
    return colours[front], colours[back]


def _bilinear(size: int, cells: int) -> torch.Tensor:
    """(size, cells) weights that stretch ``cells`` values over ``size`` pixels by linear interpolation."""
    pos = ((torch.arange(size, dtype=torch.float32) + 0.5) * cells / size - 0.5).clamp(0, cells - 1)
    return (1 - (pos[:, None] - torch.arange(cells)).abs()).clamp_min(0)


def _texture(n: int, g: torch.Generator) -> torch.Tensor:
    """Background texture (N, 1, S, S) around 0, the same on every channel (it changes brightness, not hue):
    smooth blotches + stripes of random angle and period."""
    s, weights = IMAGE_SIZE, _bilinear(IMAGE_SIZE, 4)
    # Interpolating a 4x4 grid of random values as two small matrix products is cheaper than F.interpolate.
    texture = weights @ (torch.randn((n, 1, 4, 4), generator=g) * 0.08) @ weights.T
    angle = _uniform((n, 1, 1), 0.0, math.pi, g)
    period = _uniform((n, 1, 1), 3.0, 8.0, g)
    pos = torch.arange(s, dtype=torch.float32)
    along = pos[None, None, :] * angle.cos() + pos[None, :, None] * angle.sin()
    stripes = torch.sin(2 * math.pi * along / period + _uniform((n, 1, 1), 0.0, 2 * math.pi, g))
    return texture.add_((_uniform((n, 1, 1), 0.0, 0.1, g) * stripes)[:, None])


def generate_shapes(per_class: int = PER_CLASS, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images uint8 (10 * per_class, 3, 32, 32) and labels int64 (10 * per_class,), shuffled; a pure function of
    the seed."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(len(SHAPES)).repeat_interleave(per_class)
    labels = labels[torch.randperm(labels.shape[0], generator=g)]
    n = labels.shape[0]
    cover = _coverage(labels, g)[:, None]  # (N, 1, S, S)
    foreground, background = _colours(n, g)
    # background + texture outside the shape, flat colour inside, sensor-like noise everywhere
    images = background[:, :, None, None] + _texture(n, g) * (1 - cover)
    images.add_(cover * (foreground - background)[:, :, None, None])
    images.add_(torch.randn(images.shape, generator=g), alpha=0.04)
    return images.clamp_(0, 1).mul_(255).round_().to(torch.uint8), labels


@register_dataset(
    "shapes",
    "10 kinds of coloured shape on textured backgrounds (5,000 images, 32×32 colour; colour, size, position "
    "and rotation random); embedded, drawn from a seed",
    embedded=True,
    official_split=False,
    sample_shape=(3, IMAGE_SIZE, IMAGE_SIZE),
)
def load_shapes(root: Path, download: bool) -> ImageDataset:
    """:func:`generate_shapes` with seed 0 (about a second; cached in-process by ``load_dataset``)."""
    images, labels = generate_shapes()
    return ImageDataset("shapes", images, labels, SHAPE_NAMES)
