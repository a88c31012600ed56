"""Big tensors reach child processes through shared memory, identical, with nothing left open here; small ones,
and dtypes numpy lacks, travel in the pickle."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sslcore.evaluation import shared_tensors
from sslcore.evaluation.shared_tensors import close_all, dumps_sharing, loads_sharing

ROOT = Path(__file__).resolve().parents[2]
needs_memfd = pytest.mark.skipif(not shared_tensors.sharing_available(), reason="no memfd_create on this platform")

CHILD = """
import sys, torch
from sslcore.evaluation.shared_tensors import loads_sharing
obj = loads_sharing(sys.stdin.buffer.read())
big = obj["big"]
big[0, 0] += 1  # copy-on-write: the child's change stays the child's
print(int(obj["big"].sum()), int(obj["small"].sum()), obj["name"], big.is_contiguous(), "x".join(map(str, big.shape)))
"""


def payload() -> dict:
    g = torch.Generator().manual_seed(0)
    return {"big": torch.randint(0, 256, (2048, 1024), dtype=torch.uint8, generator=g),  # 2 MiB: shared
            "small": torch.arange(10), "name": "split"}


@needs_memfd
def test_a_child_process_reads_the_big_tensor_from_shared_memory_unchanged() -> None:
    obj = payload()
    data, fds = dumps_sharing(obj)
    assert len(fds) == 1 and len(data) < 10_000, "the big tensor is not in the pickle, only a reference to it"
    try:
        child = subprocess.run([sys.executable, "-c", CHILD], input=data, capture_output=True, pass_fds=fds,
                               env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    finally:
        close_all(fds)
    assert child.returncode == 0, child.stderr.decode()[-2000:]
    big_sum, small_sum, name, contiguous, shape = child.stdout.decode().split()
    assert int(big_sum) == int(obj["big"].sum()) + 1 and int(small_sum) == 45 and name == "split"
    assert contiguous == "True" and shape == "2048x1024"
    with pytest.raises(OSError):
        os.fstat(fds[0])  # closed here: the memory goes when the last process holding it has ended


@needs_memfd
def test_in_one_process_a_shared_tensor_loads_equal_and_writable() -> None:
    obj = payload()
    data, fds = dumps_sharing(obj)
    loaded = loads_sharing(data)  # the descriptors are this process's own: loading closes them
    assert torch.equal(loaded["big"], obj["big"]) and loaded["big"].dtype == torch.uint8
    loaded["big"][0, 0] = 7  # private copy-on-write pages: writable, as a tensor from a pickle would be
    assert int(loaded["big"][0, 0]) == 7


def test_small_tensors_and_dtypes_numpy_lacks_travel_by_value() -> None:
    obj = {"small": torch.ones(100), "bf16": torch.ones(1024, 1024, dtype=torch.bfloat16)}
    data, fds = dumps_sharing(obj)
    assert fds == []
    loaded = loads_sharing(data)
    assert torch.equal(loaded["bf16"], obj["bf16"]) and torch.equal(loaded["small"], obj["small"])


def test_without_memory_files_everything_is_pickled_by_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shared_tensors, "sharing_available", lambda: False)  # as on macOS or Windows
    obj = payload()
    data, fds = dumps_sharing(obj)
    assert fds == [] and len(data) > obj["big"].numel()
    assert torch.equal(loads_sharing(data)["big"], obj["big"])


def test_when_a_memory_file_cannot_be_made_the_tensor_travels_by_value(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(name: str, flags: int = 0) -> int:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(os, "memfd_create", refused, raising=False)
    monkeypatch.setattr(shared_tensors, "sharing_available", lambda: True)
    obj = payload()
    data, fds = dumps_sharing(obj)
    assert fds == [] and torch.equal(loads_sharing(data)["big"], obj["big"])


@needs_memfd
def test_a_tensor_met_twice_is_shared_once_and_loads_as_one_tensor() -> None:
    big = payload()["big"]
    data, fds = dumps_sharing({"a": big, "b": big, "view": [big]})
    assert len(fds) == 1
    loaded = loads_sharing(data)
    assert loaded["a"] is loaded["b"] is loaded["view"][0] and torch.equal(loaded["a"], big)
