"""AppTest: the Reconstructions & views page draws the snapshots real training runs wrote, epoch by epoch."""
from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from streamlit.proto.Metric_pb2 import Metric
from streamlit.testing.v1 import AppTest

from sslcore.engine.callbacks import Callback
from sslcore.engine.state import TrainState
from sslcore.engine.training_run import execute_run
from sslcore.runs import Run, RunStore
from sslcore.tasks import TASKS as REGISTRY
from tests.app.conftest import open_page, shown
from tests.conftest import dataset_for, tiny_config
from ui.snapshot_view import PLAY_SECONDS

VIEWS = "app_pages/views.py"
TASKS = ("autoencoder", "masked_autoencoder", "rotation", "simclr")


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """One finished 2-epoch run per task family on digits (snapshots of 4 test images at epochs 0, 1, 2)."""
    store = RunStore(tmp_path_factory.mktemp("views") / "runs")
    runs = {}
    for task in TASKS:
        runs[task] = store.create(tiny_config(task))
        assert execute_run(runs[task]) == "completed"
    return runs


@pytest.fixture
def runs(finished_runs: dict[str, Run], monkeypatch: pytest.MonkeyPatch) -> dict[str, Run]:
    """The app pointed at the finished runs' folder."""
    monkeypatch.setenv("SSL_RUNS_DIR", str(next(iter(finished_runs.values())).path.parent))
    return finished_runs


def snapshot(run: Run, epoch: int) -> dict[str, np.ndarray]:
    with np.load(run.snapshot_dir / f"epoch_{epoch:04d}.npz") as data:
        return {name: data[name] for name in data.files}


def image_captions(at: AppTest) -> list[str]:
    [grid] = at.image
    return [img.caption for img in grid.proto.imgs]


def chart(at: AppTest) -> dict:
    """The plotly figure of the per-epoch summary."""
    [element] = at.get("plotly_chart")
    return json.loads(element.proto.spec)


def summary(at: AppTest) -> tuple[str, str]:
    return at.metric[0].label, at.metric[0].value


def play_button(at: AppTest):  # noqa: ANN201 - an AppTest Button
    [button] = [b for b in at.button if b.label in ("Play", "Pause")]
    return button


@pytest.mark.parametrize("task, panels", [
    ("autoencoder", "original | reconstruction"),
    ("masked_autoencoder", "original | masked input | reconstruction"),
])
def test_reconstructions_show_each_image_with_its_class_and_error(runs: dict[str, Run], task: str,
                                                                  panels: str) -> None:
    at = open_page(VIEWS, runs[task].id)
    assert not at.exception
    last = snapshot(runs[task], 2)
    assert f"Each picture: {panels}." in [c.value for c in at.caption]
    assert image_captions(at) == [f"{label} · error {e:.4f}"
                                  for label, e in zip(last["labels"], last["error"], strict=True)]
    assert summary(at) == ("Mean reconstruction error · epoch 2", f"{last['error'].mean():.4f}")
    assert at.metric[0].proto.color in (Metric.MetricColor.GREEN, Metric.MetricColor.RED)  # an error is judged
    assert at.select_slider[0].value == 2 and len(at.select_slider[0].options) == 3


def test_rotation_shows_predicted_angle_confidence_and_whether_it_was_right(runs: dict[str, Run]) -> None:
    at = open_page(VIEWS, runs["rotation"].id)
    assert not at.exception
    last = snapshot(runs["rotation"], 2)
    columns = zip(last["labels"], last["predicted_angle"], last["confidence"], last["true_angle"], strict=True)
    expected = [f"{label} · pred {p}° ({c:.0%}) {'✓' if p == t else '✗'} · true {t}°"
                for label, p, c, t in columns]
    assert image_captions(at) == expected
    accuracy = (last["predicted_angle"] == last["true_angle"]).mean()
    assert summary(at) == ("Rotation accuracy · epoch 2", f"{accuracy:.0%}")


def test_simclr_shows_pairs_of_views_with_their_similarity(runs: dict[str, Run]) -> None:
    at = open_page(VIEWS, runs["simclr"].id)
    assert not at.exception
    last = snapshot(runs["simclr"], 2)
    assert "Each picture: original | view 1 | view 2." in [c.value for c in at.caption]
    assert image_captions(at) == [f"{label} · similarity {s:.2f}"
                                  for label, s in zip(last["labels"], last["pair_similarity"], strict=True)]
    assert any("*the same thing*" in m.value for m in at.markdown)
    # a change of the view similarity is shown uncoloured: a healthy run may lower it (see panels.Summary.judged)
    assert "vs epoch 0" in at.metric[0].proto.delta and at.metric[0].proto.color == Metric.MetricColor.GRAY


@pytest.mark.parametrize("task", REGISTRY.names())
def test_every_registered_task_is_drawn_from_its_own_panels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            task: str) -> None:
    # A real one-epoch run: what the trainer writes for the task, read and drawn with no per-task code in ui/.
    run = RunStore(tmp_path / "runs").create(tiny_config(task, **{"data.dataset": dataset_for(task),
                                                                  "train.epochs": 1, "train.knn_k": 0}))
    assert execute_run(run) == "completed"
    monkeypatch.setenv("SSL_RUNS_DIR", str(tmp_path / "runs"))
    at = open_page(VIEWS, run.id)
    assert not at.exception and not at.error
    panels, last = REGISTRY.get(task).panels, snapshot(run, 1)
    assert summary(at)[0] == f"{panels.summary.label} · epoch 1"
    assert any(m.value == panels.explanation for m in at.markdown)
    if any(last[c.array].ndim == 4 for c in panels.images):
        assert len(image_captions(at)) == len(last["labels"]) == 4
        at.toggle(key=f"views.worst.{task}").set_value(True).run()  # the task's own "worst first" order
        assert not at.exception
        worst = panels.worst_order(last)
        assert [c.split(" · ", 1)[1] for c in image_captions(at)] == [panels.caption_of(last, int(i)) for i in worst]
    else:
        assert len(at.dataframe) == 1  # a task without pictures: its per-item lines


def test_moving_the_slider_to_epoch_0_shows_the_untrained_model(runs: dict[str, Run]) -> None:
    run = runs["autoencoder"]
    at = open_page(VIEWS, run.id)
    at.select_slider[0].set_value(0).run()
    assert not at.exception
    untrained, trained = snapshot(run, 0), snapshot(run, 2)
    assert summary(at) == ("Mean reconstruction error · epoch 0", f"{untrained['error'].mean():.4f}")
    assert image_captions(at)[0].endswith(f"error {untrained['error'][0]:.4f}")
    assert chart(at)["layout"]["shapes"][0]["x0"] == 0  # the per-epoch chart marks the epoch shown
    at.select_slider[0].set_value(2).run()
    change = trained["error"].mean() - untrained["error"].mean()
    assert at.metric[0].delta == f"{change:+.4f} vs epoch 0"
    means = [snapshot(run, e)["error"].mean() for e in (0, 1, 2)]
    assert chart(at)["data"][0]["x"] == [0, 1, 2] and chart(at)["data"][0]["y"] == pytest.approx(means)


def test_worst_reconstructed_images_are_one_click_away(runs: dict[str, Run]) -> None:
    run = runs["masked_autoencoder"]
    at = open_page(VIEWS, run.id)
    at.toggle(key="views.worst.masked_autoencoder").set_value(True).run()
    assert not at.exception
    last = snapshot(run, 2)
    worst = np.argsort(-last["error"], kind="stable")
    assert image_captions(at) == [f"{last['labels'][i]} · error {last['error'][i]:.4f}" for i in worst]
    shown = [float(re.search(r"error ([\d.]+)", c).group(1)) for c in image_captions(at)]
    assert shown == sorted(shown, reverse=True) and shown != sorted(shown)  # really reordered, worst first
    assert any("worst first" in c.value and "4 test images" in c.value for c in at.caption)
    assert "views.size" in [w.key for w in at.button_group]  # pictures have a size to choose


def test_play_steps_through_the_epochs_and_stops_at_the_last(runs: dict[str, Run]) -> None:
    at = open_page(VIEWS, runs["autoencoder"].id)
    play_button(at).click().run()  # at the last epoch, Play starts again from epoch 0
    assert summary(at)[0].endswith("epoch 0") and play_button(at).label == "Pause"
    for epoch in (1, 2):
        time.sleep(PLAY_SECONDS)  # what the fragment's timer waits between steps
        at.run()
        assert summary(at)[0].endswith(f"epoch {epoch}")
    assert play_button(at).label == "Play" and at.select_slider[0].value == 2


def test_moving_the_slider_takes_over_from_playback(runs: dict[str, Run]) -> None:
    at = open_page(VIEWS, runs["rotation"].id)
    play_button(at).click().run()
    at.select_slider[0].set_value(1).run()
    assert play_button(at).label == "Play" and summary(at)[0].endswith("epoch 1")
    time.sleep(PLAY_SECONDS)
    at.run()
    assert summary(at)[0].endswith("epoch 1")  # paused: no more steps


def test_without_a_run_in_the_url_the_latest_run_is_shown(runs: dict[str, Run]) -> None:
    at = open_page(VIEWS)
    assert not at.exception
    assert at.query_params["run"] == runs[TASKS[-1]].id  # created last
    assert image_captions(at)


def test_an_unknown_run_id_is_reported_not_raised(runs: dict[str, Run]) -> None:
    at = open_page(VIEWS, "20990101-000000-no-such-run")
    assert not at.exception
    assert any("no run '20990101-000000-no-such-run'" in w.value for w in at.warning)
    assert not at.image


def test_a_damaged_snapshot_gets_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = RunStore(tmp_path / "runs")
    run = store.create(tiny_config("autoencoder"))
    execute_run(run)
    (run.snapshot_dir / "epoch_0002.npz").write_bytes(b"truncated")
    monkeypatch.setenv("SSL_RUNS_DIR", str(store.root))
    at = open_page(VIEWS, run.id)
    assert not at.exception
    assert "epoch_0002.npz could not be read" in shown(at.error[0].value)
    at.select_slider[0].set_value(0).run()  # the good epochs still show
    assert not at.error and image_captions(at)
    assert chart(at)["data"][0]["x"] == [0, 1]
    assert any("Left out of the chart" in c.value and "epoch 2" in c.value for c in at.caption)


def test_a_run_without_snapshots_yet_says_when_they_come(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = RunStore(tmp_path / "runs").create(tiny_config("rotation"))  # queued: no worker has started it
    monkeypatch.setenv("SSL_RUNS_DIR", str(tmp_path / "runs"))
    at = open_page(VIEWS, run.id)
    assert not at.exception
    assert "No snapshots yet" in at.info[0].value and not at.image


class Gate(Callback):
    """Holds training at the end of epoch ``epoch`` (before its snapshot is saved) until released."""

    def __init__(self, epoch: int) -> None:
        self.epoch, self.reached, self.release = epoch, threading.Event(), threading.Event()

    def on_epoch_end(self, state: TrainState) -> None:
        if state.epoch == self.epoch:
            self.reached.set()
            self.release.wait(timeout=60)


@pytest.fixture
def training_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Run, Gate, threading.Thread]]:
    """A real run training in a thread, held after its epoch-1 snapshot; released at the end of the test."""
    run = RunStore(tmp_path / "runs").create(tiny_config("denoising_autoencoder"))
    monkeypatch.setenv("SSL_RUNS_DIR", str(tmp_path / "runs"))
    gate = Gate(epoch=2)
    thread = threading.Thread(target=execute_run, args=(run,), kwargs={"extra_callbacks": [gate]}, daemon=True)
    thread.start()
    try:
        assert gate.reached.wait(timeout=60), "training did not reach epoch 2"
        yield run, gate, thread
    finally:
        gate.release.set()
        thread.join(timeout=60)


def test_snapshots_appear_while_the_run_trains(training_run: tuple[Run, Gate, threading.Thread]) -> None:
    run, gate, thread = training_run
    following, pinned = open_page(VIEWS, run.id), open_page(VIEWS, run.id)
    assert run.state == "running" and not following.exception
    assert following.select_slider[0].value == 1 and len(following.select_slider[0].options) == 2
    assert any("The run is training" in c.value for c in following.caption)
    pinned.select_slider[0].set_value(0).run()

    gate.release.set()
    thread.join(timeout=60)
    assert run.state == "completed"
    following.run()
    pinned.run()
    assert following.select_slider[0].value == 2  # it was on the latest epoch, so it follows the new one
    assert pinned.select_slider[0].value == 0  # a person's choice of an earlier epoch is kept
    assert len(pinned.select_slider[0].options) == 3
    assert not any("The run is training" in c.value for c in following.caption)
