"""AppTest: the Home page promises no fixed time for the quick demo; it quotes what this machine measured."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from sslcore.recipes import quick_demo_config
from sslcore.runs.process_manager import JobManager
from tests.app.conftest import APP, TIMEOUT


def demo_text(at: AppTest) -> str:
    [text] = [m.value for m in at.markdown if m.value.startswith("The quick demo trains")]
    return text


def test_without_a_measurement_the_demo_points_to_the_live_estimate(jobs: JobManager) -> None:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception
    text = demo_text(at)
    assert "half a minute" not in text and "estimate from the measured speed" in text


def test_the_last_demo_on_this_machine_gives_the_estimate(jobs: JobManager) -> None:
    earlier = jobs.store.create(quick_demo_config(), name="Quick demo")
    earlier.update_status(state="completed", started=1_000.0, ended=1_112.0)
    other = jobs.store.create(quick_demo_config(), name="x")
    other.update_status(state="failed", started=2_000.0, ended=2_005.0)  # a failed run measures nothing
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert "The last one on this machine took **1:52** (min:s)." in demo_text(at)
