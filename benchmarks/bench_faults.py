"""The fault and bad-input sweep of issue 10, as a table: case, expected, observed, pass/fail.

Each case builds its own runs folder (damaged files, dead runs, hostile names, OS errors, refused inputs)
and drives the real command line in-process, the dashboard through AppTest, or real worker processes.

    python benchmarks/bench_faults.py            # every case (a few minutes: AppTest pages, real workers)
    python benchmarks/bench_faults.py --smoke    # the command-line and store cases only (seconds)
    python benchmarks/bench_faults.py --strict   # exit status 1 if any case fails

The full disk is a real 256 KiB tmpfs when this process may mount one (root on Linux), else simulated by a
checkpoint file whose writes fail with ENOSPC (said in the observed column).
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled
from sslcore.cli import main  # noqa: E402
from sslcore.config import default_config  # noqa: E402
from sslcore.runs import Run, RunStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = {"data.dataset": "digits", "encoder.width": 8, "train.epochs": 1, "train.threads": 1, "train.knn_k": 0,
        "train.snapshot_images": 0}
TINY_ARGS = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]


class Row(NamedTuple):
    case: str
    expected: str
    observed: str
    passed: bool | None  # None: skipped


def cli(*args: str) -> tuple[int, str, str]:
    """``python -m sslcore ARGS`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse
            code = int(exit_.code or 0)
        except Exception as error:  # noqa: BLE001 - a traceback is exactly what a case must observe
            code, err = 99, io.StringIO(f"{err.getvalue()}uncaught {type(error).__name__}: {error}\n")
    return code, out.getvalue(), err.getvalue()


def one_line(code: int, err: str, want: int = 2) -> tuple[str, bool]:
    lines = err.strip().splitlines()
    return f"exit {code}: {lines[-1] if lines else ''}"[:110], code == want and len(lines) == 1


def tiny_run(store: RunStore, **overrides: Any) -> Run:
    """A run folder as `store.create` leaves it (queued, nothing trained)."""
    return store.create(default_config(**{**TINY, **overrides}))


def trained(store: RunStore, **overrides: Any) -> Run:
    from sslcore.engine.training_run import execute_run

    run = tiny_run(store, **overrides)
    assert execute_run(run) == "completed", run.status().get("error")
    return run


# -- damaged files, dead runs (issue 10 items 1, 2) ------------------------------------------------------------
DAMAGE = {"status.json not JSON": ("status.json", b"{not json"),
          "status.json not UTF-8": ("status.json", b'{"state": "\xff\xfe"}'),
          "config.json damaged": ("config.json", b"{"),
          "progress.json damaged": ("progress.json", b"\x00\x01"),
          "eval.json damaged": ("eval.json", b"[1, 2")}


def listed(out: str, run_id: str) -> str:
    """The run's entry in `sslcore list`: its line and any indented lines under it, joined."""
    lines, block = out.splitlines(), []
    for i, line in enumerate(lines):
        if run_id in line:
            block = [line] + [more for more in lines[i + 1:] if more[:1].isspace()][:3]
            break
    return " / ".join(" ".join(line.split()) for line in block)


def damaged_case(tmp: Path, label: str) -> Row:
    store = RunStore(tmp / "runs")
    good, bad = tiny_run(store), tiny_run(store)
    name, content = DAMAGE[label]
    (bad.path / name).write_bytes(content)
    code, out, err = cli("list", "--runs-dir", str(store.root))
    entry = listed(out, bad.id)
    ok = code == 0 and good.id in out and "damaged" in entry.lower()
    shown = entry[entry.lower().find("damaged"):] if "damaged" in entry.lower() else entry or err.strip()
    observed = f"exit {code}; other run listed: {good.id in out}; this one: {shown[:70]}"
    return Row(f"{label}: `sslcore list`", "exit 0, the other run listed, this one marked damaged", observed, ok)


def dead_run_case(tmp: Path) -> Row:
    store = RunStore(tmp / "runs")
    run = tiny_run(store)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    run.update_status(state="running", pid=gone.pid, started=time.time() - 600)
    run.write_progress({"time": time.time() - 600, "phase": "training"})
    code, out, _ = cli("list", "--runs-dir", str(store.root))
    line = " ".join(next((line for line in out.splitlines() if run.id in line), "").split())
    ok = code == 0 and "running" not in line and "failed" in line
    return Row("dead run (kill -9): `sslcore list`", "shown failed (interrupted), not running", line[:110], ok)


# -- hostile archives and names (items 4, 6) -------------------------------------------------------------------
def config_section_case(tmp: Path) -> Row:
    path = tmp / "fast.json"
    path.write_text('{"train": "fast"}')
    # The tiny overrides keep it short should the section be dropped and a run start after all.
    code, _, err = cli("train", "--config", str(path), *TINY_ARGS, "--runs-dir", str(tmp / "runs"))
    observed, ok = one_line(code, err)
    return Row('--config with "train": "fast"', "exit 2, one line naming the section", observed,
               ok and "train" in err and not (tmp / "runs").exists())


def name_cases(tmp: Path) -> list[Row]:
    rows = []
    for label, name in (("10,000-character --name", "x" * 10_000), ("--name with a newline", "first\nsecond")):
        code, _, err = cli("train", "--name", name, *TINY_ARGS, "--runs-dir", str(tmp / label))
        observed, ok = one_line(code, err)
        rows.append(Row(label, "exit 2, one line (the rename rule), no run folder", observed,
                        ok and not (tmp / label).exists()))
    return rows


def imported_root_case(tmp: Path) -> Row:
    from sslcore.runs.archive import export_run, import_run

    source = trained(RunStore(tmp / "there"), **{"data.root": "/etc"})
    archive = export_run(source, tmp / "run.zip")
    imported = import_run(archive, RunStore(tmp / "here"))
    root = json.loads((imported.path / "config.json").read_text())["data"]["root"]
    return Row("imported config with data.root /etc", "replaced by this machine's data root", f"data.root = {root!r}",
               root != "/etc")


# -- OS errors and refused inputs (items 5) ---------------------------------------------------------------------
def os_error_cases(tmp: Path) -> list[Row]:
    (tmp / "a-file").write_text("x")
    (tmp / "latin1.json").write_bytes('{"train": {"epochs": 2}, "note": "caf\u00e9"}'.encode("latin-1"))
    cases = [("--runs-dir that is a file", ["train", *TINY_ARGS, "--runs-dir", str(tmp / "a-file")]),
             ("--runs-dir that cannot be created", ["train", *TINY_ARGS, "--runs-dir", str(tmp / "a-file" / "runs")]),
             ("--config that is a folder", ["train", "--config", str(tmp), "--runs-dir", str(tmp / "r1")]),
             ("--config that is not UTF-8",
              ["train", "--config", str(tmp / "latin1.json"), "--runs-dir", str(tmp / "r2")]),
             ("missing dataset files", ["train", "--dataset", "mnist", "--data-root", str(tmp / "no-data"),
                                        "--runs-dir", str(tmp / "r3")]),
             ("--device mps on a machine without it", ["train", *TINY_ARGS, "--device", "mps", "--runs-dir",
                                                       str(tmp / "r4")])]
    rows = []
    for label, args in cases:
        code, _, err = cli(*args)
        observed, ok = one_line(code, err)
        left = [p.name for p in tmp.glob("r[34]") if any(p.iterdir())]
        rows.append(Row(label, "exit 2, one line with what and where; no run folder", observed,
                        ok and "Traceback" not in err and not left))
    return rows


@contextlib.contextmanager
def full_disk(tmp: Path) -> Any:
    """A folder on a 256 KiB tmpfs (real), or a patched checkpoint writer that fails like one (simulated)."""
    folder = tmp / "tiny-fs"
    folder.mkdir()
    mounted = os.name == "posix" and os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True).returncode == 0
    if mounted:
        try:
            yield folder, "real tmpfs"
        finally:
            subprocess.run(["umount", str(folder)], capture_output=True)
        return
    from sslcore.engine import checkpoint

    real = checkpoint.write_atomic

    class Full:
        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    checkpoint.write_atomic = lambda path, write, **kw: real(path, lambda f: write(Full()), **kw)
    try:
        yield folder, "simulated"
    finally:
        checkpoint.write_atomic = real


def full_disk_case(tmp: Path) -> Row:
    with full_disk(tmp) as (folder, how):
        code, _, err = cli("train", *TINY_ARGS, "--runs-dir", str(folder / "runs"))
        runs = RunStore(folder / "runs").list()
        error = runs[0].status().get("error", "") if runs else ""
    failed_line = next((line for line in err.splitlines() if "failed:" in line), err.strip()[-100:])
    ok = code == 1 and "no space left on device while writing" in error and "last.pt" in error \
        and "inline_container" not in err and "Traceback" not in err
    return Row(f"full disk at a checkpoint ({how})", "run failed with 'no space … while writing <path>', one line",
               f"exit {code}: {failed_line[:100]}", ok)


# -- running runs (item 6) -------------------------------------------------------------------------------------
def eval_running_case(tmp: Path) -> Row:
    run = trained(RunStore(tmp / "runs"))
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run.update_status(state="running", pid=alive.pid)
        code, out, err = cli("eval", run.id, "--runs-dir", str(tmp / "runs"), "--labels-per-class", "1",
                             "--repeats", "1", "--methods", "knn")
    finally:
        alive.kill()
        alive.wait()
    said = (err.strip().splitlines() or [""])[-1]
    ok = (code == 2 and any(w in said for w in ("running", "training"))) or (code == 0 and "epoch" in err + out)
    return Row("eval of a run still training", "refused (exit 2), or evaluates a named epoch and says which",
               f"exit {code}: {said[:100]}", ok)


def concurrent_resume_case(tmp: Path) -> Row:
    store = RunStore(tmp / "runs")
    run = trained(store)
    config = json.loads((run.path / "config.json").read_text())
    config["train"]["epochs"] = 200  # long enough that the two resumes overlap
    (run.path / "config.json").write_text(json.dumps(config))
    run.update_status(state="cancelled", epochs=200)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "sslcore", "resume", run.id, "--runs-dir", str(store.root)]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    deadline = time.monotonic() + 120
    codes: list[int | None] = [None, None]
    while time.monotonic() < deadline and all(c is None for c in codes):
        codes = [p.poll() for p in procs]
        time.sleep(0.2)
    for p in procs:  # the one that trains is stopped: SIGTERM ends it 'cancelled'
        if p.poll() is None:
            p.terminate()
    outputs = [p.communicate(timeout=60)[1].strip().splitlines() for p in procs]
    refused = [i for i, c in enumerate(codes) if c == 2]
    said = outputs[refused[0]][-1] if refused else f"exit statuses {codes}"
    return Row("two `resume` of one run at once", "one resumes, the other is refused at once (a lock)",
               said[:110], len(refused) == 1)


# -- the dashboard ---------------------------------------------------------------------------------------------
def app_env(runs: Path, data: Path) -> None:
    os.environ.update(SSL_RUNS_DIR=str(runs.resolve()), SSL_DATA_ROOT=str(data), SSL_MAX_JOBS="2")


def open_page(page: str, run_id: str | None = None) -> Any:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    if run_id is not None:
        at.query_params["run"] = run_id
    return at.run().switch_page(page).run()


def app_damaged_case(tmp: Path) -> Row:
    store = RunStore(tmp / "runs")
    tiny_run(store)  # a sound run beside the damaged one
    bad = tiny_run(store)
    (bad.path / "status.json").write_bytes(b"{not json")
    app_env(store.root, tmp / "data")
    broken = [page for page in ("app_pages/home.py", "app_pages/train.py", "app_pages/runs.py", "app_pages/evaluate.py")
              if open_page(page).exception]
    return Row("damaged status.json: Home, Train, Runs, Evaluate", "every page draws, no exception box",
               f"pages with an exception: {broken or 'none'}", not broken)


def app_markdown_name_case(tmp: Path) -> Row:
    store = RunStore(tmp / "runs")
    beacon = "![x](http://127.0.0.1:9/beacon.png)"
    run = store.create(default_config(**TINY), name=beacon)
    app_env(store.root, tmp / "data")
    rendered = []
    for page in ("app_pages/home.py", "app_pages/train.py", "app_pages/runs.py", "app_pages/evaluate.py"):
        at = open_page(page, run.id)
        texts = [e.value for kind in ("markdown", "caption", "info", "warning", "error", "success")
                 for e in getattr(at, kind) if isinstance(e.value, str)]
        rendered += [page for t in texts if beacon in t]
    return Row("run named ![x](http://…/beacon.png)", "shown as plain text on every page (no image fetched)",
               f"rendered as Markdown on: {sorted(set(rendered)) or 'none'}", not rendered)


def app_form_case(tmp: Path) -> Row:
    app_env(tmp / "runs", tmp / "data")
    at = open_page("app_pages/train.py")
    at.selectbox(key="form.data.dataset").select("digits").run()
    at.number_input(key="form.train.epochs").set_value(0).run()
    [train] = [b for b in at.button if b.label == "Train"]
    shown = [e.value for e in at.error if "train.epochs = 0" in e.value]
    return Row("Train form with epochs 0", "Train disabled, the field's message shown",
               f"disabled: {train.disabled}; message shown {len(shown)}x", train.disabled and bool(shown))


# -- the table ---------------------------------------------------------------------------------------------------
def sweep(smoke: bool) -> list[Row]:
    quick: list[Callable[[Path], Row | list[Row]]] = [
        *(lambda t, k=k: damaged_case(t, k) for k in DAMAGE), dead_run_case, config_section_case, name_cases,
        os_error_cases, full_disk_case]
    slow: list[Callable[[Path], Row | list[Row]]] = [imported_root_case, eval_running_case, concurrent_resume_case,
                                                     app_damaged_case, app_markdown_name_case, app_form_case]
    rows: list[Row] = []
    for case in quick + ([] if smoke else slow):
        with tempfile.TemporaryDirectory() as tmp:
            result = case(Path(tmp))
        rows += result if isinstance(result, list) else [result]
    if smoke:
        rows += [Row(c.__name__.removesuffix("_case").replace("_", " "), "(not run with --smoke)", "", None)
                 for c in slow]
    return rows


def print_table(rows: list[Row]) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(3)]
    widths = [min(w, cap) for w, cap in zip(widths, (44, 56, 110), strict=True)]
    header = ("case", "expected", "observed")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + "  result")
    for r in rows:
        result = "skip" if r.passed is None else "PASS" if r.passed else "FAIL"
        print("  ".join(str(v)[:w].ljust(w) for v, w in zip(r[:3], widths, strict=True)) + f"  {result}")
    ran = [r for r in rows if r.passed is not None]
    print(f"\nfault sweep: {sum(bool(r.passed) for r in ran)} of {len(ran)} cases pass"
          + (f", {len(rows) - len(ran)} not run" if len(ran) < len(rows) else ""))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="only the quick cases")
    parser.add_argument("--strict", action="store_true", help="exit status 1 if any case fails")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    os.environ.setdefault("SSL_DATA_ROOT", tempfile.mkdtemp())
    import torch

    torch.set_num_threads(1)
    rows = sweep(args.smoke)
    print_table(rows)
    sys.exit(1 if args.strict and any(r.passed is False for r in rows) else 0)
