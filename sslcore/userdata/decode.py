"""One image file -> a normalised uint8 array, or the reason it is skipped. Runs in worker processes.

Only numpy and PIL are imported here, so a worker starts in a fraction of a second. Every failure of one
file becomes a :class:`Skipped` with a reason from :data:`REASONS`; nothing raised by a bad file escapes.

Normalisation, in order: only the allow-listed formats are parsed (``Image.open(formats=...)``: no EPS
ghostscript, no exotic plugins); the pixel count is checked from the header before anything is decoded
(a decompression bomb is refused, never decoded with a warning); JPEGs are decoded at a reduced scale when
that still covers the target (``draft``); the EXIF orientation is applied; GIFs give their first frame;
16-bit images are scaled to 8 bits (PIL's own conversion clips them); palette and alpha images are
flattened onto white; CMYK and YCbCr become RGB; then the shorter side is resized to ``size`` and the
centre is cropped (torchvision's ``Resize(size)`` + ``CenterCrop(size)``).
"""
from __future__ import annotations

import hashlib
import io
import os
import warnings
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
NOT_IMAGE, CORRUPT, TOO_LARGE, TOO_SMALL, DUPLICATE = "not an image", "corrupt", "too large", "too small", "duplicate"
#: Why a file was skipped; each skipped file has one of these, with a detail.
REASONS = (NOT_IMAGE, CORRUPT, TOO_LARGE, TOO_SMALL, DUPLICATE)
#: A colour image whose channels differ by at most this much everywhere counts as grey (JPEG rounding).
GREY_TOLERANCE = 3
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N"}
_EXIF_ORIENTATION = 0x0112
_WHITE = (255, 255, 255, 255)

#: Where a file's bytes are: ("file", path) or ("zip", zip path, member name).
Locator = tuple[str, ...]


@dataclass(frozen=True)
class DecodeOptions:
    """size: output side in pixels; mode: "auto" (grey kept grey), "rgb" or "grey"; max_pixels: width x
    height allowed before decoding; min_side: smallest accepted side; max_file_bytes: bytes read per file."""

    size: int = 32
    mode: str = "auto"
    max_pixels: int = 50_000_000
    min_side: int = 8
    max_file_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class Decoded:
    """pixels: uint8 (S, S) for a grey image, (S, S, 3) for a colour one; digest: sha256 of the file's bytes."""

    pixels: np.ndarray
    digest: str

    @property
    def grey(self) -> bool:
        return self.pixels.ndim == 2


@dataclass(frozen=True)
class Skipped:
    reason: str  # one of REASONS
    detail: str


Outcome = Decoded | Skipped


def decode_bytes(data: bytes, options: DecodeOptions) -> Outcome:
    """Decode one file's bytes (see the module docstring); never raises for bad input."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # a bomb is refused, not warned about
        return fold_grey([_decode_one(data, options)], options)[0]


def _decode_one(data: bytes, options: DecodeOptions) -> Outcome:
    """decode_bytes without the grey check, inside the caller's warnings filter (a chunk sets it once)."""
    if not data:
        return Skipped(NOT_IMAGE, "empty file (0 bytes)")
    try:
        pixels = _decode(Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS), options)
    except UnidentifiedImageError:
        return Skipped(NOT_IMAGE, f"not a {'/'.join(ALLOWED_FORMATS)} image")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        return Skipped(TOO_LARGE, str(e).split(",")[0])
    except _Refused as e:
        return e.skipped
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, MemoryError) as e:
        return Skipped(CORRUPT, " ".join(str(e).split())[:160] or type(e).__name__)  # truncated, bad CRC, ...
    return Decoded(pixels, hashlib.sha256(data).hexdigest())


class _Refused(Exception):
    def __init__(self, skipped: Skipped) -> None:
        super().__init__(skipped.detail)
        self.skipped = skipped


def _decode(img: Image.Image, options: DecodeOptions) -> np.ndarray:
    width, height = img.size
    if width * height > options.max_pixels:
        raise _Refused(Skipped(TOO_LARGE, f"{width}x{height} = {width * height:,} pixels, over the cap of "
                                          f"{options.max_pixels:,} pixels per image"))
    if min(width, height) < options.min_side:
        raise _Refused(Skipped(TOO_SMALL, f"{width}x{height}, under {options.min_side} pixels on a side"))
    # A JPEG at least twice the target on both sides decodes at 1/2, 1/4 or 1/8 scale, still covering it.
    # (Smaller ones cannot be reduced; draft() itself costs about a twentieth of a small JPEG's time.)
    if img.format == "JPEG" and min(width, height) >= 2 * options.size:
        img.draft("L" if options.mode == "grey" else None, (options.size, options.size))
    img.load()  # decoding happens here: truncated or corrupt data raises now
    orientation = img.getexif().get(_EXIF_ORIENTATION)
    if orientation in range(2, 9):
        img = ImageOps.exif_transpose(img)
    grey = img.mode in _GREY_MODES
    img = _to_8bit(img, grey)
    img = _fit(img, options.size)
    mode = "L" if options.mode == "grey" or (grey and options.mode == "auto") else "RGB"
    # A colour file may hold a grey picture: see fold_grey. No convert() when the mode is already right
    # (it would copy every image once more).
    return np.asarray(img if img.mode == mode else img.convert(mode))


def fold_grey(outcomes: list[Outcome], options: DecodeOptions) -> list[Outcome]:
    """In "auto" mode, colour images whose channels agree within GREY_TOLERANCE everywhere (a grey picture in
    a colour file) become grey, with PIL's own RGB -> L weights (ITU-R 601-2, same rounding).

    Checked for a whole chunk in a few vectorised operations: a per-image reduction over 3 channels costs
    about as much as decoding a small JPEG.
    """
    colour = [(i, o) for i, o in enumerate(outcomes) if isinstance(o, Decoded) and o.pixels.ndim == 3]
    if options.mode != "auto" or not colour:
        return outcomes
    stack = np.stack([o.pixels for _, o in colour])  # uint8 (n, S, S, 3)
    r, g, b = stack[..., 0], stack[..., 1], stack[..., 2]
    spread = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)  # uint8, never negative
    grey = spread.reshape(len(colour), -1).max(axis=1) <= GREY_TOLERANCE
    if not grey.any():
        return outcomes
    out = list(outcomes)
    for k in np.flatnonzero(grey):
        i, decoded = colour[k]
        r, g, b = stack[k].astype(np.int32).transpose(2, 0, 1)  # PIL's weights need the wider type
        luma = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)
        out[i] = Decoded(luma, decoded.digest)
    return out


def _to_8bit(img: Image.Image, grey: bool) -> Image.Image:
    """An 8-bit "L" or "RGB" image: 16-bit scaled (not clipped), transparency flattened onto white."""
    if img.mode.startswith("I"):  # 16-bit (or 32-bit integer) grey: keep the top 8 of 16 bits
        values = np.asarray(img).astype(np.int64)
        return Image.fromarray((np.clip(values, 0, 65535) >> 8).astype(np.uint8))
    if img.mode in ("RGBA", "LA", "La", "PA", "RGBa") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, _WHITE)
        flat.alpha_composite(rgba)
        return flat.convert("L" if grey else "RGB")
    if img.mode in ("L", "RGB"):
        return img
    return img.convert("L" if grey else "RGB")  # 1, P, CMYK (Adobe inversion handled by PIL), YCbCr, LAB, HSV


def _fit(img: Image.Image, size: int) -> Image.Image:
    """Shorter side resized to ``size``, then the centre ``size`` x ``size`` cropped, in one resampling."""
    width, height = img.size
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return img.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side),
                      reducing_gap=3.0)


# ---------------------------------------------------------------------------------------------- reading files

# One open handle per archive and process. Keyed by pid too: a forked worker must never share its parent's
# open file (and so its file offset) with the parent or its siblings.
_open_zips: dict[tuple[int, str], zipfile.ZipFile] = {}


def close_archives() -> None:
    """Close this process's open archives (after an import: the next one may reuse the path)."""
    for key in [k for k in _open_zips if k[0] == os.getpid()]:
        _open_zips.pop(key).close()


def read_bytes(locator: Locator, max_bytes: int) -> bytes | Skipped:
    """The file's bytes (at most ``max_bytes``), or a Skipped if it is bigger or cannot be read.

    Zip members are read through an inflating stream and cut at the cap, so a member whose header lies
    about its size (a zip bomb) cannot use more than ``max_bytes`` of memory.
    """
    try:
        if locator[0] == "zip":
            key = (os.getpid(), locator[1])
            archive = _open_zips.get(key)
            if archive is None:
                archive = _open_zips[key] = zipfile.ZipFile(locator[1])
            info = archive.getinfo(locator[2])
            with archive.open(info) as member:
                data = read_capped(member, info.file_size, max_bytes)
        else:
            with open(locator[1], "rb") as f:
                data = read_capped(f, os.fstat(f.fileno()).st_size, max_bytes)
    except (OSError, zipfile.BadZipFile, EOFError, ValueError, RuntimeError) as e:
        return Skipped(CORRUPT, f"could not be read ({' '.join(str(e).split())[:120]})")
    if len(data) > max_bytes:
        return Skipped(TOO_LARGE, f"over {max_bytes / 2**20:.1f} MiB (the cap on one file)")
    return data


def read_capped(stream: Any, expected: int, max_bytes: int) -> bytes:
    """Up to ``max_bytes + 1`` bytes of ``stream`` (one more than the cap tells a file over it).

    ``expected`` is the size the file system or the zip header gives: reading that much first avoids
    ``read(max_bytes + 1)``, which allocates the whole cap (64 MiB) for every small file, a sixth of the
    per-file time for a small JPEG. The size is only a hint (a zip header can lie, a file can grow), so
    whatever follows it is read too, up to the cap.
    """
    data = stream.read(min(max(expected, 0), max_bytes) + 1)
    if len(data) > expected and len(data) <= max_bytes:
        data += stream.read(max_bytes + 1 - len(data))
    return data


@dataclass(frozen=True)
class DecodedChunk:
    """A chunk's outcomes packed for the trip between processes: one array per kind of image rather than one
    per image (pickling 128 small arrays, and putting them in place one by one, cost the importing process
    about a tenth of a core, which the decoding processes then lacked).

    grey: uint8 (g, S, S), the grey images, for the candidates ``grey_at`` (g,); colour: uint8 (c, S, S, 3)
    for ``colour_at`` (c,); digests: (candidate index, sha256 of the file) of every decoded file;
    skipped: (candidate index, why) of the others.
    """

    grey_at: list[int]
    grey: np.ndarray
    colour_at: list[int]
    colour: np.ndarray
    digests: list[tuple[int, str]]
    skipped: list[tuple[int, Skipped]]

    @property
    def count(self) -> int:
        """Files in the chunk."""
        return len(self.digests) + len(self.skipped)


def decode_chunk(jobs: list[tuple[int, Locator]], options: DecodeOptions) -> DecodedChunk:
    """Read and decode each (index, locator); the pool's unit of work (about a hundred files)."""
    outcomes: list[Outcome] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        for _, locator in jobs:
            data = read_bytes(locator, options.max_file_bytes)
            outcomes.append(data if isinstance(data, Skipped) else _decode_one(data, options))
    return _pack([index for index, _ in jobs], fold_grey(outcomes, options), options.size)


def _pack(indices: list[int], outcomes: list[Outcome], size: int) -> DecodedChunk:
    """The outcomes of the candidates ``indices`` (in file order) as one :class:`DecodedChunk` of side ``size``."""
    grey: list[tuple[int, np.ndarray]] = []
    colour: list[tuple[int, np.ndarray]] = []
    digests: list[tuple[int, str]] = []
    skipped: list[tuple[int, Skipped]] = []
    for i, o in zip(indices, outcomes, strict=True):
        if isinstance(o, Skipped):
            skipped.append((i, o))
            continue
        (grey if o.grey else colour).append((i, o.pixels))
        digests.append((i, o.digest))
    return DecodedChunk(
        grey_at=[i for i, _ in grey],
        grey=np.stack([p for _, p in grey]) if grey else np.empty((0, size, size), np.uint8),
        colour_at=[i for i, _ in colour],
        colour=np.stack([p for _, p in colour]) if colour else np.empty((0, size, size, 3), np.uint8),
        digests=digests, skipped=skipped)
