"""AppTest: the Data page (upload a zip, preview, store, remove; a folder; refusals) and a user dataset on the
Train page."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from sslcore.config import default_config
from sslcore.data import DATASETS
from sslcore.runs.process_manager import JobManager
from tests.app.conftest import open_page
from tests.data import image_files as f
from tests.data.test_user_import import two_classes, write_tree

DATA, TRAIN = "app_pages/data.py", "app_pages/train.py"


@pytest.fixture(autouse=True)
def _forget_user_datasets() -> None:
    yield
    for entry in list(DATASETS):
        if entry.obj.user:
            DATASETS.unregister(entry.name)


def data_root() -> Path:
    return Path(os.environ["SSL_DATA_ROOT"])


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def button(at: AppTest, label: str):  # noqa: ANN201 - an AppTest Button
    return next(b for b in at.button if b.label == label)


def texts(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [t.value for t in at.text] + [s.value for s in at.success])


def preview_upload(files: dict[str, bytes], name: str = "pets.zip") -> AppTest:
    at = open_page(DATA)
    at.file_uploader(key="data.upload").set_value((name, zip_bytes(files), "application/zip")).run()
    button(at, "Preview").click().run()
    assert not at.exception
    return at


def test_upload_preview_store_and_remove(jobs: JobManager) -> None:
    files = two_classes(8) | {"red/notes.txt": b"not an image", "blue/broken.jpg": f.truncated_jpeg()}
    at = preview_upload(files)
    shown = texts(at)
    plain = shown.replace("\\", "")
    assert "16 colour 32×32 images in 2 classes" in plain and "48.0 KiB in memory" in plain
    classes = at.dataframe[0].value
    assert classes["class"].tolist() == ["blue", "red"] and classes["images"].tolist() == [8, 8]
    assert (classes["train"] + classes["test"]).tolist() == [8, 8] and classes["test"].sum() == 3  # 20% of 16
    skipped = at.dataframe[1].value
    assert sorted(skipped["reason"].tolist()) == ["corrupt", "not an image"]
    assert at.image  # the sample grid
    assert not (data_root() / "user" / "pets").exists()  # nothing stored before Store
    assert at.text_input(key="data.name").value == "pets"

    button(at, "Store").click().run()
    assert not at.exception
    assert (data_root() / "user" / "pets" / "manifest.json").is_file()
    assert any("Stored dataset pets" in s.value for s in at.success)
    assert "pets" in DATASETS
    assert not [p for p in (data_root() / "user").iterdir() if p.name.startswith(".")]  # no upload or staging left

    button(at, "Remove…").click().run()
    assert any("Remove this dataset?" in w.value for w in at.warning)
    assert (data_root() / "user" / "pets").exists()  # asked first
    button(at, "Remove").click().run()
    assert not at.exception
    assert not (data_root() / "user" / "pets").exists()
    assert any("Removed dataset pets" in s.value for s in at.success)


def test_a_folder_in_the_data_root_previews_and_can_be_discarded(jobs: JobManager) -> None:
    write_tree(data_root() / "pile", {f"i{i:02d}.png": f.grey(30 + 9 * i, seed=i) for i in range(14)})
    at = open_page(DATA)
    at.radio(key="data.source").set_value("A folder in the data root").run()
    assert at.selectbox(key="data.folder").options == ["pile"]
    button(at, "Preview").click().run()
    assert not at.exception
    assert "14 grey 32×32 images unlabelled" in texts(at).replace("\\", "")
    assert at.dataframe[0].value["class"].tolist() == ["(no label)"]
    button(at, "Discard").click().run()
    assert not (data_root() / "user").exists() or not list((data_root() / "user").iterdir())
    assert "Preview" not in [s.value for s in at.subheader]


def test_a_refused_upload_says_why_and_stores_nothing(jobs: JobManager) -> None:
    files = {f"cats/c{i}.png": f.solid(f.RED, seed=i) for i in range(12)}
    at = preview_upload({f"export/{k}": v for k, v in files.items()} | {"export/cats/![x](http:--h-b.png).png": b"x"})
    assert any("only one class folder" in e.value and "unlabelled" in e.value for e in at.error)
    assert "Store" not in [b.label for b in at.button]
    assert not (data_root() / "user").exists() or not list((data_root() / "user").iterdir())


def test_user_text_is_never_rendered_as_markdown(jobs: JobManager) -> None:
    files = two_classes() | {"![x](beacon.png)/a.png": f.solid(f.GREEN)}  # a class folder named like an image
    at = preview_upload(files)
    [error] = [e.value for e in at.error]
    assert "has 1" in error and "![x](beacon.png)" not in error and r"\!\[x\]\(beacon\.png\)" in error


def test_remove_is_refused_while_a_run_trains_on_the_dataset(jobs: JobManager) -> None:
    at = preview_upload(two_classes())
    button(at, "Store").click().run()
    run = jobs.store.create(default_config(**{"data.dataset": "pets", "data.root": str(data_root())}))
    run.update_status(state="running", pid=os.getpid())
    button(at, "Remove…").click().run()
    assert any("use this dataset now" in e.value for e in at.error)
    assert button(at, "Remove").disabled
    run.update_status(state="cancelled", pid=None)


def test_an_unlabelled_dataset_on_the_train_page(jobs: JobManager) -> None:
    at = preview_upload({f"i{i:02d}.png": f.solid(f.RED if i % 2 else f.BLUE, seed=i) for i in range(20)}, "pile.zip")
    button(at, "Store").click().run()
    at.switch_page(TRAIN).run()
    at.selectbox(key="form.data.dataset").select("pile").run()
    assert not at.exception
    assert "**16** training + **4** test images · **no labels**" in at.markdown[0].value
    assert any(b.label == "Train" and not b.disabled for b in at.button)


def test_pages_that_need_labels_say_so_for_an_unlabelled_run(jobs: JobManager) -> None:
    from tests.runs.jobs_support import TIMEOUT

    at = preview_upload({f"i{i:02d}.png": f.solid(f.RED if i % 2 else f.BLUE, seed=i) for i in range(24)}, "pile.zip")
    button(at, "Store").click().run()
    config = default_config(**{"data.dataset": "pile", "data.root": str(data_root()), "train.epochs": 1,
                               "train.batch_size": 8, "encoder.width": 8, "train.threads": 1})
    run = jobs.submit(config)
    assert jobs.wait(run, TIMEOUT) == "completed"

    evaluate = open_page("app_pages/evaluate.py", run_id=run.id)
    assert not evaluate.exception
    assert any("has no labels" in i.value and "Data page" in i.value for i in evaluate.info)
    embeddings = open_page("app_pages/embeddings.py", run_id=run.id)
    assert not embeddings.exception
    assert any("No k-NN accuracy or silhouette" in i.value for i in embeddings.info)
    assert any("not coloured by class: the dataset has no labels" in c.value for c in embeddings.caption)
    views = open_page("app_pages/views.py", run_id=run.id)  # snapshots of unlabelled test images
    assert not views.exception and views.image
