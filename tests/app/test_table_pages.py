"""AppTest: the table variants of the Train, Evaluate and Embeddings pages, on a small table run."""
from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from sslcore.config import default_config
from sslcore.engine.training_run import execute_run
from sslcore.evaluation.protocol import evaluate_run
from sslcore.runs import Run
from sslcore.runs.process_manager import JobManager
from tests.app.conftest import open_page
from tests.runs.jobs_support import TIMEOUT

TRAIN = "app_pages/train.py"


def options(at: AppTest, key: str) -> list[str]:
    return [o.split(" — ")[0] for o in at.selectbox(key=key).options]


@pytest.fixture
def table_run(jobs: JobManager) -> Run:
    """A finished 2-epoch SCARF run on wine (178 rows), trained in this process."""
    config = default_config(**{"data.dataset": "wine", "task.name": "scarf", "train.epochs": 2, "train.batch_size": 32,
                               "train.threads": 1, "train.snapshot_images": 4})
    run = jobs.store.create(config)
    assert execute_run(run) == "completed", run.status().get("error")
    return run


def test_choosing_a_table_offers_only_table_tasks_and_shows_its_rows(jobs: JobManager) -> None:
    at = open_page(TRAIN)
    at.selectbox(key="form.data.dataset").select("wine").run()
    assert not at.exception
    assert options(at, "form.task.name") == ["scarf", "tabular_autoencoder", "vime"]
    assert at.selectbox(key="form.task.name").value == "scarf"
    assert options(at, "form.encoder.name") == ["table_mlp"]
    assert {"depth", "width"} <= {w.label for w in at.number_input} and at.selectbox(key="form.encoder.norm")
    assert "**142** training + **36** test rows · **3** classes · **13** columns (13 numeric)" in at.markdown[0].value
    first_rows = at.dataframe[0].value
    assert list(first_rows.columns[:3]) == ["class", "alcohol", "malic_acid"] and len(first_rows) == 8
    assert {"Column types", "Class balance"} <= {e.label for e in at.expander}
    assert not [b for b in at.button if b.label == "Train"][0].disabled


def test_the_task_preview_highlights_the_cells_it_changes(jobs: JobManager) -> None:
    at = open_page(TRAIN)
    at.selectbox(key="form.data.dataset").select("wine").run()
    at.selectbox(key="form.task.name").select("vime").run()
    assert not at.exception
    captions = [c.value for c in at.caption]
    assert "original" in captions and any(c.startswith("input · ") and "of cells changed" in c for c in captions)
    styled = [d for d in at.dataframe if "background-color" in d.proto.arrow_data.styler.styles]
    assert styled  # the changed cells carry the highlight


def test_synthetic_table_shows_its_own_settings_and_images_hide_them(jobs: JobManager) -> None:
    at = open_page(TRAIN)
    assert "synthetic rows" not in {w.label for w in at.number_input}
    at.selectbox(key="form.data.dataset").select("synthetic_table").run()
    assert {"synthetic rows", "synthetic columns", "synthetic noise"} <= {w.label for w in at.number_input}
    at.number_input(key="form.data.synthetic_columns").set_value(12).run()
    assert not at.exception
    assert "**12** columns" in at.markdown[0].value


def test_a_table_run_trains_from_the_page(jobs: JobManager) -> None:
    at = open_page(TRAIN)
    at.selectbox(key="form.data.dataset").select("wine").run()
    at.number_input(key="form.train.epochs").set_value(1).run()
    [button] = [b for b in at.button if b.label == "Train"]
    button.click().run()
    assert not at.exception
    [run] = jobs.store.list()
    assert (run.config().task.name, run.config().encoder.name) == ("scarf", "table_mlp")
    assert jobs.wait(run, TIMEOUT) == "completed"


def test_evaluate_offers_the_table_methods_and_says_how_trees_did(table_run: Run) -> None:
    at = open_page("app_pages/evaluate.py", run_id=table_run.id)
    assert not at.exception
    methods = at.multiselect(key="evaluate.methods.table")
    assert methods.value == ["linear_probe", "knn", "supervised", "raw_columns", "gradient_boosting"]
    assert "raw_pixels" not in methods.options

    evaluate_run(table_run, [4, "all"], repeats=1, supervised={"max_steps": 10})
    at = open_page("app_pages/evaluate.py", run_id=table_run.id)
    assert not at.exception
    gavel = [m.value for m in at.markdown if "gavel" in m.value]
    assert any("gradient boosting on the raw columns" in line for line in gavel)
    assert {"raw columns (logistic)", "gradient-boosted trees"} <= set(at.dataframe[0].value.columns)
    assert any("training rows" in m.value and "raw columns" in m.value for m in at.markdown)  # the protocol


def test_embeddings_maps_a_table_next_to_its_standardised_columns(table_run: Run) -> None:
    at = open_page("app_pages/embeddings.py", run_id=table_run.id)
    assert not at.exception
    headings = [m.value for m in at.markdown]
    assert "##### Raw columns, standardised (no learning)" in headings
    [component] = at.get("component_instance")
    args = json.loads(component.proto.json_args)
    assert args["thumbs"][0] == "" and args["texts"][0].startswith("alcohol  ")
    assert len(args["texts"]) == len(args["ids"]) == 36
    neighbours = [d.value for d in at.dataframe]
    assert len(neighbours) == 2 and list(neighbours[0].columns[:3]) == ["row", "class", "distance"]
    # a table's samples are rows wherever the page counts them
    assert at.radio(key="emb.split").label == "Rows"
    assert [m.label for m in at.metric][:1] == ["k-NN among shown rows"]
    assert "images" not in at.metric[0].help


def test_views_draws_original_corrupted_and_rebuilt_rows_as_heat_maps(jobs: JobManager) -> None:
    config = default_config(**{"data.dataset": "wine", "task.name": "vime", "train.epochs": 1, "train.batch_size": 32,
                               "train.threads": 1, "train.snapshot_images": 6, "train.knn_k": 0})
    run = jobs.store.create(config)
    assert execute_run(run) == "completed"
    at = open_page("app_pages/views.py", run_id=run.id)
    assert not at.exception and not at.error
    heat, errors = [json.loads(c.proto.spec) for c in at.get("plotly_chart")][:2]
    maps = [t for t in heat["data"] if t["type"] == "heatmap"]
    assert len(maps) == 3 and all(len(t["z"]) == 6 and len(t["z"][0]) == 13 for t in maps)  # 6 rows x 13 columns
    titles = [a["text"] for a in heat["layout"]["annotations"]]
    assert titles == ["<b>original</b>", "<b>corrupted input</b>", "<b>reconstruction</b>"]
    assert maps[0]["x"][:2] == ["alcohol", "malic_acid"]
    outlined = [t for t in heat["data"] if t["type"] == "scatter"]
    assert outlined and outlined[0]["marker"]["symbol"] == "square-open"  # the replaced cells
    assert errors["data"][0]["type"] == "bar" and len(errors["data"][0]["y"]) == 13  # error per column
    lines = at.dataframe[0].value
    assert len(lines) == 6 and lines["at this epoch"][0].startswith("error ")
    assert "mask found" in lines["at this epoch"][0]
    assert "views.size" not in [w.key for w in at.button_group]  # no picture size to choose for heat maps
    at.toggle(key="views.worst.vime").set_value(True).run()
    assert any("among the 6 test rows" in c.value for c in at.caption)


CSV = b"id,x,colour,label\n" + b"".join(
    f"u{i},{i % 7 + (i % 2) * 5},{'red' if i % 3 else 'blue'},{'yes' if i % 2 else 'no'}\n".encode() for i in range(40))


def upload_csv(data: bytes) -> AppTest:
    at = open_page("app_pages/data.py")
    at.radio(key="data.source").set_value("Upload a CSV table").run()
    at.file_uploader(key="data.csv").set_value(("mine.csv", data, "text/csv")).run()
    return at


def test_the_data_page_stores_a_csv_table_that_the_train_page_offers(jobs: JobManager) -> None:
    from sslcore.data import DATASETS

    at = upload_csv(CSV)
    assert at.selectbox(key="data.csv.target").options[:2] == ["(none: unlabelled)", "id"]
    at.selectbox(key="data.csv.target").select("label").run()
    at.multiselect(key="data.csv.drop").select("id").run()
    [b for b in at.button if b.label == "Preview"][0].click().run()
    assert not at.exception and not at.error
    assert any("40 rows × 2 columns in 2 classes" in m.value for m in at.markdown)
    first = [d.value for d in at.dataframe if "colour" in d.value.columns][0]
    assert list(first.columns) == ["class", "x", "colour"] and first["colour"][0] == "blue"
    [b for b in at.button if b.label == "Store"][0].click().run()
    assert not at.exception
    try:
        train = open_page(TRAIN)
        train.selectbox(key="form.data.dataset").select("mine").run()
        assert not train.exception
        assert options(train, "form.task.name") == ["scarf", "tabular_autoencoder", "vime"]
        assert "**32** training + **8** test rows · **2** classes" in train.markdown[0].value
    finally:
        for entry in list(DATASETS):
            if entry.obj.user:
                DATASETS.unregister(entry.name)


def test_a_bad_csv_is_refused_on_the_data_page_and_nothing_is_stored(jobs: JobManager) -> None:
    at = upload_csv(b"a,label\n1,x\n2,x\n3,x\n")
    at.selectbox(key="data.csv.target").select("label").run()
    [b for b in at.button if b.label == "Preview"][0].click().run()
    assert not at.exception
    assert any("Nothing was stored" in e.value and "single class" in e.value for e in at.error)
    from tests.app.test_data_page import data_root

    store = data_root() / "user"
    assert not store.exists() or not any(store.iterdir())
