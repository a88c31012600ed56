"""Reading runs: one summary per run with every figure defined once, damaged files reported (never raised) while
the other runs stay usable, and a run whose process is gone recorded as failed by whoever reads it first."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sslcore.cli import main
from sslcore.runs import DAMAGED, Run, RunStore
from sslcore.runs.files import write_json_atomic
from sslcore.runs.liveness import HEARTBEAT_STALE_SECONDS
from sslcore.runs.store import INTERRUPTED_REASON
from sslcore.runs.summary import KNN_BEST_LABEL, KNN_LAST_LABEL, summarize
from tests.conftest import tiny_config
from tests.runs.jobs_support import wait_until

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = [{"kind": "epoch", "epoch": 0, "step": 0, "knn_acc": 0.30, "elapsed": 0.1},
          {"kind": "step", "epoch": 0, "step": 1, "loss": 5.0},
          {"kind": "epoch", "epoch": 1, "step": 10, "loss": 2.5, "knn_acc": 0.70, "elapsed": 4.0},
          {"kind": "epoch", "epoch": 2, "step": 20, "loss": 2.0, "knn_acc": 0.65, "elapsed": 8.0}]
PROBE_ROW = {"method": "linear_probe", "labels_per_class": "all", "accuracy_mean": 0.9, "accuracy_std": 0.0,
             "accuracies": [0.9], "seconds": [1.0], "indices_sha256": ["0" * 64]}
PROTOCOL = {"budgets": ["all"], "repeats": 1, "train_size": 1437, "test_size": 360, "num_classes": 10}

#: (file, bytes written over it, what the reason says, whether the run can no longer be used at all)
DAMAGE = {
    "status not UTF-8": ("status.json", b'{"state": "compl\xe9ted"}', "status.json is not UTF-8 text", True),
    "status not JSON": ("status.json", b'{"state": "completed"', "status.json is not valid JSON", True),
    "status not an object": ("status.json", b'["completed"]', "status.json holds a JSON list, not an object", True),
    "config not JSON": ("config.json", b'{"data": ', "config.json is not valid JSON", True),
    "config section not an object": ("config.json", b'{"train": "fast"}',
                                     "config.json: section train is not an object", True),
    "progress not UTF-8": ("progress.json", b"\x00\xff\xfe", "progress.json is not UTF-8 text", False),
    "eval malformed": ("eval.json", b'{"results": [{"method": 3}]}', "eval.json: results[0] has no valid method",
                       False),
}


def finished(store: RunStore, name: str) -> Run:
    """A completed run as training and evaluation leave it (files written directly: no training needed)."""
    run = store.create(tiny_config(**{"train.epochs": 2}), name=name)
    run.update_status(state="completed", started=1.0, ended=9.0)
    run.append_metrics(*EPOCHS)
    write_json_atomic(run.path / "eval.json", {"results": [PROBE_ROW], "protocol": PROTOCOL})
    run.write_progress({"time": time.time(), "phase": "completed", "elapsed_s": 8.5})
    return run


def test_the_summary_of_a_finished_run(tmp_path: Path) -> None:
    s = summarize(finished(RunStore(tmp_path), "good"))
    assert (s.name, s.state, s.damaged, s.dataset, s.task, s.encoder) == (
        "good", "completed", None, "digits", "simclr", "convnet")
    assert (s.epochs_done, s.epochs_planned, s.progress, s.final_loss) == (2, 2, 1.0, 2.0)
    assert (s.knn_last, s.knn_best) == (0.65, 0.70)  # the last epoch's, and the best trained epoch's (not epoch 0)
    assert (s.probe_acc, s.duration_s, s.imported_from) == (0.9, 8.5, None)


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_file_marks_its_run_damaged_and_leaves_the_others_alone(case: str, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    name, content, reason, unusable = DAMAGE[case]
    store = RunStore(tmp_path)
    good, bad = finished(store, "good"), finished(store, "bad")
    (bad.path / name).write_bytes(content)

    summary = summarize(bad)
    assert reason in summary.damaged and (summary.state == DAMAGED) == unusable
    assert summarize(good).damaged is None and summarize(good).state == "completed"
    assert sorted(r.id for r in store.list()) == sorted([good.id, bad.id])

    assert main(["list", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert KNN_LAST_LABEL in out and KNN_BEST_LABEL in out
    [good_line] = [line for line in out.splitlines() if line.startswith(good.id)]
    assert good_line.split()[1:7] == ["completed", "2/2", "2.0000", "65.0%", "70.0%", "90.0%"]
    assert f"damaged: {reason}" in out and f"delete it with: sslcore delete {bad.id}" in out

    if unusable:  # resume and export say why in one line instead of a traceback
        for command in (["resume", bad.id], ["export", bad.id, "--out", str(tmp_path / "bad.zip")]):
            assert main([*command, "--runs-dir", str(tmp_path)]) == 2
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1 and reason in err, command
        assert not (tmp_path / "bad.zip").exists()
    assert main(["delete", bad.id, "--yes", "--runs-dir", str(tmp_path)]) == 0
    assert not bad.path.exists() and [r.id for r in store.list()] == [good.id]


def test_a_run_of_another_machine_is_judged_by_its_heartbeat(tmp_path: Path) -> None:
    # The folder is shared with the machine that trains it: its pid means nothing here, its heartbeat does.
    run = RunStore(tmp_path).create(tiny_config())
    write_json_atomic(run.path / "status.json", {**run.status(), "state": "running", "pid": 4242,
                                                 "pid_identity": "another-machine-boot-id:123456"})
    run.write_progress({"time": time.time() - 5.0, "phase": "training"})
    assert summarize(run).state == "running" and run.is_alive()

    run.write_progress({"time": time.time() - HEARTBEAT_STALE_SECONDS - 1.0, "phase": "training"})
    assert summarize(run).state == "failed"
    assert run.status()["error"] == INTERRUPTED_REASON


def cli_run_killed_with_sigkill(runs: Path) -> Run:
    """A `sslcore train` started in ``runs`` and SIGKILLed once it has logged a step: its status still says running."""
    cmd = [sys.executable, "-m", "sslcore", "train", "--dataset", "digits", "--epochs", "500", "--set",
           "train.knn_k=0", "--set", "train.snapshot_images=0", "--set", "encoder.width=8", "--set", "train.threads=1",
           "--runs-dir", str(runs)]
    process = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: any(r.state == "running" and r.metrics("step") for r in RunStore(runs).list()),
                   what="the CLI run to train")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    [run] = RunStore(runs).list()
    return run


def test_a_cli_train_killed_with_sigkill_is_failed_by_the_next_listing(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    run = cli_run_killed_with_sigkill(tmp_path / "runs")
    runs = run.path.parent
    assert run.state == "running", "nothing recorded the kill"

    assert main(["list", "--runs-dir", str(runs)]) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith(run.id)]
    assert line.split()[1] == "failed"
    error = run.status()["error"]
    assert error == INTERRUPTED_REASON and "memory" not in error  # no exit status to read: no guess
