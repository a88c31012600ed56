"""AppTest: a run folder with a damaged file shows as damaged (reason + Delete) on every page that lists runs,
the other runs stay listed, and a run killed with SIGKILL reads the same in the app as in ``sslcore list``."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from sslcore.cli import main
from sslcore.runs import Run
from sslcore.runs.process_manager import JobManager
from sslcore.runs.store import INTERRUPTED_REASON
from tests.app.conftest import APP, TIMEOUT, open_page, shown
from tests.runs.test_run_reading import DAMAGE, cli_run_killed_with_sigkill, finished

ROOT = Path(__file__).resolve().parents[2]
PAGES = {"home": None, "train": "app_pages/train.py", "runs": "app_pages/runs.py", "evaluate": "app_pages/evaluate.py"}


def page(name: str, run_id: str | None = None) -> AppTest:
    if PAGES[name] is None:
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        return at.run()
    return open_page(PAGES[name], run_id)


def texts(at: AppTest) -> list[str]:
    return [shown(e.value) for kind in ("markdown", "warning", "error") for e in getattr(at, kind)]


@pytest.mark.parametrize("case", ["status not UTF-8", "status not JSON", "config not JSON", "progress not UTF-8",
                                  "eval malformed"])
def test_every_page_that_lists_runs_shows_a_damaged_run_and_keeps_the_others(case: str, jobs: JobManager) -> None:
    name, content, reason, unusable = DAMAGE[case]
    good, bad = finished(jobs.store, "good run"), finished(jobs.store, "bad run")
    (bad.path / name).write_bytes(content)

    for which in PAGES:
        at = page(which, bad.id if which in ("train", "evaluate") else None)
        assert not at.exception, (which, at.exception)
        assert any(reason in t and bad.id in t for t in texts(at)), which  # named, with the reason
        assert any((b.key or "").endswith(f".delete.{bad.id}") for b in at.button), which  # and a way to delete it
    runs_table = page("runs").dataframe[0].value.set_index("id")
    assert runs_table.loc[good.id, "status"] == "completed" and runs_table.loc[good.id, "problem"] == ""
    assert reason in runs_table.loc[bad.id, "problem"]
    assert runs_table.loc[bad.id, "status"] == ("damaged" if unusable else "completed")
    train = page("train", good.id)  # the other run is still shown as usual
    assert "#### good run" in [m.value for m in train.markdown]


@pytest.mark.parametrize("which", ["app_pages/views.py", "app_pages/embeddings.py"])
def test_pages_that_look_inside_a_run_say_it_is_damaged_instead_of_failing(which: str, jobs: JobManager) -> None:
    bad = finished(jobs.store, "bad run")
    (bad.path / "config.json").write_bytes(b'{"data": ')
    at = open_page(which, bad.id)
    assert not at.exception
    assert any("config.json is not valid JSON" in shown(e.value) for e in at.error)
    assert any((b.key or "").endswith(f".delete.{bad.id}") for b in at.button)


def test_a_damaged_run_is_deleted_after_a_confirmation_and_only_it(jobs: JobManager) -> None:
    good, bad = finished(jobs.store, "good run"), finished(jobs.store, "bad run")
    (bad.path / "status.json").write_bytes(b"\xff\xfe")
    at = page("home")
    [delete] = [b for b in at.button if b.key == f"home.delete.{bad.id}"]
    delete.click().run()
    assert bad.path.exists(), "the first click only asks"
    [really] = [b for b in at.button if b.key == f"home.really.{bad.id}"]
    really.click().run()
    assert not at.exception and not bad.path.exists() and good.path.exists()
    assert any(f"Deleted the damaged run {bad.id}" in shown(s.value) for s in at.success)
    assert at.dataframe[0].value["name"].tolist() == ["good run"]


def test_the_app_and_sslcore_list_agree_on_a_cli_run_killed_with_sigkill(jobs: JobManager,
                                                                         capsys: pytest.CaptureFixture) -> None:
    runs = jobs.store.root
    run = cli_run_killed_with_sigkill(runs)
    assert run.state == "running", "nothing recorded the kill yet"

    table = page("runs").dataframe[0].value.set_index("id")  # the app reads it first
    assert table.loc[run.id, "status"] == "failed"
    assert main(["list", "--runs-dir", str(runs)]) == 0
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith(run.id)]
    assert line.split()[1] == "failed"
    home = page("home").dataframe[0].value
    assert home["status"].tolist() == ["failed"]
    assert Run(run.path).status()["error"] == INTERRUPTED_REASON
