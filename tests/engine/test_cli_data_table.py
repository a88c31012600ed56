"""``sslcore data add table.csv``: a person's CSV becomes a table dataset that trains and evaluates like the
built-in ones; a bad file is refused in one line and nothing is written."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sslcore.cli import main
from sslcore.data import DATASETS, load_dataset
from sslcore.runs import RunStore


@pytest.fixture
def root(tmp_path: Path) -> Path:
    yield tmp_path
    for entry in list(DATASETS):
        if entry.obj.user:
            DATASETS.unregister(entry.name)


def write_table(path: Path, rows: int = 120, missing: bool = True) -> Path:
    """Two classes told apart by x (+ noise), a categorical colour, an identifier, and a few empty cells."""
    rng = np.random.default_rng(0)
    lines = ["id,x,y,colour,label"]
    for i in range(rows):
        label = i % 2
        x = "" if missing and i % 17 == 3 else f"{label * 2 + rng.normal():.3f}"
        lines.append(f"u{i},{x},{rng.normal():.3f},{'red' if (i + label) % 3 else 'blue'},{'yes' if label else 'no'}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_csv_is_stored_and_trains_and_evaluates_as_a_table(root: Path, capsys: pytest.CaptureFixture) -> None:
    csv = write_table(root / "mine.csv")
    assert main(["data", "add", str(csv), "--name", "mine", "--target", "label", "--drop", "id",
                 "--data-root", str(root)]) == 0
    err = capsys.readouterr().err
    assert "120 rows × 3 columns in 2 classes" in err
    split = load_dataset("mine", root=root)
    assert split.kind == "table" and split.class_names == ("no", "yes")
    assert split.train.columns.names == ("x", "y", "x (missing)", "colour=blue", "colour=red")
    runs = root / "runs"
    assert main(["train", "--dataset", "mine", "--task", "vime", "--epochs", "1", "--batch-size", "32",
                 "--data-root", str(root), "--runs-dir", str(runs), "--set", "train.threads=1"]) == 0
    progress = capsys.readouterr().err
    assert "rows/s" in progress and "img/s" not in progress  # a table's speed is counted in rows
    [run] = RunStore(runs).list()
    assert run.state == "completed" and run.config().encoder.name == "table_mlp"
    assert run.status()["dataset"]["content_hash"].startswith("sha256:")
    assert main(["eval", run.id, "--runs-dir", str(runs), "--labels-per-class", "4,all", "--repeats", "1"]) == 0
    out, err = capsys.readouterr()
    assert "gradient_boosting" in out
    # each row is printed as it finishes, the quick methods first
    assert "\r" not in err and "repeat 1/1" not in err  # not a terminal: the finished rows only, one a line
    finished = [line.strip() for line in err.splitlines() if " · " in line and line.strip().endswith("%")]
    assert [line.split(":")[0] for line in finished][:2] == ["linear probe · 4 labels per class",
                                                             "linear probe · all labels"]
    # the networks last, largest subset first (the order their fits run in, side by side, on 2+ threads)
    assert [line.split(":")[0] for line in finished][-2:] in (
        ["supervised from scratch · all labels", "supervised from scratch · 4 labels per class"],
        ["supervised from scratch · 4 labels per class", "supervised from scratch · all labels"])  # 1 thread


def test_an_unlabelled_csv_trains_and_evaluation_says_it_needs_labels(root: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    csv = write_table(root / "plain.csv", missing=False)
    assert main(["data", "add", str(csv), "--name", "plain", "--drop", "id,label", "--data-root", str(root)]) == 0
    assert "unlabelled" in capsys.readouterr().err
    runs = root / "runs"
    assert main(["train", "--dataset", "plain", "--task", "scarf", "--epochs", "1", "--batch-size", "32",
                 "--data-root", str(root), "--runs-dir", str(runs), "--set", "train.threads=1"]) == 0
    [run] = RunStore(runs).list()
    assert run.state == "completed" and "knn_acc" not in run.metrics("epoch")[-1]
    assert main(["eval", run.id, "--runs-dir", str(runs)]) == 2
    assert "label" in capsys.readouterr().err


@pytest.mark.parametrize("text, args, fragment", [
    ("a,label\n1,x\n", ["--target", "label"], "1 data row: a table needs at least 2"),
    ("name,label\nann,x\nbob,y\n", ["--target", "label"], "no numeric column"),
    ("a,label\n1,x\n2,x\n", ["--target", "label"], "has a single class"),
    ("a,label\n1,x\n2,y\n", ["--target", "class"], "target column 'class' is not in the file"),
    ("a,b\n1,2\n3,4,5\n", [], "line 3 has 3 values but the header has 2 columns"),
    ("a,b\n1,inf\n2,3\n", [], "'inf' is not a finite number"),
    ("a,a\n1,2\n3,4\n", [], "column name 'a' appears more than once"),
    ("a,label\n1,x\n2,x\n3,y\n", ["--target", "label"], "each class of 'label' needs at least 2 rows"),
])
def test_a_bad_csv_is_one_line_and_nothing_is_written(root: Path, capsys: pytest.CaptureFixture, text: str,
                                                      args: list[str], fragment: str) -> None:
    csv = root / "bad.csv"
    csv.write_text(text)
    assert main(["data", "add", str(csv), "--name", "bad", *args, "--data-root", str(root)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert fragment in err[-1] and err[-1].startswith("error:")
    assert not (root / "user").exists() or not any((root / "user").iterdir())  # no dataset, no staging folder


def test_non_utf8_bytes_and_table_options_for_images_are_refused(root: Path, capsys: pytest.CaptureFixture) -> None:
    (root / "latin.csv").write_bytes(b"a,b\n1,caf\xe9\n2,x\n")
    assert main(["data", "add", str(root / "latin.csv"), "--name", "latin", "--data-root", str(root)]) == 2
    assert "not UTF-8 text" in capsys.readouterr().err
    (root / "pics").mkdir()
    assert main(["data", "add", str(root / "pics"), "--name", "p", "--target", "x", "--data-root", str(root)]) == 2
    assert "--target is for a CSV table" in capsys.readouterr().err
