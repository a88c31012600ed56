"""AppTest: what a first-time user sees on the Train page: runs in progress, and where a started run went."""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from sslcore.runs.process_manager import JobManager
from tests.app.conftest import live_charts, open_page
from tests.conftest import tiny_config
from ui.polling import FIRST_POINT_POLL_SECONDS

TRAIN = "app_pages/train.py"


@pytest.fixture
def live_process() -> Iterator[int]:
    """The pid of a process that lives while the test looks (stand-in for a worker that is training)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process.pid
    process.kill()
    process.wait()


def test_a_fresh_tab_shows_the_run_in_progress_instead_of_press_train(jobs: JobManager, live_process: int) -> None:
    older = jobs.store.create(tiny_config(), name="older run")
    older.update_status(state="completed")
    training = jobs.store.create(tiny_config(), name="training now")
    training.update_status(state="running", pid=live_process, queued_at=1.0)

    at = open_page(TRAIN)  # no ?run= and no memory of an earlier visit: a fresh tab
    assert not at.exception
    assert at.query_params["run"] == training.id
    assert "#### training now" in [m.value for m in at.markdown]
    assert not any("Press **Train**" in i.value for i in at.info)


def test_without_runs_in_progress_a_fresh_tab_invites_to_train(jobs: JobManager) -> None:
    done = jobs.store.create(tiny_config(), name="finished")
    done.update_status(state="completed")
    at = open_page(TRAIN)
    assert not at.exception and "run" not in at.query_params
    assert any("Press **Train**" in i.value for i in at.info)


def test_the_train_click_is_confirmed_where_it_happened_with_a_way_to_the_run(jobs: JobManager) -> None:
    at = open_page(TRAIN)
    at.selectbox(key="form.data.dataset").select("digits").run()
    at.number_input(key="form.train.epochs").set_value(1).run()
    [button] = [b for b in at.button if b.label == "Train"]
    button.click().run()
    assert not at.exception
    [run] = jobs.store.list()
    [confirmation] = [s.value for s in at.success]
    assert f"Started run `{run.id}`" in confirmation and "(#run)" in confirmation
    at.run()  # any later rerun: the confirmation was for the click, it does not stay
    assert not at.success



@pytest.fixture
def poll_intervals(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    """The ``every`` of each run panel's polling fragment as pages register it (None: POLL_SECONDS)."""
    import ui.live

    intervals: list[float | None] = []
    original = ui.live.polling_fragment

    def spy(draw, *args, active: bool, every: float | None = None) -> None:  # noqa: ANN001 - a callable
        intervals.append(every)
        original(draw, *args, active=active, every=every)

    monkeypatch.setattr(ui.live, "polling_fragment", spy)
    return intervals


def test_until_the_first_step_the_run_is_watched_closely_and_its_chart_frame_is_already_there(
        jobs: JobManager, live_process: int, poll_intervals: list[float | None]) -> None:
    run = jobs.store.create(tiny_config(), name="starting")
    run.update_status(state="running", pid=live_process, queued_at=1.0)
    at = open_page(TRAIN, run.id)
    assert not at.exception
    assert poll_intervals[-1] == FIRST_POINT_POLL_SECONDS  # the first loss point is looked for every 0.4 s
    assert live_charts(at) == {}  # mounted before any data: its frame loads plotly.js meanwhile

    run.append_metrics({"kind": "step", "step": 1, "epoch": 0, "loss": 2.0, "lr": 1e-3, "time": time.time()})
    at.run()
    assert not at.exception
    assert poll_intervals[-1] is None  # then the usual pace (POLL_SECONDS): watching costs the server little
    assert list(live_charts(at))[:1] == ["loss"]


def test_a_run_queued_for_long_is_watched_at_the_usual_pace(jobs: JobManager, live_process: int,
                                                             poll_intervals: list[float | None]) -> None:
    run = jobs.store.create(tiny_config(), name="waiting for a slot")
    run.update_status(state="running", pid=live_process, created=time.time() - 120.0)
    at = open_page(TRAIN, run.id)
    assert not at.exception
    assert poll_intervals[-1] is None  # no first point in its first 30 s: no faster polling for the rest of the wait
