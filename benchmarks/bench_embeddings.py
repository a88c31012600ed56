"""Speed of the Embeddings page's engine half, on 5,000 points: features, PCA map, t-SNE, quality, thumbnails.

Targets (2 CPU cores): a PCA map of 5,000 points on screen in under 1 s once the features are extracted;
our t-SNE no slower than scikit-learn's default ``TSNE`` on the same features (about 11 s on an idle
2-core machine), computed in a background process that never blocks the page.

    python benchmarks/bench_embeddings.py                     # mnist5k features (train + test = 5,000) of the
                                                              # quick demo run, trained into runs/ if needed
    python benchmarks/bench_embeddings.py runs/<run-id>       # an existing run (its last epoch)
    python benchmarks/bench_embeddings.py --features random   # random 512-d features, no run needed
    python benchmarks/bench_embeddings.py --smoke             # tiny digits version for CI (seconds)

Timings on a shared machine move with its load, so the load average is printed next to them; scikit-learn's
t-SNE and ours run in the same process, one after the other, under the same OpenMP settings.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled
from sklearn.manifold import TSNE  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402

from sslcore.config import default_config  # noqa: E402
from sslcore.engine.device import configure_threads  # noqa: E402
from sslcore.engine.training_run import execute_run  # noqa: E402
from sslcore.evaluation.embedding_quality import embedding_quality, nearest_neighbours, run_quality  # noqa: E402
from sslcore.evaluation.embeddings import (  # noqa: E402
    Split,
    available_epochs,
    embeddings_dir,
    pca_2d,
    raw_pixel_features,
    run_features,
    run_points,
    tsne_2d,
)
from sslcore.evaluation.projection_cache import ProjectionCache, projection_status, start_background_projection  # noqa: E402
from sslcore.evaluation.thumbnails import run_thumbnails, thumbnails_base64  # noqa: E402
from sslcore.recipes import QUICK_DEMO  # noqa: E402
from sslcore.runs import Run, RunStore  # noqa: E402

SMOKE_CONFIG = {"data.dataset": "digits", "train.epochs": 1, "encoder.width": 8, "train.snapshot_images": 2}


def timed(label: str, fn: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``fn`` once; print and return its result and wall seconds (CPU seconds beside them)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"  {label:<52s} {wall:7.2f} s   (cpu {cpu:6.2f} s)", flush=True)
    return result, wall


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def find_or_train(store: RunStore, overrides: dict[str, Any]) -> Run:
    """The newest completed run in ``store`` with exactly this config; trained now if there is none."""
    config = default_config(**overrides)
    for run in store.list():
        if run.state == "completed" and run.config() == config:
            return run
    run = store.create(config, name="bench_embeddings")
    print(f"training {run.path} ...", flush=True)
    if execute_run(run) != "completed":
        raise SystemExit(f"training failed: {run.status().get('error')}")
    return run


def run_inputs(run: Run, max_points: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features, labels, raw pixels and images of up to ``max_points`` test + train points of the run's last
    epoch; the features extracted cold (cache cleared first) and then read back warm."""
    epoch = available_epochs(run)[-1]
    for stale in embeddings_dir(run).glob(f"features_e{epoch:04d}_*"):
        stale.unlink()
    print(f"run {run.path}, epoch {epoch}")

    def both() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        return [run_features(run, epoch, split, max_points) for split in ("test", "train")]

    timed("feature extraction (load data + encoder, encode)", both)
    parts, _ = timed("features again (read from the run's cache)", both)
    features = np.concatenate([p[0] for p in parts])[:max_points]
    labels = np.concatenate([p[1] for p in parts])[:max_points]
    images = np.concatenate([run_points(run, s, max_points)[0] for s in ("test", "train")])[:max_points]
    return features, labels, raw_pixel_features(images), images


def random_inputs(n: int, dim: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random 512-d features, random labels and random 28x28 images (the same sizes as mnist5k)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 1, 28, 28), dtype=np.uint8)
    return rng.normal(size=(n, dim)).astype(np.float32), rng.integers(0, 10, n), raw_pixel_features(images), images


def map_knn(coords: np.ndarray, labels: np.ndarray) -> float:
    """5-fold 10-NN accuracy in the 2-D map: how well a map keeps the classes apart (to compare t-SNEs)."""
    return float(cross_val_score(KNeighborsClassifier(10), coords, labels, cv=5).mean())


def bench_pca(features: np.ndarray, labels: np.ndarray) -> None:
    print(f"PCA map of {len(features)} points (target: on screen in < 1 s)")
    coords, pca_s = timed("pca_2d", lambda: pca_2d(features))
    figure_s = bench_figure(coords, labels)
    if figure_s is not None:
        print(f"  {'PCA + figure':<52s} {pca_s + figure_s:7.2f} s")


def bench_figure(coords: np.ndarray, labels: np.ndarray) -> float | None:
    """Seconds to build the page's scatter (WebGL, one trace per class) and serialise it as Streamlit does."""
    try:
        import plotly.graph_objects as go
    except ImportError:
        print("  (plotly not installed: figure not timed)")
        return None

    def build() -> str:
        traces = [go.Scattergl(x=coords[labels == c, 0], y=coords[labels == c, 1], mode="markers", name=str(c),
                               customdata=np.flatnonzero(labels == c), marker={"size": 4}) for c in np.unique(labels)]
        return go.Figure(traces).to_json()

    return timed("plotly Scattergl figure built + to_json", build)[1]


def bench_tsne(features: np.ndarray, labels: np.ndarray) -> None:
    print(f"t-SNE of {len(features)} points x {features.shape[1]} dims (target: ours <= scikit-learn's default)")
    ours, ours_s = timed("ours: tsne_2d (PCA-50, 750 steps, angle 0.6)", lambda: tsne_2d(features))
    default, default_s = timed("scikit-learn default TSNE(random_state=0)",
                               lambda: TSNE(random_state=0).fit_transform(features))
    print(f"  ours / default: {ours_s / default_s:.2f}; 10-NN accuracy in the map: ours {map_knn(ours, labels):.3f}, "
          f"default {map_knn(default, labels):.3f}")


def bench_background(run: Run, split: Split, max_points: int, params: dict[str, Any]) -> None:
    """A background t-SNE as the page starts it: time to 'ready', and how long the page's status polls take."""
    epoch = available_epochs(run)[-1]
    for old in embeddings_dir(run).glob(f"proj_tsne_e{epoch:04d}_{split}_*"):
        old.unlink()
    n = len(run_features(run, epoch, split, max_points)[0])
    started = time.perf_counter()
    worker = start_background_projection(run, epoch, split, "tsne", params, max_points)
    start_s = time.perf_counter() - started
    polls = []
    while True:
        t = time.perf_counter()
        status = projection_status(run, epoch, split, "tsne", params, max_points)
        polls.append(time.perf_counter() - t)
        if status != "running":
            break
        time.sleep(0.1)
    if worker is not None:  # None: the map was already cached (the loop above deleted it, so not here)
        worker.wait()
    total = time.perf_counter() - started
    print(f"background t-SNE of the {split} split ({n} points) in a worker process: {status} after {total:.1f} s "
          f"(start {1000 * start_s:.0f} ms, {len(polls)} status polls, slowest {1000 * max(polls):.1f} ms)")
    coords, _ = timed("cached map read back",
                      lambda: ProjectionCache(run, max_points).get(epoch, split, "tsne", params))
    assert coords is not None and coords.shape == (n, 2)


def bench_rest(features: np.ndarray, labels: np.ndarray, pixels: np.ndarray, images: np.ndarray) -> None:
    print("quality, neighbours, thumbnails")
    quality, _ = timed("embedding_quality(features)", lambda: embedding_quality(features, labels))
    raw, _ = timed("embedding_quality(raw pixels)", lambda: embedding_quality(pixels, labels))
    print(f"  features {json.dumps({k: round(v, 3) for k, v in quality.items()})}, "
          f"raw pixels {json.dumps({k: round(v, 3) for k, v in raw.items()})}")
    timed("nearest_neighbours (k=8), one query", lambda: nearest_neighbours(features, 0, k=8))
    uris, _ = timed(f"thumbnails_base64 of {len(images)} images, scale 2", lambda: thumbnails_base64(images, 2))
    print(f"  thumbnails: {sum(map(len, uris)) / 1e6:.2f} MB of data URIs, "
          f"{np.mean([len(u) for u in uris]):.0f} B each")


def features_and_pixel_quality(run: Run, epoch: int, split: Split, max_points: int) -> list[Any]:
    """The quality figures of the encoder's features at ``epoch`` and of the raw pixels (the page shows both)."""
    return [run_quality(run, source, split, max_points) for source in (epoch, "pixels")]


def bench_run_cached(run: Run, max_points: int) -> None:
    """What the page reads per split besides the maps: hover thumbnails (at the page's scale 1: the browser
    enlarges them) and the quality figures, each made once and then read from the run folder."""
    epoch = available_epochs(run)[-1]
    splits: tuple[Split, ...] = ("test", "train")
    for split in splits:
        for old in [*embeddings_dir(run).glob(f"thumbs_{split}_n{max_points}_*"),
                    *embeddings_dir(run).glob(f"quality_*_{split}_n{max_points}_*")]:
            old.unlink()
        thumbnails = functools.partial(run_thumbnails, run, split, max_points, scale=1)
        qualities = functools.partial(features_and_pixel_quality, run, epoch, split, max_points)
        uris, _ = timed(f"run_thumbnails({split}, scale 1): made and cached", thumbnails)
        timed(f"run_thumbnails({split}): {len(uris)} read back ({sum(map(len, uris)) / 1e6:.2f} MB)", thumbnails)
        timed(f"run_quality({split}, features+pixels): made, cached", qualities)
        timed(f"run_quality({split}, features+pixels): read back", qualities)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", help="a trained run folder (default: find or train the quick demo)")
    parser.add_argument("--features", choices=["run", "random"], default="run")
    parser.add_argument("--store", default="runs", help="run store to find or train the quick demo in")
    parser.add_argument("--points", type=int, default=5000)
    parser.add_argument("--smoke", action="store_true", help="tiny digits version for CI")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    args = parser.parse_args()
    configure_threads(args.threads)
    print(f"load average {load_average()}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(default)')}")
    with tempfile.TemporaryDirectory() as scratch:
        n = 300 if args.smoke else args.points
        run = None
        if args.features == "run":
            store = RunStore(scratch if args.smoke else args.store)
            run = Run(Path(args.run)) if args.run else find_or_train(store, SMOKE_CONFIG if args.smoke else QUICK_DEMO)
            features, labels, pixels, images = run_inputs(run, n)
        else:
            features, labels, pixels, images = random_inputs(n)
        bench_pca(features, labels)
        bench_tsne(features, labels)
        bench_rest(features, labels, pixels, images)
        if run is not None:
            splits: tuple[Split, ...] = ("test",) if args.smoke else ("test", "train")
            for split in splits:
                bench_background(run, split, n, {})
            bench_run_cached(run, n)
    print(f"load average {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
