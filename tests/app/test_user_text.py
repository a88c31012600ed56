"""AppTest: text from people and archives (run names, tags, error messages) is shown as written on every page,
never rendered as Markdown (an image in a run name must not make the browser fetch anything), and the Runs
table tells an imported copy from the original."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from sslcore.engine.training_run import execute_run
from sslcore.evaluation.protocol import evaluate_run
from sslcore.runs import Run, RunStore
from sslcore.runs.archive import export_run, import_run
from sslcore.runs.process_manager import JobManager
from sslcore.runs.summary import KNN_BEST_LABEL, KNN_LAST_LABEL
from tests.app.conftest import APP, TIMEOUT, open_page, shown
from tests.conftest import tiny_config

BEACON = "![x](http://host/beacon.png) **bold** :red[red] $x$ <img src=x>"
#: Elements whose text Streamlit renders as Markdown, and what of each holds that text.
MARKDOWN_TEXT = {"markdown": "value", "caption": "value", "info": "value", "success": "value", "warning": "value",
                 "error": "value", "title": "value", "header": "value", "subheader": "value", "button": "label",
                 "metric": "label", "expander": "label", "checkbox": "label", "page_link": "label"}
LIVE_IMAGE = re.compile(r"(?<!\\)!\[")  # an image that Markdown would render (and the browser fetch)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A trained, evaluated run named BEACON (its folder) and its export (the zip someone sends)."""
    store = RunStore(tmp_path_factory.mktemp("source") / "runs")
    run = store.create(tiny_config(**{"train.epochs": 1}), name=BEACON)
    assert execute_run(run) == "completed"
    evaluate_run(run, ["all"], repeats=1, methods=["linear_probe"])
    return run.path, export_run(run, tmp_path_factory.mktemp("export") / "run.zip")


@pytest.fixture
def runs(archive: tuple[Path, Path], jobs: JobManager) -> tuple[Run, Run]:
    """The original run and an imported copy of it, side by side in the app's runs folder."""
    folder, zip_path = archive
    shutil.copytree(folder, jobs.store.root / folder.name)
    original = Run(jobs.store.root / folder.name)
    copy = import_run(zip_path, jobs.store)
    assert copy.status()["name"] == BEACON  # the archive's name, kept on import
    return original, copy


def markdown_texts(at: AppTest) -> list[str]:
    found = []
    for kind, attribute in MARKDOWN_TEXT.items():
        for element in getattr(at, kind) if hasattr(at, kind) else at.get(kind):
            value = getattr(element, attribute, None) or getattr(getattr(element, "proto", None), attribute, None)
            if isinstance(value, str):
                found.append(value)
    return found


def assert_plain(at: AppTest, where: str, named: bool = True) -> None:
    """No Markdown element of ``at`` renders an image; with ``named``, one shows the run's name as written."""
    assert not at.exception, (where, at.exception)
    texts = markdown_texts(at)
    rendered = [t for t in texts if LIVE_IMAGE.search(t) or "<img" in t.replace("\\<", "")]
    assert not rendered, (where, rendered)
    assert not named or any(BEACON in shown(t) for t in texts), f"{where}: the name is shown, as written"


def test_run_names_from_an_archive_are_plain_text_on_every_page(runs: tuple[Run, Run]) -> None:
    original, copy = runs
    home = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert_plain(home, "home", named=False)
    assert home.dataframe[0].value["name"].tolist() == [BEACON, BEACON]  # a table cell is plain text already
    assert_plain(open_page("app_pages/train.py", copy.id), "train")

    at = open_page("app_pages/runs.py")
    at.multiselect(key="runs.chosen").set_value([copy.id]).run()
    assert_plain(at, "runs: actions")
    [delete] = [b for b in at.button if b.label == "Delete"]
    delete.click().run()
    assert_plain(at, "runs: delete confirmation")

    at = open_page("app_pages/evaluate.py", copy.id)
    at.multiselect(key="evaluate.compare").set_value([original.id]).run()  # the verdict names both runs
    assert_plain(at, "evaluate")
    assert_plain(open_page("app_pages/views.py", copy.id), "views", named=False)  # named in its run picker only


def test_the_runs_table_marks_an_imported_copy_and_keeps_ids_whole_and_key_columns_in_view(
        runs: tuple[Run, Run]) -> None:
    original, copy = runs
    at = open_page("app_pages/runs.py")
    table = at.dataframe[0].value.set_index("id")
    assert table.loc[copy.id, "imported"] and not table.loc[original.id, "imported"]
    assert (table.loc[copy.id, "name"], table.loc[original.id, "name"]) == (BEACON, BEACON)  # same name, told apart

    columns = json.loads(at.dataframe[0].proto.columns)
    assert columns["open"]["pinned"] is True  # the link that opens a run stays in view when the table scrolls
    assert columns["id"]["width"] >= 7 * max(len(copy.id), len(original.id))  # the whole id, never cut
    # What tells runs apart comes first, within 1280 pixels beside the sidebar (~820 px for the table, a
    # 32 px selection column included); the details, the run id among them, follow to the right.
    order = list(at.dataframe[0].value.columns)
    key = order[:order.index("imported") + 1]
    assert key == ["open", "name", "status", "epochs", KNN_LAST_LABEL, KNN_BEST_LABEL, "probe acc", "imported"]
    assert 32 + sum(columns[c]["width"] for c in key) <= 820
    assert order.index("id") > order.index("imported")
