"""Image grids for the browser: many small images as one picture, enlarged without blurring.

Pure numpy. One picture per grid (instead of one ``st.image`` per sample) keeps the page light, and
integer nearest-neighbour upscaling keeps 8x8 digits crisp where the browser would smear them.
"""
from __future__ import annotations

import math

import numpy as np

#: Each tile is enlarged by a whole factor until its side reaches at least this many pixels.
MIN_TILE_PIXELS = 56


def to_uint8_hwc(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) uint8, or float in [0, 1] -> (N, H, W, C) uint8 with C in {1, 3}."""
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
    if images.dtype != np.uint8:
        images = np.rint(np.clip(images.astype(np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)
    if images.shape[1] not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got {images.shape[1]}")
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1))


def upscale_factor(height: int, width: int, min_pixels: int = MIN_TILE_PIXELS) -> int:
    """The smallest whole factor that makes the shorter side at least ``min_pixels``."""
    return max(1, math.ceil(min_pixels / max(1, min(height, width))))


def image_grid(images: np.ndarray, columns: int, *, pad: int = 2, background: int = 255,
               min_tile_pixels: int = MIN_TILE_PIXELS) -> np.ndarray:
    """Tile images (N, C, H, W) row by row into one (rows*H', columns*W') picture.

    Returns (H, W) uint8 for grey images, (H, W, 3) for colour ones; tiles are upscaled by a whole
    factor (nearest neighbour) and separated by ``pad`` pixels of ``background``.
    """
    tiles = to_uint8_hwc(images)
    n, h, w, c = tiles.shape
    if n == 0:
        raise ValueError("no images to tile")
    factor = upscale_factor(h, w, min_tile_pixels)
    tiles = tiles.repeat(factor, axis=1).repeat(factor, axis=2)
    h, w = h * factor, w * factor
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    grid = np.full((rows * h + (rows - 1) * pad, columns * w + (columns - 1) * pad, c), background, np.uint8)
    for i in range(n):
        top, left = (i // columns) * (h + pad), (i % columns) * (w + pad)
        grid[top:top + h, left:left + w] = tiles[i]
    return grid[..., 0] if c == 1 else grid
