"""Readers for the official files of MNIST-format datasets (IDX) and CIFAR-10 (pickled python batches).

Why not torchvision's dataset classes, which the download still goes through: they hold about twice the data
while loading (MNIST's bytes are copied into a bytearray; CIFAR-10's batches are stacked, then made
channel-first in a third copy), check CIFAR-10's md5 sums for every split they open (both splits read every
file), and unpickle whatever a ``.pkl`` file asks for. These read straight into the final uint8 arrays, so
the peak is the data plus one file (CIFAR-10) or the data alone (IDX, one read), check the structure
instead of the md5 (a wrong size or header is reported with the file's name), and let a CIFAR-10 batch
build nothing but numpy arrays, lists, numbers and strings.

Errors are :class:`DamagedFileError` (a ValueError) naming the file and what is wrong with it. The writers
(:func:`write_idx`, :func:`write_cifar_batch`, :func:`write_cifar_meta`) make files in the same formats, for the
tests and the big-dataset benchmark, which cannot download the real ones.
"""
from __future__ import annotations

import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np

#: IDX type code of unsigned bytes, the only one MNIST-format images and labels use.
IDX_UBYTE = 0x08
#: A CIFAR-10 row: 3 colour planes (R, G, B) of 32x32, row-major: already channel-first.
CIFAR_SHAPE = (3, 32, 32)
CIFAR_ROW = 3 * 32 * 32


class DamagedFileError(ValueError):
    """A dataset file exists but is not in the expected format (truncated, another file, a wrong header)."""


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes with ``ndim`` dimensions (3 for images (N, H, W), 1 for labels (N,)).

    Header: two zero bytes, the type code 0x08, the number of dimensions, then each dimension as a big-endian
    int32; the data follows. The file's size must be exactly header + data (a truncated download is caught).
    """
    header_size = 4 + 4 * ndim
    with path.open("rb") as f:
        header = f.read(header_size)
        if len(header) < header_size or header[:2] != b"\0\0" or header[2] != IDX_UBYTE or header[3] != ndim:
            raise DamagedFileError(f"{path} is not an IDX file of {ndim}-dimensional unsigned bytes "
                                   f"(its header is {header[:4].hex() or 'empty'}; expected 0000080{ndim})")
        shape = tuple(int(d) for d in np.frombuffer(header, dtype=">i4", offset=4))
        expected = int(np.prod(shape, dtype=np.int64))
        data = np.fromfile(f, dtype=np.uint8, count=expected)
        trailing = f.read(1)
    if data.size != expected or trailing:
        found = "more" if trailing else f"{data.size:,}"
        raise DamagedFileError(f"{path} holds {found} bytes of data where its header {shape} says {expected:,}: "
                               "it is truncated or damaged")
    return data.reshape(shape)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Builds numpy arrays and plain Python values; refuses every other class a pickle names (a CIFAR batch
    needs nothing else, and unpickling an arbitrary class can run code)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not something a CIFAR-10 batch holds")


def read_pickle(path: Path) -> dict[str, Any]:
    """A CIFAR-10 file's dict (Python 2 pickles: byte strings read as latin-1, as torchvision does)."""
    try:
        with path.open("rb") as f:
            entry = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as error:
        raise DamagedFileError(f"{path} is not a CIFAR-10 python batch: {error}") from None
    if not isinstance(entry, dict):
        raise DamagedFileError(f"{path} is not a CIFAR-10 python batch: it holds a {type(entry).__name__}, not a dict")
    return entry


def _batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file: rows (n, 3072) uint8 and labels (n,) int64, checked."""
    entry = read_pickle(path)
    data, labels = entry.get("data"), entry.get("labels")
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == CIFAR_ROW):
        found = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DamagedFileError(f"{path}: 'data' must be uint8 rows of {CIFAR_ROW} values (3x32x32), found {found}")
    try:
        label_array = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        label_array = np.empty(0, dtype=np.int64)
    if label_array.shape != (len(data),):
        raise DamagedFileError(f"{path}: 'labels' must be {len(data)} integers, one per row of 'data'")
    return data, label_array


def read_cifar_batches(paths: list[Path], num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of the batch files ``paths``, in order.

    The array for all of them is made after the first file, sized as if every file held as many rows as it
    (the official batches do: 10,000 each), and filled one file at a time; a file of another size is
    still read right (the array is then concatenated once).
    """
    data, batch_labels = _batch(paths[0])
    rows = len(data)
    images = np.empty((rows * len(paths), CIFAR_ROW), dtype=np.uint8)
    labels = np.empty(rows * len(paths), dtype=np.int64)
    filled = 0
    extra: list[tuple[np.ndarray, np.ndarray]] = []
    for i, path in enumerate(paths):
        if i:
            data, batch_labels = _batch(path)
        if len(data) == rows and not extra:
            images[filled:filled + rows], labels[filled:filled + rows] = data, batch_labels
            filled += rows
        else:  # uneven batches: keep the rest aside, join once at the end
            extra.append((data, batch_labels))
        del data, batch_labels  # freed before the next file is unpickled: one batch held at a time
    if extra:
        images = np.concatenate([images[:filled], *(d for d, _ in extra)])
        labels = np.concatenate([labels[:filled], *(y for _, y in extra)])
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DamagedFileError(f"{paths[0].parent}: labels must lie in 0..{num_classes - 1}, "
                               f"found {int(labels.min())}..{int(labels.max())}")
    return images.reshape(-1, *CIFAR_SHAPE), labels


def read_cifar_class_names(path: Path) -> tuple[str, ...]:
    """The class names in CIFAR-10's ``batches.meta`` (its 'label_names')."""
    names = read_pickle(path).get("label_names")
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise DamagedFileError(f"{path}: 'label_names' must be a list of class names")
    return tuple(names)


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed IDX file of uint8 ``array`` (any number of dimensions), as :func:`read_idx` reads it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, IDX_UBYTE, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    with path.open("wb") as f:
        f.write(header)
        f.write(np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_cifar_batch(path: Path, rows: np.ndarray, labels: list[int]) -> None:
    """A CIFAR-10 batch file: uint8 ``rows`` (n, 3072) (R, G, B planes of 32x32) and their ``labels``, pickled with
    protocol 2 like the official files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"batch_label": path.name, "labels": [int(v) for v in labels], "data": rows,
             "filenames": [f"{i}.png" for i in range(len(rows))]}
    path.write_bytes(pickle.dumps(entry, protocol=2))


def write_cifar_meta(path: Path, names: list[str], per_batch: int) -> None:
    """CIFAR-10's ``batches.meta``: the class names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"label_names": names, "num_cases_per_batch": per_batch, "num_vis": CIFAR_ROW},
                                  protocol=2))
