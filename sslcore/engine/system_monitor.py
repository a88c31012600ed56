"""What a training process costs the machine, per epoch: its CPU use and its memory (the system panel of W&B).

Written into each epoch's record (epochs 1 and on), so a run's resource use is charted next to its curves and
kept with it: a memory figure that grows epoch after epoch is a leak to look at; a CPU figure well under the
threads the run was given says the steps wait on something other than arithmetic.

- ``sys_cpu_percent``: the process's CPU time over the epoch's wall time, as ``top`` counts it (100 = one core
  busy; 200 = two). Every thread of the process counts: the steps' and the background checkpoint writer's.
- ``sys_threads``: the intra-op threads the run computes with (its CPU figure's ceiling is about 100 x that).
- ``sys_rss_mib``: the resident memory at the epoch's end, where the OS tells it (Linux: /proc/self/statm);
  ``sys_peak_rss_mib``: the most it has been resident since the process started (Linux, macOS).
- ``sys_gpu_peak_mib``: on a CUDA device, the most memory tensors took on it during the epoch.

Every key starts with ``sys_`` (the terminal's epoch line leaves them out). With several processes, rank 0's
own figures (the other ranks' are alike: each trains its share of the batch).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from sslcore.engine.callbacks import Callback
from sslcore.engine.state import TrainState

if TYPE_CHECKING:
    from sslcore.engine.trainer import Trainer

MIB = 2**20


def cpu_percent(cpu_seconds: float, wall_seconds: float) -> float | None:
    """CPU time over wall time, in percent of one core; None for an interval too short to tell."""
    if wall_seconds <= 1e-3:
        return None
    return 100.0 * cpu_seconds / wall_seconds


def resident_mib(statm: Path = Path("/proc/self/statm")) -> float | None:
    """The process's resident memory now, in MiB (Linux's statm: its second field, in pages); None elsewhere."""
    try:
        resident_pages = int(statm.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / MIB


def peak_resident_mib() -> float | None:
    """The most the process has been resident since it started, in MiB (ru_maxrss: KiB on Linux, bytes on macOS);
    None where there is no ``resource`` module (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024


class SystemMonitor(Callback):
    """Adds the process's CPU and memory figures (see the module) to each epoch's ``state.epoch_metrics``."""

    def on_fit_start(self, state: TrainState, trainer: Trainer) -> None:
        self.device = trainer.device
        self._mark()

    def _mark(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def on_epoch_end(self, state: TrainState) -> None:
        if state.epoch == 0:  # the untrained baseline: no epoch of training to measure
            return
        figures = {"sys_cpu_percent": cpu_percent(time.process_time() - self._cpu, time.perf_counter() - self._wall),
                   "sys_threads": float(torch.get_num_threads()), "sys_rss_mib": resident_mib(),
                   "sys_peak_rss_mib": peak_resident_mib()}
        if self.device.type == "cuda":
            figures["sys_gpu_peak_mib"] = torch.cuda.max_memory_allocated(self.device) / MIB
        state.epoch_metrics.update({key: round(value, 1) for key, value in figures.items() if value is not None})
        self._mark()
