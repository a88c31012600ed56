"""Run a function in N fresh processes joined into one gloo group by ``sslcore.distributed.join`` (as torchrun
would: RANK, WORLD_SIZE, MASTER_ADDR, ... in the environment), and collect what each rank returns."""
from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank: int, fn: Callable[[], Any], world_size: int, port: int, out: str) -> None:
    from sslcore import distributed

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world_size), LOCAL_WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    distributed.join("cpu")
    result = fn()
    torch.save(result, Path(out) / f"rank{rank}.pt")
    distributed.finish()


def run_ranks(fn: Callable[[], Any], out_dir: Path, world_size: int = 2) -> list[Any]:
    """``fn()`` (a module-level function, picklable) on ``world_size`` ranks; each rank's result, in rank order."""
    mp.spawn(_entry, args=(fn, world_size, free_port(), str(out_dir)), nprocs=world_size, join=True)
    return [torch.load(out_dir / f"rank{r}.pt", weights_only=True) for r in range(world_size)]
