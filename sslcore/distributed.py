"""Several processes training one run, on PyTorch's own engine: torchrun + a process group.

``torchrun --nproc-per-node N -m sslcore train ...`` starts N copies of the command with RANK, WORLD_SIZE,
LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT in their environment. :func:`join` turns them
into a process group (NCCL for CUDA tensors, gloo otherwise) plus a small gloo "control" group on the CPU
for the run's bookkeeping: stop flags, barriers and failure reports, which never wait on the GPU.

In a single process every helper here is the identity or a no-op, so the engine never has to ask.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, cast

import torch
import torch.distributed as dist

from sslcore.engine.device import pick_device

T = TypeVar("T")

#: How long a rank waits for the others at a barrier or a control collective. Rank 0 alone computes the
#: online k-NN, snapshots and checkpoints while the others wait, which takes seconds; gloo's default (30 min)
#: would be enough too, but a slow shared disk must never turn a long checkpoint into a failed run.
CONTROL_TIMEOUT = timedelta(hours=2)
#: Collectives of the training step itself (gradients, gathered embeddings): every rank takes part at once.
STEP_TIMEOUT = timedelta(minutes=30)

_control: dist.ProcessGroup | None = None  # the CPU (gloo) group for flags, barriers and object exchange
_store: dist.Store | None = None           # torchrun's key-value store: pids and failure reports
_device: torch.device | None = None
_in_step = False  # inside a training step that every rank takes together (see spanning_ranks)


@dataclass(frozen=True)
class World:
    """Where this process stands among the processes of a run, as torchrun's environment says."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world() -> World:
    """This process's place, from torchrun's environment variables (a single process without them)."""
    def get(name: str, default: int) -> int:
        return int(os.environ.get(name, default))

    return World(get("RANK", 0), get("WORLD_SIZE", 1), get("LOCAL_RANK", 0), get("LOCAL_WORLD_SIZE", 1))


def join(device_preference: str) -> torch.device:
    """The training device of this process, joining torchrun's process group first if there are several.

    Idempotent: the CLI joins early (to agree on one run folder), training joins again and gets the same device.
    CUDA: one GPU per local rank, NCCL. CPU: gloo. Apple's MPS has no collective backend, so it is refused.
    """
    global _control, _store, _device
    world = env_world()
    if active() and _device is not None:
        return _device
    device = pick_device(device_preference, index=world.local_rank if world.world_size > 1 else None)
    if world.world_size > 1:
        if device.type not in ("cpu", "cuda"):
            raise RuntimeError(f"train.device = {device.type!r} cannot train with several processes; use cuda or cpu")
        if device.type == "cuda":
            torch.cuda.set_device(device)
        store, rank, size = next(dist.rendezvous("env://", timeout=STEP_TIMEOUT))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", store=dist.PrefixStore("pg", store),
                                rank=rank, world_size=size, timeout=STEP_TIMEOUT)
        control = dist.new_group(backend="gloo", timeout=CONTROL_TIMEOUT)
        assert isinstance(control, dist.ProcessGroup)  # not -100: that is only for ranks outside the group
        _control = control
        _store = dist.PrefixStore("sslcore", store)
        _store.set(f"pid/{rank}", json.dumps([socket.gethostname(), os.getpid()]))
        _device = device
    return device


def active() -> bool:
    """Whether this process trains together with others."""
    return _control is not None


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Whether this process is rank 0, the only one that writes the run folder."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (on the CPU group, with :data:`CONTROL_TIMEOUT`); a rank that never comes is named."""
    if active():
        dist.monitored_barrier(group=_control, timeout=CONTROL_TIMEOUT, wait_all_ranks=True)


def any_rank(flag: bool) -> bool:
    """True on every rank if ``flag`` is true on any: how a stop request on one rank reaches all of them."""
    if not active():
        return flag
    value = torch.tensor([int(flag)])
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=_control)
    return bool(value.item())


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """The element-wise mean of ``values`` (any shape, on the training device) over all ranks; no gradient."""
    if not active():
        return values
    values = values.detach().clone()
    dist.all_reduce(values)  # gloo has no AVG reduction: sum, then divide
    return values / world_size()


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (anything picklable), in rank order, on every rank."""
    if not active():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj, group=_control)
    return out


def from_main(make: Callable[[], T]) -> T:
    """``make()`` called on rank 0 only; every rank gets its (picklable) result. E.g. the run folder it created."""
    if not active():
        return make()
    box = [make() if is_main() else None]
    dist.broadcast_object_list(box, src=0, group=_control)
    return cast(T, box[0])  # rank 0's result, on every rank


def main_first(make: Callable[[], T]) -> T:
    """``make()`` on rank 0, then on the others: a download or a cache is written once, by rank 0."""
    if is_main():
        result = make()
        barrier()
        return result
    barrier()
    return make()


def local_share(index: torch.Tensor) -> torch.Tensor:
    """This rank's contiguous slice of a global batch's sample indices (B,) -> (B / world size,)."""
    return index.view(world_size(), -1)[rank()] if active() else index


def check_global_batch(batch_size: int) -> None:
    """The global batch must split evenly, so every rank's slice (and every gathered tensor) has one size."""
    if batch_size % world_size():
        raise ValueError(f"train.batch_size = {batch_size} is not allowed with {world_size()} processes: "
                         f"the global batch must be a multiple of the number of processes")


class _Gather(torch.autograd.Function):
    """All-gather along dim 0 whose backward hands each rank the gradient of its own rows.

    Every rank's loss used every rank's rows, so a row's gradient is the sum over ranks of the gradients
    flowing into it (an all-reduce, then this rank's slice). DistributedDataParallel then averages the
    parameter gradients over ranks, which turns that sum of per-rank losses back into their mean: the
    gradient a single process would get from the whole batch (solo-learn's and lightly's GatherLayer).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        parts = [torch.empty_like(x) for _ in range(world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad.chunk(world_size())[rank()]


@contextlib.contextmanager
def spanning_ranks() -> Iterator[None]:
    """Marks a training step, which every rank runs at once: only inside it does :func:`gather` gather.

    Outside (rank 0 alone scoring held-out images for the monitor or a snapshot) a loss sees its own batch,
    and a collective that the other ranks never join cannot hang the run.
    """
    global _in_step
    previous, _in_step = _in_step, True
    try:
        yield
    finally:
        _in_step = previous


def gather(x: torch.Tensor) -> torch.Tensor:
    """(B, ...) on each rank -> (world size * B, ...) in rank order, differentiable, inside a training step
    of several processes (:func:`spanning_ranks`); otherwise ``x`` itself."""
    return _Gather.apply(x) if active() and _in_step else x


def local_rows(count: int, device: torch.device) -> torch.Tensor:
    """Where this rank's ``count`` rows sit in what :func:`gather` returns: int64 (count,)."""
    start = rank() * count if active() and _in_step else 0
    return torch.arange(start, start + count, device=device)


def report_failure(reason: str, trace: str | None) -> None:
    """Leave this rank's failure where rank 0 will find it (rank 0 alone writes the run's status)."""
    if _store is not None:
        try:
            _store.set(f"failed/{rank()}", json.dumps({"reason": reason, "traceback": trace}))
        except Exception:  # noqa: BLE001 - torchrun may be tearing the store down; the exit code still tells
            pass


def peer_failure(wait_seconds: float = 3.0) -> tuple[str, str | None] | None:
    """(reason, traceback) of another rank that failed, or None if none did within ``wait_seconds``.

    A rank that raised left a report (:func:`report_failure`); one that was killed left none, but if it ran on
    this machine its pid is gone. Waiting a moment covers a collective that failed before the report arrived.
    """
    from sslcore.runs.store import pid_alive

    if _store is None:
        return None
    deadline = time.monotonic() + wait_seconds
    others = [r for r in range(world_size()) if r != rank()]
    while True:
        try:
            for r in others:
                if _store.check([f"failed/{r}"]):
                    report = json.loads(_store.get(f"failed/{r}"))
                    return f"rank {r} of {world_size()} failed: {report['reason']}", report["traceback"]
            for r in others:
                host, pid = json.loads(_store.get(f"pid/{r}"))
                if host == socket.gethostname() and not pid_alive(pid) and not _store.check([f"failed/{r}"]):
                    return (f"rank {r} of {world_size()} (pid {pid}) ended without reporting an error: it was killed "
                            "(for example by the out-of-memory killer) or crashed; see the job log", None)
        except Exception:  # noqa: BLE001 - the store went away with torchrun's agent: nothing more to learn
            return None
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def finish() -> None:
    """Leave the process group once every rank got here, so no rank exits (which torchrun would take for a
    failure of the whole run) while rank 0 is still writing the run's final status."""
    global _control, _store, _device
    if active():
        barrier()
        dist.destroy_process_group()
    _control, _store, _device = None, None, None
