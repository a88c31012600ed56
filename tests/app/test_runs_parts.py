"""The Runs page's pure parts: table rows from run folders (and their cache), filters, the comparison
figure, the config diff, names for runs trained again, and upload file names."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest

from sslcore.runs import RunStore
from sslcore.runs.eval_results import parse_eval_results
from sslcore.runs.files import write_json_atomic
from sslcore.runs.store import MAX_NAME_CHARS
from sslcore.runs.summary import KNN_BEST_LABEL, KNN_LAST_LABEL, epoch_records, summarize
from tests.conftest import tiny_config
from ui.forms import form_state
from ui.runs_actions import again_name, export_blocker
from ui.runs_compare import MISSING, Curves, compare_figure, config_diff, steps_per_epoch
from ui.runs_import import upload_file_name
from ui.runs_table import cached_summary, filter_frame, row_of


def _fake_run(store: RunStore, name: str, epochs: list[dict], **config: object):
    run = store.create(tiny_config(**config), name=name)
    run.append_metrics(*epochs)
    return run


PROTOCOL = {"budgets": [4, 10, "all"], "repeats": 1, "train_size": 1437}


def eval_row(method: str, budget: int | str, accuracy: float) -> dict:
    """A results row as evaluate_run writes it (one repeat)."""
    return {"method": method, "labels_per_class": budget, "accuracy_mean": accuracy, "accuracy_std": 0.0,
            "accuracies": [accuracy], "seconds": [0.1], "indices_sha256": ["0" * 64]}


def test_a_row_summarises_the_run_from_its_files(tmp_path: Path) -> None:
    run = _fake_run(RunStore(tmp_path), "mine", [
        {"kind": "epoch", "epoch": 0, "step": 0, "time": 1.0, "elapsed": 0.5, "knn_acc": 0.99},  # untrained
        {"kind": "step", "step": 1, "epoch": 0, "loss": 9.0, "time": 2.0},
        {"kind": "epoch", "epoch": 1, "step": 11, "time": 3.0, "elapsed": 2.0, "loss": 4.0, "knn_acc": 0.85},
        {"kind": "epoch", "epoch": 2, "step": 22, "time": 4.0, "elapsed": 3.5, "loss": 3.0, "knn_acc": 0.8},
    ])
    row = row_of(summarize(run))
    assert (row["name"], row["dataset"], row["task"], row["encoder"], row["status"]) == (
        "mine", "digits", "simclr", "convnet", "queued")
    assert (row["epochs"], row["progress"], row["final loss"]) == ("2/2", 1.0, 3.0)
    # Two k-NN figures, each under its own label: the last epoch's, and the best one training reached (epoch 0's
    # score is the untrained baseline, so it never counts as the best).
    assert (row[KNN_LAST_LABEL], row[KNN_BEST_LABEL]) == (0.8, 0.85)
    assert row["duration"] == pd.Timedelta(seconds=3.5) and row["probe acc"] is None
    assert row["imported"] is False and row["problem"] == ""


def test_epoch_records_skip_step_lines_a_torn_last_line_and_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create(tiny_config())
    run.metrics_path.write_bytes(b'{"kind":"step","step":1}\n{"kind":"epoch","epoch":1,"loss":2.0}\n'
                                 b'{"kind":"epoch","epoch":2,"loss":\xff}\n{"kind":"epoch","epo')
    assert epoch_records(run) == [{"kind": "epoch", "epoch": 1, "loss": 2.0}]


def test_probe_accuracy_prefers_all_labels_then_the_largest_budget() -> None:
    rows = [eval_row("linear_probe", 4, 0.8), eval_row("knn", "all", 0.9), eval_row("linear_probe", 10, 0.85)]
    assert parse_eval_results({"results": rows, "protocol": PROTOCOL}).probe_accuracy() == 0.85
    rows.append(eval_row("linear_probe", "all", 0.97))
    assert parse_eval_results({"results": rows, "protocol": PROTOCOL}).probe_accuracy() == 0.97
    assert parse_eval_results({"results": [], "protocol": PROTOCOL}).probe_accuracy() is None


def test_the_cached_row_changes_when_the_run_writes_and_not_otherwise(tmp_path: Path) -> None:
    run = _fake_run(RunStore(tmp_path), "cached", [{"kind": "epoch", "epoch": 1, "step": 5, "loss": 2.0, "time": 1.0}])
    first = cached_summary(run)
    assert cached_summary(run) is first
    time.sleep(0.01)
    run.append_metrics({"kind": "epoch", "epoch": 2, "step": 10, "loss": 1.5, "time": 2.0})
    assert cached_summary(run).final_loss == 1.5
    run.rename("renamed")
    assert cached_summary(run).name == "renamed"
    write_json_atomic(run.path / "eval.json", {"results": [eval_row("linear_probe", "all", 0.9)], "protocol": PROTOCOL})
    os.utime(run.path / "eval.json", ns=(time.time_ns(), time.time_ns()))
    assert cached_summary(run).probe_acc == 0.9


def test_filters_search_name_tags_and_id_and_restrict_columns() -> None:
    frame = pd.DataFrame({"id": ["r1", "r2", "r3"], "name": ["Quick demo", "baseline", "long"],
                          "tags": [["demo"], [], ["Paper"]], "dataset": ["digits", "mnist5k", "digits"],
                          "task": ["simclr", "rotation", "simclr"], "encoder": ["convnet"] * 3,
                          "status": ["completed", "failed", "running"]})
    assert filter_frame(frame, "QUICK")["id"].tolist() == ["r1"]
    assert filter_frame(frame, "paper")["id"].tolist() == ["r3"]
    assert filter_frame(frame, "r2")["id"].tolist() == ["r2"]
    assert filter_frame(frame, "", {"dataset": ["digits"], "status": ["running", "failed"]})["id"].tolist() == ["r3"]
    assert filter_frame(frame, "", {"task": []})["id"].tolist() == ["r1", "r2", "r3"]


def _curves(label: str, per_epoch: int, knn: list[float | None]) -> Curves:
    steps = list(range(1, 2 * per_epoch + 1))
    return Curves(label, steps, [5.0 - 0.1 * s for s in steps], [100.0 + s for s in steps], [0, 1, 2],
                  [0, per_epoch, 2 * per_epoch], [100.0, 100.0 + per_epoch, 100.0 + 2 * per_epoch], knn)


@pytest.mark.parametrize("mode", ["epoch", "wall time"])
def test_compare_figure_overlays_each_runs_loss_and_knn_in_one_colour(mode: str) -> None:
    fig = compare_figure([_curves("a", 10, [0.5, 0.7, 0.8]), _curves("b", 4, [0.5, None, 0.9])], mode)
    go.Figure(fig)  # valid plotly
    json.dumps(fig, allow_nan=False)  # valid JSON: a missing k-NN score is a gap (None), not NaN
    names = [(t["name"], t.get("yaxis", "y")) for t in fig["data"]]
    assert names == [("a", "y"), ("a", "y2"), ("b", "y"), ("b", "y2")]
    a_loss, a_knn, b_loss, b_knn = fig["data"]
    assert a_loss["line"]["color"] == a_knn["line"]["color"] != b_loss["line"]["color"]
    assert a_loss["legendgroup"] == a_knn["legendgroup"] == "a" and a_knn["showlegend"] is False
    assert b_knn["y"] == [0.5, None, 0.9]
    if mode == "epoch":  # runs with different epoch lengths line up: both end at epoch 2
        assert a_loss["x"][-1] == b_loss["x"][-1] == 2.0
    else:  # minutes since each run's first record
        assert b_loss["x"][-1] == pytest.approx(8 / 60) and a_knn["x"][0] == 0.0


def test_steps_per_epoch_is_unknown_before_the_first_epoch_ends() -> None:
    assert steps_per_epoch(_curves("a", 7, [0.1, 0.2, 0.3])) == 7
    assert steps_per_epoch(Curves("b", [1, 2], [1.0, 0.9], [1.0, 2.0], [0], [0], [0.0], [0.1])) is None


def test_config_diff_shows_only_fields_that_differ_one_column_per_run() -> None:
    a = tiny_config(**{"train.lr": 0.01}).to_dict()
    b = tiny_config("rotation").to_dict()
    diff = config_diff({"run a": a, "run b": b})
    assert list(diff.columns) == ["run a", "run b"]
    assert diff.loc["train.lr"].tolist() == ["0.01", "0.002"]
    assert diff.loc["task.name"].tolist() == ['"simclr"', '"rotation"']
    assert diff.loc["task.temperature"].tolist() == ["0.2", MISSING]  # a parameter only SimCLR has
    assert "train.epochs" not in diff.index and "data.dataset" not in diff.index
    assert config_diff({"x": a, "y": a}).empty


def test_again_name_marks_the_copy_once_and_stays_within_the_limit() -> None:
    assert again_name("baseline") == "baseline (again)"
    assert again_name("baseline (again)") == "baseline (again)"
    assert len(again_name("x" * MAX_NAME_CHARS)) == MAX_NAME_CHARS


@pytest.mark.parametrize("name, expected", [("run.zip", "run.zip"), ("../../etc/run.zip", "run.zip"),
                                            ("C:evil\n.zip", "upload.zip"), (".zip", "upload.zip"),
                                            ("notes.txt", "upload.zip")])
def test_upload_file_names_are_reduced_to_a_plain_zip_name(name: str, expected: str) -> None:
    assert upload_file_name(name) == expected


def test_form_state_covers_every_widget_of_the_config_as_its_widget_holds_it() -> None:
    config = tiny_config("rotation", **{"train.lr": 0.01, "data.download": True})
    state = form_state(config)
    assert state["form.data.dataset"] == "digits" and state["form.task.name"] == "rotation"
    assert state["form.train.lr"] == 0.01 and state["form.encoder.width"] == 8 and state["form.data.download"] is True
    assert isinstance(state["form.train.warmup_epochs"], float)
    assert "form.task.rotation.hidden_dim" in state and "form.data.root" not in state


def test_a_run_without_weights_is_not_offered_for_export(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create(tiny_config())  # queued, never started: no checkpoint yet
    assert "has no weights yet" in export_blocker(run)
    run.checkpoint_dir.mkdir()
    (run.checkpoint_dir / "last.pt").write_bytes(b"")
    assert export_blocker(run) is None
