"""OS errors on a person's paths: one line saying what and where, status 2, and no run folder left behind.

A full disk is simulated by handing the checkpoint writer a file whose ``write`` fails with ENOSPC, as a
real file on a full disk does (the benchmark ``bench_faults.py`` also tries a real, tiny tmpfs when it may).
"""
from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from sslcore.cli import main
from sslcore.engine import checkpoint
from sslcore.os_errors import describe_os_error
from sslcore.runs import RunStore

TINY = ["--dataset", "digits", "--epochs", "1", "--set", "encoder.width=8", "--set", "train.threads=1",
        "--set", "train.knn_k=0", "--set", "train.snapshot_images=0"]


def error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    return err[0]


def test_each_kind_of_os_error_reads_as_one_plain_line(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cases = {
        "is a file, not a folder": lambda: (a_file / "runs").mkdir(parents=True),
        "is a folder, not a file": lambda: open(tmp_path, "rb"),
        "no such file or folder": lambda: open(tmp_path / "nope", "rb"),
    }
    for expected, cause in cases.items():
        with pytest.raises(OSError) as raised:
            cause()
        line = describe_os_error(raised.value)
        assert expected in line and str(tmp_path) in line and "\n" not in line and "Errno" not in line
    full = OSError(errno.ENOSPC, "No space left on device", "/runs/x/last.pt")
    assert describe_os_error(full) == "no space left on device while writing /runs/x/last.pt: free some space there"


@pytest.mark.parametrize("below, commands, message", [
    ("", (["train", *TINY], ["list"]), "runs-file is a file, not a folder"),
    ("below", (["train", *TINY],), "runs-file is a file, not a folder (needed for"),  # cannot be created
])
def test_a_runs_dir_that_cannot_be_a_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, below: str,
                                                        commands: tuple[list[str], ...], message: str) -> None:
    (tmp_path / "runs-file").write_text("not a folder")
    runs_dir = tmp_path / "runs-file" / below
    for command in commands:
        assert main([*command, "--runs-dir", str(runs_dir)]) == 2
        line = error_line(capsys)
        assert line.startswith("error: --runs-dir: ") and message in line and str(tmp_path) in line


def test_a_config_that_is_a_folder_or_not_utf8_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes('{"train": {"epochs": 2}, "note": "caf\u00e9"}'.encode("latin-1"))
    for config, message in ((tmp_path, f"--config: {tmp_path} is a folder, not a file"),
                            (latin1, f"config file {latin1} is not UTF-8 text")):
        assert main(["train", "--config", str(config), "--runs-dir", str(tmp_path / "runs")]) == 2
        assert message in error_line(capsys)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, message", [
    (["--dataset", "mnist", "--data-root", "{tmp}/no-data"], "MNIST is not available"),
    (["--dataset", "digits", "--device", "mps"], "train.device = 'mps' but Apple's MPS backend is not available"),
    (["--dataset", "digits", "--task", "masked_autoencoder", "--set", "task.patch_size=16"],
     "task.patch_size = 16 is not allowed: expected at most the image side (8 for 8x8 images)"),
])
def test_a_run_that_cannot_start_leaves_no_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                      args: list[str], message: str) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(["train", *args, "--runs-dir", str(tmp_path / "runs")]) == 2
    assert message in error_line(capsys)
    assert not (tmp_path / "runs").exists()


class FullDiskFile:
    """A file on a full disk: every write fails with ENOSPC, without saying which file (as ``write`` does)."""

    def write(self, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_at_a_checkpoint_fails_the_run_with_where_and_what(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real_write_atomic = checkpoint.write_atomic

    def full_disk(path: Path, write: Any, **kwargs: Any) -> None:
        if path.name != "last.pt":
            return real_write_atomic(path, write, **kwargs)
        return real_write_atomic(path, lambda f: write(FullDiskFile()), **kwargs)

    monkeypatch.setattr(checkpoint, "write_atomic", full_disk)
    assert main(["train", *TINY, "--runs-dir", str(tmp_path / "runs")]) == 1
    [run] = RunStore(tmp_path / "runs").list()
    where = run.checkpoint_dir / "last.pt"
    status = run.status()
    assert status["state"] == "failed"
    assert status["error"].startswith(f"no space left on device while writing {where}: free some space there")
    assert "resume" in status["error"]
    err = capsys.readouterr().err
    assert f"run {run.id} failed: no space left on device while writing {where}" in err
    assert "inline_container" not in err and "Traceback" not in err
    assert not [p for p in run.checkpoint_dir.iterdir() if p.name.endswith(".tmp")]  # no half-written temp file
