"""Where the wall time of a default `sslcore train` goes: training steps against everything else.

Runs the CLI exactly as a user would (`python -m sslcore train`, default recipe: mnist5k + SimCLR, 10 epochs) in a
temporary runs folder, timed from launch to exit, and watches its metrics.jsonl for the first loss point. The time
in training steps comes from the run's own epoch records (steps x batch / images per second, the trainer's clock
around each optimisation step). Printed, from that one run:

- wall / steps: the overhead ratio (issue 14, target 2: <= 1.10);
- start-up (launch to the first step), the end-of-epoch work (k-NN monitor, collapse figures, snapshots,
  checkpoints: the wall time between steps) and shut-down;
- first feedback: launch -> the first loss point on disk, and the same less the time `import torch` takes in a
  fresh interpreter (measured just before; target 3: <= 3 s after torch is imported);
- first feedback in the app: `JobManager.submit` (what a click on Train calls) -> the first loss point on disk,
  with a cold worker process and with the warm spare (:mod:`sslcore.runs.warm_worker`).

    .venv/bin/python benchmarks/bench_overhead.py             # the README figure (about 2 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_overhead.py --smoke     # seconds, on digits; run by the test suite
    .venv/bin/python benchmarks/bench_overhead.py --monitor-every 2   # the monitor on every other epoch

The machine is printed with the figures (CPU, cores, ISA flags, load average): on a shared machine the ratio is
what carries over, not the seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from emulation import add_emulation_flag, reexec_if_emulating  # noqa: E402

from sslcore.engine.device import describe_machine  # noqa: E402

SMOKE_OVERRIDES: dict[str, object] = {"data.dataset": "digits", "train.epochs": 1, "encoder.width": 8,
                                      "train.threads": 1, "train.batch_size": 64}
SMOKE_ARGS = ["--dataset", "digits", "--epochs", "1", "--set", "encoder.width=8", "--set", "train.threads=1",
              "--set", "train.batch_size=64"]


def torch_import_seconds() -> float:
    """Seconds from launching a fresh interpreter to ``import torch`` done in it (the part of start-up no code of
    ours can cut); the interpreter's teardown, which a run's own process skips, is not counted."""
    launched = time.time()
    done = subprocess.run([sys.executable, "-c", "import time, torch; print(time.time())"], check=True,
                          capture_output=True, text=True).stdout
    return float(done) - launched


def read_records(path: Path) -> list[dict]:
    """The complete lines of a metrics.jsonl (a torn last line, still being written, is skipped)."""
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return records


def train_and_watch(runs: Path, extra: list[str]) -> tuple[float, float | None, Path]:
    """Run `sslcore train` to its end; returns (wall seconds, seconds to the first step record on disk, run folder)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "sslcore", "train", "--runs-dir", str(runs), *extra],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    first_point = None
    while process.poll() is None:
        if first_point is None:
            for metrics in runs.glob("*/metrics.jsonl"):
                if '"kind":"step"' in metrics.read_text():
                    first_point = time.perf_counter() - started
        time.sleep(0.02)
    wall = time.perf_counter() - started
    out = process.stdout.read() if process.stdout else ""
    if process.returncode != 0:
        raise SystemExit(f"sslcore train exited with {process.returncode}: {out[-2000:]}")
    folders = [p for p in runs.iterdir() if p.is_dir()]
    return wall, first_point, folders[0]


def step_seconds(run: Path) -> tuple[float, float, float]:
    """(seconds in training steps, time of the first step record, time of the last epoch record), from the run."""
    batch = json.loads((run / "config.json").read_text())["train"]["batch_size"]
    records = read_records(run / "metrics.jsonl")
    epochs = [r for r in records if r.get("kind") == "epoch"]
    steps = [r for r in records if r.get("kind") == "step"]
    total, previous_step = 0.0, 0
    for r in sorted(epochs, key=lambda r: r["step"]):
        if r.get("images_per_s"):
            total += (r["step"] - previous_step) * batch / r["images_per_s"]
        previous_step = r["step"]
    return total, min(r["time"] for r in steps), max(r["time"] for r in epochs)


def manager_first_point(runs: Path, warm: bool, overrides: dict[str, object]) -> float:
    """Seconds from ``JobManager.submit`` (what a click on Train calls) to the run's first step record on disk,
    with a cold worker or with the warm spare (given time to finish its imports first, as between two clicks)."""
    from sslcore.config import default_config
    from sslcore.runs.process_manager import JobManager

    manager = JobManager(runs, max_concurrent=1, warm=warm)
    try:
        if manager.spare is not None and not manager.spare.wait_ready(timeout=300):
            raise SystemExit("the warm spare worker did not get ready in 300 s")
        started = time.perf_counter()
        run = manager.submit(default_config(**overrides))
        while '"kind":"step"' not in (run.metrics_path.read_text() if run.metrics_path.exists() else ""):
            if manager.reconcile() or run.state not in ("queued", "running"):
                raise SystemExit(f"the run ended {run.state} before its first step: {run.status().get('error')}")
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        manager.cancel(run)
        manager.wait(run, timeout=300)
        return elapsed
    finally:
        manager.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="digits, 1 epoch: seconds, for the test suite")
    parser.add_argument("--monitor-every", type=int, default=1,
                        help="train.monitor_every of the timed run (epochs between the monitor's passes)")
    parser.add_argument("--skip-app", action="store_true", help="time `sslcore train` only, not the job manager")
    add_emulation_flag(parser)
    args = parser.parse_args()
    reexec_if_emulating(args)
    print(describe_machine())
    import_s = torch_import_seconds()
    with tempfile.TemporaryDirectory() as tmp:
        launch_epoch = time.time()
        extra = [*(SMOKE_ARGS if args.smoke else []), "--set", f"train.monitor_every={args.monitor_every}"]
        wall, first_point, run = train_and_watch(Path(tmp), extra)
        steps, first_step_time, last_epoch_time = step_seconds(run)
    startup = first_step_time - launch_epoch  # launch -> end of the first step (one step of training inside)
    shutdown = launch_epoch + wall - last_epoch_time  # last epoch record -> process exit (snapshot, checkpoint, exit)
    recipe = "digits, 1 epoch (smoke)" if args.smoke else "default recipe (mnist5k + SimCLR + convnet, 10 epochs)"
    if args.monitor_every != 1:
        recipe += f", monitor every {args.monitor_every} epochs"
    print(f"sslcore train, {recipe}")
    print(f"  wall time, launch to exit        {wall:7.1f} s")
    print(f"  in training steps                {steps:7.1f} s")
    print(f"  wall / steps (target <= 1.10)    {wall / steps:7.2f} x")
    print(f"  start-up to the first step's end {startup:7.1f} s")
    print(f"  after the last epoch record      {shutdown:7.1f} s")
    print(f"  epoch ends (monitor, snapshots, checkpoints, between steps)"
          f" {max(0.0, wall - steps - startup - shutdown):5.1f} s")
    if first_point is not None:
        print(f"  first loss point on disk         {first_point:7.1f} s after launch, "
              f"{first_point - import_s:.1f} s after `import torch` ({import_s:.1f} s in a fresh interpreter)")
    if args.skip_app:
        print(describe_machine())
        return
    overrides = SMOKE_OVERRIDES if args.smoke else {}
    print("job manager (what a click on Train calls): submit -> first loss point on disk (target <= 3 s)")
    for warm in (True,) if args.smoke else (False, True):  # the smoke run skips the cold worker (tested elsewhere)
        with tempfile.TemporaryDirectory() as tmp:
            seconds = manager_first_point(Path(tmp), warm, overrides)
        print(f"  {'warm spare worker' if warm else 'cold worker':33s}{seconds:7.1f} s")
    print(describe_machine())


if __name__ == "__main__":
    main()
