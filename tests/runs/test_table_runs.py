"""A table run through the command line as for images: train, eval with the table methods, export, import."""
from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
import torch

from sslcore.cli import main
from sslcore.data import load_dataset
from sslcore.runs import RunStore
from sslcore.runs.archive import import_run, load_run_encoder


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    runs = tmp_path_factory.mktemp("runs")
    assert main(["train", "--dataset", "wine", "--task", "vime", "--epochs", "2", "--batch-size", "32",
                 "--runs-dir", str(runs), "--set", "train.threads=1"]) == 0
    [run] = RunStore(runs).list()
    return runs, run.id


def test_train_picks_the_table_encoder_and_eval_runs_the_table_methods(cli_run: tuple[Path, str], capsys) -> None:
    runs, run_id = cli_run
    run = RunStore(runs).get(run_id)
    assert run.state == "completed" and run.config().encoder.name == "table_mlp"
    assert run.status()["image_shape"] == [13]
    assert main(["eval", run_id, "--runs-dir", str(runs), "--labels-per-class", "4,all", "--repeats", "1"]) == 0
    table = capsys.readouterr().out
    assert "gradient_boosting" in table and "raw_columns" in table and "train 142 / test 36 rows" in table
    assert main(["eval", run_id, "--runs-dir", str(runs), "--methods", "raw_pixels"]) == 2
    assert "'raw_pixels' needs image data" in capsys.readouterr().err


def test_a_table_run_exports_and_imports_with_its_column_count(cli_run: tuple[Path, str], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    runs, run_id = cli_run
    archive = tmp_path / "run.zip"
    assert main(["export", run_id, "--runs-dir", str(runs), "--out", str(archive)]) == 0
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path / "unzipped")
        readme = zf.read("README.md").decode()
        assert json.loads(zf.read("status.json"))["image_shape"] == [13]
    assert "float32 table rows of shape (B, 13)" in readme
    imported = import_run(archive, RunStore(tmp_path / "imported"))
    data = load_dataset("wine")
    rows = data.test.rows[:5]
    with torch.no_grad():
        expected = load_run_encoder(RunStore(runs).get(run_id), data)(rows)
        assert torch.equal(load_run_encoder(imported, data)(rows), expected)
    helper, plain = {}, {}
    monkeypatch.chdir(tmp_path / "unzipped")
    snippets = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    exec(snippets[0], helper)  # noqa: S102 - the README's own code must work for a table encoder too
    exec(snippets[1], plain)  # noqa: S102
    assert plain["features"].shape == (16, expected.shape[1])
    with torch.no_grad():
        assert torch.equal(helper["encoder"](plain["images"]), plain["features"])
