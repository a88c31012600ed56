"""Bigger datasets stay usable (issue 14, target 5): a training worker's memory on full-size MNIST and CIFAR-10,
and the Embeddings page on a 60,000-image run.

Nothing is downloaded. The script writes each dataset's files in its real on-disk format into a temporary
folder (MNIST's uncompressed IDX files, 60,000 train + 10,000 test 28x28 grey; CIFAR-10's pickled python
batches, 50,000 + 10,000 32x32 colour), filled with the embedded `mnist5k` and `shapes` images tiled to full
size, each copy shifted by a few random pixels, so the maps have classes to show.

Memory: `sslcore train` (the default recipe: SimCLR + convnet) is launched as a user would, in its own
process, and asked to stop (its STOP file) once the epoch-0 baseline is recorded and `--steps` steps are
done; the stop writes a final checkpoint. The peak resident memory of that process (the kernel's ru_maxrss
for it, from os.wait4) is compared with the same command on a small file set of the same format
(2,000 + 1,000 images): the difference is what the data cost, and the target is at most 1.5x the
dataset's uint8 size (train + test). Everything else (interpreter, torch, model, optimiser, one batch's
activations) is in both runs and cancels. The processes run with glibc's mmap threshold fixed at its
default 128 KiB (``MALLOC_MMAP_THRESHOLD_``): left to adjust itself, it keeps freed buffers of tens of MiB in the
heap, and a process's peak then moved by up to ~150 MiB between identical runs (more than MNIST's whole
data); fixed, four identical runs peaked within 1 MiB. ``--repeats`` trains each set again, interleaved.

Embeddings page: the page is opened on the 60k MNIST run with `streamlit.testing.v1.AppTest` (the page's
own script, nothing mocked) and each script run is timed: the first visit (which starts reading the map's
5,000-image sample in background jobs: features, PCA maps, quality figures, thumbnails), how long those jobs
take, the run that then draws the maps from the caches (t-SNE starts in the background), and a rerun (what
every click costs). Target: no run of the page blocks for more than 1 s.

    .venv/bin/python benchmarks/bench_big_datasets.py            # the README figures (about 3 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_big_datasets.py --smoke    # seconds: small files only; run by the tests
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from sslcore.data import load_dataset  # noqa: E402
from sslcore.data.official_files import write_cifar_batch, write_cifar_meta, write_idx  # noqa: E402
from sslcore.engine.device import describe_machine  # noqa: E402

MiB = 2 ** 20
#: Freed large buffers go back to the system at once, so a peak is the same from run to run (see above).
STEADY_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}


@dataclass(frozen=True)
class Layout:
    """A dataset's on-disk format and full size."""

    name: str          # the registered dataset that reads it
    source: str        # the embedded dataset whose images fill it
    train: int
    test: int


MNIST = Layout("mnist", "mnist5k", 60_000, 10_000)
CIFAR10 = Layout("cifar10", "shapes", 50_000, 10_000)


def tiled(images: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (n, C, H, W) uint8 drawn from ``images`` with their labels, each rolled by -2..2 pixels."""
    pick = rng.integers(0, len(images), size=n)
    out = images[pick].copy()
    shifts = rng.integers(-2, 3, size=(n, 2))
    for dy, dx in np.unique(shifts, axis=0):  # one vectorised roll per distinct shift (25 of them)
        rows = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
        out[rows] = np.roll(out[rows], (int(dy), int(dx)), axis=(2, 3))
    return out, labels[pick]


def write_mnist(root: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """``root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` as torchvision reads them."""
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = splits[split]
        write_idx(root / "MNIST" / "raw" / f"{prefix}-images-idx3-ubyte", images[:, 0])
        write_idx(root / "MNIST" / "raw" / f"{prefix}-labels-idx1-ubyte", labels.astype(np.uint8))


def write_cifar10(root: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """``root/cifar-10-batches-py/``: five training batches, a test batch (rows of 3,072 = R, G, B planes), meta."""
    folder = root / "cifar-10-batches-py"
    images, labels = splits["train"]
    parts = np.array_split(np.arange(len(images)), 5)
    batches = [(f"data_batch_{i + 1}", images[p], labels[p]) for i, p in enumerate(parts)]
    batches.append(("test_batch", *splits["test"]))
    for file_name, x, y in batches:
        write_cifar_batch(folder / file_name, x.reshape(len(x), -1), y.tolist())
    write_cifar_meta(folder / "batches.meta", [f"class_{i}" for i in range(10)], len(parts[0]))


def write_dataset(layout: Layout, root: Path, train: int, test: int, seed: int = 0) -> int:
    """Writes ``layout``'s files with ``train`` + ``test`` images under ``root``; returns their uint8 bytes."""
    source = load_dataset(layout.source)
    source_train, source_test = source.as_images()
    images = np.concatenate([source_train.images.numpy(), source_test.images.numpy()])
    labels = np.concatenate([source.train.labels.numpy(), source.test.labels.numpy()])
    rng = np.random.default_rng(seed)
    splits = {"train": tiled(images, labels, train, rng), "test": tiled(images, labels, test, rng)}
    (write_mnist if layout.name == "mnist" else write_cifar10)(root, splits)
    return sum(x.nbytes for x, _ in splits.values())


def read_records(path: Path) -> list[dict]:
    """The complete lines of a metrics.jsonl (a torn last line is skipped)."""
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def train_until(runs: Path, args: list[str], steps: int, timeout: float = 900) -> tuple[int, Path | None, float]:
    """`sslcore train` with ``args``, stopped once the epoch-0 baseline and ``steps`` steps are on disk.

    Returns (peak resident bytes of that process, its run folder, wall seconds)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **STEADY_MALLOC}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "sslcore", "train", "--runs-dir", str(runs), *args],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    run_dir: Path | None = None
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - started > timeout:
            process.kill()
            raise SystemExit(f"sslcore train {' '.join(args)} did not reach {steps} steps in {timeout:.0f} s")
        folders = [p for p in runs.iterdir() if p.is_dir()] if runs.exists() else []
        if folders and run_dir is None:
            run_dir = folders[0]
        if run_dir is not None and not (run_dir / "STOP").exists():
            records = read_records(run_dir / "metrics.jsonl")
            done = sum(r.get("kind") == "step" for r in records)
            baseline = any(r.get("kind") == "epoch" and r.get("epoch") == 0 for r in records)
            if baseline and done >= steps:
                (run_dir / "STOP").touch()
        time.sleep(0.05)
    process.returncode = os.waitstatus_to_exitcode(status)
    state = json.loads((run_dir / "status.json").read_text()).get("state") if run_dir else None
    if state not in ("cancelled", "completed"):  # a stop on request ends "cancelled" (the CLI exits with 1)
        error = process.stderr.read() if process.stderr else ""
        raise SystemExit(f"sslcore train {' '.join(args)} exited with {process.returncode}: {error[-2000:]}")
    return usage.ru_maxrss * 1024, run_dir, time.perf_counter() - started  # ru_maxrss is in KiB on Linux


def page_timings(runs: Path, data_root: Path, warm_up: Path, warm_up_root: Path) -> dict[str, dict[str, float]]:
    """Per split (test, then train), seconds of the Embeddings page's script runs on the one run in ``runs``, and
    of its background first read.

    The page is first opened on the run in ``warm_up`` (its own data root), in the same process, so the
    timing is that of a server that has already served a page: modules imported, caches warm, not a cold
    interpreter. Returns: ``first`` (the first visit, which starts the background read), ``background``
    (until its jobs end, polled like the page does), ``drawn`` (the run that draws the maps from the caches)
    and ``rerun`` (what every later click costs)."""
    os.environ["SSL_WARM_WORKER"] = "0"  # no spare training worker beside the measurement
    from streamlit.testing.v1 import AppTest

    def timed(at: AppTest) -> float:
        started = time.perf_counter()
        at.run()
        if at.exception:
            raise SystemExit(f"the Embeddings page failed: {at.exception[0].message}")
        return time.perf_counter() - started

    def open_on(folder: Path, root: Path) -> tuple[AppTest, float]:
        os.environ["SSL_RUNS_DIR"], os.environ["SSL_DATA_ROOT"] = str(folder), str(root)
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
        at.query_params["run"] = next(p.name for p in folder.iterdir() if p.is_dir())
        at.run()
        at.switch_page("app_pages/embeddings.py")
        return at, timed(at)

    def background_jobs(folder: Path) -> bool:
        return any(folder.glob("*/embeddings/proj_pca_*.lock"))

    def any_jobs(folder: Path) -> bool:
        return any(folder.glob("*/embeddings/*.lock"))

    at, _ = open_on(warm_up, warm_up_root)
    wait_for(lambda: not any_jobs(warm_up))
    at, first = open_on(runs, data_root)
    times: dict[str, dict[str, float]] = {}
    for split in ("test", "train"):
        if split != "test":
            at.radio(key="emb.split").set_value(split)
            first = timed(at)
        started = time.perf_counter()
        wait_for(lambda: not background_jobs(runs))
        background = time.perf_counter() - started
        times[split] = {"first": first, "background": background, "drawn": timed(at), "rerun": timed(at)}
        wait_for(lambda: not any_jobs(runs))  # the t-SNE the drawing run started: not beside the next figures
    return times


def wait_for(done: Callable[[], bool], timeout: float = 600) -> None:
    started = time.perf_counter()
    while not done():
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"a background job of the Embeddings page did not end in {timeout:.0f} s")
        time.sleep(0.05)


@dataclass
class Measured:
    """One file set and its training runs: uint8 bytes, the peak resident bytes of each run, where they are."""

    size: int
    root: Path
    peaks: list[int]
    runs: list[Path]
    walls: list[float]

    @property
    def least_peak(self) -> int:
        """The lowest of the runs' peaks (with the steady allocator they agree to about 1 MiB)."""
        return min(self.peaks)


def write_set(layout: Layout, work: Path, train: int, test: int) -> Measured:
    root = work / f"{layout.name}-{train}"
    return Measured(write_dataset(layout, root, train, test), root, [], [], [])


LOAD_PROBE = """
import sys
def kib(field):
    return int(open("/proc/self/status").read().split(field + ":")[1].split()[0])
import torch
from sslcore.config import default_config
from sslcore.data import load_run_data
from sslcore.tasks.build import build_task
config = default_config(**{"data.dataset": sys.argv[1], "data.root": sys.argv[2]})
before = kib("VmHWM")
task = build_task(config, load_run_data(config.data))  # the files read, the encoder's input statistics taken
print(kib("VmHWM") - before)
"""


def loading_peak(layout: Layout, root: Path) -> int:
    """Bytes the peak resident memory of a fresh process grows by while it reads ``layout``'s files under ``root``
    and builds the run's model on them (deterministic: no threads race, unlike a whole training run's peak)."""
    done = subprocess.run([sys.executable, "-c", LOAD_PROBE, layout.name, str(root)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **STEADY_MALLOC}, check=True)
    return int(done.stdout.split()[-1]) * 1024


def train_once(layout: Layout, measured: Measured, train_args: list[str], steps: int) -> None:
    """One more training run on ``measured``'s files, each in its own runs folder."""
    runs = measured.root.parent / f"runs-{measured.root.name}-{len(measured.runs)}"
    peak, _, wall = train_until(runs, ["--dataset", layout.name, "--data-root", str(measured.root), *train_args], steps)
    measured.peaks.append(peak)
    measured.runs.append(runs)
    measured.walls.append(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="small files only, a tiny encoder (seconds)")
    parser.add_argument("--steps", type=int, default=20, help="training steps before the stop")
    parser.add_argument("--repeats", type=int, default=2,
                        help="training runs per file set, interleaved; the lowest peak of each set is compared")
    args = parser.parse_args()
    print(describe_machine())
    small = (300, 100) if args.smoke else (2_000, 1_000)
    layouts = [MNIST] if args.smoke else [MNIST, CIFAR10]
    full = {MNIST.name: (1_200, 400)} if args.smoke else {
        MNIST.name: (MNIST.train, MNIST.test), CIFAR10.name: (CIFAR10.train, CIFAR10.test)}
    tiny = ["--set", "encoder.width=8", "--set", "train.batch_size=32"]
    train_args = ["--epochs", "1"] + (tiny if args.smoke else [])
    steps, repeats = (3, 1) if args.smoke else (args.steps, args.repeats)
    with tempfile.TemporaryDirectory(prefix="bench-big-") as tmp:
        work = Path(tmp)
        mnist: list[Measured] = []  # the small set's, then the full one's
        for layout in layouts:
            ref, big = write_set(layout, work, *small), write_set(layout, work, *full[layout.name])
            for _ in range(repeats):
                train_once(layout, ref, train_args, steps)
                train_once(layout, big, train_args, steps)
            extra, more = big.least_peak - ref.least_peak, big.size - ref.size
            print(f"{layout.name}: {full[layout.name][0]:,} + {full[layout.name][1]:,} images = "
                  f"{big.size / MiB:.1f} MiB uint8; training worker peak {big.least_peak / MiB:.0f} MiB (least of "
                  f"{', '.join(f'{p / MiB:.0f}' for p in big.peaks)}) against {ref.least_peak / MiB:.0f} MiB (of "
                  f"{', '.join(f'{p / MiB:.0f}' for p in ref.peaks)}) on {small[0]:,} + {small[1]:,} images: the "
                  f"data cost {extra / MiB:.0f} MiB = {extra / more:.2f}x the {more / MiB:.1f} MiB more uint8 "
                  f"(target <= 1.5x); {np.median(big.walls):.0f} s and {np.median(ref.walls):.0f} s to the stop "
                  f"after {steps} steps")
            loaded = loading_peak(layout, big.root) - loading_peak(layout, ref.root)
            print(f"  reading the files and building the model on them: the peak grew by {loaded / MiB:.0f} MiB more "
                  f"than on the small set = {loaded / more:.2f}x the data's uint8 size")
            if layout is MNIST:
                mnist = [ref, big]
        from ui.embedding_data import MAX_POINTS
        for split, seconds in page_timings(mnist[1].runs[0], mnist[1].root, mnist[0].runs[0], mnist[0].root).items():
            print(f"Embeddings page on the {full[MNIST.name][0]:,}-image mnist run, {split} split (maps of at most "
                  f"{MAX_POINTS:,} images): first visit {seconds['first']:.2f} s (starts the background read, if "
                  f"any), which took {seconds['background']:.1f} s; then the run that draws the maps "
                  f"{seconds['drawn']:.2f} s and a rerun {seconds['rerun']:.2f} s (target: no page run over 1 s)")


if __name__ == "__main__":
    main()
