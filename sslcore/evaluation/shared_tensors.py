"""Big tensors handed to child processes as shared memory, not copies: pickling with anonymous memory files.

The evaluation's fit processes (:mod:`sslcore.evaluation.parallel_fits`) each need the labelled split: 150 MB for
CIFAR-10, so eight workers would hold 1.2 GB of copies, and the pickled split had to be written down every
worker's pipe. Here each big CPU tensor is written once into an anonymous memory file (Linux ``memfd_create``)
whose descriptor the workers inherit (``subprocess.Popen(pass_fds=...)``); the pickle carries only a reference
(descriptor, dtype, shape), and each worker maps the file copy-on-write, so every worker reads the same pages.
Nothing is left behind whatever dies: the memory is freed when the last process holding the file has closed it
or exited. Where there is no ``memfd_create`` (macOS, Windows) tensors are pickled by value, as before.
"""
from __future__ import annotations

import io
import mmap
import os
import pickle
from typing import Any

import numpy as np
import torch

#: Tensors at least this big (bytes) are shared; smaller ones travel in the pickle (a file per tensor costs more).
SHARE_BYTES = 1 << 20
_TAG = "sslcore-shared-tensor"


def sharing_available() -> bool:
    """Whether this platform has anonymous memory files (Linux): else everything is pickled by value."""
    return hasattr(os, "memfd_create")


class _SharingPickler(pickle.Pickler):
    """Pickles CPU tensors of at least :data:`SHARE_BYTES` as references to memory files it creates (``fds``)."""

    def __init__(self, file: io.BytesIO, share: bool) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.share = share
        self.fds: list[int] = []
        self._shared: dict[int, tuple[torch.Tensor, tuple[Any, ...]]] = {}  # id -> (the tensor, its reference)

    def persistent_id(self, obj: Any) -> tuple[Any, ...] | None:
        # Called before pickle's own memo: a tensor met twice is written once (and loaded once, below).
        if id(obj) in self._shared:
            return self._shared[id(obj)][1]
        if not (self.share and isinstance(obj, torch.Tensor) and obj.device.type == "cpu" and not obj.requires_grad
                and obj.numel() * obj.element_size() >= SHARE_BYTES):
            return None
        try:
            array = obj.detach().contiguous().numpy()
        except TypeError:  # a dtype numpy lacks (bf16): by value
            return None
        try:
            fd = os.memfd_create(_TAG)
        except OSError:  # out of descriptors, or a sandbox that forbids it: this one travels by value
            return None
        self.fds.append(fd)
        try:
            os.ftruncate(fd, array.nbytes)
            with mmap.mmap(fd, array.nbytes) as view:
                target = np.frombuffer(view, dtype=np.uint8)
                target[:] = array.reshape(-1).view(np.uint8)
                del target  # the mapping closes only once nothing points into it
        except OSError:  # no memory for it (a limit on shared memory): by value, as without memory files
            os.close(self.fds.pop())
            return None
        reference = (_TAG, fd, array.dtype.str, array.shape)
        self._shared[id(obj)] = (obj, reference)  # the tensor is kept, so its id is not reused meanwhile
        return reference


def dumps_sharing(obj: Any) -> tuple[bytes, list[int]]:
    """``obj`` pickled with its big CPU tensors in memory files: (the pickle, the files' descriptors).

    Start the processes that will load it with ``pass_fds`` = the descriptors, then :func:`close_all` them here.
    """
    buffer = io.BytesIO()
    pickler = _SharingPickler(buffer, share=sharing_available())
    try:
        pickler.dump(obj)
    except BaseException:
        close_all(pickler.fds)
        raise
    return buffer.getvalue(), pickler.fds


def close_all(fds: list[int]) -> None:
    """Close this process's descriptors of the memory files (children that inherited them keep theirs)."""
    for fd in fds:
        os.close(fd)


class _SharingUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file)
        self._loaded: dict[int, torch.Tensor] = {}  # descriptor -> its tensor (one tensor met twice is one tensor)

    def persistent_load(self, pid: Any) -> torch.Tensor:
        tag, fd, dtype, shape = pid
        if tag == _TAG and fd in self._loaded:
            return self._loaded[fd]
        if tag != _TAG:
            raise pickle.UnpicklingError(f"unknown persistent reference {tag!r}")
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        # Private and writable: pages are read from the shared file until written to (nothing here writes them).
        view = mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        os.close(fd)  # the mapping stays valid
        tensor = self._loaded[fd] = torch.from_numpy(np.frombuffer(view, dtype=np.dtype(dtype)).reshape(shape))
        return tensor


def loads_sharing(data: bytes) -> Any:
    """The object :func:`dumps_sharing` pickled, in a process that inherited its descriptors (the tensors map
    the shared memory). Only for pickles from our own parent process: unpickling runs code."""
    return _SharingUnpickler(io.BytesIO(data)).load()  # noqa: S301 - our own parent's pickle over a private pipe
