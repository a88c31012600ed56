"""The evaluation background job end to end: a real worker process evaluates a short run into eval.json."""
from __future__ import annotations

import fcntl
import functools
import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sslcore.data import load_dataset
from sslcore.engine.training_run import execute_run
from sslcore.evaluation.methods import ALL_METHODS, COST, DETERMINISTIC
from sslcore.evaluation.predictions import PREDICTIONS_FILE, load_predictions, prediction_key
from sslcore.evaluation.protocol import evaluate_run, indices_hash, label_subsets
from sslcore.runs import Run, RunStore
from sslcore.runs.eval_manager import DEAD_REASON, EvalBusyError, EvalJobManager, EvalRequest, read_job
from tests.conftest import tiny_config
from tests.runs.jobs_support import wait_until

BUDGETS = (1, 4, "all")
FAST = {"max_steps": 20, "eval_every": 10, "steps_without_holdout": 10}
# Long enough to be caught running (and cancelled or killed); never run to the end.
SLOW = {"max_steps": 100_000, "eval_every": 100_000, "patience": 100, "steps_without_holdout": 100_000}


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A one-epoch SimCLR run on digits, evaluated by a job with every method (fine-tuning too), 2 repeats."""
    torch.set_num_threads(1)
    store = RunStore(tmp_path_factory.mktemp("runs").resolve())
    run = store.create(tiny_config("simclr", **{"train.epochs": 1}))
    assert execute_run(run) == "completed"
    manager = EvalJobManager(store.root)
    manager.start(run, EvalRequest(BUDGETS, repeats=2, seed=5, methods=ALL_METHODS, supervised=FAST))
    fractions = []
    while (job := manager.status(run))["state"] in ("queued", "running"):
        fractions.append(job.get("fraction", 0.0))
        time.sleep(0.05)
    return {"store": store, "run": run, "manager": manager, "job": job, "fractions": fractions,
            "result": json.loads((run.path / "eval.json").read_text())}


@pytest.fixture
def slow_job(done: dict[str, Any]) -> Iterator[tuple[EvalJobManager, Run]]:
    """A second run whose evaluation job is running (a supervised fit that would take hours); stopped after."""
    store, manager = done["store"], done["manager"]
    run = store.create(tiny_config("simclr", **{"train.epochs": 1}))
    assert execute_run(run) == "completed"
    manager.start(run, EvalRequest(("all",), repeats=1, methods=("supervised",), supervised=SLOW))
    wait_until(lambda: read_job(run).get("message", "").startswith("loading"), what="the job to start running")
    yield manager, run
    if manager.status(run)["state"] in ("queued", "running"):
        manager.cancel(run)
        manager.wait(run, timeout=60)


def copy_of(run: Run, folder: Path) -> Run:
    """The run's folder copied into ``folder``: for tests that evaluate again, so others keep the job's files."""
    return Run(Path(shutil.copytree(run.path, folder / run.id)))


def test_job_reports_every_method_and_budget(done: dict[str, Any]) -> None:
    job, result, run = done["job"], done["result"], done["run"]
    assert job["state"] == "completed" and job["fraction"] == 1.0 and job["pid"] and job["ended"] >= job["started"]
    assert job["request"]["budgets"] == list(BUDGETS) and job["request"]["methods"] == list(ALL_METHODS)
    rows = {(r["method"], r["labels_per_class"]): r for r in result["results"]}
    assert set(rows) == {(m, b) for m in ALL_METHODS for b in BUDGETS}
    assert all(len(r["accuracies"]) == 2 and all(0.0 <= a <= 1.0 for a in r["accuracies"]) for r in rows.values())
    assert done["fractions"] == sorted(done["fractions"])  # progress only moves forward
    assert (run.path / "eval_log.txt").exists()  # the worker's output, kept for a failure's details
    assert not (run.path / "EVAL_STOP").exists()


def test_a_job_records_each_row_as_it_finishes_the_quick_methods_first(done: dict[str, Any]) -> None:
    job, result = done["job"], done["result"]
    stored = {(r["method"], r["labels_per_class"]): r for r in result["results"]}
    order = [(r["method"], r["labels_per_class"]) for r in job["rows"]]
    assert len(order) == len(set(order)) and set(order) == set(stored)  # every row, once
    costs = [COST[method] for method, _ in order]
    assert costs == sorted(costs) and costs[0] < costs[-1]  # the probes' figures come before the networks'
    for row in job["rows"]:  # the figures the page shows early are the ones eval.json keeps
        kept = stored[(row["method"], row["labels_per_class"])]
        assert row["accuracies"] == kept["accuracies"] and row["accuracy_mean"] == kept["accuracy_mean"]
    # eval.json keeps the budget-major order whatever the order of the work
    assert list(stored) == [(m, b) for b in BUDGETS for m in ALL_METHODS]


def test_a_running_job_shows_the_finished_rows_while_the_network_trains(done: dict[str, Any]) -> None:
    manager, run = done["manager"], copy_of(done["run"], done["store"].root / "early")
    manager.start(run, EvalRequest((1, "all"), repeats=1, methods=("supervised", "knn"), supervised=SLOW,
                                   force=True))
    try:
        wait_until(lambda: len(read_job(run).get("rows") or []) == 2, what="the k-NN rows")
        job = read_job(run)
        assert job["state"] == "running"  # the supervised network is still training
        assert [(r["method"], r["labels_per_class"]) for r in job["rows"]] == [("knn", 1), ("knn", "all")]
        assert all(0.0 <= r["accuracy_mean"] <= 1.0 for r in job["rows"])
    finally:
        manager.cancel(run)
        manager.wait(run, timeout=60)


def test_repeats_draw_different_subsets_reproducibly(done: dict[str, Any], tmp_path: Path) -> None:
    result, run = done["result"], copy_of(done["run"], tmp_path)
    recorded = {(s["labels_per_class"], s["repeat"]): s for s in result["subsets"]}
    assert recorded[(4, 0)]["indices"] != recorded[(4, 1)]["indices"]  # each repeat its own labelled images
    expected = label_subsets(load_dataset("digits").train.labels, BUDGETS, 2, seed=5)
    for budget in (1, 4):
        for r in range(2):
            assert recorded[(budget, r)]["indices"] == expected[(budget, r)].tolist()
    again = evaluate_run(run, list(BUDGETS), repeats=2, seed=5, methods=sorted(DETERMINISTIC & set(ALL_METHODS)),
                         force=True)  # those of image data
    first = {(r["method"], r["labels_per_class"]): r for r in result["results"]}
    for row in again["results"]:  # same seed: same subsets, same scores
        assert row["indices_sha256"] == first[(row["method"], row["labels_per_class"])]["indices_sha256"]
        assert row["accuracies"] == first[(row["method"], row["labels_per_class"])]["accuracies"]
    other = evaluate_run(run, [4], repeats=1, seed=6, methods=["knn"])
    assert other["results"][0]["indices_sha256"][0] == indices_hash(expected[(4, 1)])  # repeat r uses seed + r
    assert other["results"][0]["indices_sha256"][0] != first[("knn", 4)]["indices_sha256"][0]


def test_probe_baseline_and_finetuning_use_the_same_labelled_images(done: dict[str, Any]) -> None:
    result = done["result"]
    rows = {(r["method"], r["labels_per_class"]): r for r in result["results"]}
    labels = load_dataset("digits").train.labels.numpy()
    for subset in result["subsets"]:
        budget, r = subset["labels_per_class"], subset["repeat"]
        expected = subset["indices_sha256"]
        assert {rows[(m, budget)]["indices_sha256"][r] for m in ALL_METHODS} == {expected}
        if budget != "all":
            idx = np.array(subset["indices"])
            assert indices_hash(idx) == expected and (np.bincount(labels[idx]) == budget).all()


def test_test_predictions_are_kept_for_the_confusion_matrix(done: dict[str, Any]) -> None:
    result, run = done["result"], done["run"]
    saved = load_predictions(run.path / PREDICTIONS_FILE)
    assert np.array_equal(saved["test_labels"], load_dataset("digits").test.labels.numpy())
    for row in result["results"]:
        for r, accuracy in enumerate(row["accuracies"]):
            predicted = saved[prediction_key(row["method"], row["labels_per_class"], r)]
            assert np.mean(predicted == saved["test_labels"]) == pytest.approx(accuracy)


def test_an_unchanged_request_reuses_the_results(done: dict[str, Any]) -> None:
    run, manager = done["run"], done["manager"]
    before = (run.path / "eval.json").stat().st_mtime_ns
    manager.start(run, EvalRequest(BUDGETS, repeats=2, seed=5, methods=ALL_METHODS, supervised=FAST))
    assert manager.wait(run, timeout=120) == "completed"
    assert "reused" in read_job(run)["message"]
    assert (run.path / "eval.json").stat().st_mtime_ns == before


def test_cancel_stops_the_job_and_writes_nothing(slow_job: tuple[EvalJobManager, Run]) -> None:
    manager, run = slow_job
    with pytest.raises(EvalBusyError, match="already being evaluated"):  # one job per run
        manager.start(run, EvalRequest((1,), repeats=1, methods=("knn",)))
    wait_until(lambda: read_job(run).get("state") == "running", what="the job to run")
    started = time.monotonic()
    manager.cancel(run)
    assert manager.wait(run, timeout=30) == "cancelled"
    assert time.monotonic() - started < 10  # mid-fit: the signal does not wait for the fit to end
    assert not (run.path / "eval.json").exists() and not (run.path / PREDICTIONS_FILE).exists()


def test_a_killed_worker_is_reported_as_failed(slow_job: tuple[EvalJobManager, Run]) -> None:
    manager, run = slow_job
    os.kill(read_job(run)["pid"], signal.SIGKILL)
    wait_until(lambda: manager.status(run)["state"] == "failed", timeout=30, what="the dead job to be failed")
    assert read_job(run)["error"] == DEAD_REASON


def test_a_job_waits_for_a_free_training_slot(done: dict[str, Any]) -> None:
    store, manager = done["store"], done["manager"]
    run = copy_of(done["run"], store.root / "copies")
    slots = run.path.parent / ".slots"  # the slots of the runs folder the job's run is in
    slots.mkdir(exist_ok=True)
    held = [open(slots / f"slot-{i}.lock", "w") for i in range(manager.max_concurrent)]
    try:
        # A worker killed by an earlier test may still be tearing down its threads (its main thread already a
        # zombie) for a moment, and holds its slot until the last thread is gone.
        for f in held:
            wait_until(functools.partial(_try_lock, f), timeout=30, what="the slot to be free")
        manager.start(run, EvalRequest((1,), repeats=1, methods=("knn",), force=True))
        time.sleep(3.0)  # long enough for the worker to start and look for a slot
        assert read_job(run)["state"] == "queued" and read_job(run)["pid"]
    finally:
        for f in held:
            f.close()
    assert manager.wait(run, timeout=60) == "completed"


def _try_lock(f: Any) -> bool:
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def test_bad_requests_are_refused_before_anything_starts(done: dict[str, Any], tmp_path: Path) -> None:
    manager, run = done["manager"], done["run"]
    for request, message in [(EvalRequest((0,)), "label budget"), (EvalRequest(methods=("magic",)), "magic"),
                             (EvalRequest(repeats=0), "repeats = 0"),
                             (EvalRequest(supervised={"epochs": 3}), "'epochs' is not allowed")]:
        with pytest.raises(ValueError, match=message):
            manager.start(run, request)
    untrained = RunStore(tmp_path).create(tiny_config())
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        manager.start(untrained, EvalRequest())
    assert read_job(untrained) == {}
