"""Embedding maps of a run: the shown points, features by epoch checkpoint, and 2-D projections.

Everything is numpy in, numpy out. Run-level results are cached under ``<run>/embeddings/`` as plain
files written atomically (temp file in the same folder + ``os.replace``), so any number of dashboard
sessions can read them while one writes:

- ``points_<split>_n<max_points>.npz``: the shown samples (images uint8 (N, C, H, W) or table rows float32
  (N, F), under the key ``images``), labels (N,) and their indices (N,) into the split: a fixed, stratified
  sample, the same for every epoch and for the raw inputs;
- ``features_e0003_<split>_n<max_points>_<fingerprint>.npy``: encoder features (N, D) float32, keyed by
  the checkpoint file's mtime and size, so a rewritten checkpoint (a resumed run) is never served stale;
- ``thumbs_<split>_n<max_points>_s<scale>.txt``: one PNG data URI per line, for hover;
- ``quality_<source>_<split>_n<max_points>_<fingerprint>.json``: :func:`.embedding_quality.embedding_quality`
  of those features;
- ``classes.json``: the class names, so a page can name the classes without loading the dataset.

2-D maps (PCA at once, t-SNE in a background process) are cached by :mod:`.projection_cache`; quality
figures and neighbours are in :mod:`.embedding_quality`, thumbnails in :mod:`.thumbnails`.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

import numpy as np
import torch
from safetensors.torch import load_file
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from sslcore.atomic import write_atomic
from sslcore.data import DatasetSplit, TableColumns, TableDataset, find_dataset, load_run_data, stratified_sample
from sslcore.engine.device import pick_device
from sslcore.evaluation.features import extract_features
from sslcore.runs import Run

if TYPE_CHECKING:
    from sslcore.models.encoders import Encoder

Split = Literal["test", "train"]
#: A feature source: an epoch checkpoint, or the raw inputs of the same points (pixels, or a table's
#: standardised columns).
PIXELS: Final = "pixels"
Source = int | Literal["pixels"]
_EPOCH_FILE = re.compile(r"encoder_epoch_(\d+)\.safetensors$")


# ---------------------------------------------------------------------------------------------- run files


def embeddings_dir(run: Run) -> Path:
    """``<run>/embeddings``; for a dataset the user added, a sub-folder per version of its data: labels added
    later change the points' labels (and the stratified sample), so nothing cached from the old ones is served."""
    base = run.path / "embeddings"
    try:
        data = run.config().data
        spec = find_dataset(data.dataset, data.root)  # registers the user's datasets in a fresh (t-SNE) process
    except (ValueError, OSError):  # not here (its map can be drawn once it is added again), or a damaged config
        return base
    return base / f"data-{hashlib.sha256(spec.version.encode()).hexdigest()[:12]}" if spec.user else base


def save_npy_atomic(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` so readers see the old file or the new one, never a torn one."""
    write_atomic(path, lambda f: np.save(f, array))


def available_epochs(run: Run) -> list[int]:
    """Epochs with saved encoder weights (``checkpoints/encoder_epoch_0003.safetensors``), ascending; 0 = untrained."""
    if not run.checkpoint_dir.exists():
        return []
    found = (_EPOCH_FILE.match(p.name) for p in run.checkpoint_dir.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def encoder_path(run: Run, epoch: int) -> Path:
    path = run.checkpoint_dir / f"encoder_epoch_{epoch:04d}.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"no encoder weights for epoch {epoch} in {run.checkpoint_dir} "
                                f"(epochs available: {available_epochs(run)})")
    return path


def file_fingerprint(path: Path) -> str:
    """A short key that changes when ``path`` is rewritten (mtime in ns + size; no need to hash megabytes)."""
    stat = path.stat()
    return hashlib.sha256(f"{stat.st_mtime_ns}:{stat.st_size}".encode()).hexdigest()[:12]


def run_data(run: Run) -> DatasetSplit:
    """The exact train/test split the run trained on (cached in-process by ``load_dataset``)."""
    return load_run_data(run.config().data)


def load_encoder_at_epoch(run: Run, epoch: int, data: DatasetSplit) -> Encoder:
    """The run's encoder with the weights saved after ``epoch`` (0: before training), on the CPU, in eval mode."""
    # Imported here: the models pull in torchvision (~2 s), which the background t-SNE worker never needs.
    from sslcore.models.layout import to_conv_layout
    from sslcore.tasks.build import build_task

    path = encoder_path(run, epoch)
    with torch.random.fork_rng(devices=[]):  # the random init is overwritten; leave the caller's RNG alone
        encoder = build_task(run.config(), data).encoder
    encoder.load_state_dict(load_file(str(path)))  # safetensors: tensors only, no pickled code
    to_conv_layout(encoder)  # encodes 1.5-1.7x the images/s of the default layout (sslcore.models.layout)
    return encoder.eval()


# ---------------------------------------------------------------------------------------------- points and features


def run_points(run: Run, split: Split = "test", max_points: int = 5000,
               data: DatasetSplit | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The points a map shows: samples (images uint8 (N, C, H, W) or rows float32 (N, F)), labels int64 (N,),
    indices int64 (N,) into ``split``.

    At most ``max_points``, a stratified sample with a fixed seed (every class keeps its share); cached.
    """
    path = embeddings_dir(run) / f"points_{split}_n{max_points}.npz"
    if path.exists():
        with np.load(path) as z:
            return z["images"], z["labels"], z["indices"]
    dataset = getattr(data or run_data(run), split)
    indices = torch.arange(len(dataset))
    if len(dataset) > max_points:
        indices = stratified_sample(dataset.labels, max_points, seed=0)
    images, labels = dataset.samples[indices].numpy(), dataset.labels[indices].numpy()
    # Uncompressed: MNIST-sized points load in milliseconds; compression would cost ~0.1 s per read.
    write_atomic(path, lambda f: np.savez(f, images=images, labels=labels, indices=indices.numpy()))
    return images, labels, indices.numpy()


def raw_pixel_features(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, C, H, W) -> float32 (N, C*H*W) in [0, 1]: the no-learning baseline."""
    return images.reshape(images.shape[0], -1).astype(np.float32) / np.float32(255.0)


def table_columns(run: Run) -> TableColumns:
    """The columns of a table run's train split (names, train mean and std); TypeError for an image run."""
    train = run_data(run).train
    if not isinstance(train, TableDataset):
        raise TypeError(f"run {run.id} holds {train.kind} data, which has no columns")
    return train.columns


def raw_input_features(run: Run, samples: np.ndarray) -> np.ndarray:
    """The no-learning baseline of shown samples: pixels in [0, 1], or table rows (N, F) standardised with the
    train split's column statistics (so no column dominates a distance by its units), float32 (N, D)."""
    if samples.dtype == np.uint8:
        return raw_pixel_features(samples)
    columns = table_columns(run)
    return ((samples - columns.mean.numpy()) / columns.std.numpy()).astype(np.float32)


def source_fingerprint(run: Run, source: Source) -> str:
    """What a cached result from ``source`` depends on: the checkpoint file's version, or nothing for pixels."""
    return PIXELS if source == PIXELS else file_fingerprint(encoder_path(run, int(source)))


def _features_prefix(epoch: int, split: Split, max_points: int) -> str:
    return f"features_e{epoch:04d}_{split}_n{max_points}_"


def features_path(run: Run, epoch: int, split: Split = "test", max_points: int = 5000) -> Path:
    """Where :func:`run_features` keeps the encoder features of epoch ``epoch`` (named by the checkpoint's version)."""
    prefix = _features_prefix(epoch, split, max_points)
    return embeddings_dir(run) / f"{prefix}{source_fingerprint(run, epoch)}.npy"


def run_features(run: Run, epoch: Source, split: Split = "test",
                 max_points: int = 5000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features (N, D) float32, labels (N,), indices (N,) of :func:`run_points`, from epoch ``epoch``'s encoder.

    ``epoch="pixels"`` gives :func:`raw_input_features` of the same points. Encoder features are cached
    per (epoch, split, max_points, checkpoint version); a second call only reads the ``.npy`` file.
    """
    if epoch == PIXELS:
        images, labels, indices = run_points(run, split, max_points)
        return raw_input_features(run, images), labels, indices
    path = features_path(run, int(epoch), split, max_points)
    prefix = _features_prefix(int(epoch), split, max_points)
    if path.exists():
        _, labels, indices = run_points(run, split, max_points)
        return np.load(path), labels, indices
    data = run_data(run)
    images, labels, indices = run_points(run, split, max_points, data)
    device = pick_device("auto")
    features = extract_features(load_encoder_at_epoch(run, int(epoch), data).to(device), torch.from_numpy(images))
    for stale in path.parent.glob(f"{prefix}*.npy"):  # from an older version of this checkpoint
        stale.unlink(missing_ok=True)
    save_npy_atomic(path, features)
    return features, labels, indices


# ---------------------------------------------------------------------------------------------- projections


def unit_rows(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32 (N, D)); all-zero rows stay zero."""
    x = np.asarray(features, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.float32(1e-12))


def pca_2d(features: np.ndarray, random_state: int = 0) -> np.ndarray:
    """features (N, D) -> float32 (N, 2): the first two principal components of the L2-normalised rows.

    Rows are L2-normalised so the map shows the cosine geometry that k-NN accuracy, silhouette and the
    neighbour strip use. Dimensions are not standardised: that would blow dead units and constant
    border pixels up to unit variance, so noise would dominate the map.
    """
    x = unit_rows(features)
    if min(x.shape) < 2:
        raise ValueError(f"a 2-D map needs at least 2 points and 2 dimensions, got features of shape {x.shape}")
    return PCA(n_components=2, random_state=random_state).fit_transform(x).astype(np.float32)


def tsne_2d(features: np.ndarray, perplexity: float = 30.0, random_state: int = 0, pca_dims: int = 50,
            max_iter: int = 750, angle: float = 0.6) -> np.ndarray:
    """features (N, D) -> float32 (N, 2): Barnes-Hut t-SNE (van der Maaten 2014) of the L2-normalised rows.

    About a third less CPU time than scikit-learn's default on the same 5,000 points, for the same
    picture (2-D 10-NN accuracy 0.947 vs 0.951 and trustworthiness 0.98 for both on mnist5k features;
    benchmarks/bench_embeddings.py prints both timings):
    PCA to ``pca_dims`` first (standard since van der Maaten & Hinton 2008: the neighbour search runs on
    50 dimensions, not 512 or 784, and PCA drops noise); ``max_iter`` 750, not 1,000, as the layout has
    settled by then with the automatic learning rate (Belkina et al. 2019; Kobak & Berens 2019); and a
    Barnes-Hut ``angle`` of 0.6, not 0.5 (a coarser far-field approximation, cheaper per step).
    Initialised with PCA, so the map is stable between runs and seeds.
    """
    x = unit_rows(features)
    if perplexity >= x.shape[0]:
        raise ValueError(f"t-SNE perplexity must be below the number of points ({x.shape[0]}), got {perplexity}")
    dims = min(pca_dims, *x.shape)
    if x.shape[1] > dims:
        x = PCA(n_components=dims, random_state=random_state).fit_transform(x)
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", max_iter=max_iter,
                angle=angle, random_state=random_state, n_jobs=-1)
    return tsne.fit_transform(x).astype(np.float32)


def run_class_names(run: Run) -> tuple[str, ...]:
    """The run's class names, from ``classes.json`` once written (loading mnist5k to read them takes seconds)."""
    path = embeddings_dir(run) / "classes.json"
    if path.exists():
        return tuple(json.loads(path.read_text()))
    names = tuple(run_data(run).class_names)
    write_atomic(path, lambda f: f.write(json.dumps(list(names)).encode()))
    return names
