"""The command line's run actions: resume, export, import, delete (asking first, stopping a live job first),
rename, tag and train-again, each with one clear line and exit status 2 for what it refuses."""
from __future__ import annotations

import io
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sslcore.cli import main
from sslcore.engine import training_run
from sslcore.engine.callbacks import Callback
from sslcore.engine.checkpoint import load_checkpoint
from sslcore.engine.training_run import execute_run
from sslcore.runs import Run, RunStore, pid_alive
from sslcore.runs.process_manager import JobManager
from tests.conftest import tiny_config
from tests.runs.jobs_support import stop_all, wait_until

# 512 training images at batch 128: 4 steps an epoch, so a real run takes a few seconds.
SMALL = {"data.train_limit": 512, "train.snapshot_images": 2}


class StopAt(Callback):
    """Stops training right after ``step``, as the STOP file or SIGTERM do (but at an exact step)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, state) -> None:  # noqa: ANN001
        if state.step == self.step:
            state.stop_reason = "cancelled"


def one_error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_cli_resume_continues_from_the_checkpoint_epoch_without_gaps(tmp_path: Path, monkeypatch, capsys) -> None:
    run = RunStore(tmp_path).create(tiny_config("rotation", **{"train.epochs": 3, **SMALL}))
    original = training_run.run_callbacks
    monkeypatch.setattr(training_run, "run_callbacks", lambda *a, **k: [StopAt(6), *original(*a, **k)])
    assert execute_run(run) == "cancelled"
    monkeypatch.setattr(training_run, "run_callbacks", original)
    checkpoint = load_checkpoint(run.checkpoint_dir / "last.pt")["state"]
    assert (checkpoint["epoch"], checkpoint["step"]) == (1, 6)  # inside epoch 2 of 3 (4 steps each)

    assert main(["resume", run.id, "--runs-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(run.path)
    assert run.state == "completed"
    assert [r["step"] for r in run.metrics("step")] == list(range(1, 13)), "no gap and no duplicate step"
    assert [r["epoch"] for r in run.metrics("epoch")] == [0, 1, 2, 3], "no gap and no duplicate epoch"

    assert main(["resume", run.id, "--runs-dir", str(tmp_path)]) == 2
    assert "has completed all its epochs" in one_error_line(capsys)


def test_cli_export_import_and_what_they_refuse(tmp_path: Path, capsys) -> None:
    runs, other = tmp_path / "runs", tmp_path / "other"
    run = RunStore(runs).create(tiny_config(**{"train.epochs": 1, **SMALL}))
    assert execute_run(run) == "completed"
    out = tmp_path / "run.zip"

    assert main(["export", run.id, "--out", str(out), "--runs-dir", str(runs)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert main(["export", run.id, "--out", str(out), "--runs-dir", str(runs)]) == 2
    assert "already exists" in one_error_line(capsys)
    assert main(["export", run.id, "--out", str(out), "--force", "--runs-dir", str(runs)]) == 0
    capsys.readouterr()

    assert main(["import", str(out), "--name", "a copy", "--runs-dir", str(other)]) == 0
    imported = RunStore(other).get(Path(capsys.readouterr().out.strip()).name)
    assert imported.status()["name"] == "a copy" and imported.metrics() == run.metrics()
    assert main(["resume", imported.id, "--runs-dir", str(other)]) == 2
    assert "imported from run.zip" in one_error_line(capsys)

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(evil, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        dst.writestr("../../outside.txt", "x")
    assert main(["import", str(evil), "--runs-dir", str(tmp_path / "fresh")]) == 2
    assert "'../../outside.txt' is refused: it climbs out" in one_error_line(capsys)
    assert not (tmp_path / "fresh").exists() and not list(tmp_path.parent.rglob("outside.txt"))


def finished_run(tmp_path: Path) -> Run:
    run = RunStore(tmp_path).create(tiny_config(**{"train.epochs": 2}))
    run.update_status(state="cancelled")
    run.append_metrics({"kind": "epoch", "epoch": 0}, {"kind": "epoch", "epoch": 1})
    return run


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_delete_asks_on_a_terminal_and_refuses_without_one(tmp_path: Path, monkeypatch, capsys) -> None:
    run = finished_run(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # a pipe, not a terminal: nobody to ask
    assert main(["delete", run.id, "--runs-dir", str(tmp_path)]) == 2
    assert "refusing without confirmation; pass --yes" in one_error_line(capsys)

    questions = []
    monkeypatch.setattr(sys, "stdin", FakeTTY())
    for answer, code in (("n", 1), ("", 1), ("y", 0)):
        monkeypatch.setattr("builtins.input", lambda q, answer=answer: questions.append(q) or answer)
        assert main(["delete", run.id, "--runs-dir", str(tmp_path)]) == code
        assert run.path.exists() == (code == 1)
    assert questions[0] == f"Delete run {run.id} (cancelled, 1/2 epochs)? [y/N] "
    assert list(tmp_path.iterdir()) == [], "the folder is gone, with no hidden leftovers"


def test_delete_refuses_a_folder_outside_the_runs_folder(tmp_path: Path, capsys) -> None:
    run = finished_run(tmp_path / "elsewhere")
    assert main(["delete", str(run.path), "--yes", "--runs-dir", str(tmp_path / "runs")]) == 2
    assert "is not a run folder of" in one_error_line(capsys) and run.path.exists()


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[JobManager]:
    jm = JobManager(tmp_path / "runs", max_concurrent=1)
    yield jm
    stop_all(jm)


def test_delete_stops_a_running_run_first(manager: JobManager, capsys) -> None:
    run = manager.submit(tiny_config(**{"train.epochs": 500, "train.knn_k": 0, "train.snapshot_images": 0}))
    wait_until(lambda: run.state == "running" and bool(run.metrics("step")), what="training to start")
    pid = run.status()["pid"]

    assert main(["delete", run.id, "--yes", "--runs-dir", str(manager.store.root)]) == 0
    assert not run.path.exists() and not pid_alive(pid)
    assert [p.name for p in manager.store.root.iterdir() if not p.name.startswith(".slots")] == []


def test_rename_and_tag(tmp_path: Path, capsys) -> None:
    run = finished_run(tmp_path)
    assert main(["rename", run.id, "  baseline v2 ", "--runs-dir", str(tmp_path)]) == 0
    assert run.status()["name"] == "baseline v2"
    assert main(["tag", run.id, "demo", "best", "demo", "--runs-dir", str(tmp_path)]) == 0
    assert main(["tag", run.id, "paper", "--runs-dir", str(tmp_path)]) == 0
    assert main(["tag", run.id, "best", "--remove", "--runs-dir", str(tmp_path)]) == 0
    assert run.tags() == ["demo", "paper"] and capsys.readouterr().out.splitlines()[-1] == "demo paper"
    assert run.state == "cancelled", "renaming and tagging leave the rest of the status alone"

    assert main(["rename", run.id, "", "--runs-dir", str(tmp_path)]) == 2
    assert "run name '' is not allowed" in one_error_line(capsys)
    assert main(["tag", run.id, "two words", "--runs-dir", str(tmp_path)]) == 2
    assert "tag 'two words' is not allowed" in one_error_line(capsys)


def test_train_again_from_a_run_with_an_edited_config(tmp_path: Path, capsys) -> None:
    source_config = tiny_config(**{"train.epochs": 1, **SMALL})
    source = RunStore(tmp_path).create(source_config)
    assert main(["train", "--from", source.id, "--set", "train.seed=3", "--runs-dir", str(tmp_path)]) == 0
    again = RunStore(tmp_path).get(Path(capsys.readouterr().out.strip().splitlines()[-1]).name)
    assert again.id != source.id and again.state == "completed"
    assert again.config() == source_config.replace({"train.seed": 3})

    assert main(["train", "--from", source.id, "--config", "x.json", "--runs-dir", str(tmp_path)]) == 2
    assert "use one of them" in one_error_line(capsys)
