"""The body of ``python -m sslcore eval-worker``: wait for a slot, evaluate one run, record the outcome.

Cancelling: the manager touches ``<run>/EVAL_STOP`` and sends SIGTERM. The signal raises
:class:`EvalCancelled` wherever the worker is (between two bytecodes, so even mid-fit), which unwinds
``evaluate_run`` before it writes anything; the STOP file covers a cancel that came before the worker
installed its handler. Either way eval.json keeps its previous contents and the job ends 'cancelled'.
An exception raised by a signal handler can be lost, though: code that catches everything swallows it (a
SIGTERM during ``import torch._dynamo``, which ``torch.optim``'s first step in a process did, was lost in 1
of 13 tries), and the fit would run on. So the signal also starts a timer: a worker still alive
:data:`CANCEL_GRACE_SECONDS` later records the cancel itself and ends at once.
"""
from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import traceback
from pathlib import Path
from typing import IO, Any

from sslcore.runs.eval_manager import STOP_FILE, EvalRequest, update_job
from sslcore.runs.process_manager import POLL_SECONDS, CoreShare, is_waiting, try_slot
from sslcore.runs.store import Run, RunStore

#: At most this often the progress is written to eval_job.json (a fit may end every few milliseconds).
WRITE_EVERY_SECONDS = 0.3
#: What eval_job.json's ``rows`` keep of each finished results row.
PARTIAL_ROW_KEYS = ("method", "labels_per_class", "accuracy_mean", "accuracy_std", "accuracies")


class EvalCancelled(BaseException):
    """Raised in the worker by SIGTERM or a STOP file. A BaseException, so no ``except Exception`` swallows it."""


#: Seconds a cancelled worker has to unwind before it ends outright (see the module docstring).
CANCEL_GRACE_SECONDS = 5.0
CANCELLED_MESSAGE = "cancelled; nothing was written"


def _install_cancel_handler(run: Run) -> None:
    """SIGTERM raises :class:`EvalCancelled` in the main thread, and ends the process after the grace period
    if that exception was lost."""

    def on_sigterm(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once is enough: never raise again while unwinding
        threading.Thread(target=_end_after_grace, args=(run,), name="cancel-grace", daemon=True).start()
        raise EvalCancelled()

    signal.signal(signal.SIGTERM, on_sigterm)


def _end_after_grace(run: Run) -> None:
    """The cancel's safety net, on its own thread: still alive after the grace period, the worker records the
    job cancelled and exits (an unwinding worker exits sooner, and this daemon thread with it)."""
    time.sleep(CANCEL_GRACE_SECONDS)
    with contextlib.suppress(OSError):
        update_job(run, state="cancelled", ended=time.time(), message=CANCELLED_MESSAGE)
    os._exit(1)


def _check_stop(run: Run) -> None:
    if (run.path / STOP_FILE).exists():
        raise EvalCancelled()


def _training_ahead(store: RunStore, since: float) -> bool:
    """Whether a training run queued before ``since`` is still waiting: it gets the next free slot first."""
    for other in store.list():
        status = other.status()
        if is_waiting(status, other.is_alive()) and (status.get("queued_at") or 0.0) < since:
            return True
    return False


def _wait_for_slot(run: Run, slots: int, queued_at: float) -> IO:
    """Block until a training slot is free (and no earlier training run waits); the locked slot file."""
    store = RunStore(run.path.parent)
    while True:
        _check_stop(run)
        if not _training_ahead(store, queued_at):
            slot = try_slot(run.path.parent / ".slots", slots)
            if slot is not None:
                return slot
        time.sleep(POLL_SECONDS)


class _Progress:
    """evaluate_run's progress callback: throttled writes to eval_job.json, stop checks, core re-division; and
    its ``on_row``: each finished results row goes into eval_job.json's ``rows`` at once, so the page shows
    the first figures while the slower methods run."""

    def __init__(self, run: Run, share: CoreShare) -> None:
        self.run, self.share, self.last_write = run, share, 0.0
        self.rows: list[dict[str, Any]] = []

    def row(self, row: dict[str, Any]) -> None:
        """Record a finished results row (its figures only: the per-repeat details stay for eval.json)."""
        self.rows.append({key: row[key] for key in PARTIAL_ROW_KEYS})
        update_job(self.run, rows=self.rows)

    def __call__(self, fraction: float, message: str) -> None:
        _check_stop(self.run)
        now = time.monotonic()
        if now - self.last_write >= WRITE_EVERY_SECONDS or fraction >= 1.0:
            self.last_write = now
            update_job(self.run, fraction=round(float(fraction), 4), message=message)
        self.share.tick()


def run_eval_worker(run_dir: Path, request: EvalRequest, slots: int) -> int:
    """Queue for a slot, evaluate, record completed / failed / cancelled in eval_job.json; exit status 0 or 1."""
    from sslcore.evaluation.protocol import evaluate_run  # late: scikit-learn and torch take a moment

    run = Run(run_dir)
    _install_cancel_handler(run)
    job = update_job(run, state="queued", pid=os.getpid())
    try:
        slot = _wait_for_slot(run, slots, job.get("queued_at") or time.time())
        with slot:
            update_job(run, state="running", started=time.time(), message="loading the data and the encoder")
            share = CoreShare(run.path.parent / ".slots", slots, slot)
            share.rebalance()  # a lone job uses every core; two jobs share them
            progress = _Progress(run, share)
            result = evaluate_run(run, list(request.budgets), repeats=request.repeats, seed=request.seed,
                                  methods=list(request.methods), progress=progress, on_row=progress.row,
                                  force=request.force, supervised=dict(request.supervised))
    except EvalCancelled:
        update_job(run, state="cancelled", ended=time.time(), message=CANCELLED_MESSAGE)
        return 1
    except Exception as e:  # noqa: BLE001 - the page must be able to say why the evaluation failed
        update_job(run, state="failed", ended=time.time(), error=f"{type(e).__name__}: {e}",
                   traceback=traceback.format_exc())
        return 1
    update_job(run, state="completed", fraction=1.0, ended=time.time(), error=None,
               message=_done_message(result, job.get("queued_at") or 0.0))
    return 0


def _done_message(result: dict[str, Any], queued_at: float) -> str:
    if result.get("created", 0.0) < queued_at:  # evaluate_run returned eval.json as stored
        return "nothing changed since the last evaluation: its results were reused"
    return f"evaluated in {result.get('timing', {}).get('total_s', 0.0):.0f} s"
