"""AppTest: the Runs page lists, filters, compares, resumes, trains again, renames, deletes, exports and imports.

Three tiny real runs are trained once for the module (digits, width-8 convnet): two completed, one
cancelled after its first of two epochs by the real engine. Each test works on its own copy of them.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from sslcore.cli import main
from sslcore.engine.callbacks import Callback
from sslcore.engine.state import TrainState
from sslcore.engine.training_run import execute_run
from sslcore.evaluation.protocol import evaluate_run
from sslcore.runs import Run, RunStore
from sslcore.runs.archive import ArchiveError, import_run
from sslcore.runs.process_manager import JobManager
from sslcore.runs.summary import KNN_BEST_LABEL, KNN_LAST_LABEL, percent
from tests.app.conftest import APP, TIMEOUT, open_page, shown
from tests.conftest import tiny_config
from tests.runs.jobs_support import TIMEOUT as JOB_TIMEOUT
from ui.runs_actions import export_bytes

RUNS = "app_pages/runs.py"
TRAIN = "app_pages/train.py"


class StopAfterFirstEpoch(Callback):
    """What the STOP file does, at an exact point: the run ends 'cancelled' after epoch 1 of 2."""

    def on_epoch_end(self, state: TrainState) -> None:
        if state.epoch == 1:
            state.stop_reason = "cancelled"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = RunStore(tmp_path_factory.mktemp("template") / "runs")
    alpha = store.create(tiny_config(**{"train.epochs": 1}), name="alpha")
    beta = store.create(tiny_config("rotation", **{"train.epochs": 1, "train.lr": 0.01}), name="beta")
    gamma = store.create(tiny_config(**{"train.epochs": 2}), name="gamma")
    assert execute_run(alpha) == execute_run(beta) == "completed"
    assert execute_run(gamma, extra_callbacks=[StopAfterFirstEpoch()]) == "cancelled"
    evaluate_run(alpha, ["all"], repeats=1, methods=["linear_probe"])  # a real eval.json for the probe column
    return store.root


@pytest.fixture
def runs(jobs: JobManager, template: Path) -> dict[str, Run]:
    """The three runs, copied into this test's runs folder, by name."""
    shutil.copytree(template, jobs.store.root)
    return {run.status()["name"]: run for run in jobs.store.list()}


def table(at: AppTest):  # noqa: ANN201 - the runs table as a DataFrame
    return at.dataframe[0].value


def button(at: AppTest, label: str):  # noqa: ANN201 - an AppTest Button
    [found] = [b for b in at.button if b.label == label]
    return found


def choose(at: AppTest, *runs: Run) -> AppTest:
    return at.multiselect(key="runs.chosen").set_value([r.id for r in runs]).run()


def test_the_table_lists_every_run_with_its_summary(runs: dict[str, Run]) -> None:
    at = open_page(RUNS)
    assert not at.exception
    rows = table(at).set_index("name")
    assert sorted(rows.index) == ["alpha", "beta", "gamma"]
    assert rows.loc["gamma", ["dataset", "task", "encoder", "status", "epochs"]].tolist() == [
        "digits", "simclr", "convnet", "cancelled", "1/2"]
    assert (rows.loc["beta", "task"], rows.loc["beta", "status"], rows.loc["beta", "epochs"]) == (
        "rotation", "completed", "1/1")
    assert rows.loc["gamma", "progress"] == 0.5 and rows.loc["alpha", "progress"] == 1.0
    assert all(0.0 < v <= 1.0 for v in rows[KNN_BEST_LABEL]) and all(rows["final loss"] > 0)
    assert all(0.0 < v <= 1.0 for v in rows[KNN_LAST_LABEL])
    assert rows.loc["alpha", "open"] == f"train?run={runs['alpha'].id}"
    assert rows["duration"].dt.total_seconds().gt(0).all()
    [probe] = [r["accuracy_mean"] for r in runs["alpha"].eval_results()["results"] if r["method"] == "linear_probe"]
    assert rows.loc["alpha", "probe acc"] == probe and rows["probe acc"].isna().sum() == 2
    assert at.dataframe[0].proto.placeholder == "—"  # the two runs never evaluated read a dash there, not "None"


def test_runs_page_home_and_sslcore_list_show_the_same_figures_under_the_same_labels(
        runs: dict[str, Run], jobs: JobManager, capsys: pytest.CaptureFixture) -> None:
    figures = ["status", "epochs", "final loss", KNN_LAST_LABEL, KNN_BEST_LABEL]
    runs_page = table(open_page(RUNS)).set_index("id")
    home = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    home_rows = home.dataframe[0].value
    home_rows.index = [url.rsplit("=", 1)[-1] for url in home_rows["open"]]
    assert main(["list", "--runs-dir", str(jobs.store.root)]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert KNN_LAST_LABEL in header and KNN_BEST_LABEL in header  # the CLI labels its k-NN figures the same way
    listed = {line.split()[0]: line.split() for line in lines}

    for name, run in runs.items():
        page, front = runs_page.loc[run.id], home_rows.loc[run.id]
        assert page[figures].tolist() == front[figures].tolist(), name
        # The CLI prints: id, state, epochs, final loss, k-NN (last epoch), best k-NN, probe acc, name.
        _, state, epochs, loss, knn_last, knn_best, probe, *_ = listed[run.id]
        assert [state, epochs, loss, knn_last, knn_best, probe] == [
            page["status"], page["epochs"], f"{page['final loss']:.4f}", percent(page[KNN_LAST_LABEL]),
            percent(page[KNN_BEST_LABEL]), percent(None if pd.isna(page["probe acc"]) else page["probe acc"])], name
    # gamma stopped after epoch 1 of 2: both k-NN figures are that epoch's, in every listing
    gamma = runs_page.loc[runs["gamma"].id]
    assert gamma[KNN_LAST_LABEL] == gamma[KNN_BEST_LABEL] == runs["gamma"].metrics("epoch")[-1]["knn_acc"]


def test_search_and_filters_narrow_the_table(runs: dict[str, Run]) -> None:
    at = open_page(RUNS)
    at.multiselect(key="runs.filter.task").set_value(["simclr"]).run()
    assert sorted(table(at)["name"]) == ["alpha", "gamma"]
    at.multiselect(key="runs.filter.status").set_value(["cancelled"]).run()
    assert table(at)["name"].tolist() == ["gamma"]
    at.multiselect(key="runs.filter.status").set_value([]).run()
    at.text_input(key="runs.filter.query").set_value("ALP").run()
    assert table(at)["name"].tolist() == ["alpha"]
    assert any("1 of 3 runs match" in c.value for c in at.caption)


def test_ticking_two_rows_overlays_their_curves_and_shows_the_config_diff(runs: dict[str, Run]) -> None:
    at = open_page(RUNS)
    shown = table(at)["name"].tolist()
    rows = [shown.index("alpha"), shown.index("beta")]
    at.session_state[at.dataframe[0].key] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    at.run()

    assert not at.exception
    assert at.multiselect(key="runs.chosen").value == [runs["alpha"].id, runs["beta"].id]
    chart, collapse = at.get("plotly_chart")
    traces = json.loads(chart.proto.spec)["data"]
    assert [(t["name"], t.get("yaxis", "y")) for t in traces] == [
        ("alpha", "y"), ("alpha", "y2"), ("beta", "y"), ("beta", "y2")]
    assert all(len(t["x"]) > 1 for t in traces)
    collapse_traces = json.loads(collapse.proto.spec)["data"]  # effective rank and spread, per run
    assert [(t["name"], len(t["y"])) for t in collapse_traces] == [("alpha", 2), ("alpha", 2), ("beta", 2), ("beta", 2)]
    diff = at.dataframe[1].value
    assert list(diff.columns) == ["alpha", "beta"]
    assert diff.loc["task.name"].tolist() == ['"simclr"', '"rotation"']
    assert diff.loc["train.lr"].tolist() == ["0.002", "0.01"]
    assert "train.epochs" not in diff.index  # the same in both: not shown

    at.segmented_control(key="runs.compare.x").set_value("wall time").run()
    chart, _ = at.get("plotly_chart")
    assert "wall time" in json.loads(chart.proto.spec)["layout"]["xaxis2"]["title"]["text"]


def test_delete_asks_first_and_removes_the_folder_only_when_confirmed(runs: dict[str, Run]) -> None:
    alpha = runs["alpha"]
    at = choose(open_page(RUNS), alpha)
    button(at, "Delete").click().run()
    assert alpha.path.exists()
    assert any("Delete **alpha**" in w.value for w in at.warning)

    button(at, "Keep it").click().run()
    assert alpha.path.exists() and not any("Delete **alpha**" in w.value for w in at.warning)

    button(at, "Delete").click().run()
    button(at, "Really delete alpha").click().run()
    assert not at.exception
    assert not alpha.path.exists()
    assert any("Deleted **alpha**" in s.value for s in at.success)
    assert sorted(table(at)["name"]) == ["beta", "gamma"]
    assert at.multiselect(key="runs.chosen").value == []


def test_rename_and_tag_are_saved_and_a_bad_tag_changes_nothing(runs: dict[str, Run]) -> None:
    beta = runs["beta"]
    at = choose(open_page(RUNS), beta)
    at.text_input(key=f"runs.name.{beta.id}").set_value("beta, renamed")
    at.multiselect(key=f"runs.tags.{beta.id}").set_value(["baseline", "lr:0.01"])
    button(at, "Save name and tags").click().run()
    assert not at.exception
    assert beta.status()["name"] == "beta, renamed" and beta.tags() == ["baseline", "lr:0.01"]
    assert "beta, renamed" in table(at)["name"].tolist()

    at.text_input(key=f"runs.name.{beta.id}").set_value("not saved")
    at.multiselect(key=f"runs.tags.{beta.id}").set_value(["bad tag!"])
    button(at, "Save name and tags").click().run()
    assert any("tag 'bad tag!' is not allowed" in shown(e.value) for e in at.error)
    assert beta.status()["name"] == "beta, renamed" and beta.tags() == ["baseline", "lr:0.01"]


def test_an_exported_zip_imports_as_a_new_run_and_a_bad_zip_is_refused(runs: dict[str, Run], tmp_path: Path) -> None:
    data = export_bytes(runs["gamma"])  # what the Export button serves
    at = open_page(RUNS)
    at.file_uploader(key="runs.import").set_value(("gamma.zip", data, "application/zip")).run()
    assert not at.exception
    assert any("Imported **gamma.zip**" in shown(s.value) for s in at.success)
    assert len(table(at)) == 4 and table(at)["name"].tolist().count("gamma") == 2
    [imported] = at.multiselect(key="runs.chosen").value
    assert imported != runs["gamma"].id
    assert Run(runs["gamma"].path.parent / imported).metrics("epoch") == runs["gamma"].metrics("epoch")
    at.run()  # the file is still in the box: it is not imported a second time
    assert len(table(at)) == 4

    crafted = io.BytesIO()
    with zipfile.ZipFile(crafted, "w") as zf:
        zf.writestr("config.json", "{}")
        zf.writestr("../escape.txt", "outside the run folder")
    (tmp_path / "bad.zip").write_bytes(crafted.getvalue())
    with pytest.raises(ArchiveError) as refused:
        import_run(tmp_path / "bad.zip", RunStore(tmp_path / "elsewhere"))
    at.file_uploader(key="runs.import").set_value(("bad.zip", crafted.getvalue(), "application/zip")).run()
    assert [shown(e.value) for e in at.error] == [f"**bad.zip** was not imported: {refused.value}"]
    assert len(table(at)) == 4


def test_the_export_button_is_offered_for_a_finished_run(runs: dict[str, Run]) -> None:
    at = choose(open_page(RUNS), runs["alpha"])
    [export] = at.download_button
    assert export.label == "Export .zip" and not export.disabled
    with zipfile.ZipFile(io.BytesIO(export_bytes(runs["alpha"]))) as zf:
        assert {"config.json", "metrics.csv", "encoder.safetensors", "README.md"} <= set(zf.namelist())


def test_resume_continues_a_cancelled_run_in_the_same_folder(runs: dict[str, Run], jobs: JobManager) -> None:
    gamma = runs["gamma"]
    at = choose(open_page(RUNS), runs["alpha"])
    resume = button(at, "Resume")
    assert resume.disabled and "completed all its epochs" in resume.help

    at = choose(at, gamma)
    button(at, "Resume").click().run()
    assert not at.exception
    assert at.query_params["run"] == gamma.id  # now on the Train page, watching it
    assert jobs.wait(gamma, JOB_TIMEOUT) == "completed"
    assert [r["epoch"] for r in gamma.metrics("epoch")] == [0, 1, 2]  # one log, epoch 1 not repeated


def test_train_again_starts_a_new_run_with_the_same_config(runs: dict[str, Run], jobs: JobManager) -> None:
    beta = runs["beta"]
    at = choose(open_page(RUNS), beta)
    button(at, "Train again").click().run()
    assert not at.exception
    [new] = [r for r in jobs.store.list() if r.id not in {r.id for r in runs.values()}]
    assert new.config() == beta.config() and new.status()["name"] == "beta (again)"
    assert at.query_params["run"] == new.id


def test_edit_and_train_again_opens_the_train_form_filled_from_the_run(runs: dict[str, Run], jobs: JobManager) -> None:
    beta = runs["beta"]
    at = choose(open_page(RUNS), beta)
    button(at, "Edit and train again").click().run()
    assert not at.exception
    assert at.query_params["from"] == beta.id
    assert at.selectbox(key="form.data.dataset").value == "digits"
    assert at.selectbox(key="form.task.name").value == "rotation"
    assert (at.number_input(key="form.train.lr").value, at.number_input(key="form.encoder.width").value) == (0.01, 8)

    at.switch_page(TRAIN)  # AppTest's next runs stay on its own page unless told; the browser would be on Train
    at.number_input(key="form.train.epochs").set_value(3).run()  # an edit survives the rerun it causes
    assert (at.selectbox(key="form.task.name").value, at.number_input(key="form.train.lr").value) == ("rotation", 0.01)
    assert at.number_input(key="form.train.epochs").value == 3
    button(at, "Train").click().run()
    [new] = [r for r in jobs.store.list() if r.id not in {r.id for r in runs.values()}]
    expected = beta.config().replace({"train.epochs": 3, "data.root": new.config().data.root})
    assert new.config() == expected  # every other field came from beta
    assert "from" not in at.query_params


def test_a_running_run_is_followed_and_its_new_epochs_show_on_the_next_run(runs: dict[str, Run]) -> None:
    from sslcore.runs.store import process_identity
    from ui.runs_table import changes_of

    gamma = runs["gamma"]  # cancelled after epoch 1 of 2; made to look alive: this test process is its worker
    gamma.update_status(state="running", pid=os.getpid(), pid_identity=process_identity(os.getpid()))
    try:
        assert gamma.is_alive()
        at = open_page(RUNS)
        assert not at.exception
        assert table(at).set_index("name").loc["gamma", "status"] == "running"
        before = changes_of([gamma.path])
        gamma.append_metrics({"kind": "epoch", "epoch": 2, "step": 99, "time": time.time(), "loss": 1.0})
        assert changes_of([gamma.path]) != before  # what the page's follower compares before it redraws
        at.run()
        assert table(at).set_index("name").loc["gamma", "epochs"].startswith("2/")
    finally:  # before the fixture stops every live run: its "worker" is this very process
        gamma.update_status(state="cancelled", pid=None, pid_identity=None)
