"""Run archives: an export holds what it promises, imports back to identical encoder outputs, its README's
code really loads the encoder, and a hostile or broken zip is refused with a clear message, writing nothing."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save as save_safetensors

from sslcore.data import load_dataset
from sslcore.engine.checkpoint import load_checkpoint
from sslcore.engine.training_run import execute_run
from sslcore.runs import Run, RunStore
from sslcore.runs.actions import resume_blocker
from sslcore.runs.archive import ArchiveError, ArchiveLimits, export_run, import_run, load_run_encoder
from sslcore.runs.files import write_json_atomic
from sslcore.tasks.build import build_task
from tests.conftest import tiny_config

CONFIG = tiny_config("simclr", **{"train.epochs": 1, "data.train_limit": 512})
EVAL = {"version": 1, "results": [{"method": "linear_probe", "labels_per_class": "all", "accuracy_mean": 0.9,
                                   "accuracy_std": 0.0, "accuracies": [0.9], "seconds": [0.5],
                                   "indices_sha256": ["0" * 64]}],
        "protocol": {"budgets": ["all"], "repeats": 1, "train_size": 512}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """One short real run (shared: training is the slow part), with an eval.json as evaluation would leave."""
    run = RunStore(tmp_path_factory.mktemp("source") / "runs").create(CONFIG, name="source run")
    assert execute_run(run) == "completed"
    write_json_atomic(run.path / "eval.json", EVAL)
    run.set_tags(["demo"])
    return run


@pytest.fixture(scope="module")
def archive(trained: Run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_run(trained, tmp_path_factory.mktemp("export") / "run.zip")


def fixed_batch() -> torch.Tensor:
    return load_dataset("digits").test.images[:32].float() / 255


# --------------------------------------------------------------------------------------------------
# export and round trip
# --------------------------------------------------------------------------------------------------

def test_export_holds_the_expected_files_and_no_process_details(trained: Run, archive: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        status = json.loads(zf.read("status.json"))
        rows = list(csv.DictReader(io.StringIO(zf.read("metrics.csv").decode())))
        jsonl = [json.loads(line) for line in zf.read("metrics.jsonl").splitlines()]
        config = json.loads(zf.read("config.json"))
    assert names == {"README.md", "config.json", "status.json", "metrics.csv", "metrics.jsonl", "encoder.safetensors",
                     "eval.json", "snapshots/epoch_0000.npz", "snapshots/epoch_0001.npz"}
    assert config == CONFIG.to_dict()
    assert not {"pid", "pid_identity", "traceback", "queued_at"} & set(status)
    assert status["state"] == "completed" and status["run_id"] == trained.id and status["tags"] == ["demo"]
    assert jsonl == trained.metrics()
    assert [r["kind"] for r in rows] == [r["kind"] for r in jsonl]
    assert {"kind", "step", "epoch", "loss", "knn_acc"} <= set(rows[0])  # columns: the union of all records' keys
    assert float(rows[-1]["knn_acc"]) == jsonl[-1]["knn_acc"]


def test_export_then_import_gives_identical_encoder_outputs(trained: Run, archive: Path, tmp_path: Path) -> None:
    imported = import_run(archive, RunStore(tmp_path / "runs"))
    assert imported.id == trained.id and imported.path.parent == tmp_path / "runs"
    assert imported.config() == trained.config()
    assert imported.metrics() == trained.metrics()  # the curves come back exactly
    assert imported.eval_results() == EVAL
    assert [p.read_bytes() for p in imported.snapshot_files()] == [p.read_bytes() for p in trained.snapshot_files()]
    status = imported.status()
    assert status["state"] == "completed" and status["name"] == "source run" and status["tags"] == ["demo"]
    assert status["imported_from"]["file"] == "run.zip" and status["imported_from"]["run_id"] == trained.id
    assert not (imported.checkpoint_dir / "last.pt").exists()

    data = load_dataset("digits")
    task = build_task(CONFIG, data)  # the encoder as training left it: last.pt's task state -> task.encoder
    task.load_state_dict(load_checkpoint(trained.checkpoint_dir / "last.pt")["model"])
    batch = fixed_batch()
    with torch.no_grad():
        expected = task.encoder.eval()(batch)
        assert torch.equal(load_run_encoder(trained, data)(batch), expected)
        assert torch.equal(load_run_encoder(imported, data)(batch), expected)


def test_the_readme_snippets_load_the_encoder(archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path)  # our own, just-written archive
        readme = zf.read("README.md").decode()
    snippets = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert len(snippets) == 2
    monkeypatch.chdir(tmp_path)
    helper, plain = {}, {}
    exec(snippets[0], helper)  # noqa: S102 - running the documentation is the point of the test
    exec(snippets[1], plain)  # noqa: S102
    reference = load_run_encoder(import_run(archive, RunStore(tmp_path / "runs")), load_dataset("digits"))
    with torch.no_grad():
        expected = reference(plain["images"])
        assert torch.equal(plain["features"], expected)
        assert torch.equal(helper["encoder"](plain["images"]), expected)


def test_an_imported_data_root_is_replaced_by_this_machines(trained: Run, tmp_path: Path) -> None:
    # An archive's data.root is a path on another machine, or whatever its author wrote (here: /etc).
    foreign = rezip(export_run(trained, tmp_path / "run.zip"), tmp_path / "foreign.zip", drop=("config.json",),
                    add=[("config.json", json.dumps({**CONFIG.to_dict(), "data": {
                        **CONFIG.to_dict()["data"], "root": "/etc"}}).encode())])
    imported = import_run(foreign, RunStore(tmp_path / "runs"), data_root=str(tmp_path / "my-data"))
    assert imported.config().data.root == str(tmp_path / "my-data")
    assert imported.config().replace({"data.root": "data"}) == CONFIG.replace({"data.root": "data"})  # the rest as is


def test_an_imported_run_cannot_be_resumed_and_says_why(archive: Path, tmp_path: Path) -> None:
    imported = import_run(archive, RunStore(tmp_path))
    reason = resume_blocker(imported)
    assert "imported from run.zip" in reason and "cannot be resumed" in reason and "train --from" in reason


def test_importing_twice_gives_the_second_copy_a_new_id(archive: Path, tmp_path: Path) -> None:
    store = RunStore(tmp_path)
    first, second = import_run(archive, store), import_run(archive, store, name="copy")
    assert first.id != second.id and {r.id for r in store.list()} == {first.id, second.id}
    assert second.status()["name"] == "copy"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.id, second.id]), "no staging left behind"


def test_exporting_an_imported_run_works_and_a_live_run_is_refused(archive: Path, tmp_path: Path) -> None:
    imported = import_run(archive, RunStore(tmp_path / "runs"))
    again = export_run(imported, tmp_path / "again.zip")
    with zipfile.ZipFile(again) as a, zipfile.ZipFile(archive) as b:
        assert a.read("metrics.jsonl") == b.read("metrics.jsonl")
    with pytest.raises(ArchiveError, match="already exists"):
        export_run(imported, again)
    imported.update_status(state="running", pid=os.getpid())  # this test's own process: alive
    with pytest.raises(ArchiveError, match="is still running"):
        export_run(imported, tmp_path / "live.zip", overwrite=True)


# --------------------------------------------------------------------------------------------------
# crafted archives
# --------------------------------------------------------------------------------------------------

def rezip(source: Path, dest: Path, *, drop: tuple[str, ...] = (), add: tuple = ()) -> Path:
    """A copy of ``source`` without ``drop`` and with ``add`` ((name or ZipInfo, bytes) pairs) appended."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            if info.filename not in drop:
                out.writestr(info.filename, src.read(info))
        for name, data in add:
            out.writestr(name, data)
    return dest


def symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix, so the mode bits count
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def set_declared_size(path: Path, member: str, size: int) -> None:
    """Make the zip's headers (local and central) claim ``member`` inflates to ``size`` bytes."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        offset, start = zf.getinfo(member).header_offset, zf.start_dir
    struct.pack_into("<I", data, offset + 22, size)
    while data[start:start + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, start + 28)
        if data[start + 46:start + 46 + name_len].decode() == member:
            struct.pack_into("<I", data, start + 24, size)
        start += 46 + name_len + extra_len + comment_len
    path.write_bytes(bytes(data))


def foreign_weights() -> bytes:
    """A valid safetensors file for a wider encoder than the archive's config describes."""
    from sslcore.models import build_encoder

    return save_safetensors(build_encoder("convnet", (1, 8, 8), width=16).state_dict(),
                            metadata={"image_shape": "1,8,8"})


def pickled_snapshot() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, kind=np.array("views"), epoch=np.array(1), evil=np.array([{"a": 1}], dtype=object))
    return buffer.getvalue()


def unlabelled_snapshot() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, epoch=np.array(1), original=np.zeros((1, 1, 8, 8), np.uint8))
    return buffer.getvalue()


CRAFTED = {
    "dotdot": (dict(add=[("../evil.txt", b"x")]), "'../evil.txt' is refused: it climbs out"),
    "dotdot inside": (dict(add=[("snapshots/../../evil.npz", b"x")]), "climbs out of the archive with '..'"),
    "absolute": (dict(add=[("/tmp/evil.txt", b"x")]), "'/tmp/evil.txt' is refused: it is an absolute path"),
    "symlink": (dict(add=[symlink("snapshots/epoch_0009.npz", "/etc/passwd")]), "is refused: it is a symbolic link"),
    "unknown file": (dict(add=[("run.py", b"import os")]), "'run.py' is refused: expected only config.json"),
    "other folder": (dict(add=[("checkpoints/", b"")]), "the only folder allowed is snapshots/"),
    "duplicate": (dict(add=[("config.json", b"{}")]), "'config.json' is refused: it appears twice"),
    "no weights": (dict(drop=("encoder.safetensors",)), "it has no encoder.safetensors"),
    "bad config": (dict(drop=("config.json",), add=[("config.json", json.dumps({"train": {"epochs": -1}}).encode())]),
                   "config.json is refused: train.epochs = -1 is not allowed"),
    "garbage weights": (dict(drop=("encoder.safetensors",), add=[("encoder.safetensors", b"\x00" * 64)]),
                        "encoder.safetensors is refused: not a readable safetensors file"),
    "foreign weights": (dict(drop=("encoder.safetensors",), add=[("encoder.safetensors", foreign_weights())]),
                        r"encoder.safetensors is refused: tensor '.*' is torch.float32 \("),
    "pickled snapshot": (dict(add=[("snapshots/epoch_0002.npz", pickled_snapshot())]),
                         "snapshots/epoch_0002.npz is refused: not a readable snapshot"),
    "snapshot of no task": (dict(add=[("snapshots/epoch_0003.npz", unlabelled_snapshot())]),
                            "a snapshot needs the arrays 'task' \\(or 'kind'\\) and 'epoch'"),
    "torn metrics": (dict(drop=("metrics.jsonl",), add=[("metrics.jsonl", b'{"step": 1}\n{"st')]),
                     "metrics.jsonl is refused: line 2 is not a JSON object"),
    "bad status": (dict(drop=("status.json",), add=[("status.json", b'{"state": "exploded"}')]),
                   "status.json is refused: state = 'exploded'"),
    # A section that is not an object was silently dropped, so the run trained with defaults it never asked for.
    "config section not an object": (dict(drop=("config.json",), add=[("config.json", json.dumps(
        {**CONFIG.to_dict(), "train": "fast"}).encode())]), "config.json is refused: config section train = 'fast'"),
    # Pages index into eval.json's rows: a malformed one is refused here, not left to break the Evaluate page.
    "malformed eval": (dict(drop=("eval.json",), add=[("eval.json", b'{"results": [{"method": "knn"}]}')]),
                       r"eval.json is refused: eval.json: results\[0\] has no valid method and labels_per_class"),
}


def assert_nothing_written(root: Path, runs: Path) -> None:
    assert not runs.exists(), "a refused archive leaves no runs folder, run or staging folder behind"
    # The crafted names aim at root/ (via runs/../) and at /tmp; this test's own folder holds only its zip.
    assert not list(root.rglob("evil*")), "nothing was written outside the runs folder"
    assert not Path("/tmp/evil.txt").exists(), "an absolute member name was not followed"


@pytest.mark.filterwarnings("ignore:Duplicate name")  # the duplicate-member case is built on purpose
@pytest.mark.parametrize("case", list(CRAFTED))
def test_a_crafted_archive_is_refused_with_a_clear_message(case: str, archive: Path, tmp_path: Path) -> None:
    changes, message = CRAFTED[case]
    crafted = rezip(archive, tmp_path / "crafted.zip", **changes)
    runs = tmp_path / "runs"
    with pytest.raises(ArchiveError, match=message):
        import_run(crafted, RunStore(runs))
    assert_nothing_written(tmp_path, runs)


def test_an_oversized_member_is_refused_by_its_header(archive: Path, tmp_path: Path) -> None:
    crafted = rezip(archive, tmp_path / "big.zip")
    set_declared_size(crafted, "metrics.jsonl", 300 * 2**20)  # the default cap is 256 MiB
    with pytest.raises(ArchiveError, match=r"'metrics.jsonl' is refused: 300.0 MiB uncompressed, over the 256 MiB"):
        import_run(crafted, RunStore(tmp_path / "runs"))
    assert_nothing_written(tmp_path, tmp_path / "runs")


def test_a_member_that_inflates_past_its_header_is_refused_while_extracting(archive: Path, tmp_path: Path) -> None:
    crafted = rezip(archive, tmp_path / "liar.zip", drop=("metrics.jsonl",), add=[("metrics.jsonl", b"\n" * 100_000)])
    set_declared_size(crafted, "metrics.jsonl", 1000)  # headers say 1 kB; the data inflate to 100 kB
    with pytest.raises(ArchiveError, match="'metrics.jsonl' is refused: (its data is corrupt|it inflates past)"):
        import_run(crafted, RunStore(tmp_path / "runs"))
    assert_nothing_written(tmp_path, tmp_path / "runs")


@pytest.mark.parametrize("limits, message", [
    (ArchiveLimits(max_member_bytes=20_000), "'encoder.safetensors' is refused: 0.1 MiB uncompressed, over"),
    (ArchiveLimits(max_total_bytes=50_000), "over 0.0476837 MiB uncompressed in all"),
    (ArchiveLimits(max_members=3), "the archive has 9 members: at most 3"),
])
def test_size_and_count_caps(limits: ArchiveLimits, message: str, archive: Path, tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match=re.escape(message)):
        import_run(archive, RunStore(tmp_path / "runs"), limits=limits)
    assert_nothing_written(tmp_path, tmp_path / "runs")


def test_a_file_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run.zip").write_text("not a zip")
    with pytest.raises(ArchiveError, match="run.zip is not a readable zip file"):
        import_run(tmp_path / "run.zip", RunStore(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()


def test_a_refusal_after_extracting_leaves_an_existing_runs_folder_as_it_was(archive: Path, tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs")
    kept = import_run(archive, store)
    crafted = rezip(archive, tmp_path / "bad.zip", drop=("encoder.safetensors",),
                    add=[("encoder.safetensors", foreign_weights())])
    with pytest.raises(ArchiveError):
        import_run(crafted, store)
    assert [p.name for p in store.root.iterdir()] == [kept.id]
