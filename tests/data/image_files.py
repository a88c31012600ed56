"""Image files for the import tests, built here: good ones in every allowed format and the awkward ones
(CMYK, 16-bit, palette with transparency, EXIF-rotated, animated, truncated, bombs, non-images)."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

RED, BLUE, GREEN = (220, 20, 20), (20, 20, 220), (20, 200, 20)


def encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (40, 30), fmt: str = "PNG", seed: int = 0) -> bytes:
    """A colour image with a little seeded noise (so two files are never byte-identical by accident)."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal(colour, 6, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    return encode(Image.fromarray(pixels), fmt)


def grey(level: int, size: tuple[int, int] = (40, 30), fmt: str = "PNG", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.clip(rng.normal(level, 6, (size[1], size[0])), 0, 255).astype(np.uint8)
    return encode(Image.fromarray(pixels), fmt)


def grey_in_rgb(level: int, fmt: str = "JPEG") -> bytes:
    """A grey picture saved as a colour (RGB) file: the import should still see it as grey."""
    pixels = np.clip(np.random.default_rng(1).normal(level, 6, (30, 40)), 0, 255).astype(np.uint8)
    return encode(Image.fromarray(pixels).convert("RGB"), fmt)


def halves(left: tuple[int, int, int], right: tuple[int, int, int], size: tuple[int, int] = (40, 20)) -> Image.Image:
    """Left half one colour, right half another (to see rotations)."""
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    pixels[:, : size[0] // 2] = left
    pixels[:, size[0] // 2:] = right
    return Image.fromarray(pixels)


def exif_rotated_jpeg(orientation: int) -> bytes:
    """A 40x20 JPEG, red left / blue right, whose EXIF says to show it with ``orientation`` (6: rotate 90° CW)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(halves(RED, BLUE), "JPEG", quality=95, exif=exif.tobytes())


def cmyk_jpeg() -> bytes:
    """A red CMYK JPEG (PIL writes the Adobe marker, as Photoshop does)."""
    return encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", quality=95)


def grey16_png(value: int = 0x8000) -> bytes:
    """A 16-bit grey PNG of one value: 8-bit conversion must scale (value >> 8), not clip to 255."""
    return encode(Image.fromarray(np.full((24, 24), value, np.uint16)), "PNG")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_from_header(width: int, height: int, bit_depth: int, colour_type: int, raw_rows: bytes) -> bytes:
    """A PNG written by hand: IHDR as given, one IDAT of ``raw_rows`` (filter byte + samples per row)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(raw_rows))
            + _png_chunk(b"IEND", b""))


def rgb16_png(rgb16: tuple[int, int, int] = (0xFF00, 0x8000, 0x0100)) -> bytes:
    """A 16-bit-per-channel RGB PNG (PIL cannot write one) of one colour."""
    row = b"\x00" + struct.pack(">HHH", *rgb16) * 16
    return png_from_header(16, 16, 16, 2, row * 16)


def bomb_png(side: int = 50_000) -> bytes:
    """A PNG of a few hundred bytes whose header declares side x side pixels (decoding would need GBs)."""
    return png_from_header(side, side, 8, 0, b"\x00" * 64)


def palette_png_with_transparency() -> bytes:
    """Palette PNG: left half index 0 (fully transparent black), right half index 1 (opaque green)."""
    img = Image.new("P", (32, 32), 0)
    img.putpalette([0, 0, 0, *GREEN] + [0] * (254 * 3))
    img.paste(1, (16, 0, 32, 32))
    return encode(img, "PNG", transparency=0)


def animated_gif() -> bytes:
    """Two frames: red, then blue; the import must take the first."""
    frames = [Image.new("RGB", (24, 24), RED), Image.new("RGB", (24, 24), BLUE)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def truncated_jpeg() -> bytes:
    data = solid(RED, (64, 64), "JPEG")
    return data[: len(data) // 2]


def tiny_png() -> bytes:
    return encode(Image.new("RGB", (1, 1), RED), "PNG")
