"""A run on several processes of this machine, started by PyTorch's own launcher (``torch.distributed.run``,
the module behind ``torchrun``), from a job-manager worker that already holds one slot per process.

torchrun starts ``python -m sslcore rank RUN`` once per process; they train the run together and rank 0
writes it. If one process dies, torchrun stops the others; if a run then still looks active (rank 0 itself
was killed before it could write), the launcher records the failure torchrun observed first.
"""
from __future__ import annotations

import os
import time

import torch

from sslcore.runs.store import ACTIVE_STATES, Run


def process_limit(slots: int, cores: int) -> int:
    """The most processes one run may use: this machine's GPUs (or its cores), at most the job ``slots``."""
    devices = torch.cuda.device_count() if torch.cuda.is_available() else cores
    return max(1, min(devices, slots))


def processes_problem(processes: int, batch_size: int, limit: int, slots: int) -> str | None:
    """Why ``processes`` cannot train a run of global batch ``batch_size``, naming the limit; None if they can."""
    if not 1 <= processes <= limit:
        unit = "GPUs" if torch.cuda.is_available() else "cores"
        return (f"processes = {processes} is not allowed: expected 1 to {limit} (this machine's {unit}, at most the "
                f"{slots} job slots)")
    if batch_size % processes:
        return (f"train.batch_size = {batch_size} is not allowed with {processes} processes: the global batch must "
                "be a multiple of the number of processes")
    return None


def torchrun_argv(run: Run, processes: int, *, threads: int, resume: bool) -> list[str]:
    """torchrun's command line for ``processes`` ranks of ``run`` on this machine (a free port of its own)."""
    return (["--standalone", "--nproc-per-node", str(processes), "-m", "sslcore", "rank", str(run.path),
             "--threads", str(threads)] + (["--resume"] if resume else []))


def launch_ranks(run: Run, processes: int, *, threads: int, resume: bool) -> int:
    """Train ``run`` on ``processes`` ranks with torchrun; 0 if it completed, 1 otherwise (status tells why)."""
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    from sslcore.runs.process_manager import exit_reason

    os.environ["OMP_NUM_THREADS"] = str(threads)  # torchrun's default: 1, with a warning; a rank has a slot's share
    try:
        torchrun.run(torchrun.parse_args(torchrun_argv(run, processes, threads=threads, resume=resume)))
    except ChildFailedError as e:
        rank, failure = e.get_first_failure()
        _settle(run, "failed", f"rank {rank} of {processes}: {exit_reason(failure.exitcode)}")
    except SignalException:  # stopped while its processes were starting: they were told to stop too
        _settle(run, "cancelled", None)
    return 0 if run.state == "completed" else 1


def _settle(run: Run, state: str, error: str | None) -> None:
    """Give a run its final state if none of its processes could."""
    if run.state in ACTIVE_STATES:
        run.update_status(state=state, error=error, ended=time.time())
