"""What a person can do to a finished or stopped run, shared by the CLI and the dashboard: check that it can be
resumed (and say why not), and delete it, stopping its job first.

Training again with the same or an edited config needs nothing here: ``store.create(run.config().replace(edits))``.
"""
from __future__ import annotations

import time

from sslcore.config import ConfigError
from sslcore.runs.process_manager import JobManager
from sslcore.runs.store import ACTIVE_STATES, Run, RunStore, reconcile_run
from sslcore.runs.summary import essential_damage, summarize

#: How long a delete waits for a stopped job to end (its final checkpoint takes a moment).
STOP_TIMEOUT_SECONDS = 10.0


class RunBusyError(RuntimeError):
    """The run's job did not end in time, so the run was left as it was."""


def resume_blocker(run: Run) -> str | None:
    """Why ``run`` cannot be resumed now, in words a person can act on; None if it can.

    A run that says running but whose process is gone is first recorded as failed (interrupted), so it
    can be resumed. To rule out a second process starting it meanwhile, ask while holding its training
    lock (:mod:`sslcore.runs.training_lock`).
    """
    damaged = essential_damage(run)
    if damaged:
        return f"run {run.id} is damaged: {damaged}; it cannot be resumed, only deleted (sslcore delete {run.id})"
    reconcile_run(run)
    status = run.status()
    state = status.get("state")
    again = f"train it again instead: python -m sslcore train --from {run.id}"
    if state in ACTIVE_STATES and run.job_may_be_live():
        return f"run {run.id} is still {state}; stop it before resuming"
    try:
        run.config()
    except ConfigError as e:
        return f"run {run.id} cannot be resumed: {e}"
    has_checkpoint = (run.checkpoint_dir / "last.pt").exists()
    imported = status.get("imported_from")
    if imported and not has_checkpoint:
        return (f"run {run.id} was imported from {imported.get('file')}: it has its final encoder weights but no "
                f"training checkpoint, so it cannot be resumed; {again}")
    if state == "completed":
        return f"run {run.id} has completed all its epochs; to train longer, {again} --epochs N"
    if not has_checkpoint:
        return f"run {run.id} has no checkpoint to resume from (it stopped before its first epoch); {again}"
    return None


def delete_run(store: RunStore, run: Run, *, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """Delete ``run``'s folder. A queued or running job is stopped first, as JobManager.cancel does (STOP
    file + SIGTERM), and the folder goes only once that process has ended, so nothing writes into it again.

    ValueError for a folder that is not directly in ``store``; RunBusyError if the job outlives ``timeout``.
    """
    if run.path.resolve().parent != store.root.resolve():
        raise ValueError(f"{run.path} is not a run folder of {store.root}/; refusing to delete it")
    if run.job_may_be_live():
        JobManager(store.root).cancel(run)
        deadline = time.monotonic() + timeout
        # Until the process is gone, not just until its final status: an exiting job is still its folder's writer.
        while run.job_may_be_live() or run.is_alive():
            if time.monotonic() > deadline:
                raise RunBusyError(f"run {run.id} is still stopping after {timeout:g} s, so it was not deleted; "
                                   "try again in a moment")
            time.sleep(0.1)
    store.delete(run)


def describe(run: Run) -> str:
    """``'cancelled, 2/10 epochs'``: what a confirmation prompt shows about a run."""
    summary = summarize(run)
    if summary.damaged:
        return f"damaged: {summary.damaged}"
    return f"{summary.state}, {summary.epochs_text}"
