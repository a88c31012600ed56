"""The user's stored datasets: names, the registry, loading with a stable seeded split, labels added later,
damaged folders, removal refused while a run uses the dataset, and what runs record of their data."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sslcore.config import ConfigError, default_config
from sslcore.data import DATASETS, DatasetNotFoundError, DatasetUnavailableError, dataset_info, load_dataset
from sslcore.pairing import tasks_for
from sslcore.runs import RunStore
from sslcore.userdata import store
from sslcore.userdata.discovery import refresh_user_datasets
from sslcore.userdata.importer import import_options, stage_import
from sslcore.userdata.labels import apply_labels, labels_from_folder, read_label_csv
from sslcore.userdata.sources import ImportRefused
from sslcore.userdata.usage import (
    DatasetInUseError,
    dataset_problem,
    dataset_record,
    file_names,
    remove_dataset,
    runs_using,
)
from tests.data import image_files as f
from tests.data.test_user_import import two_classes, write_tree


def add(root: Path, name: str, files: dict[str, bytes], **options: object) -> Path:
    folder = write_tree(root / f"src_{name}_{len(list(root.glob('src_*')))}", files)
    staging = stage_import(folder, root, import_options(size=8, **options), workers=1)
    path = store.commit(staging, name, DATASETS.names())
    refresh_user_datasets(root)
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    yield tmp_path
    for entry in list(DATASETS):  # leave the process-wide registry as the other tests expect it
        if entry.obj.user:
            DATASETS.unregister(entry.name)


def pile(n: int = 20) -> dict[str, bytes]:
    return {f"img{i:02d}.png": f.solid(f.RED if i % 2 else f.BLUE, seed=i) for i in range(n)}


@pytest.mark.parametrize("name, message", [
    ("a/b", "not allowed"), ("..", "not allowed"), ("my pets", "not allowed"), (".hidden", "not allowed"),
    ("x" * 41, "not allowed"), ("digits", "taken"), ("MNIST5K", "taken"),
])
def test_bad_or_clashing_names_are_refused(name: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        store.check_name(name, DATASETS.names())


def test_a_stored_dataset_is_registered_and_loads_with_a_seeded_stratified_split(root: Path) -> None:
    add(root, "pets", two_classes(10))
    assert "pets" in DATASETS and dataset_info("pets")["user"] is True
    info = dataset_info("pets")
    assert info["sample_shape"] == (3, 8, 8) and "2 classes (blue, red)" in info["description"]
    split = load_dataset("pets", root=root, seed=3)
    assert (len(split.train), len(split.test)) == (16, 4)
    assert split.test.labels.bincount().tolist() == [2, 2]  # stratified
    again = load_dataset("pets", root=root, seed=3)
    assert torch.equal(split.test.images, again.test.images)
    assert "simclr" in tasks_for("pets")  # pairing sees its kind and shape without loading it
    config = default_config(**{"data.dataset": "pets", "data.root": str(root)})
    assert config.data.dataset == "pets"


def test_file_names_follow_the_seeded_split(root: Path) -> None:
    add(root, "pets", two_classes(10))
    data = default_config(**{"data.dataset": "pets", "data.root": str(root), "data.train_limit": 8}).data
    split = load_dataset("pets", root=root, train_limit=8)
    for which in ("train", "test"):
        part = getattr(split, which)
        names = file_names(data, which, range(len(part)))
        assert len(set(names)) == len(part)
        assert all(n.startswith("blue/" if c == 0 else "red/")
                   for n, c in zip(names, part.labels.tolist(), strict=True))
    assert file_names(default_config().data, "test", [0]) is None  # a built-in dataset has no file names


def test_a_name_taken_while_importing_is_refused_at_commit(root: Path) -> None:
    add(root, "pets", two_classes())
    staging = stage_import(write_tree(root / "again", two_classes()), root, workers=1)
    with pytest.raises(ValueError, match="taken"):
        store.commit(staging, "pets", [])  # the folder exists: the rename refuses, nothing is overwritten
    store.discard(staging)
    assert [p.name for p in store.store_dir(root).iterdir()] == ["pets"]


def test_an_unlabelled_dataset_loads_with_no_classes(root: Path) -> None:
    add(root, "pile", pile())
    split = load_dataset("pile", root=root)
    assert split.class_names == () and not split.has_labels and (split.train.labels == -1).all()
    assert len(split.train) + len(split.test) == 20 and len(split.test) == 4


def test_unknown_datasets_say_how_to_add_one(root: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="sslcore data add PATH --name cats"):
        load_dataset("cats", root=root)
    with pytest.raises(ConfigError, match="data.dataset = 'cats' is not allowed.*sslcore data add"):
        default_config(**{"data.dataset": "cats", "data.root": str(root)})


def test_a_damaged_dataset_says_so_when_loaded(root: Path) -> None:
    folder = add(root, "pets", two_classes())
    np.save(folder / "samples.npy", np.zeros((3, 3, 8, 8), np.uint8))
    with pytest.raises(DatasetUnavailableError, match="damaged.*samples.npy is uint8 \\(3, 3, 8, 8\\)"):
        load_dataset("pets", root=root)
    (folder / "manifest.json").write_text("{not json")
    assert refresh_user_datasets(root) == [] and "pets" not in DATASETS


def test_an_object_array_is_never_unpickled(root: Path) -> None:
    folder = add(root, "pets", two_classes())
    np.save(folder / "labels.npy", np.array([object()] * 12), allow_pickle=True)
    with pytest.raises(DatasetUnavailableError, match="unreadable"):
        load_dataset("pets", root=root)


def test_labels_added_later_keep_the_split_and_reach_evaluation(root: Path) -> None:
    add(root, "pile", pile())
    before = load_dataset("pile", root=root)
    csv = "file,label\n" + "".join(f"img{i:02d}.png,{'red' if i % 2 else 'blue'}\n" for i in range(14))
    csv += "missing.png,red\n"
    result = apply_labels(root, "pile", read_label_csv(csv.encode(), "labels.csv"), "labels.csv")
    assert result["matched"] == 14 and result["unmatched"] == ["missing.png"]
    refresh_user_datasets(root)
    after = load_dataset("pile", root=root)
    assert torch.equal(before.test.images, after.test.images)  # the split did not move
    assert after.class_names == ("blue", "red")
    labelled = after.labelled()
    assert 0 < len(labelled.train) < len(after.train) and (labelled.train.labels >= 0).all()
    manifest = store.read_manifest(store.store_dir(root) / "pile")
    assert manifest["labels_source"]["name"] == "labels.csv"
    assert len(list((root / "user" / "pile").glob("labels*.npy"))) == 1


def test_labels_from_class_folders_match_by_file_name(root: Path) -> None:
    add(root, "pile", pile())
    write_tree(root / "sorted", {f"{'red' if i % 2 else 'blue'}/img{i:02d}.png": b"x" for i in range(20)})
    result = apply_labels(root, "pile", labels_from_folder(root / "sorted", root), "sorted")
    assert result["matched"] == 20 and result["class_counts"] == [10, 10]


@pytest.mark.parametrize("text, message", [
    (b"file,label\nimg00.png\n", "line 2: expected 2 columns"),
    (b"\xff\xfe\x00bad", "not UTF-8"),
    (b"img00.png,red\nimg01.png,red\n", "at least 2 classes"),
    (b"nothing.png,red\nnone.png,blue\n", "none of the 2 names"),
])
def test_bad_label_files_are_refused_and_change_nothing(root: Path, text: bytes, message: str) -> None:
    add(root, "pile", pile())
    before = store.read_manifest(store.store_dir(root) / "pile")
    with pytest.raises(ImportRefused, match=message):
        apply_labels(root, "pile", read_label_csv(text, "labels.csv"), "labels.csv")
    assert store.read_manifest(store.store_dir(root) / "pile") == before


def _run_on(runs: RunStore, dataset: str, root: Path, state: str):  # noqa: ANN202 - a Run
    run = runs.create(default_config(**{"data.dataset": dataset, "data.root": str(root), "train.knn_k": 0}))
    run.update_status(state=state, dataset=dataset_record(run.config().data))
    return run


def test_remove_is_refused_while_a_run_trains_on_it_and_runs_then_say_it_is_missing(root: Path) -> None:
    add(root, "pets", two_classes())
    runs = RunStore(root / "runs")
    busy = _run_on(runs, "pets", root, "completed")
    busy.update_status(state="running", pid=__import__("os").getpid())  # this live process "trains" it
    with pytest.raises(DatasetInUseError, match="in use by 1 run"):
        remove_dataset("pets", root, runs.root)
    busy.update_status(state="completed", pid=None)
    assert runs_using("pets", runs.root) == ([], [busy])
    assert remove_dataset("pets", root, runs.root) == [busy]
    assert not (root / "user" / "pets").exists() and "pets" not in DATASETS
    assert busy.config().data.dataset == "pets"  # the run's config still reads
    assert "is not on this machine" in dataset_problem(busy)
    with pytest.raises(ValueError, match="built in"):
        remove_dataset("digits", root, runs.root)


def test_a_run_records_the_hash_and_notices_other_images_under_the_same_name(root: Path) -> None:
    add(root, "pets", two_classes())
    run = _run_on(RunStore(root / "runs"), "pets", root, "completed")
    recorded = run.status()["dataset"]
    assert recorded["name"] == "pets" and recorded["content_hash"].startswith("sha256:")
    assert dataset_problem(run) is None
    remove_dataset("pets", root, root / "runs")
    add(root, "pets", two_classes(5))  # same name, other images
    assert "other images than the run was trained on" in dataset_problem(run)


def test_a_stored_config_naming_an_odd_missing_dataset_is_still_refused(root: Path) -> None:
    from sslcore.config import config_from_dict

    config = default_config().to_dict()
    config["data"]["dataset"] = "![x](http://host/beacon.png)"
    with pytest.raises(ConfigError, match="data.dataset"):
        config_from_dict(config, stored=True)
    config["data"]["dataset"] = "gone_set"
    assert config_from_dict(config, stored=True).data.dataset == "gone_set"


def test_stale_staging_folders_are_swept(root: Path) -> None:
    staging = stage_import(write_tree(root / "src", two_classes()), root, workers=1)
    store.sweep_stale(root, older_than=3600)
    assert staging.exists()
    store.sweep_stale(root, older_than=-1)
    assert not staging.exists()


def test_a_resume_refuses_other_images_under_the_same_name(root: Path) -> None:
    from sslcore.engine.training_run import _changed_data

    add(root, "pets", two_classes())
    run = _run_on(RunStore(root / "runs"), "pets", root, "cancelled")
    before = run.status()["dataset"]
    assert _changed_data(run, before) is None
    other = {**before, "content_hash": "sha256:" + "0" * 64}
    assert "now holds other images than this run started on" in _changed_data(run, other)
    assert _changed_data(run, {"name": "pets"}) is None  # nothing to compare: a built-in dataset
