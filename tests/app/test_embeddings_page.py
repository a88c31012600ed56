"""AppTest: the Embeddings page on a tiny finished run: both maps, quality figures, neighbours, background t-SNE."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from sslcore.engine.training_run import execute_run
from sslcore.evaluation.embedding_quality import embedding_quality, nearest_neighbours
from sslcore.evaluation.embeddings import PIXELS, run_features
from sslcore.evaluation.projection_cache import ProjectionCache, projection_status
from sslcore.runs import Run, RunStore
from sslcore.runs.store import process_identity
from tests.app.conftest import open_page
from tests.conftest import tiny_config
from tests.runs.jobs_support import wait_until
from ui import embedding_data

PAGE = "app_pages/embeddings.py"
EPOCH = 1
SOURCES = (EPOCH, PIXELS)
CLASSES = [str(d) for d in range(10)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A digits run trained for one epoch, with its test-split t-SNE maps already cached (as after a first visit)."""
    run = RunStore(tmp_path_factory.mktemp("pristine")).create(tiny_config(**{"train.epochs": EPOCH}))
    assert execute_run(run) == "completed", run.status().get("error")
    for source in SOURCES:
        ProjectionCache(run).compute(source, "test", "tsne")
    return run


@pytest.fixture
def run(trained: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    """A copy of the trained run (caches included) in the app's runs folder; background jobs end with the test."""
    runs = tmp_path / "runs"
    copy = Run(Path(shutil.copytree(trained.path, runs / trained.path.name)))  # copy2: the checkpoints keep
    monkeypatch.setenv("SSL_RUNS_DIR", str(runs))                                # their mtime, so caches hold
    monkeypatch.setenv("SSL_DATA_ROOT", str(tmp_path / "data"))
    yield copy
    # Every t-SNE job a test started has finished before the next test (no worker left behind).
    wait_until(lambda: not list((copy.path / "embeddings").glob("*.lock")), 120, "background t-SNE jobs to end")


def drop_tsne(run: Run) -> None:
    for path in (run.path / "embeddings").glob("proj_tsne_*"):
        path.unlink()


def lock_path(run: Run, source: object) -> Path:
    return ProjectionCache(run).path(source, "test", "tsne").with_suffix(".lock")


def maps(at: AppTest) -> dict[str, dict]:
    """The maps the component was given, by name: {'features': figure, 'pixels': figure}, plus the args."""
    [component] = at.get("component_instance")
    args = json.loads(component.proto.json_args)
    return {m["name"]: json.loads(m["figure"]) for m in args["maps"]} | {"args": args}


def title(figure: dict) -> str:
    return figure["layout"]["title"]["text"]


def class_positions(figure: dict) -> list[int]:
    return sorted(p for t in figure["data"] if t["name"] in CLASSES for p in t["customdata"])


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def test_the_page_shows_both_maps_with_thumbnails_and_quality_figures(run: Run) -> None:
    at = open_page(PAGE, run.id)
    assert not at.exception
    drawn = maps(at)
    features, labels, ids = run_features(run, EPOCH)
    assert title(drawn["features"]) == "<b>Encoder features · epoch 1 · t-SNE</b>"
    assert title(drawn["pixels"]) == "<b>Raw pixels · t-SNE</b>"
    for name in ("features", "pixels"):
        assert class_positions(drawn[name]) == list(range(len(ids)))  # every test image once
        assert {t["type"] for t in drawn[name]["data"]} == {"scattergl"}
        assert [t["name"] for t in drawn[name]["data"][:10]] == CLASSES
    assert drawn["args"]["ids"] == ids.tolist() and drawn["args"]["split"] == "test"
    assert len(drawn["args"]["thumbs"]) == len(ids) and drawn["args"]["thumbs"][0].startswith("data:image/png")
    # the cached t-SNE map is the one drawn
    tsne = ProjectionCache(run).get(EPOCH, "test", "tsne")
    first = drawn["features"]["data"][0]
    np.testing.assert_allclose(first["x"], tsne[first["customdata"], 0], atol=0.1)

    ours, pixels = (embedding_quality(run_features(run, s)[0], labels) for s in SOURCES)
    tiles = [(m.label, m.value) for m in at.metric]
    knn = "k-NN among shown images"  # not the online monitor's "k-NN (last epoch)": another measure, another name
    assert tiles == [(knn, f"{ours['knn_acc']:.1%}"), ("Silhouette", f"{ours['silhouette']:.3f}"),
                     (knn, f"{pixels['knn_acc']:.1%}"), ("Silhouette", f"{pixels['silhouette']:.3f}")]
    assert at.metric[0].proto.delta == f"{(ours['knn_acc'] - pixels['knn_acc']) * 100:+.1f} pts vs pixels"
    assert not at.metric[2].proto.delta  # the baseline has nothing to compare with
    assert not any("t-SNE computing" in c for c in captions(at))
    assert not list((run.path / "embeddings").glob("*.lock"))  # nothing to start: both maps were cached


def test_a_big_splits_first_visit_reads_in_the_background_then_draws_from_the_caches(
        run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    # digits' 359 test images stand for a big dataset's 5,000-image sample: nothing of them is cached yet.
    monkeypatch.setattr(embedding_data, "BACKGROUND_FROM", 100)
    shutil.rmtree(run.path / "embeddings")
    at = open_page(PAGE, run.id)
    assert not at.exception
    assert any("in the background" in i.value for i in at.info), [i.value for i in at.info]
    assert not at.get("component_instance")  # no map drawn from a half-read split
    assert {p.name.split("_")[2] for p in (run.path / "embeddings").glob("*.lock")} <= {"e0001", "pixels"}
    wait_until(lambda: not list((run.path / "embeddings").glob("*.lock")), 120, "the first-read jobs to end")
    cached = {p.name.split("_")[0] for p in (run.path / "embeddings").iterdir()}
    assert {"features", "proj", "quality", "thumbs"} <= cached, cached  # what the page would otherwise compute
    at.run()
    assert not at.exception and not any("in the background" in i.value for i in at.info)
    drawn = maps(at)
    assert "epoch 1 · PCA" in title(drawn["features"])  # PCA while the t-SNE (the default) computes
    assert len(drawn["args"]["thumbs"]) == len(run_features(run, EPOCH)[2])
    assert [m.label for m in at.metric][:1] == ["k-NN among shown images"]


def test_an_image_id_shows_its_nearest_neighbours_in_both_spaces(run: Run) -> None:
    at = open_page(PAGE, run.id)
    at.number_input(key=f"emb.query.{run.id}.test").set_value(17).run()
    assert not at.exception
    features, labels, ids = run_features(run, EPOCH)
    query = int(np.flatnonzero(ids == 17)[0])
    expected, distances = nearest_neighbours(features, query, k=8)
    feature_strip, pixel_strip = at.image
    assert feature_strip.captions[0] == f"query: {labels[query]}"
    assert feature_strip.captions[1:] == [f"{labels[i]} · d={d:.3f}" for i, d in zip(expected, distances, strict=True)]
    assert len(pixel_strip.captions) == 9 and pixel_strip.captions[0] == feature_strip.captions[0]
    ring = maps(at)["features"]["data"][-2]
    assert ring["customdata"] == [query, *expected.tolist()]  # ringed on the map too
    same = int(np.sum(labels[expected] == labels[query]))
    assert f"**In the encoder's feature space** · {same} of 8 share its label" in [m.value for m in at.markdown]


def test_a_click_on_the_map_chooses_the_query_image(run: Run) -> None:
    at = open_page(PAGE, run.id)
    _, _, ids = run_features(run, EPOCH)
    at.session_state["emb.map"] = {"position": 5, "id": int(ids[5]), "nonce": 1}  # what the component sends
    at.run()
    assert not at.exception
    assert at.number_input(key=f"emb.query.{run.id}.test").value == int(ids[5])
    assert maps(at)["features"]["data"][-2]["customdata"][0] == 5
    at.number_input(key=f"emb.query.{run.id}.test").set_value(int(ids[9])).run()  # typing wins over the old click
    assert maps(at)["pixels"]["data"][-2]["customdata"][0] == 9


def test_pca_and_the_train_split_can_be_chosen(run: Run) -> None:
    at = open_page(PAGE, run.id)
    at.radio(key="emb.method").set_value("pca").run()
    at.radio(key="emb.split").set_value("train").run()
    assert not at.exception
    drawn = maps(at)
    assert title(drawn["features"]) == "<b>Encoder features · epoch 1 · PCA</b>"
    assert len(class_positions(drawn["pixels"])) == 1438 and drawn["args"]["split"] == "train"
    assert not list((run.path / "embeddings").glob("proj_tsne_*_train_*"))  # PCA asked for: no t-SNE started


def test_while_tsne_computes_pca_is_shown_then_tsne_is_swapped_in(run: Run) -> None:
    drop_tsne(run)
    me = {"pid": os.getpid(), "pid_identity": process_identity(os.getpid())}
    for source in SOURCES:  # another session's job, alive (this process), computing both maps
        lock_path(run, source).write_text(json.dumps(me))
    at = open_page(PAGE, run.id)
    assert not at.exception
    drawn = maps(at)
    assert title(drawn["features"]) == "<b>Encoder features · epoch 1 · PCA (t-SNE computing…)</b>"
    assert title(drawn["pixels"]) == "<b>Raw pixels · PCA (t-SNE computing…)</b>"
    assert any("t-SNE computing in the background for epoch 1 and raw pixels" in c for c in captions(at))

    for source in SOURCES:  # the job finishes
        ProjectionCache(run).compute(source, "test", "tsne")
        lock_path(run, source).unlink()
    at.run()
    assert title(maps(at)["features"]) == "<b>Encoder features · epoch 1 · t-SNE</b>"
    assert not any("t-SNE computing" in c for c in captions(at))


def test_the_page_starts_tsne_in_the_background_and_draws_it_when_ready(run: Run) -> None:
    drop_tsne(run)
    at = open_page(PAGE, run.id)
    assert not at.exception
    assert {projection_status(run, s, "test", "tsne") for s in SOURCES} <= {"running", "ready"}
    wait_until(lambda: all(projection_status(run, s, "test", "tsne") == "ready" for s in SOURCES), 120,
               "the page's t-SNE jobs")
    at.run()
    drawn = maps(at)
    assert title(drawn["features"]).endswith("t-SNE</b>") and title(drawn["pixels"]).endswith("t-SNE</b>")


def test_a_failed_tsne_is_reported_and_can_be_retried(run: Run) -> None:
    drop_tsne(run)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_path(run, PIXELS).write_text(json.dumps({"pid": dead.pid}))  # a job that died without a word
    ProjectionCache(run).compute(EPOCH, "test", "tsne")
    at = open_page(PAGE, run.id)
    assert not at.exception
    [error] = [e.value for e in at.error]
    assert "The t-SNE map of raw pixels failed" in error and "without a result" in error
    assert title(maps(at)["pixels"]) == "<b>Raw pixels · PCA</b>"
    [retry] = [b for b in at.button if b.label == "Retry t-SNE"]
    retry.click().run()
    assert not at.exception
    wait_until(lambda: projection_status(run, PIXELS, "test", "tsne") == "ready", 120, "the retried t-SNE")
    at.run()
    assert title(maps(at)["pixels"]) == "<b>Raw pixels · t-SNE</b>" and not at.error


def test_without_a_run_in_the_url_the_newest_run_is_shown(run: Run) -> None:
    at = open_page(PAGE)
    assert not at.exception
    assert at.query_params["run"] == run.id
    assert set(maps(at)) == {"features", "pixels", "args"}


def test_a_run_without_checkpoints_says_so(run: Run) -> None:
    fresh = RunStore(run.path.parent).create(tiny_config())
    at = open_page(PAGE, fresh.id)
    assert not at.exception
    assert any("no encoder checkpoints yet" in i.value for i in at.info)
    assert not at.get("component_instance")


def test_with_no_runs_the_page_says_how_to_get_one(jobs) -> None:  # noqa: ANN001 - an empty runs folder
    at = open_page(PAGE)
    assert not at.exception
    assert any("No runs yet" in i.value for i in at.info)
    assert "run" not in at.query_params


def test_a_bad_run_id_is_reported_and_no_other_run_is_shown_instead(run: Run) -> None:
    at = open_page(PAGE, "no-such-run")
    assert not at.exception
    assert any("no run 'no-such-run'" in w.value for w in at.warning)
    assert any("Choose a run above" in i.value for i in at.info)
    assert not at.get("component_instance")
