"""Running one run folder to the end: the code path shared by the CLI and the job manager's worker process.

Whatever happens, the run's status ends in a final state with a readable reason: 'completed',
'cancelled' (stop request, with a final checkpoint) or 'failed' (error text + traceback).

With several processes (torchrun), every rank runs this; rank 0 alone writes the run folder, and records
another rank's failure as the run's reason (:mod:`sslcore.distributed`).

Before a fresh run gets a folder, :func:`check_inputs` refuses what would fail before its first step
(missing dataset files, an absent device, a task that does not fit the data), like any other bad input.
"""
from __future__ import annotations

import os
import socket
import sys
import time
import traceback
from collections.abc import Sequence
from typing import TextIO

import torch

from sslcore import distributed
from sslcore.config import ConfigError, RunConfig
from sslcore.data import DatasetSplit, DatasetUnavailableError, load_run_data
from sslcore.engine.callbacks import Callback, ConsoleProgress, NaNGuard, WaitForMain
from sslcore.engine.checkpoint import load_checkpoint
from sslcore.engine.device import DeviceUnavailableError, configure_threads, pick_device
from sslcore.engine.monitor import EpochEvaluator
from sslcore.engine.run_callbacks import Checkpointer, Heartbeat, MetricsWriter, Snapshotter, StopRequest
from sslcore.engine.system_monitor import SystemMonitor
from sslcore.engine.trainer import Trainer
from sslcore.os_errors import describe_os_error
from sslcore.runs import Run
from sslcore.runs.files import truncate_torn_tail, write_jsonl_atomic
from sslcore.tasks.build import build_task
from sslcore.userdata.usage import dataset_record

#: Samples the input check builds the task on (enough for its shape checks, cheap in the dashboard's process).
CHECK_SAMPLES = 16


class RunRefusedError(ConfigError):
    """A fresh run was refused before its folder was made: the config is valid, but cannot run on this machine
    (its data files are missing, its device is absent). The message says what to change."""


def check_inputs(config: RunConfig) -> None:
    """Raise RunRefusedError if a fresh run of ``config`` would fail before its first step on this machine.

    Checks the device, the dataset's files (unless downloading is on: that happens in the run) and that the
    task accepts the data's shape. Config validation cannot do this: a config is valid anywhere, these depend
    on the machine. The data load is cached in-process, so a run started from the same process loads nothing
    twice; the task is built on a few samples only (its normalisation statistics would convert them all).
    """
    try:
        pick_device(config.train.device)
        if not config.data.download:
            data = load_run_data(config.data)
            few = torch.arange(min(CHECK_SAMPLES, len(data.train)))
            build_task(config, DatasetSplit(data.train.subset(few), data.test.subset(few[:0])))
    except (DeviceUnavailableError, DatasetUnavailableError, ConfigError) as error:
        raise RunRefusedError(str(error)) from error


def run_callbacks(run: Run, config: RunConfig, data: DatasetSplit, console: TextIO | None) -> list[Callback]:
    """The standard callbacks, in order: stop/guard first, evaluators before the writer, checkpoint last.

    Only rank 0 writes (heartbeat, metrics, snapshots, checkpoints) and evaluates; with several processes the
    others wait for it at the end of each epoch. Every rank watches for a stop request.
    """
    t = config.train
    callbacks: list[Callback] = [StopRequest(run), NaNGuard()]
    if distributed.is_main():
        callbacks += [Heartbeat(run), SystemMonitor(),
                      EpochEvaluator(data, knn_k=t.knn_k, seed=t.seed, every=t.monitor_every),
                      MetricsWriter(run, log_every=t.log_every),
                      Snapshotter(run, data.test, t.snapshot_images, seed=t.seed), Checkpointer(run)]
        if console is not None:
            per_second = "rows/s" if len(data.sample_shape) == 1 else "img/s"  # a table's sample shape is (F,)
            callbacks.append(ConsoleProgress(console, interactive=console.isatty(), per_second=per_second))
    if distributed.active():
        callbacks.append(WaitForMain())
    return callbacks


def execute_run(run: Run, *, resume: bool = False, console: TextIO | None = None, threads: int | None = None,
                extra_callbacks: Sequence[Callback] = ()) -> str:
    """Train ``run`` (fresh, or from its last checkpoint with ``resume``); returns the final state.

    Exceptions never escape: they end the run as 'failed' with the message and traceback in status.json.
    ``threads`` overrides ``train.threads`` (the job manager shares the cores among concurrent jobs).
    """
    main = distributed.env_world().is_main  # known from torchrun's environment before the group is joined
    if main:
        run.update_status(state="running", pid=os.getpid(), started=time.time(), ended=None, error=None,
                          traceback=None)
    try:
        outcome = _train(run, resume, console, threads, extra_callbacks)
    except BaseException as e:  # noqa: BLE001 - a run must always end with a readable status
        _record_failure(run, e, main)
        if not isinstance(e, Exception):
            raise
        return "failed"
    if main:
        run.update_status(state=outcome, ended=time.time())
    distributed.finish()
    return outcome


def _record_failure(run: Run, error: BaseException, main: bool) -> None:
    """Rank 0 writes the failure into status.json: another rank's, when one failed first (this rank's error
    is then only its consequence: a collective whose peer vanished); other ranks report theirs to rank 0."""
    reason, trace = _plain_reason(error), traceback.format_exc()
    if not main:
        distributed.report_failure(reason, trace)
        return
    peer = distributed.peer_failure(wait_seconds=3.0 if isinstance(error, torch.distributed.DistError) else 0.0)
    if peer is not None:
        reason, trace = peer[0], peer[1] or trace
    try:
        run.update_status(state="failed", ended=time.time(), error=reason, traceback=trace)
    except OSError as unwritable:  # the disk that failed the run may refuse its status too: say it here
        print(f"run {run.id} failed: {reason}\n(and its status could not be recorded: "
              f"{describe_os_error(unwritable)})", file=sys.stderr)


def _train(run: Run, resume: bool, console: TextIO | None, threads: int | None,
           extra_callbacks: Sequence[Callback]) -> str:
    config = run.config()
    configure_threads(config.train.threads or threads or 0, processes=distributed.env_world().local_world_size)
    device = distributed.join(config.train.device)
    torch.manual_seed(config.train.seed)  # weight initialisation (DDP also copies rank 0's weights to the others)
    data = distributed.main_first(lambda: load_run_data(config.data))
    record = dataset_record(config.data)
    if resume and (problem := _changed_data(run, record)):
        raise DatasetUnavailableError(problem)
    task = build_task(config, data)
    checkpoint = None
    if resume:  # every rank reads the checkpoint; rank 0 trims the metrics log to it
        checkpoint = load_checkpoint(run.checkpoint_dir / "last.pt", map_location=device)
    ranks = distributed.gather_objects(describe_process(device))
    if distributed.is_main():
        if checkpoint is not None:
            truncate_torn_tail(run.metrics_path)
            step = checkpoint["state"]["step"]
            drop_metrics_after(run, step if step > 0 else -1)  # from step 0 the trainer records epoch 0 again
    callbacks = [*extra_callbacks, *run_callbacks(run, config, data, console)]
    trainer = Trainer.create(config, task, data, device, callbacks, checkpoint)
    if distributed.is_main():
        run.update_status(device=str(device), precision="bf16" if trainer.bf16 else "fp32",
                          dataset_size=len(data.train), image_shape=list(data.sample_shape), dataset=record,
                          world_size=len(ranks), devices=[r["device"] for r in ranks], ranks=ranks)
    return trainer.fit()


def _changed_data(run: Run, record: dict[str, str]) -> str | None:
    """Why a resume would train on other images than the run started on (a user dataset replaced); else None."""
    before = (run.status().get("dataset") or {}).get("content_hash")
    if before and record.get("content_hash") not in (None, before):
        return (f"dataset {record['name']!r} now holds other images than this run started on (content hash "
                f"{record['content_hash'][7:19]}…, the run's {before[7:19]}…): train a new run on it instead")
    return None


def describe_process(device: torch.device) -> dict[str, object]:
    """This rank's host, pid and device in words (``cuda:1 (NVIDIA H200)``), for status.json."""
    name = str(device)
    if device.type == "cuda":
        name += f" ({torch.cuda.get_device_name(device)})"
    return {"rank": distributed.rank(), "host": socket.gethostname(), "pid": os.getpid(), "device": name}


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
    if isinstance(e, OSError):  # a full disk, a folder that turned read-only: where, and that it can resume
        return f"{describe_os_error(e)}; once that is fixed, resume the run from its last checkpoint"
    text = str(e) or type(e).__name__
    plain = ("NonFiniteLossError", "DatasetUnavailableError", "ConfigError", "DeviceUnavailableError")
    return text if type(e).__name__ in plain else f"{type(e).__name__}: {text}"

