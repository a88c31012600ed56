"""AppTest: the Evaluate page draws stored results (chart, verdict, table, confusion), overlays runs, starts jobs."""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from streamlit.testing.v1 import AppTest

from sslcore.engine.training_run import execute_run
from sslcore.evaluation.protocol import evaluate_run
from sslcore.runs import Run, RunStore
from sslcore.runs.eval_manager import EvalJobManager, read_job
from tests.app.conftest import open_page, shown
from tests.conftest import tiny_config

EVALUATE = "app_pages/evaluate.py"
FAST_SUPERVISED = {"max_steps": 20, "eval_every": 10, "steps_without_holdout": 10}


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three one-epoch digits runs: SimCLR and autoencoder evaluated (budgets 1 and all, 2 repeats), one not."""
    torch.set_num_threads(1)
    store = RunStore(tmp_path_factory.mktemp("runs").resolve())
    runs = {}
    for task in ("simclr", "autoencoder", "rotation"):
        run = store.create(tiny_config(task, **{"train.epochs": 1}))
        assert execute_run(run) == "completed"
        runs[task] = run
    for task in ("simclr", "autoencoder"):
        evaluate_run(runs[task], [1, "all"], repeats=2, seed=0, supervised=FAST_SUPERVISED)
    return {"root": store.root, **runs}


@pytest.fixture
def app_env(runs_dir: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("SSL_RUNS_DIR", str(runs_dir["root"]))
    monkeypatch.setenv("SSL_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("SSL_MAX_JOBS", "2")
    yield runs_dir
    manager = EvalJobManager(runs_dir["root"])
    for run in RunStore(runs_dir["root"]).list():
        if read_job(run).get("state") in ("queued", "running"):
            manager.cancel(run)
            manager.wait(run, timeout=60)


def charts(at: AppTest) -> dict[str, dict[str, Any]]:
    """The page's plotly figures by their title text."""
    figures = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {f["layout"]["title"]["text"]: f for f in figures}


def line_names(figure: dict[str, Any]) -> list[str]:
    return [t["name"] for t in figure["data"] if t.get("showlegend", True)]


def text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_page_draws_the_stored_results(app_env: dict[str, Any]) -> None:
    run: Run = app_env["simclr"]
    at = open_page(EVALUATE, run.id)
    assert not at.exception
    figure = charts(at)["<b>Label efficiency</b>"]
    assert line_names(figure) == ["linear probe", "k-NN", "supervised from scratch", "raw pixels"]
    assert figure["layout"]["xaxis"]["type"] == "log"
    assert figure["layout"]["xaxis"]["ticktext"] == ["1", "all"]
    assert sum(1 for t in figure["data"] if t.get("fill") == "toself") == 4  # a spread band per method
    stored = json.loads((run.path / "eval.json").read_text())
    probe = {r["labels_per_class"]: r for r in stored["results"] if r["method"] == "linear_probe"}
    [line] = [t for t in figure["data"] if t["name"] == "linear probe" and "fill" not in t]
    assert line["y"] == pytest.approx([probe[1]["accuracy_mean"], probe["all"]["accuracy_mean"]])
    assert "With 1 label per class, SimCLR features" in text(at)  # the verdict
    [table] = at.dataframe
    assert list(table.value["labels per class"]) == ["1", "all"]
    assert table.value["linear probe"].iloc[1] == f"{100 * probe['all']['accuracy_mean']:.1f} ± 0.0"
    assert "**Protocol.**" in text(at) and "never for training, early stopping" in text(at)
    assert {"<b>Accuracy per class</b>"} <= set(charts(at))  # the confusion section for the probe
    assert any(t.startswith("<b>Confusion: linear probe, 1 label per class") for t in charts(at))
    assert "Most confused pairs" in text(at) and at.image  # with example test images


def test_choosing_a_second_run_overlays_its_probe_curve(app_env: dict[str, Any]) -> None:
    simclr, autoencoder = app_env["simclr"], app_env["autoencoder"]
    at = open_page(EVALUATE, simclr.id)
    at.multiselect(key="evaluate.compare").select(autoencoder.id).run()
    assert not at.exception
    names = line_names(charts(at)["<b>Label efficiency</b>"])
    probes = [n for n in names if n.endswith("linear probe")]
    assert len(probes) == 2 and probes[0].startswith("SimCLR") and probes[1].startswith("autoencoder")
    assert {"supervised from scratch", "raw pixels"} <= set(names)  # the shared baselines, drawn once
    assert "**SimCLR" in text(at) and "**autoencoder" in text(at)  # a verdict per run
    assert set(at.dataframe[0].value["run"]) == {"SimCLR · simclr on digits", "autoencoder · autoencoder on digits"}


def test_evaluate_button_starts_a_background_job(app_env: dict[str, Any]) -> None:
    run: Run = app_env["rotation"]
    at = open_page(EVALUATE, run.id)
    assert not at.exception and "No results yet" in "\n".join(i.value for i in at.info)
    at.text_input(key="evaluate.budgets").input("1, all")
    at.number_input(key="evaluate.repeats").set_value(1)
    at.multiselect(key="evaluate.methods").set_value(["linear_probe", "knn"])
    [submit] = [b for b in at.button if b.label == "Evaluate"]
    submit.click().run()
    assert not at.exception
    assert read_job(run)["state"] in ("queued", "running", "completed")
    assert EvalJobManager(app_env["root"]).wait(run, timeout=120) == "completed"
    stored = json.loads((run.path / "eval.json").read_text())
    assert {(r["method"], r["labels_per_class"]) for r in stored["results"]} == \
        {(m, b) for m in ("linear_probe", "knn") for b in (1, "all")}
    at.run()
    assert "<b>Label efficiency</b>" in charts(at)


def test_bad_budgets_are_refused_with_a_clear_message(app_env: dict[str, Any]) -> None:
    run: Run = app_env["simclr"]
    at = open_page(EVALUATE, run.id)
    at.text_input(key="evaluate.budgets").input("1, lots")
    [submit] = [b for b in at.button if b.label == "Evaluate"]
    submit.click().run()
    assert "'lots' is not allowed" in shown(at.error[0].value)
    at.text_input(key="evaluate.budgets").input("1, 1000")
    [submit] = [b for b in at.button if b.label == "Evaluate"]
    submit.click().run()
    assert "1000 labels per class is more than digits has" in shown(at.error[0].value)
    assert read_job(run) == {}  # nothing was started


def test_figures_are_valid_plotly_with_all_labels_placed_at_the_real_count() -> None:
    import plotly.graph_objects as go

    from ui.evaluate_charts import confusion_figure, label_efficiency_figure, per_class_figure
    from ui.evaluate_results import Evaluated, efficiency_curves

    rows = [{"method": m, "labels_per_class": b, "accuracy_mean": acc, "accuracy_std": 0.02}
            for m, accs in (("linear_probe", (0.8, 0.97)), ("supervised", (0.5, 0.96)))
            for b, acc in zip((4, "all"), accs, strict=True)]
    protocol = {"budgets": [4, "all"], "train_size": 4000, "num_classes": 10}
    e = Evaluated("r1", "SimCLR · demo", "simclr", {"results": rows, "protocol": protocol})
    curves, ticks = efficiency_curves([e])
    assert ticks == [(4.0, "4"), (400.0, "all")]  # "all" = 4,000 labels / 10 classes
    assert [c.name for c in curves] == ["linear probe", "supervised from scratch"]
    assert curves[0].mean == [0.8, 0.97] and curves[0].std == [0.02, 0.02]
    figures = [label_efficiency_figure(curves, ticks, revision="r1"),
               confusion_figure([[0.9, 0.1], [0.2, 0.8]], [[9, 1], [2, 8]], ["0", "1"], title="c", revision="r1"),
               per_class_figure([0.9, None], ["0", "1"], revision="r1")]
    for figure in figures:
        go.Figure(figure)  # plotly's own validation: raises on any unknown or badly typed property
        assert all(t["type"] in ("scatter", "heatmap", "bar") for t in figure["data"])  # SVG, no WebGL
    band = figures[0]["data"][0]
    assert band["y"] == pytest.approx([0.82, 0.99, 0.95, 0.78])  # mean ± std, upper edge then lower edge back


def test_a_running_evaluation_shows_the_rows_finished_so_far(app_env: dict[str, Any]) -> None:
    run: Run = app_env["rotation"]
    from sslcore.runs.store import process_identity

    job = {"state": "running", "fraction": 0.3, "queued_at": time.time() - 70, "started": time.time() - 65,
           "pid": os.getpid(), "pid_identity": process_identity(os.getpid()),  # a live worker (this process)
           "message": "supervised from scratch · 1 label per class · repeat 1/2",
           "request": {"budgets": [1, "all"], "repeats": 2, "methods": ["linear_probe", "knn", "supervised"]},
           "rows": [{"method": "linear_probe", "labels_per_class": 1, "accuracy_mean": 0.5, "accuracy_std": 0.02,
                     "accuracies": [0.48, 0.52]},
                    {"method": "linear_probe", "labels_per_class": "all", "accuracy_mean": 0.9, "accuracy_std": 0.0,
                     "accuracies": [0.9]}]}
    (run.path / "eval_job.json").write_text(json.dumps(job))
    try:
        at = open_page(EVALUATE, run.id)
        assert not at.exception
        [so_far] = [d.value for d in at.dataframe if "…" in d.value.to_numpy()]
        assert list(so_far.columns) == ["labels per class", "linear probe", "k-NN", "supervised from scratch"]
        assert so_far["labels per class"].tolist() == ["1", "all"]
        assert so_far["linear probe"].tolist() == ["50.0 ± 2.0", "90.0"]  # one fit: no spread shown
        assert so_far["k-NN"].tolist() == so_far["supervised from scratch"].tolist() == ["…", "…"]
        assert any("Results so far" in c.value for c in at.caption)
        [progress] = at.get("progress")
        assert "repeat 1/2 · 1:0" in progress.proto.text and "elapsed" in progress.proto.text  # 65-66 s in
    finally:
        (run.path / "eval_job.json").unlink()


def test_the_so_far_table_skips_rows_without_their_figures_and_waits_for_the_first() -> None:
    from ui.evaluate_results import rows_so_far_table

    assert rows_so_far_table({"state": "running"}) is None
    assert rows_so_far_table({"rows": ["junk", {"method": "knn"}]}) is None  # nothing drawable: no table yet
    good = {"method": "knn", "labels_per_class": 4, "accuracy_mean": 0.75, "accuracy_std": 0.01,
            "accuracies": [0.74, 0.76]}
    table = rows_so_far_table({"rows": [good, {"labels_per_class": 4}], "request": {"budgets": [4, "all"]}})
    assert table is not None
    assert table.to_dict("records") == [{"labels per class": "4", "k-NN": "75.0 ± 1.0"},
                                        {"labels per class": "all", "k-NN": "…"}]


def test_the_evaluation_progress_line_says_how_long_a_running_job_has_run() -> None:
    from ui.evaluate_controls import progress_line

    job = {"message": "supervised from scratch · all labels · repeat 1/3", "started": 1000.0}
    assert progress_line(job, "running", now=1088.0) == f"{job['message']} · 1:28 elapsed"
    assert progress_line({"message": "waiting for a free slot"}, "queued", now=5.0) == "waiting for a free slot"
    assert progress_line({"started": "junk"}, "running") == "running"  # a damaged field: the state, no clock
    assert progress_line({"message": "x", "started": 2000.0}, "running", now=1990.0) == "x · 0:00 elapsed"  # clock skew
