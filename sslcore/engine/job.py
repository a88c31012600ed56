"""Running one run folder to the end: the code path shared by the CLI and the job manager's worker process.

Whatever happens, the run's status ends in a final state with a readable reason: 'completed',
'cancelled' (stop request, with a final checkpoint) or 'failed' (error text + traceback).
"""
from __future__ import annotations

import os
import time
import traceback
from typing import Sequence, TextIO

import torch

from sslcore.config import RunConfig
from sslcore.data import DatasetSplit, DatasetUnavailableError, load_run_data
from sslcore.engine.callbacks import Callback, ConsoleProgress, NaNGuard
from sslcore.engine.checkpoint import load_checkpoint
from sslcore.engine.device import configure_threads, pick_device
from sslcore.engine.monitor import EpochEvaluator
from sslcore.engine.run_callbacks import Checkpointer, Heartbeat, MetricsWriter, Snapshotter, StopRequest
from sslcore.engine.trainer import Trainer, build_task
from sslcore.runs import Run
from sslcore.runs.files import truncate_torn_tail, write_jsonl_atomic
from sslcore.userdata.usage import dataset_record


def run_callbacks(run: Run, config: RunConfig, data: DatasetSplit, console: TextIO | None) -> list[Callback]:
    """The standard callbacks, in order: stop/guard first, evaluators before the writer, checkpoint last."""
    t = config.train
    callbacks: list[Callback] = [StopRequest(run), NaNGuard(), Heartbeat(run),
                                 EpochEvaluator(data, knn_k=t.knn_k, seed=t.seed),
                                 MetricsWriter(run, log_every=t.log_every),
                                 Snapshotter(run, data.test, t.snapshot_images, seed=t.seed),
                                 Checkpointer(run)]
    if console is not None:
        callbacks.append(ConsoleProgress(console, interactive=console.isatty()))
    return callbacks


def execute_run(run: Run, *, resume: bool = False, console: TextIO | None = None, threads: int | None = None,
                extra_callbacks: Sequence[Callback] = ()) -> str:
    """Train ``run`` (fresh, or from its last checkpoint with ``resume``); returns the final state.

    Exceptions never escape: they end the run as 'failed' with the message and traceback in status.json.
    ``threads`` overrides ``train.threads`` (the job manager shares the cores among concurrent jobs).
    """
    run.update_status(state="running", pid=os.getpid(), started=time.time(), ended=None, error=None, traceback=None)
    try:
        outcome = _train(run, resume, console, threads, extra_callbacks)
    except BaseException as e:  # noqa: BLE001 - a run must always end with a readable status
        run.update_status(state="failed", ended=time.time(), error=_plain_reason(e), traceback=traceback.format_exc())
        if not isinstance(e, Exception):
            raise
        return "failed"
    run.update_status(state=outcome, ended=time.time())
    return outcome


def _train(run: Run, resume: bool, console: TextIO | None, threads: int | None,
           extra_callbacks: Sequence[Callback]) -> str:
    config = run.config()
    configure_threads(config.train.threads or threads or 0)
    device = pick_device(config.train.device)
    torch.manual_seed(config.train.seed)  # weight initialisation
    data = load_run_data(config.data)
    record = dataset_record(config.data)
    if resume and (problem := _changed_data(run, record)):
        raise DatasetUnavailableError(problem)
    task = build_task(config, data)
    checkpoint = None
    if resume:
        checkpoint = load_checkpoint(run.checkpoint_dir / "last.pt", map_location=device)
        truncate_torn_tail(run.metrics_path)
        drop_metrics_after(run, checkpoint["state"]["step"])
    run.update_status(device=str(device), dataset_size=len(data.train), image_shape=list(data.sample_shape),
                      dataset=record)
    callbacks = [*extra_callbacks, *run_callbacks(run, config, data, console)]
    trainer = Trainer.create(config, task, data, device, callbacks, checkpoint)
    return trainer.fit()


def _changed_data(run: Run, record: dict[str, str]) -> str | None:
    """Why a resume would train on other images than the run started on (a user dataset replaced); else None."""
    before = (run.status().get("dataset") or {}).get("content_hash")
    if before and record.get("content_hash") not in (None, before):
        return (f"dataset {record['name']!r} now holds other images than this run started on (content hash "
                f"{record['content_hash'][7:19]}…, the run's {before[7:19]}…): train a new run on it instead")
    return None


def drop_metrics_after(run: Run, step: int) -> None:
    """Remove step records logged after the checkpoint's step, so a resumed log has no duplicates."""
    records = run.metrics()
    kept = [r for r in records if r.get("step", 0) <= step]
    if len(kept) != len(records):
        write_jsonl_atomic(run.metrics_path, kept)


def _plain_reason(e: BaseException) -> str:
    """One readable line for the dashboard: the error's own message, prefixed by its kind when useful."""
    if isinstance(e, KeyboardInterrupt):
        return "interrupted"
    if isinstance(e, MemoryError) or "out of memory" in str(e).lower():
        return f"out of memory: {e}. Try a smaller batch size (train.batch_size) or a smaller encoder."
    text = str(e) or type(e).__name__
    return text if type(e).__name__ in ("NonFiniteLossError", "DatasetUnavailableError", "ConfigError") else f"{type(e).__name__}: {text}"

