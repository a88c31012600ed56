"""Network fits in single-threaded worker processes: the same numbers as in-process, errors that arrive whole,
and no worker left computing after a cancel, a failure or the evaluation's own death."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from sslcore.config import default_config
from sslcore.data import load_run_data
from sslcore.engine.training_run import execute_run
from sslcore.evaluation import evaluate_run, parallel_fits, shared_tensors
from sslcore.evaluation import protocol as protocol_module
from sslcore.evaluation.parallel_fits import FitPool, FitTraceback, fit_processes
from sslcore.evaluation.protocol import label_subsets, labelled_data
from sslcore.runs import RunStore

ROOT = Path(__file__).resolve().parents[2]
CONFIG = {"data.dataset": "digits", "task.name": "autoencoder", "train.epochs": 1, "encoder.width": 8,
          "train.threads": 1, "train.snapshot_images": 2}
QUICK = {"max_steps": 12, "eval_every": 4, "steps_without_holdout": 6, "batch_size": 32}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    run = RunStore(tmp_path_factory.mktemp("runs")).create(default_config(**CONFIG))
    assert execute_run(run) == "completed"
    return run


@pytest.fixture
def threads():
    """Set torch's thread count for one test, then give the old one back."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def pool_for(run, processes: int = 2) -> tuple[FitPool, object]:
    data = labelled_data(load_run_data(run.config().data))
    return FitPool(processes, run.config(), data, QUICK, 0, {}), data  # no fine-tuning: no encoder weights needed


def test_processes_only_on_a_cpu_with_threads_and_fits_to_spare() -> None:
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert fit_processes(cpu, fits=15, threads=2) == 2
    assert fit_processes(cpu, fits=15, threads=64) == 8  # capped: each worker holds the data and torch
    assert fit_processes(cpu, fits=1, threads=2) == 0 and fit_processes(cpu, fits=15, threads=1) == 0
    assert fit_processes(gpu, fits=15, threads=16) == 0  # one GPU: the fits take turns in the evaluation's process


def test_fits_in_processes_give_the_numbers_of_single_threaded_fits_here(run, threads, monkeypatch) -> None:
    budgets, methods = [2, "all"], ["supervised", "finetune"]
    threads(2)  # two threads to spend: two worker processes of one thread each
    pooled = evaluate_run(run, budgets, repeats=2, methods=methods, supervised=QUICK, force=True)
    threads(1)  # one thread: the fits run here, one by one, single-threaded as in the workers
    here = evaluate_run(run, budgets, repeats=2, methods=methods, supervised=QUICK, force=True)
    assert pooled["environment"]["network_processes"] == 2 and here["environment"]["network_processes"] == 0
    for a, b in zip(pooled["results"], here["results"], strict=True):
        assert (a["method"], a["labels_per_class"]) == (b["method"], b["labels_per_class"])
        assert a["accuracies"] == b["accuracies"], a["method"]
        assert [d["best_step"] for d in a["details"]] == [d["best_step"] for d in b["details"]]
        assert all(s > 0 for s in a["seconds"])  # each fit's own time, measured in its worker
    for result in (pooled, here):  # what eval.json says the networks trained in is what every fit did
        precisions = {d["precision"] for r in result["results"] for d in r["details"]}
        assert precisions == {result["environment"]["network_precision"]}


@pytest.mark.skipif(not shared_tensors.sharing_available(), reason="no memfd_create on this platform")
def test_fits_on_a_split_in_shared_memory_give_the_numbers_of_fits_here(run, threads, monkeypatch) -> None:
    shared: list[int] = []
    dumps = parallel_fits.dumps_sharing

    def recording(obj):  # noqa: ANN001, ANN202
        payload, fds = dumps(obj)
        shared.extend(fds)
        return payload, fds

    monkeypatch.setattr(shared_tensors, "SHARE_BYTES", 1024)  # digits' images (92 KB) are shared as CIFAR-10's are
    monkeypatch.setattr(parallel_fits, "dumps_sharing", recording)
    threads(2)
    pooled = evaluate_run(run, [2, "all"], repeats=2, methods=["supervised"], supervised=QUICK, force=True)
    threads(1)
    here = evaluate_run(run, [2, "all"], repeats=2, methods=["supervised"], supervised=QUICK, force=True)
    assert len(shared) >= 2, "the training and test images went through shared memory"
    assert pooled["environment"]["network_processes"] == 2
    assert [r["accuracies"] for r in pooled["results"]] == [r["accuracies"] for r in here["results"]]


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_the_networks_precision_setting_reaches_the_worker_processes(run, threads, precision: str) -> None:
    threads(2)
    result = evaluate_run(run, [2], repeats=2, methods=["supervised", "finetune"],
                          supervised={**QUICK, "precision": precision}, force=True)
    assert result["environment"]["network_processes"] == 2
    assert result["environment"]["network_precision"] == precision
    assert {d["precision"] for r in result["results"] for d in r["details"]} == {precision}


def test_an_error_in_a_fit_reaches_the_caller_whole_and_the_workers_end(run, threads, monkeypatch) -> None:
    threads(2)
    started: list[FitPool] = []
    original = protocol_module.FitPool

    def recording_pool(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        started.append(original(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(protocol_module, "FitPool", recording_pool)
    with pytest.raises(TypeError) as raised:  # a learning rate that is not a number fails inside the fit
        evaluate_run(run, [2], repeats=2, methods=["supervised"], supervised={**QUICK, "lr": "fast"}, force=True)
    assert isinstance(raised.value.__cause__, FitTraceback) and "in the fit process" in str(raised.value.__cause__)
    assert started and all(worker.poll() is not None for worker in started[0]._workers)


def test_a_cancelled_evaluation_kills_its_fits(run, threads, monkeypatch) -> None:
    threads(2)
    started: list[FitPool] = []
    original = protocol_module.FitPool
    monkeypatch.setattr(protocol_module, "FitPool", lambda *a, **k: started.append(original(*a, **k)) or started[-1])

    class Cancelled(Exception):
        pass

    def cancel(fraction: float, message: str) -> None:  # at the first tick: a linear probe's, fits under way
        raise Cancelled

    slow = {**QUICK, "max_steps": 100_000, "eval_every": 100_000}  # fits that would run for minutes
    began = time.perf_counter()
    with pytest.raises(Cancelled):
        evaluate_run(run, [2, 4], repeats=2, methods=["linear_probe", "supervised"], supervised=slow,
                     progress=cancel, force=True)
    assert started and all(worker.poll() is not None for worker in started[0]._workers)
    assert time.perf_counter() - began < 60


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie (an orphan's exit may wait for a reaper that never comes)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def test_workers_exit_when_the_evaluation_process_dies(run, tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import os, sys, time
        import torch
        from sslcore.config import default_config
        from sslcore.data import load_run_data
        from sslcore.evaluation.parallel_fits import FitPool
        from sslcore.evaluation.protocol import labelled_data
        from sslcore.runs import Run
        from pathlib import Path
        run = Run(Path({str(run.path)!r}))
        data = labelled_data(load_run_data(run.config().data))
        pool = FitPool(2, run.config(), data, {{"max_steps": 100000, "eval_every": 100000}}, 0, {{}})
        futures = [pool.submit("supervised", __import__("numpy").arange(200), r) for r in range(2)]
        time.sleep(3)  # the fits are under way
        print(" ".join(str(w.pid) for w in pool._workers), flush=True)
        os._exit(0)  # killed as a cancelled evaluation worker is: no clean-up
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    pids = [int(p) for p in result.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.2)
    assert not any(alive(pid) for pid in pids), "a fit went on computing for nobody"


def test_a_pool_can_be_used_directly_and_closed(run) -> None:
    pool, data = pool_for(run)
    subsets = label_subsets(data.train.labels, [3], 2, seed=0)
    futures = [pool.submit("supervised", subsets[(3, r)], r) for r in range(2)]
    results = [f.result(timeout=120) for f in futures]
    pool.close()
    for predicted, details, seconds in results:
        assert predicted.shape == (len(data.test),) and np.isin(predicted, np.unique(data.test.labels)).all()
        assert details["steps"] <= QUICK["max_steps"] and seconds > 0
    assert all(worker.poll() == 0 for worker in pool._workers)
