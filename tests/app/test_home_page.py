"""AppTest: the home page explains the pipeline, lists recent runs, and starts the quick demo."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from sslcore.engine.training_run import execute_run
from sslcore.recipes import quick_demo_config
from sslcore.runs.process_manager import JobManager
from sslcore.runs.summary import KNN_BEST_LABEL, KNN_LAST_LABEL
from tests.app.conftest import APP, TIMEOUT
from tests.conftest import tiny_config


def test_home_explains_the_three_steps_and_lists_recent_runs(jobs: JobManager) -> None:
    run = jobs.store.create(tiny_config(**{"train.epochs": 1}), name="finished tiny run")
    assert execute_run(run) == "completed"

    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()

    assert not at.exception
    headings = [m.value for m in at.markdown]
    assert {"##### 1 · Pretext task", "##### 2 · Feature learning", "##### 3 · Transfer"} <= set(headings)
    assert [b.label for b in at.button] == ["Quick demo"]
    table = at.dataframe[0].value
    row = table[table["name"] == "finished tiny run"].iloc[0]
    assert (row["status"], row["dataset"], row["task"], row["epochs"]) == ("completed", "digits", "simclr", "1/1")
    assert row["open"] == f"train?run={run.id}"
    assert at.dataframe[0].proto.placeholder == "—"  # an empty cell reads a dash, not "None"
    assert 0.0 < row[KNN_LAST_LABEL] <= 1.0 and row[KNN_BEST_LABEL] == row[KNN_LAST_LABEL]  # one trained epoch
    assert any(c.value.startswith("1 run in ") for c in at.caption), [c.value for c in at.caption]


def test_home_without_runs_says_how_to_start(jobs: JobManager) -> None:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("No runs yet" in i.value for i in at.info)


def test_quick_demo_starts_a_job_and_opens_it_on_the_train_page(jobs: JobManager, tmp_path: Path) -> None:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    at.button[0].click().run()

    assert not at.exception
    [run] = jobs.store.list()
    assert run.config() == quick_demo_config() and run.status()["name"] == "Quick demo"
    assert at.query_params["run"] == run.id  # the run lives in the URL: reloads and new tabs find it
    assert "#### Quick demo" in [m.value for m in at.markdown]  # now on the Train page, showing the run
    assert at.selectbox(key="run_picker").value == run.id
