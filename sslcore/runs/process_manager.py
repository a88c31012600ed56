"""The job manager: one subprocess per run, a bounded number training at once, all truth on disk.

A job is ``python -m sslcore worker RUN_DIR``. The worker waits its turn as 'queued' (first come, first
served) for one of ``slots`` file locks under ``<runs>/.slots/`` (one per process of a run trained by
several, which it starts through torchrun: :mod:`sslcore.runs.launcher`), then trains. The lock belongs to the
process, so the kernel frees it when the process ends for any reason: no slot is ever leaked, and no
scheduler thread has to live in the app. A crash or OOM kills the worker, never the app.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import torch

from sslcore.config import RunConfig
from sslcore.engine.callbacks import Callback
from sslcore.engine.state import TrainState
from sslcore.runs import launcher
from sslcore.runs.store import ACTIVE_STATES, STARTUP_GRACE_SECONDS, Run, RunStore
from sslcore.runs.training_lock import RunInUseError, training_lock
from sslcore.runs.training_lock import acquire as acquire_training_lock
from sslcore.runs.warm_worker import WarmSpare

#: How long a new worker waits for the run's training lock (a resume holds it while it checks and starts us).
WORKER_LOCK_WAIT_SECONDS = 30.0

POLL_SECONDS = 0.25


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class JobManager:
    """Starts, queues, stops and reconciles training jobs for one runs folder.

    The dashboard keeps one per server (``st.cache_resource``); it holds no state that matters, so a new
    instance (after a code edit or a restart) picks up where the old one left off. Methods may be called
    from several threads at once (Streamlit runs each browser session in its own thread).
    """

    def __init__(self, runs_dir: str | Path = "runs", max_concurrent: int = 2, warm: bool = False) -> None:
        """``warm``: keep a spare worker that has imported torch waiting (:mod:`sslcore.runs.warm_worker`), so a
        new run's first step comes seconds sooner; :meth:`close` ends it (so does this process's exit)."""
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent = {max_concurrent} is not allowed: expected at least 1")
        self.store = RunStore(runs_dir)
        self.max_concurrent = max_concurrent
        self._children: dict[Path, tuple[subprocess.Popen, Run]] = {}  # the latest worker of each run
        self._retired: list[subprocess.Popen] = []  # earlier workers of resumed runs, kept only to be reaped
        self._lock = threading.Lock()
        self.spare = WarmSpare() if warm else None
        if self.spare is not None:
            self.spare.start()

    def close(self) -> None:
        """End the spare worker, if any (running jobs go on: they are runs, not the manager's)."""
        if self.spare is not None:
            self.spare.close()

    def submit(self, config: RunConfig, name: str | None = None, processes: int = 1) -> Run:
        """Create a run for ``config`` and start its worker; returns at once with the run 'queued'.

        ``processes`` > 1 trains the run on that many processes (DistributedDataParallel), each taking a slot.
        Raises RunRefusedError, before any folder is made, if the run could not start on this machine
        (see ``sslcore.engine.training_run.check_inputs``), and OSError if the runs folder cannot be written.
        """
        from sslcore.engine.training_run import check_inputs  # late: the trainer's imports are not needed to list runs

        self.check_processes(processes, config.train.batch_size)
        check_inputs(config)
        run = self.store.create(config, name=name)
        self._spawn(run, resume=False, processes=processes)
        return run

    def resume(self, run: Run, processes: int | None = None) -> None:
        """Continue a cancelled or failed run from its last checkpoint, in the same folder and metric log,
        on ``processes`` processes (default: as many as it had, within this machine's limit).

        RuntimeError (RunInUseError) if another process trains it or is starting it: the check and the
        start happen under the run's training lock, so two resumes at once start one worker, not two.
        """
        with training_lock(run.path):
            if run.state in ACTIVE_STATES and run.job_may_be_live():
                raise RuntimeError(f"run {run.id} is still {run.state}")
            if not (run.checkpoint_dir / "last.pt").exists():
                raise RuntimeError(f"run {run.id} has no checkpoint to resume from")
            batch_size = run.config().train.batch_size
            if processes is None:  # as many as before, if this machine and the slots still allow them
                processes = min(int(run.status().get("processes") or 1), self.process_limit())
                processes = processes if batch_size % processes == 0 else 1
            problem = self.processes_problem(processes, batch_size)
            if problem:
                raise RuntimeError(problem)
            run.update_status(state="queued", pid=None, error=None, traceback=None, queued_at=time.time())
            self._spawn(run, resume=True, processes=processes)

    def cancel(self, run: Run) -> None:
        """Ask a queued or running job to stop: it ends 'cancelled' (a running one after a final checkpoint)."""
        run.request_stop()  # also reaches a worker that has not written its pid yet
        if run.state in ACTIVE_STATES and run.is_alive():
            with contextlib.suppress(ProcessLookupError):  # it may end between the check and the signal
                os.kill(run.status()["pid"], signal.SIGTERM)

    def process_limit(self) -> int:
        """The most processes one run may use: this machine's GPUs (or cores), at most the job slots."""
        return launcher.process_limit(self.max_concurrent, cpu_count())

    def processes_problem(self, processes: int, batch_size: int) -> str | None:
        """Why ``processes`` cannot train a run of global batch ``batch_size`` here; None if they can."""
        return launcher.processes_problem(processes, batch_size, self.process_limit(), self.max_concurrent)

    def check_processes(self, processes: int, batch_size: int) -> None:
        problem = self.processes_problem(processes, batch_size)
        if problem:
            raise ValueError(problem)

    def wait(self, run: Run, timeout: float | None = None) -> str:
        """Block until ``run`` reaches a final state (or its process is gone); returns the state.

        Raises TimeoutError after ``timeout`` seconds. For notebooks, scripts and tests; the dashboard polls.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while run.state in ACTIVE_STATES:
            self.reconcile()  # a worker that died without a word ends the wait as 'failed'
            if run.state not in ACTIVE_STATES:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {run.id} is still {run.state} after {timeout:g} s")
            time.sleep(POLL_SECONDS)
        return run.state

    def reconcile(self) -> list[Run]:
        """Mark runs whose process died while queued/running as failed (resumable); returns them."""
        failed = self.reap()
        with self._lock:
            # A child of ours that died an instant ago is left to the next reap, which reads its exit
            # status and gives the precise reason (killed, crashed) instead of "interrupted".
            ours = list(self._children)
        return failed + self.store.reconcile(exclude=ours)

    def active(self) -> list[Run]:
        """Queued and running runs whose worker is alive, oldest first."""
        self.reap()
        runs = [r for r in self.store.list() if r.state in ACTIVE_STATES and r.is_alive()]
        return sorted(runs, key=lambda r: r.status().get("queued_at", 0.0))

    def reap(self) -> list[Run]:
        """Collect finished children (no zombies); a child that died without ending its run fails that run.

        Only a child of this manager has an exit status to read, so its run gets a precise reason (killed
        by the out-of-memory killer, crashed, ...) instead of reconcile's generic "interrupted".
        """
        with self._lock:
            self._retired = [p for p in self._retired if p.poll() is None]
            finished = [(p, run) for p, run in self._children.values() if p.poll() is not None]
            for _, run in finished:
                del self._children[run.path]
        failed = []
        for process, run in finished:
            status = run.status()
            if status.get("state") in ACTIVE_STATES and status.get("pid") in (None, process.pid):
                run.update_status(state="failed", error=exit_reason(process.returncode), ended=time.time())
                failed.append(run)
        return failed

    def threads_per_job(self) -> int:
        """Cores divided among the concurrent slots, so running jobs never oversubscribe the machine."""
        return max(1, cpu_count() // self.max_concurrent)

    def _spawn(self, run: Run, resume: bool, processes: int = 1) -> None:
        run.stop_path.unlink(missing_ok=True)
        if "queued_at" not in run.status() or not resume:
            run.update_status(queued_at=time.time())
        run.update_status(processes=processes)
        cmd = [sys.executable, "-m", "sslcore", "worker", str(run.path), "--slots", str(self.max_concurrent),
               "--threads", str(self.threads_per_job()), "--processes", str(processes)]
        cmd += ["--resume"] if resume else []
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = self.spare.take(cmd[4:], run.log_path) if self.spare is not None and processes == 1 else None
        if process is None:
            with open(run.log_path, "a") as log:
                # A new session: the job survives an app restart and is not hit by the terminal's Ctrl-C.
                process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                           start_new_session=True, env=env, cwd=os.getcwd())
        with self._lock:
            previous = self._children.get(run.path)
            if previous is not None:
                self._retired.append(previous[0])
            self._children[run.path] = (process, run)


def exit_reason(returncode: int) -> str:
    """A plain-words reason for a worker that exited without recording how its run ended.

    SIGKILL is what both ``kill -9`` and the kernel's out-of-memory killer send, and the exit status alone
    cannot tell them apart, so the reason names both rather than guessing.
    """
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if -returncode == signal.SIGKILL:
            return (f"the training process was killed ({name}): by hand (kill -9) or by the system's out-of-memory "
                    "killer, which the exit status cannot tell apart (the system log says if it was memory); "
                    "resume from the last checkpoint, with a smaller batch size or encoder if memory ran out")
        return f"the training process crashed ({name}); see the job log, or resume from the last checkpoint"
    return (f"the training process exited with code {returncode} before recording a result; "
            "see the job log, or resume from the last checkpoint")


# --------------------------------------------------------------------------------------------------
# the worker side
# --------------------------------------------------------------------------------------------------

class _Signals:
    """Remembers a SIGTERM received while waiting in the queue (training installs its own handler)."""

    terminated = False

    @classmethod
    def install(cls) -> None:
        signal.signal(signal.SIGTERM, cls._handle)

    @classmethod
    def _handle(cls, signum: int, frame: object) -> None:
        cls.terminated = True


def is_waiting(status: dict, alive: bool) -> bool:
    """Whether a run is in the queue: queued with a live worker, or queued moments ago by a worker that
    has not started yet (workers start in parallel and need not come up in the order they were queued)."""
    if status.get("state") != "queued":
        return False
    if alive:
        return True
    return status.get("pid") is None and time.time() - (status.get("queued_at") or 0.0) < STARTUP_GRACE_SECONDS


def _my_turn(run: Run, store: RunStore) -> bool:
    """First come, first served: only the oldest waiting run may take a free slot."""
    waiting = []
    for other in store.list():
        status = other.status()
        if is_waiting(status, other.is_alive()):
            waiting.append((status.get("queued_at") or 0.0, other.path))
    return not waiting or min(waiting)[1] == run.path


def try_slot(slot_dir: Path, slots: int) -> IO | None:
    """An open, exclusively locked slot file, or None if all ``slots`` are taken."""
    held = try_slots(slot_dir, slots, 1)
    return held[0] if held else None


def try_slots(slot_dir: Path, slots: int, count: int) -> list[IO] | None:
    """``count`` open, exclusively locked slot files, or None (holding none) if fewer are free: all or
    nothing, so two runs that each need two slots never hold one each and wait for ever."""
    slot_dir.mkdir(parents=True, exist_ok=True)
    held: list[IO] = []
    for i in range(slots):
        f = open(slot_dir / f"slot-{i}.lock", "w")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held.append(f)
        except BlockingIOError:
            f.close()
        if len(held) == count:
            return held
    for taken in held:
        taken.close()
    return None


def wait_for_slot(run: Run, slots: int, count: int = 1) -> list[IO] | None:
    """Block while queued; the ``count`` held slot files, or None if the run was cancelled while waiting."""
    store = RunStore(run.path.parent)
    last_beat = 0.0
    while True:
        if _Signals.terminated or run.stop_requested():
            return None
        if _my_turn(run, store):
            held = try_slots(run.path.parent / ".slots", slots, count)
            if held is not None:
                return held
        if time.monotonic() - last_beat > 1.0:
            last_beat = time.monotonic()
            run.write_progress({"time": time.time(), "phase": "queued"})
        time.sleep(POLL_SECONDS)


class CoreShare(Callback):
    """Re-divides the cores among the jobs training right now, every few seconds.

    A fixed cores/slots split would leave a lone quick demo on one of two cores; giving every job all
    cores would oversubscribe them when two train at once. Busy slots are counted by trying their locks.
    """

    def __init__(self, slot_dir: Path, slots: int, own: IO, every_seconds: float = 5.0) -> None:
        self.slot_dir, self.slots, self.own, self.every = slot_dir, slots, own, every_seconds
        self._last = 0.0

    def busy_slots(self) -> int:
        busy = 1  # our own
        for i in range(self.slots):
            path = self.slot_dir / f"slot-{i}.lock"
            if path == Path(self.own.name) or not path.exists():
                continue
            with open(path, "a") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    fcntl.flock(f, fcntl.LOCK_UN)
                except BlockingIOError:
                    busy += 1
        return busy

    def rebalance(self) -> None:
        self._last = time.monotonic()
        torch.set_num_threads(max(1, cpu_count() // self.busy_slots()))

    def on_fit_start(self, state: TrainState, trainer: object) -> None:
        self.rebalance()

    def on_step_end(self, state: TrainState) -> None:
        self.tick()

    def tick(self) -> None:
        """Rebalance if the last one is ``every_seconds`` old (for loops that are not a trainer's steps)."""
        if time.monotonic() - self._last > self.every:
            self.rebalance()


def run_worker(run_dir: Path, *, resume: bool, slots: int, threads: int, processes: int = 1) -> int:
    """Body of ``python -m sslcore worker``: queue, then train (itself, or through torchrun on ``processes``
    processes, one slot each); the run's status tells the outcome."""
    from sslcore.engine.training_run import execute_run

    _Signals.install()
    run = Run(run_dir)
    try:  # held while this worker waits and trains: no other process may start the run meanwhile
        lock = acquire_training_lock(run.path, wait=WORKER_LOCK_WAIT_SECONDS)
    except RunInUseError as e:  # another process trains it: leave its status alone
        print(f"not started: {e}", file=sys.stderr)
        return 1
    with lock:
        run.update_status(state="queued", pid=os.getpid())
        held = wait_for_slot(run, slots, processes)
        if held is None:
            run.update_status(state="cancelled", ended=time.time(), error=None)
            return 1
        with contextlib.ExitStack() as stack:
            for slot in held:
                stack.enter_context(slot)
            if processes > 1:  # the ranks run `sslcore rank`, which does not take the lock this worker holds
                return launcher.launch_ranks(run, processes, threads=threads, resume=resume)
            share = [] if run.config().train.threads else [CoreShare(run.path.parent / ".slots", slots, held[0])]
            outcome = execute_run(run, resume=resume, console=sys.stdout, threads=threads, extra_callbacks=share)
    return 0 if outcome == "completed" else 1
