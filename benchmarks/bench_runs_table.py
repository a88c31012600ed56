"""Speed of the Runs page with many runs: building its table cold (every folder read) and warm (cached).

Creates ``--runs`` run folders in the store's real format (config.json, status.json, progress.json,
metrics.jsonl with ``--steps`` step lines and one line per epoch, eval.json for some) in a temporary
folder, then times:

- the table cold: every run's summary computed from its files (what the first visit after a start costs);
- the table warm: nothing changed, so each row comes from the cache after a few ``stat`` calls;
- the table after one run wrote a metrics line (one row recomputed);
- the whole Runs page script (AppTest, the same code a browser rerun executes), first and repeated run.

    python benchmarks/bench_runs_table.py                 # 300 runs x 300 steps
    python benchmarks/bench_runs_table.py --runs 1000
    python benchmarks/bench_runs_table.py --smoke         # a few runs, for CI
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled
from sslcore.config import default_config  # noqa: E402
from sslcore.runs import Run, RunStore  # noqa: E402
from sslcore.runs.files import append_jsonl, write_json_atomic  # noqa: E402

APP = Path(__file__).resolve().parents[1] / "app.py"
TASKS = ("simclr", "rotation", "autoencoder", "masked_autoencoder")
STATES = ("completed", "completed", "cancelled", "failed")


def make_run(root: Path, i: int, steps: int, epochs: int) -> Run:
    """One run folder as a real job leaves it (states, tasks and evaluations vary with ``i``)."""
    config = default_config(**{"task.name": TASKS[i % len(TASKS)], "train.epochs": epochs,
                               "data.dataset": "digits" if i % 3 else "mnist5k"})
    run = Run(root / f"20260101-{i:06d}-{config.task.name}-{config.data.dataset}-bench")
    run.path.mkdir(parents=True)
    write_json_atomic(run.path / "config.json", config.to_dict())
    t0 = 1.7e9 + 3600.0 * i
    write_json_atomic(run.path / "status.json", {"state": STATES[i % len(STATES)], "created": t0, "started": t0,
                                                 "ended": t0 + 60.0, "name": f"run {i}", "epochs": epochs,
                                                 "tags": ["bench", f"group{i % 5}"]})
    per_epoch = max(1, steps // epochs)
    records: list[dict[str, Any]] = [{"kind": "epoch", "epoch": 0, "step": 0, "time": t0, "elapsed": 0.0,
                                      "knn_acc": 0.3}]
    for step in range(1, steps + 1):
        records.append({"kind": "step", "step": step, "epoch": (step - 1) // per_epoch, "loss": 5.0 / step ** 0.3,
                        "lr": 1e-3, "time": t0 + step * 0.1, "images_per_s": 1000.0})
        if step % per_epoch == 0:
            records.append({"kind": "epoch", "epoch": step // per_epoch, "step": step, "time": t0 + step * 0.1,
                            "elapsed": step * 0.1, "loss": 5.0 / step ** 0.3, "lr": 1e-3, "images_per_s": 1000.0,
                            "knn_acc": 0.5 + 0.4 * step / steps})
    append_jsonl(run.metrics_path, records)
    write_json_atomic(run.path / "progress.json", {"time": t0 + 60.0, "phase": "done", "elapsed_s": steps * 0.1})
    if i % 4 == 0:
        write_json_atomic(run.path / "eval.json", {"results": [
            {"method": "linear_probe", "labels_per_class": "all", "accuracy_mean": 0.95, "accuracy_std": 0.0,
             "accuracies": [0.95], "seconds": [1.0], "indices_sha256": ["0" * 64]}],
            "protocol": {"budgets": ["all"], "repeats": 1, "train_size": 1437}})
    return run


def timed(label: str, fn: Callable[[], Any], repeat: int = 1) -> Any:
    """Run ``fn`` ``repeat`` times; print the median wall time in ms."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    print(f"  {label:<58s} {1000 * sorted(times)[len(times) // 2]:9.1f} ms", flush=True)
    return result


def quiet_streamlit() -> None:
    """Silence Streamlit's bare-mode warnings (no server runtime here): they are not results."""
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)


def bench_table(root: Path) -> None:
    from ui.runs_table import _cached, filter_frame, runs_frame

    store = RunStore(root)
    quiet_streamlit()

    def build() -> int:
        frame = runs_frame(store.list())
        return len(filter_frame(frame, "run", {"status": ["completed"]}))

    _cached.cache_clear()
    timed("table, cold (every folder read and summarised)", build)
    timed("table, warm (nothing changed; median of 5)", build, repeat=5)
    busy = store.list()[0]
    append_jsonl(busy.metrics_path, [{"kind": "step", "step": 10**6, "epoch": 1, "loss": 1.0, "time": time.time()}])
    timed("table after one run wrote a metrics line", build)
    timed("  of which store.list() (reads every status.json to sort)", store.list, repeat=5)


def bench_page(root: Path) -> None:
    from streamlit.testing.v1 import AppTest

    os.environ["SSL_RUNS_DIR"] = str(root)
    at = AppTest.from_file(str(APP), default_timeout=300)
    at.run()
    at.switch_page("app_pages/runs.py")
    timed("Runs page script, first run (AppTest)", at.run)
    if at.exception:
        raise SystemExit(f"the page failed: {at.exception[0].value}")
    timed("Runs page script, rerun (AppTest; median of 3)", at.run, repeat=3)
    print(f"  rows shown: {len(at.dataframe[0].value)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--steps", type=int, default=300, help="step lines per run's metrics.jsonl")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--smoke", action="store_true", help="5 runs of 20 steps: checks the script works")
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.steps, args.epochs = 5, 20, 2
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        start = time.perf_counter()
        for i in range(args.runs):
            make_run(root, i, args.steps, args.epochs)
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        print(f"{args.runs} runs x {args.steps} steps ({size / 2**20:.1f} MiB) written in "
              f"{time.perf_counter() - start:.1f} s; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        bench_table(root)
        bench_page(root)


if __name__ == "__main__":
    main()
