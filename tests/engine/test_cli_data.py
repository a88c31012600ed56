"""``sslcore data``: add, list, label and remove the user's datasets; train on an unlabelled one; what evaluation,
export and import say about data that has no labels or is not on this machine."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from sslcore.cli import main
from sslcore.data import DATASETS
from tests.data import image_files as f
from tests.data.test_user_import import two_classes, write_tree


@pytest.fixture
def root(tmp_path: Path) -> Path:
    yield tmp_path
    for entry in list(DATASETS):
        if entry.obj.user:
            DATASETS.unregister(entry.name)


def run_cli(*args: str) -> int:
    return main(list(args))


def test_add_list_and_datasets_show_it(root: Path, capsys: pytest.CaptureFixture) -> None:
    write_tree(root / "pets", two_classes())
    assert run_cli("data", "add", str(root / "pets"), "--name", "pets", "--size", "12", "--data-root", str(root)) == 0
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1] == str(root / "user" / "pets")
    assert "12 colour 12×12 images in 2 classes" in err and "split 10 train / 2 test" in err
    assert run_cli("data", "list", "--data-root", str(root)) == 0
    assert "pets" in capsys.readouterr().out
    assert run_cli("datasets", "--data-root", str(root)) == 0
    assert any(line.startswith("pets") and "yours" in line for line in capsys.readouterr().out.splitlines())


@pytest.mark.parametrize("args, fragment", [
    (["--name", "a/b"], "dataset name 'a/b' is not allowed"),
    (["--name", "digits"], "is taken"),
    (["--name", "ok", "--size", "500"], "import.size = 500 is not allowed: expected an integer between 8 and 128"),
    (["--name", "ok", "--grey", "--rgb"], "--grey and --rgb contradict"),
])
def test_bad_input_is_one_line_and_stores_nothing(root: Path, capsys: pytest.CaptureFixture, args: list[str],
                                                  fragment: str) -> None:
    write_tree(root / "pets", two_classes())
    assert run_cli("data", "add", str(root / "pets"), *args, "--data-root", str(root)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert fragment in err[-1] and err[-1].startswith("error:")
    assert not (root / "user").exists() or not any(p for p in (root / "user").iterdir())


def test_a_hostile_zip_is_refused_in_one_line(root: Path, capsys: pytest.CaptureFixture) -> None:
    with zipfile.ZipFile(root / "evil.zip", "w") as zf:
        for name, data in two_classes().items():
            zf.writestr(name, data)
        zf.writestr("../../etc/passwd.png", f.solid(f.RED))
    assert run_cli("data", "add", str(root / "evil.zip"), "--name", "evil", "--data-root", str(root)) == 2
    assert "climbs out of the archive" in capsys.readouterr().err


def test_train_on_an_unlabelled_dataset_then_evaluate_export_and_import(root: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    write_tree(root / "pile", {f"i{i:02d}.png": f.solid(f.RED if i % 2 else f.BLUE, seed=i) for i in range(40)})
    assert run_cli("data", "add", str(root / "pile"), "--name", "pile", "--size", "8", "--data-root", str(root)) == 0
    runs = str(root / "runs")
    assert run_cli("train", "--dataset", "pile", "--data-root", str(root), "--epochs", "1", "--runs-dir", runs,
                   "--set", "train.batch_size=16", "--set", "encoder.width=8", "--set", "train.threads=1") == 0
    run_dir = Path(capsys.readouterr().out.strip().splitlines()[-1])
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "completed" and status["dataset"]["content_hash"].startswith("sha256:")
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if '"epoch"' in line]
    epochs = [r for r in epochs if r.get("kind") == "epoch"]
    assert epochs and all("knn_acc" not in r for r in epochs)  # the monitor skipped itself: no labels
    assert list((run_dir / "snapshots").glob("epoch_*.npz"))  # snapshots of unlabelled test images
    assert run_cli("eval", str(run_dir), "--runs-dir", runs, "--labels-per-class", "1", "--repeats", "1") == 2
    assert "has no labels" in capsys.readouterr().err
    assert run_cli("export", str(run_dir), "--runs-dir", runs, "--out", str(root / "run.zip")) == 0
    assert run_cli("data", "remove", "pile", "--yes", "--data-root", str(root), "--runs-dir", runs) == 0
    capsys.readouterr()
    assert run_cli("import", str(root / "run.zip"), "--runs-dir", str(root / "other_runs")) == 0
    err = capsys.readouterr().err
    assert "its dataset 'pile' is not on this machine" in err and "sslcore data add" in err


def test_label_and_remove_from_the_command_line(root: Path, capsys: pytest.CaptureFixture) -> None:
    write_tree(root / "pile", {f"i{i:02d}.png": f.solid(f.RED if i % 2 else f.BLUE, seed=i) for i in range(12)})
    assert run_cli("data", "add", str(root / "pile"), "--name", "pile", "--data-root", str(root)) == 0
    (root / "labels.csv").write_text("".join(f"i{i:02d}.png,{'red' if i % 2 else 'blue'}\n" for i in range(8)))
    assert run_cli("data", "label", "pile", str(root / "labels.csv"), "--data-root", str(root),
                   "--runs-dir", str(root / "runs")) == 0
    assert "labelled 8 of 12 images" in capsys.readouterr().err
    assert run_cli("data", "remove", "nope", "--yes", "--data-root", str(root), "--runs-dir", str(root / "runs")) == 2
    assert "only datasets you added can be removed" in capsys.readouterr().err
    assert run_cli("data", "remove", "pile", "--yes", "--data-root", str(root), "--runs-dir", str(root / "runs")) == 0
    assert not (root / "user" / "pile").exists()
