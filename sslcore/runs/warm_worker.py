"""A warm spare worker: a process that has already imported torch and the trainer, waiting for the next run.

Importing torch and the engine takes a worker seconds on a small machine (more under load), before it can train
its first step; a spare pays that before the user clicks Train. The job manager keeps at most one spare
(:class:`WarmSpare`); a new single-process run is handed to it as one line on its stdin, and from then on it is
that run's worker exactly as a freshly started one would be (``python -m sslcore worker``: same queueing, same
log, same status). A new spare is started a little later, so its imports do not compete with the run's first
steps. A spare is used once.

A spare never outlives its manager: it waits on a pipe whose only writer is the manager's process, so when that
process ends, however it ends, the spare reads end-of-file and exits.

    python -m sslcore.runs.warm_worker     # what WarmSpare starts; reads one JSON line, then is a worker
"""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from sslcore.process_exit import exit_without_teardown

#: Seconds between handing a spare a run and starting the next spare (its imports would slow that run's start).
REFILL_DELAY_SECONDS = 10.0
READY = "ready"


class WarmSpare:
    """The job manager's one spare worker process (started, handed a run, replaced, closed)."""

    def __init__(self, refill_delay: float = REFILL_DELAY_SECONDS) -> None:
        self.refill_delay = refill_delay
        self._process: subprocess.Popen | None = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        """Start a spare unless one is alive (or the spare was closed)."""
        with self._lock:
            if self._closed or (self._process is not None and self._process.poll() is None):
                return
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}
            # A new session, like every worker: the run it becomes survives an app restart and the terminal's Ctrl-C.
            self._process = subprocess.Popen([sys.executable, "-m", "sslcore.runs.warm_worker"], stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                             start_new_session=True, env=env, cwd=os.getcwd())

    def wait_ready(self, timeout: float) -> bool:
        """Block until the spare has finished its imports (True), or ``timeout`` seconds pass (False)."""
        process = self._process
        if process is None or process.stdout is None:
            return False
        readable, _, _ = select.select([process.stdout], [], [], timeout)
        return bool(readable) and process.stdout.readline().strip() == READY

    def take(self, worker_args: list[str], log_path: Path) -> subprocess.Popen | None:
        """Hand the spare a run: it becomes ``sslcore worker *worker_args`` logging to ``log_path``. Returns its
        Popen, or None if no live spare is waiting (the caller then starts a worker the usual way)."""
        with self._lock:
            process, self._process = self._process, None
        if process is None or process.poll() is not None or process.stdin is None:
            return None
        job = {"argv": worker_args, "log": str(log_path), "cwd": os.getcwd()}
        try:
            process.stdin.write(json.dumps(job) + "\n")
            process.stdin.close()
        except (BrokenPipeError, OSError):  # it died just now: a cold start instead
            return None
        if process.stdout is not None:
            process.stdout.close()
        self._refill_later()
        return process

    def _refill_later(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._timer = threading.Timer(self.refill_delay, self.start)
            self._timer.daemon = True
            self._timer.start()

    def close(self) -> None:
        """End the spare (it reads end-of-file and exits) and start no other."""
        with self._lock:
            self._closed = True
            timer, process, self._process = self._timer, self._process, None
        if timer is not None:
            timer.cancel()
        if process is not None:
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _warm_up() -> None:
    """Import what training needs, load the default recipe's dataset (into the process's dataset cache: the
    Quick demo and a first Train use it) and run one tiny convolution forward and backward (the CPU kernels'
    first call sets itself up) and one step of the trainer's optimiser, so the run handed over starts at its first
    step."""
    import torch

    import sslcore.cli  # noqa: F401  what serve() calls once a job arrives
    import sslcore.engine.training_run  # noqa: F401  the trainer, tasks, encoders (the worker imports it late)
    from sslcore.config import default_config
    from sslcore.data import load_run_data
    from sslcore.engine.optim import AdamW
    from sslcore.runs import process_manager  # noqa: F401  the worker's body

    try:
        load_run_data(default_config().data)
    except Exception:  # noqa: BLE001 - only a head start: a run on that dataset reports its own problem
        pass
    conv = torch.nn.Conv2d(1, 4, 3)
    conv(torch.zeros(2, 1, 8, 8)).sum().backward()
    AdamW(conv.parameters(), lr=0.0).step()


def serve() -> int:
    """The spare's main: warm up, say so, wait for one job line; on end-of-file (manager gone or closing) exit."""
    _warm_up()
    _say_ready()
    line = sys.stdin.readline()
    if not line.strip():
        return 0
    job: dict[str, Any] = json.loads(line)
    _become_worker(Path(job["log"]), job["cwd"])
    from sslcore.cli import main

    return main(["worker", *job["argv"]])


def _say_ready() -> None:
    """Tell the manager the imports are done, if it is still listening: a run handed over before the spare was
    ready has closed the reading end already, and that write must not end the spare (EPIPE) before it becomes
    the run's worker. Unbuffered, so nothing is left to be flushed into the run's log later."""
    try:
        os.write(sys.stdout.fileno(), f"{READY}\n".encode())
    except OSError:  # BrokenPipeError: nobody waits for it any more
        pass


def _become_worker(log_path: Path, cwd: str) -> None:
    """Point stdout/stderr at the run's log (appending, as a cold worker's are) and stdin at /dev/null."""
    os.chdir(cwd)
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)


if __name__ == "__main__":
    exit_without_teardown(serve())
