"""The command line: listings, a real training run, and one clear line for bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sslcore.cli import main

ROOT = Path(__file__).resolve().parents[2]


def sslcore(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sslcore", *args], capture_output=True, text=True, cwd=cwd,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)


@pytest.mark.parametrize("what, expected", [("datasets", "mnist5k"), ("tasks", "simclr"), ("encoders", "resnet18")])
def test_listings_show_one_line_each(what: str, expected: str, capsys) -> None:
    assert main([what]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(line.startswith(expected) for line in lines)
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines), "name and description on every line"


def test_help_lists_the_users_commands_not_the_job_managers(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: sslcore [-h] COMMAND ...")
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("    ") and line.split()}
    assert {"train", "eval", "list", "data", "export"} <= listed
    assert not listed & {"worker", "rank", "eval-worker"} and "eval-worker" not in out


@pytest.mark.parametrize("args, fragment", [
    (["--epochs", "-1"], "train.epochs = '-1' is not allowed"),
    (["--lr", "abc"], "train.lr = 'abc' is not allowed: expected a number"),
    (["--dataset", "nope"], "data.dataset = 'nope' is not allowed: expected one of"),
    (["--task", "nope"], "task.name = 'nope' is not allowed"),
    (["--encoder", "nope"], "encoder.name = 'nope' is not allowed"),
    (["--set", "task.bogus=1"], "task.bogus is not a field"),
    (["--set", "train.epochs"], "must look like section.field=value"),
    (["--config", "/nonexistent.json"], "config file /nonexistent.json does not exist"),
    # --name follows the rule rename follows: 1 to 100 printable characters, no newlines or control codes
    (["--name", "x" * 10_000], "--name: run name 'xxxxxxxxxxxx...xxxxxxxxxxxxx' (10,000 characters) is not allowed"),
    (["--name", "two\nlines"], "--name: run name 'two\\nlines' is not allowed"),
    (["--name", "bell\a"], "is not allowed: expected 1 to 100 printable characters"),
])
def test_bad_input_exits_nonzero_with_one_clear_line(args: list[str], fragment: str, capsys, tmp_path) -> None:
    assert main(["train", "--runs-dir", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err
    assert not any(tmp_path.iterdir()), "nothing is created for a refused config"


def test_a_config_section_that_is_not_an_object_is_refused_not_dropped(capsys, tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text('{"data": {"dataset": "digits"}, "train": "fast"}')
    assert main(["train", "--config", str(config), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "config section train = 'fast' is not allowed: expected an object" in err
    assert not (tmp_path / "runs").exists()


def test_eval_of_a_run_that_is_still_training_is_refused(capsys, tmp_path: Path) -> None:
    from sslcore.runs import RunStore
    from tests.conftest import tiny_config

    run = RunStore(tmp_path).create(tiny_config())
    run.update_status(state="running", pid=os.getpid())  # this test's own process: alive
    run.checkpoint_dir.mkdir()
    (run.checkpoint_dir / "last.pt").write_bytes(b"")  # a checkpoint exists, and is replaced every epoch
    assert main(["eval", run.id, "--runs-dir", str(tmp_path), "--labels-per-class", "all"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"run {run.id} is still running; evaluate it when training has ended" in err
    assert not (run.path / "eval.json").exists()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_eval_trains_the_networks_in_the_precision_asked(precision: str, capsys, tmp_path: Path) -> None:
    from sslcore.engine.training_run import execute_run
    from sslcore.runs import RunStore
    from tests.conftest import tiny_config

    run = RunStore(tmp_path).create(tiny_config("autoencoder", **{"train.epochs": 1}))
    assert execute_run(run) == "completed"
    assert main(["eval", run.id, "--runs-dir", str(tmp_path), "--labels-per-class", "1", "--repeats", "1",
                 "--methods", "supervised", "--network-precision", precision]) == 0
    result = json.loads((run.path / "eval.json").read_text())
    assert result["environment"]["network_precision"] == precision
    assert [d["precision"] for r in result["results"] for d in r["details"]] == [precision]


def test_an_unknown_network_precision_is_refused_with_the_choices(capsys, tmp_path: Path) -> None:
    from sslcore.runs import RunStore
    from tests.conftest import tiny_config

    run = RunStore(tmp_path).create(tiny_config())
    assert main(["eval", run.id, "--runs-dir", str(tmp_path), "--network-precision", "fp16"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --network-precision 'fp16' is not allowed: expected one of auto, bf16, fp32"


def test_missing_dataset_files_say_where_to_put_them(tmp_path: Path) -> None:
    result = sslcore("train", "--dataset", "cifar10", "--data-root", str(tmp_path / "d"),
                     "--runs-dir", str(tmp_path / "r"))
    assert result.returncode != 0
    assert "cifar-10-batches-py" in result.stderr and "--download" in result.stderr


def test_train_then_list(tmp_path: Path) -> None:
    config = tmp_path / "c.json"
    config.write_text('{"data": {"dataset": "digits"}, "encoder": {"width": 8}, "train": {"threads": 1}}')
    result = sslcore("train", "--config", str(config), "--task", "rotation", "--epochs", "2", "--set",
                     "train.batch_size=128", "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    assert run_dir.parent == tmp_path / "runs" and (run_dir / "metrics.jsonl").exists()
    # One line per finished epoch (not a terminal: no in-place updates), each naming that epoch
    epoch_lines = [line for line in result.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in epoch_lines] == ["1/2", "2/2"], result.stderr
    assert all("img/s" in line and "test_rotation_acc" in line for line in epoch_lines)
    listing = sslcore("list", "--runs-dir", str(tmp_path / "runs"))
    assert run_dir.name in listing.stdout and "completed" in listing.stdout
    [line] = sslcore("list", "--json", "--runs-dir", str(tmp_path / "runs")).stdout.splitlines()
    listed = json.loads(line)
    assert (listed["id"], listed["state"], listed["task"], listed["epochs_done"]) == (run_dir.name, "completed",
                                                                                    "rotation", 2)
    assert 0.0 < listed["knn_last"] <= 1.0 and listed["probe_acc"] is None and listed["tags"] == []


def test_list_json_is_strict_and_quiet_when_the_reader_leaves_early(tmp_path: Path, monkeypatch) -> None:
    import dataclasses

    from sslcore.runs import RunStore
    from sslcore.runs.summary import summarize, summary_json
    from tests.conftest import tiny_config

    store = RunStore(tmp_path)
    for _ in range(3):
        store.create(tiny_config())
    diverged = dataclasses.replace(summarize(store.list()[0]), final_loss=float("nan"))
    assert json.loads(summary_json(diverged))["final_loss"] is None  # NaN is not JSON: null
    read_end, write_end = os.pipe()
    os.close(read_end)  # `sslcore list --json | head -0`: nobody reads
    monkeypatch.setattr(sys, "stdout", os.fdopen(write_end, "w", buffering=1))
    assert main(["list", "--json", "--runs-dir", str(tmp_path)]) == 0  # no "error: Broken pipe", status 0


@pytest.mark.parametrize("budgets, fragment", [
    ("4,lots", "--labels-per-class '4,lots': label budget 'lots' is not allowed"),
    ("0,all", "label budget '0' is not allowed"),
    (" , ", "no label budget given"),
])
def test_bad_label_budgets_exit_with_one_clear_line(budgets: str, fragment: str, capsys, tmp_path: Path) -> None:
    from sslcore.runs import RunStore
    from tests.conftest import tiny_config

    run = RunStore(tmp_path).create(tiny_config())  # refused before anything is loaded or trained
    assert main(["eval", run.id, "--runs-dir", str(tmp_path), "--labels-per-class", budgets]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err
    assert not (run.path / "eval.json").exists()


def test_eval_on_a_terminal_rewrites_one_progress_line_with_a_clock(monkeypatch, tmp_path: Path) -> None:
    import io
    import re

    from sslcore.engine.training_run import execute_run
    from sslcore.runs import RunStore
    from tests.conftest import tiny_config

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    run = RunStore(tmp_path).create(tiny_config("autoencoder", **{"train.epochs": 1}))
    assert execute_run(run) == "completed"
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["eval", run.id, "--runs-dir", str(tmp_path), "--labels-per-class", "1", "--repeats", "1",
                 "--methods", "linear_probe,knn"]) == 0
    progress = re.findall(r"\r\[ *(\d+)% +(\d+:\d\d)\] ", terminal.getvalue())
    assert progress and progress[-1][0] == "100"  # the last fit's line: all done, and the time it took
    assert all(len(line.rstrip("\n")) <= 77 for line in terminal.getvalue().split("\r"))  # one row, rewritten
