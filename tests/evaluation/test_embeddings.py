"""Embedding maps: shapes, caching, nearest neighbours, quality figures, thumbnails and the background job."""
from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from sslcore.engine.training_run import execute_run
from sslcore.evaluation import embedding_quality as quality_module
from sslcore.evaluation import embeddings, projection_cache, thumbnails
from sslcore.evaluation.embedding_quality import embedding_quality, nearest_neighbours, run_quality
from sslcore.evaluation.embeddings import (
    available_epochs,
    pca_2d,
    raw_pixel_features,
    run_class_names,
    run_features,
    run_points,
    tsne_2d,
)
from sslcore.evaluation.projection_cache import (
    ProjectionCache,
    projection_error,
    projection_status,
    resolve_params,
    start_background_projection,
)
from sslcore.evaluation.thumbnails import run_thumbnails, thumbnails_base64
from sslcore.runs import RunStore
from tests.conftest import tiny_config


def blobs(n_per_class: int, classes: int = 4, dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Well-separated Gaussian clusters (n_per_class * classes, dim) and their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 10.0, size=(classes, dim))
    labels = np.repeat(np.arange(classes), n_per_class)
    return (centres[labels] + rng.normal(0.0, 1.0, size=(len(labels), dim))).astype(np.float32), labels


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A digits run trained for one epoch: encoder weights at epochs 0 and 1."""
    store = RunStore(tmp_path_factory.mktemp("runs"))
    trained = store.create(tiny_config("simclr", **{"train.epochs": 1}))
    assert execute_run(trained) == "completed", trained.status().get("error")
    return trained


# ---------------------------------------------------------------------------------------------- pure functions


def test_raw_pixels_are_flat_floats_in_unit_range() -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(5, 3, 4, 6), dtype=np.uint8)
    pixels = raw_pixel_features(images)
    assert pixels.shape == (5, 72) and pixels.dtype == np.float32
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0
    assert pixels[2, 0] == pytest.approx(images[2, 0, 0, 0] / 255.0)


def test_projections_have_one_2d_point_per_row() -> None:
    features, labels = blobs(30, dim=64)
    pca = pca_2d(features)
    # 500 iterations, not 250: scikit-learn spends the first 250 in early exaggeration, so a 250-iteration map is
    # unfinished and its quality depended on the CPU's numerics (0.942 on an AVX2 EPYC, > 0.95 with AVX-512).
    # Finished, the map separates the blobs completely on both (1.0); 0.9 leaves room for any other machine.
    tsne = tsne_2d(features, perplexity=10.0, max_iter=500)
    assert pca.shape == tsne.shape == (120, 2)
    assert pca.dtype == tsne.dtype == np.float32
    np.testing.assert_array_equal(pca, pca_2d(features))  # seeded: the same map every time
    assert embedding_quality(tsne, labels)["knn_acc"] > 0.9  # clusters stay clusters


def test_nearest_neighbours_on_a_hand_made_example() -> None:
    # Angles 0, 10, 30, 90 and 180 degrees (lengths differ: only the direction counts for cosine).
    angles = np.deg2rad([0.0, 10.0, 30.0, 90.0, 180.0])
    lengths = np.array([1.0, 3.0, 0.5, 2.0, 1.0])[:, None]
    features = np.stack([np.cos(angles), np.sin(angles)], axis=1) * lengths
    indices, distances = nearest_neighbours(features, query_index=0, k=3)
    np.testing.assert_array_equal(indices, [1, 2, 3])
    np.testing.assert_allclose(distances, 1.0 - np.cos(np.deg2rad([10.0, 30.0, 90.0])), atol=1e-6)
    indices, distances = nearest_neighbours(features, query_index=4, k=10)  # k is capped at N - 1
    np.testing.assert_array_equal(indices, [3, 2, 1, 0])
    assert distances[-1] == pytest.approx(2.0)


def test_quality_is_high_on_clusters_and_chance_on_random_labels() -> None:
    features, labels = blobs(100)
    good = embedding_quality(features, labels)
    assert good["knn_acc"] > 0.99 and good["silhouette"] > 0.5
    shuffled = np.random.default_rng(1).permutation(labels)
    bad = embedding_quality(features, shuffled)
    assert abs(bad["knn_acc"] - 0.25) < 0.1 and abs(bad["silhouette"]) < 0.1


def test_thumbnails_are_png_data_uris_of_the_enlarged_images() -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(3, 1, 8, 8), dtype=np.uint8)
    uris = thumbnails_base64(images, scale=3)
    assert len(uris) == 3 and all(u.startswith("data:image/png;base64,") for u in uris)
    decoded = np.asarray(Image.open(io.BytesIO(base64.b64decode(uris[1].split(",", 1)[1]))))
    assert decoded.shape == (24, 24)
    np.testing.assert_array_equal(decoded[::3, ::3], images[1, 0])
    colour = thumbnails_base64(np.zeros((1, 3, 4, 4), dtype=np.uint8), scale=2)[0]
    assert Image.open(io.BytesIO(base64.b64decode(colour.split(",", 1)[1]))).size == (8, 8)


# ---------------------------------------------------------------------------------------------- run features


def test_features_by_epoch_have_the_right_shapes_and_differ(run) -> None:
    assert available_epochs(run) == [0, 1]
    before, labels, indices = run_features(run, 0)
    after, labels_after, _ = run_features(run, 1)
    n = len(run_points(run)[0])
    assert before.shape == after.shape and before.shape[0] == n == len(labels) == len(indices)
    assert before.dtype == np.float32 and labels.dtype == np.int64
    np.testing.assert_array_equal(labels, labels_after)  # the same points at every epoch
    assert not np.allclose(before, after)
    pixels, pixel_labels, _ = run_features(run, "pixels")
    assert pixels.shape == (n, 64)
    np.testing.assert_array_equal(pixel_labels, labels)


def test_features_are_cached_until_the_checkpoint_is_rewritten(run, monkeypatch) -> None:
    first, _, _ = run_features(run, 1)
    calls = []
    real = embeddings.extract_features
    monkeypatch.setattr(embeddings, "extract_features", lambda *a, **k: calls.append(1) or real(*a, **k))
    np.testing.assert_array_equal(run_features(run, 1)[0], first)
    assert calls == []
    checkpoint = run.checkpoint_dir / "encoder_epoch_0001.safetensors"
    stat = checkpoint.stat()
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    run_features(run, 1)
    assert calls == [1]
    assert len(list((run.path / "embeddings").glob("features_e0001_*.npy"))) == 1  # the stale file is gone


def test_points_are_a_stratified_capped_sample(run) -> None:
    images, labels, indices = run_points(run, "test", max_points=100)
    assert images.shape == (100, 1, 8, 8) and len(np.unique(indices)) == 100
    assert np.bincount(labels).min() >= 9  # 10 classes, each keeps about its share


def test_projection_cache_computes_once_per_key(run, monkeypatch) -> None:
    calls = []
    real = projection_cache.project
    monkeypatch.setattr(projection_cache, "project", lambda *a: calls.append(a[1]) or real(*a))
    cache = ProjectionCache(run)
    assert cache.get(1, "test", "pca", {}) is None
    coords = cache.get_or_compute(1, "test", "pca", {})
    assert coords.shape == (len(run_points(run)[0]), 2)
    np.testing.assert_array_equal(cache.get_or_compute(1, "test", "pca", {"random_state": 0}), coords)
    assert calls == ["pca"]  # the default parameters spelled out are the same map
    cache.get_or_compute("pixels", "test", "pca", {})
    assert calls == ["pca", "pca"]
    with pytest.raises(ValueError, match="perplexity"):
        resolve_params("pca", {"perplexity": 5})


def test_background_projection_fills_the_cache(run) -> None:
    params = {"perplexity": 10.0, "max_iter": 250}
    worker = start_background_projection(run, 1, "test", "tsne", params)
    assert worker is not None
    assert projection_status(run, 1, "test", "tsne", params) in ("running", "ready")
    assert start_background_projection(run, 1, "test", "tsne", params) is None  # never the same job twice
    assert worker.wait(timeout=120) == 0
    assert projection_status(run, 1, "test", "tsne", params) == "ready"
    coords = ProjectionCache(run).get(1, "test", "tsne", params)
    assert coords is not None and coords.shape == (len(run_points(run)[0]), 2)
    assert not list((run.path / "embeddings").glob("*.lock"))


def test_background_failure_is_reported(run) -> None:
    params = resolve_params("tsne", {"perplexity": 5000.0})  # more than the number of points
    lock = ProjectionCache(run).path(0, "test", "tsne", params).with_suffix(".lock")
    assert projection_cache._run_job(run, 0, "test", "tsne", params, 5000, lock) == 1  # the worker's body, in-process
    assert projection_status(run, 0, "test", "tsne", params) == "failed"
    assert "perplexity" in projection_error(run, 0, "test", "tsne", params)
    assert start_background_projection(run, 0, "test", "tsne", params) is None  # not retried unless asked


def test_a_job_that_died_without_a_word_is_failed(run) -> None:
    params = {"perplexity": 7.0}
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = ProjectionCache(run).path(1, "test", "tsne", params).with_suffix(".lock")
    lock.write_text(json.dumps({"pid": dead.pid}))
    assert projection_status(run, 1, "test", "tsne", params) == "failed"
    assert "without a result" in projection_error(run, 1, "test", "tsne", params)
    assert start_background_projection(run, 1, "test", "tsne", params) is None
    lock.unlink()
    assert projection_status(run, 1, "test", "tsne", params) == "missing"


def test_thumbnails_of_a_run_are_cached(run, monkeypatch) -> None:
    uris = run_thumbnails(run)
    assert len(uris) == len(run_points(run)[0])
    monkeypatch.setattr(thumbnails, "thumbnails_base64", lambda *a: pytest.fail("recomputed"))
    assert run_thumbnails(run) == uris


def test_quality_of_a_run_is_cached_until_the_checkpoint_is_rewritten(run, monkeypatch) -> None:
    features, labels, _ = run_features(run, 1)
    assert run_quality(run, 1) == embedding_quality(features, labels)
    calls = []
    real = quality_module.embedding_quality
    monkeypatch.setattr(quality_module, "embedding_quality", lambda *a: calls.append(1) or real(*a))
    run_quality(run, 1)
    assert calls == []
    checkpoint = run.checkpoint_dir / "encoder_epoch_0001.safetensors"
    stat = checkpoint.stat()
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    run_quality(run, 1)
    assert calls == [1]
    assert len(list((run.path / "embeddings").glob("quality_e0001_test_*.json"))) == 1  # the stale file is gone
    pixels, _, _ = run_features(run, "pixels")
    assert run_quality(run, "pixels") == embedding_quality(pixels, labels)


def test_class_names_are_read_back_without_loading_the_dataset(run, monkeypatch) -> None:
    assert run_class_names(run) == tuple(str(d) for d in range(10))
    monkeypatch.setattr(embeddings, "run_data", lambda *a: pytest.fail("loaded the dataset"))
    assert run_class_names(run) == tuple(str(d) for d in range(10))
