"""The protocol's network fits (supervised baseline, fine-tuning) side by side, one process per core, on CPUs.

A small network's training step does not scale over CPU threads: one mnist5k supervised fit (300 steps of 64
images, convnet) took 9.8 s with 2 threads and 16 s with 1 on a 2-core AMD EPYC, so two fits in two
single-threaded processes finish together in about 15.5 s where one after the other take 19.6 s (1.26x). Two
threads in one process reached only 17.3 s (Python's GIL), and one batched model training several fits at
once as grouped convolutions gained nothing (the step is compute-bound already: 2,090 against 2,280 model
images/s). So on a CPU each fit runs in its own process with one thread.

The workers are plain ``python -m sslcore.evaluation.parallel_fits`` processes fed over their stdin/stdout
pipes (length-prefixed pickles between this process and its own children), not ``multiprocessing``: its
``spawn`` start re-imports the caller's main script in every child, and a script without the
``if __name__ == "__main__"`` guard would then start evaluations recursively (tried: it did). The workers get
a snapshot of the labelled split, so a fit trains on exactly the samples its subset indexes even if the user's
dataset changes meanwhile: on Linux its big tensors are written once into shared memory that every worker maps
(:mod:`sslcore.evaluation.shared_tensors`), elsewhere each worker gets a copy. A worker exits by itself when
the evaluation's process ends (a cancelled evaluation worker is killed, and must leave no fit computing), and
the pool is killed when the evaluation stops early (an exception, a cancel).

On a GPU, or with a single thread to spend, the fits run in the evaluation's own process, one by one.
"""
from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import threading
import time
import traceback
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

import sslcore
from sslcore.config import RunConfig
from sslcore.data import DatasetSplit
from sslcore.evaluation.methods import NETWORK_RUNNERS, FitInputs
from sslcore.evaluation.shared_tensors import close_all, dumps_sharing, loads_sharing
from sslcore.process_exit import exit_without_teardown

#: The methods whose fits run here: those that train a network per labelled subset.
NETWORK_METHODS = frozenset(NETWORK_RUNNERS)
#: At most this many fit processes (each takes ~0.5 GB for torch and its fit, plus the split without shared memory).
MAX_PROCESSES = 8
#: Added to a fit process's niceness: the evaluation's own quick methods (probes, k-NN, raw pixels: their rows
#: show within seconds) and the dashboard come first; the fits take every cycle left. At the same priority
#: the quick rows came in 6.7-9.6 s after the start instead of 1.3-2.7 s.
FIT_NICENESS = 10
#: How often a fit process checks that the evaluation that started it is still there.
PARENT_POLL_SECONDS = 0.5
WORKER_MODULE = "sslcore.evaluation.parallel_fits"

FitResult = tuple[np.ndarray, dict[str, Any], float]  # test predictions (T,), details, seconds


class FitProcessError(RuntimeError):
    """A fit process ended without answering (killed, out of memory)."""


def fit_processes(device: torch.device, fits: int, threads: int | None = None) -> int:
    """How many processes to train ``fits`` networks in: one per thread the evaluation may use, at most
    :data:`MAX_PROCESSES`, on a CPU; 0 (train them in this process) on a GPU, or when there are fewer than two
    threads or two fits."""
    threads = torch.get_num_threads() if threads is None else threads
    processes = min(threads, fits, MAX_PROCESSES)
    return processes if device.type == "cpu" and processes >= 2 else 0


def _framed(data: bytes) -> bytes:
    """``data`` behind its length (8 bytes, big-endian): one message on a pipe."""
    return len(data).to_bytes(8, "big") + data


def _frame(message: Any) -> bytes:
    """``message`` pickled, as one message."""
    return _framed(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def _send(stream: IO[bytes], message: Any) -> None:
    stream.write(_frame(message))
    stream.flush()


def _read_frame(stream: IO[bytes]) -> bytes:
    """The next message's pickle; EOFError when the other end has closed (or died)."""
    header = stream.read(8)
    if len(header) < 8:
        raise EOFError("the pipe closed")
    size = int.from_bytes(header, "big")
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the pipe closed mid-message")
    return data


def _receive(stream: IO[bytes]) -> Any:
    """The next message; EOFError when the other end has closed (or died)."""
    return pickle.loads(_read_frame(stream))  # noqa: S301 - our own parent's or child's message over a private pipe


class FitPool:
    """``processes`` single-threaded worker processes, each holding the protocol's inputs; :meth:`submit` queues a
    fit (they start in submission order, each on the next free worker) and returns its Future."""

    def __init__(self, processes: int, config: RunConfig, data: DatasetSplit, supervised: dict[str, Any], seed: int,
                 encoder_state: dict[str, torch.Tensor]) -> None:
        # Pickled once, the big tensors into shared memory the workers inherit; each feeder thread sends it to its
        # worker (a write that blocks until the worker has imported torch and reads it: seconds, which the
        # evaluation's own methods use meanwhile). Dropped once every worker has it.
        payload, shared = dumps_sharing((os.getpid(), config, data, supervised, seed, encoder_state))
        self._setup: bytes | None = _framed(payload)
        self._setup_lock, self._setup_pending = threading.Lock(), processes
        self._queue: queue.Queue[tuple[Future[FitResult], tuple[str, np.ndarray, int]] | None] = queue.Queue()
        self._workers: list[subprocess.Popen[bytes]] = []
        try:
            for _ in range(processes):
                self._workers.append(_start_worker(shared))
        except BaseException:
            self.terminate()
            raise
        finally:
            close_all(shared)  # the workers hold the shared memory now; it goes when the last of them has exited
        self._threads = [threading.Thread(target=self._serve, args=(w,), daemon=True, name="fit-feeder")
                         for w in self._workers]
        for thread in self._threads:
            thread.start()

    @property
    def processes(self) -> int:
        return len(self._workers)

    def submit(self, method: str, indices: np.ndarray, repeat: int) -> Future[FitResult]:
        """Queue ``method`` fitted on the subset ``indices`` (repeat ``repeat``)."""
        future: Future[FitResult] = Future()
        self._queue.put((future, (method, indices, repeat)))
        return future

    def close(self) -> None:
        """Let the workers finish what is queued, then end them (they exit on end of input)."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        for worker in self._workers:
            if worker.stdin is not None:
                worker.stdin.close()
            worker.wait()

    def terminate(self) -> None:
        """Kill every worker now (fits in progress are lost; queued ones are cancelled): the evaluation ended."""
        for worker in self._workers:
            worker.kill()
        for worker in self._workers:
            worker.wait()
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        for _ in self._workers:
            self._queue.put(None)  # each feeder thread ends at its sentinel

    def _serve(self, worker: subprocess.Popen[bytes]) -> None:
        """One worker's feeder: send it the setup, then hand it the next queued fit, wait for the answer, settle
        the fit's Future; and so on until the sentinel."""
        assert worker.stdin is not None and worker.stdout is not None
        dead: BaseException | None = None
        try:
            assert self._setup is not None
            worker.stdin.write(self._setup)
            worker.stdin.flush()
        except OSError as e:
            dead = FitProcessError(f"a fit process ended before it started (exit status {worker.poll()}): {e}")
        finally:
            with self._setup_lock:
                self._setup_pending -= 1
                if self._setup_pending == 0:
                    self._setup = None
        while (item := self._queue.get()) is not None:
            future, job = item
            if not future.set_running_or_notify_cancel():
                continue
            if dead is None:
                try:
                    _send(worker.stdin, job)
                    ok, value = _receive(worker.stdout)
                except (OSError, EOFError) as e:
                    dead = FitProcessError(f"a fit process ended without answering (exit status {worker.poll()}): {e}")
            if dead is not None:  # a dead worker fails what it takes, so nothing waits forever
                future.set_exception(dead)
            elif ok:
                future.set_result(value)
            else:
                error, text = value
                error.__cause__ = FitTraceback(f"in the fit process:\n{text}")
                future.set_exception(error)


def _start_worker(inherited: list[int]) -> subprocess.Popen[bytes]:
    """``python -m sslcore.evaluation.parallel_fits`` importing this very copy of sslcore (installed or not), with
    the ``inherited`` descriptors (the setup's shared memory); its stderr is the evaluation's, so a fit's warnings
    land in the evaluation's log."""
    package_root = str(Path(sslcore.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-m", WORKER_MODULE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=env, pass_fds=inherited)


def _exit_without_parent(parent_pid: int) -> None:
    """Exit when the evaluation's process has gone (its children are re-parented: getppid changes)."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


class FitTraceback(Exception):
    """The traceback of an error raised in a fit process, attached as the re-raised error's cause."""


def _portable_error(error: Exception) -> tuple[Exception, str]:
    """``error`` as it can cross the pipe (else a RuntimeError saying it), and the worker's traceback text."""
    text = "".join(traceback.format_exception(error)).rstrip()
    try:
        pickle.loads(pickle.dumps(error))  # noqa: S301 - a round trip of our own object
        return error, text
    except Exception:  # noqa: BLE001 - any exception that does not pickle: its text goes instead
        return RuntimeError(f"{type(error).__name__}: {error}"), text


def serve() -> int:
    """A worker's main: read the setup, then fit what arrives until the input ends."""
    requests = sys.stdin.buffer
    answers = os.fdopen(os.dup(1), "wb")  # the answers' own channel...
    os.dup2(2, 1)  # ...and anything a fit prints goes to stderr, never into it
    os.nice(FIT_NICENESS)
    parent_pid, config, data, supervised, seed, encoder_state = loads_sharing(_read_frame(requests))
    threading.Thread(target=_exit_without_parent, args=(parent_pid,), daemon=True, name="parent-watch").start()
    torch.set_num_threads(1)
    inputs = FitInputs(config, data, torch.device("cpu"), supervised, seed, encoder_state)
    while True:
        try:
            method, indices, repeat = _receive(requests)
        except EOFError:
            return 0
        started = time.perf_counter()
        try:
            predicted, details = NETWORK_RUNNERS[method](inputs, indices, repeat)
            answer: tuple[bool, Any] = (True, (predicted, details, time.perf_counter() - started))
        except Exception as e:  # noqa: BLE001 - the evaluation raises it, as it would have raised it itself
            answer = (False, _portable_error(e))
        _send(answers, answer)


if __name__ == "__main__":
    exit_without_teardown(serve())
