"""The label-efficiency protocol: linear probe, k-NN, supervised and raw-pixel baselines on the same labels.

For each label budget (k labels per class, or "all") and each repeat, ONE stratified, seeded labelled
subset of the run's training split is drawn (:func:`label_subsets`) and every method is fitted on exactly
those indices, then scored on the test split, which nothing ever trains on or selects with. Results go to
``<run>/eval.json`` (atomically replaced) and are reused while the checkpoint and the protocol are unchanged.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Literal, Sequence, Union

import numpy as np
import torch

from sslcore.config import RunConfig
from sslcore.data import DatasetSplit, load_dataset, stratified_subset
from sslcore.engine.checkpoint import load_checkpoint
from sslcore.engine.device import pick_device
from sslcore.engine.trainer import build_task
from sslcore.evaluation.features import extract_features
from sslcore.evaluation.probes import KNNProbe, LinearProbe, RawPixelProbe
from sslcore.evaluation.supervised import SupervisedBaseline
from sslcore.runs import Run
from sslcore.runs.files import read_json, write_json_atomic

Budget = Union[int, Literal["all"]]
Progress = Callable[[float, str], None]
METHODS: tuple[str, ...] = ("linear_probe", "knn", "supervised", "raw_pixels")
EVAL_VERSION = 1
# Methods whose result depends on the labelled subset only (their random_state is fixed to ``seed``), so
# a subset that repeats (budget "all") is fitted once and its result reused for the other repeats.
DETERMINISTIC = frozenset({"linear_probe", "knn", "raw_pixels"})
# Rough relative cost, so the progress fraction moves about evenly in time.
_COST = {"linear_probe": 1, "knn": 1, "raw_pixels": 2, "supervised": 12}


def check_budgets(budgets: Sequence[Budget]) -> list[Budget]:
    """Budgets as given (duplicates dropped): positive ints (labels per class) or "all"; ValueError otherwise."""
    checked: list[Budget] = []
    for b in budgets:
        if not (b == "all" or (isinstance(b, (int, np.integer)) and not isinstance(b, bool) and b >= 1)):
            raise ValueError(f"a label budget must be a positive number of labels per class or 'all', got {b!r}")
        value: Budget = "all" if b == "all" else int(b)
        if value not in checked:
            checked.append(value)
    return checked


def indices_hash(indices: np.ndarray) -> str:
    """A short sha256 of sorted int64 indices (M,): equal hashes mean the same labelled subset."""
    return hashlib.sha256(np.ascontiguousarray(indices, dtype="<i8").tobytes()).hexdigest()[:16]


def label_subsets(labels: torch.Tensor | np.ndarray, budgets: Sequence[Budget], repeats: int,
                  seed: int) -> dict[tuple[Budget, int], np.ndarray]:
    """The labelled subset of every (budget, repeat): sorted int64 indices (M,) into ``labels`` (N,).

    k labels per class come from ``stratified_subset(labels, k, seed + repeat)`` (seeded, and nested:
    repeat r's 4-per-class subset contains its 1-per-class subset); "all" is every index, every repeat.
    A pure function, so the dashboard can show exactly which images a budget used.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    labels = torch.as_tensor(labels)
    everything = np.arange(labels.numel(), dtype=np.int64)
    return {(b, r): everything if b == "all" else stratified_subset(labels, b, seed + r).numpy()
            for b in check_budgets(budgets) for r in range(repeats)}


class _Inputs:
    """Everything the methods need, computed once: the split and frozen features (N, D) / (M, D)."""

    def __init__(self, config: RunConfig, data: DatasetSplit, encoder: torch.nn.Module, device: torch.device,
                 supervised: dict[str, Any], seed: int) -> None:
        self.config, self.data, self.device, self.supervised, self.seed = config, data, device, supervised, seed
        self.train_features = extract_features(encoder, data.train.images)
        self.test_features = extract_features(encoder, data.test.images)
        self.train_labels, self.test_labels = data.train.labels.numpy(), data.test.labels.numpy()


def _linear_probe(x: _Inputs, idx: np.ndarray, repeat: int) -> tuple[float, dict[str, Any]]:
    probe = LinearProbe(random_state=x.seed).fit(x.train_features[idx], x.train_labels[idx])
    return probe.score(x.test_features, x.test_labels), {"C": probe.C_}


def _knn(x: _Inputs, idx: np.ndarray, repeat: int) -> tuple[float, dict[str, Any]]:
    probe = KNNProbe(random_state=x.seed).fit(x.train_features[idx], x.train_labels[idx])
    return probe.score(x.test_features, x.test_labels), {"k": probe.k_}


def _raw_pixels(x: _Inputs, idx: np.ndarray, repeat: int) -> tuple[float, dict[str, Any]]:
    images = x.data.train.images.numpy()
    probe = RawPixelProbe(random_state=x.seed).fit(images[idx], x.train_labels[idx])
    return probe.score(x.data.test.images.numpy(), x.test_labels), {"C": probe.C_}


def _supervised(x: _Inputs, idx: np.ndarray, repeat: int) -> tuple[float, dict[str, Any]]:
    # Only the labelled subset goes in: the test split is used for scoring after fit, never inside it.
    model = supervised_baseline(x.config, x.data, x.supervised, x.seed + repeat, x.device)
    chosen = torch.from_numpy(idx)
    model.fit(x.data.train.images[chosen], x.data.train.labels[chosen])
    details = {"early_stopping": model.early_stopping_, "train_size": len(model.train_indices_),
               "holdout_size": len(model.holdout_indices_), "steps": model.n_steps_,
               "best_step": model.best_step_, "holdout_accuracy": model.holdout_accuracy_}
    return model.score(x.data.test.images, x.data.test.labels), details


_RUNNERS: dict[str, Callable[[_Inputs, np.ndarray, int], tuple[float, dict[str, Any]]]] = {
    "linear_probe": _linear_probe, "knn": _knn, "raw_pixels": _raw_pixels, "supervised": _supervised}


def supervised_baseline(config: RunConfig, data: DatasetSplit, overrides: dict[str, Any], random_state: int,
                        device: torch.device | str = "auto") -> SupervisedBaseline:
    """The run's encoder architecture as an untrained :class:`SupervisedBaseline` with ``overrides``."""
    return SupervisedBaseline(config.encoder.name, config.encoder.width, data.image_shape, device=str(device),
                              random_state=random_state, **overrides)


def _protocol(config: RunConfig, data: DatasetSplit, budgets: list[Budget], repeats: int, seed: int,
              methods: Sequence[str], supervised: dict[str, Any]) -> dict[str, Any]:
    """Everything that defines the numbers (reuse needs an exact match), JSON-normalised."""
    sup = supervised_baseline(config, data, supervised, seed).get_params()
    for key in ("device", "random_state"):
        sup.pop(key)
    protocol = {
        "dataset": config.to_dict()["data"], "train_size": len(data.train), "test_size": len(data.test),
        "budgets": budgets, "repeats": repeats, "seed": seed,
        "subset_seeds": [seed + r for r in range(repeats)], "methods": list(methods),
        "scored_on": "test split only", "accuracy_std": "population std (ddof=0) over repeats",
        "probe_random_state": seed, "supervised_random_states": [seed + r for r in range(repeats)],
        "linear_probe": LinearProbe().get_params(), "knn": KNNProbe().get_params(),
        "raw_pixels": RawPixelProbe().get_params(), "supervised": sup,
        "supervised_holdout": "stratified holdout_fraction of each labelled subset (>= 1 per class) for early "
                              "stopping; when a class has a single label there is none and training runs "
                              "steps_without_holdout fixed steps",
        "deterministic_methods_reused_on_identical_subsets": sorted(DETERMINISTIC & set(methods)),
    }
    return json.loads(json.dumps(protocol))


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_encoder(run: Run, data: DatasetSplit, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The encoder of ``checkpoints/last.pt`` and that file's fingerprint.

    The file is hashed before and after loading: a training job replacing it in between would otherwise
    leave eval.json claiming a checkpoint other than the one evaluated.
    """
    path = run.checkpoint_dir / "last.pt"
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}: train the run before evaluating it")
    for _ in range(3):
        before = _file_sha256(path)
        payload = load_checkpoint(path, map_location="cpu")
        if _file_sha256(path) == before:
            break
    with torch.random.fork_rng(devices=[]):  # the random init is overwritten; keep the caller's RNG as it was
        task = build_task(run.config(), data)
    try:
        task.load_state_dict(payload["model"])
    except RuntimeError as e:  # shapes or names differ: the run's config no longer builds that network
        raise ValueError(f"{path} does not fit the network its config builds now (was it trained with an "
                         f"older sslcore?): {str(e).splitlines()[0]}") from e
    state = payload.get("state", {})
    fingerprint = {"path": "checkpoints/last.pt", "sha256": before, "size": path.stat().st_size,
                   "step": state.get("step"), "epoch": state.get("epoch")}
    return task.encoder.to(device).eval(), fingerprint


def _run_method(method: str, inputs: _Inputs, subsets: dict[tuple[Budget, int], np.ndarray], budget: Budget,
                repeats: int, tick: Callable[[str, str], None]) -> dict[str, Any]:
    """One results row: ``method`` fitted on every repeat's subset of ``budget``, scored on the test split."""
    row: dict[str, Any] = {"method": method, "labels_per_class": budget, "accuracies": [], "seconds": [],
                           "indices_sha256": [], "details": []}
    done: dict[str, tuple[float, dict[str, Any], int]] = {}
    for r in range(repeats):
        idx = subsets[(budget, r)]
        digest = indices_hash(idx)
        started = time.perf_counter()
        if method in DETERMINISTIC and digest in done:
            accuracy, details, first = done[digest]
            details = {**details, "reused_from_repeat": first}
        else:
            accuracy, details = _RUNNERS[method](inputs, idx, r)
            done[digest] = (accuracy, details, r)
        row["accuracies"].append(float(accuracy))
        row["seconds"].append(round(time.perf_counter() - started, 3))
        row["indices_sha256"].append(digest)
        row["details"].append(details)
        tick(method, f"{method} at {budget} labels/class, repeat {r + 1}/{repeats}")
    row["accuracy_mean"] = float(np.mean(row["accuracies"]))
    row["accuracy_std"] = float(np.std(row["accuracies"]))
    row["seconds_total"] = round(sum(row["seconds"]), 3)
    return row


def _subset_records(subsets: dict[tuple[Budget, int], np.ndarray], seed: int) -> list[dict[str, Any]]:
    """Per (budget, repeat): size, seed and hash; the indices themselves for k-per-class budgets."""
    records = []
    for (budget, r), idx in subsets.items():
        record = {"labels_per_class": budget, "repeat": r, "seed": None if budget == "all" else seed + r,
                  "size": int(len(idx)), "indices_sha256": indices_hash(idx)}
        if budget != "all":  # "all" is range(train_size); listing it would only bloat the file
            record["indices"] = idx.tolist()
        records.append(record)
    return records


def _reusable(run: Run, protocol: dict[str, Any]) -> dict[str, Any] | None:
    """The stored eval.json if it was made with ``protocol`` from the current checkpoint, else None."""
    stored = read_json(run.path / "eval.json")
    path = run.checkpoint_dir / "last.pt"
    if not isinstance(stored, dict) or stored.get("version") != EVAL_VERSION or stored.get("protocol") != protocol:
        return None
    if not path.exists() or stored.get("checkpoint", {}).get("sha256") != _file_sha256(path):
        return None
    return stored


def evaluate_run(run: Run, budgets: Sequence[Budget], repeats: int = 3, seed: int = 0,
                 methods: Sequence[str] = METHODS, progress: Progress | None = None, *, force: bool = False,
                 device: str = "auto", supervised: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate ``run``'s ``checkpoints/last.pt`` under the label-efficiency protocol; writes and returns eval.json.

    budgets: labels per class (ints) and/or "all"; repeats: labelled subsets per budget (seeds seed + r);
    methods: any of :data:`METHODS`; progress(fraction in [0, 1], message) is called as work completes;
    force: recompute even if eval.json already holds this protocol for this checkpoint; device: where the
    encoder and the supervised baseline run; supervised: overrides of :class:`SupervisedBaseline`'s
    parameters (e.g. ``{"augment": False}``, ``{"max_steps": 50}``).

    The result has ``results``: one row per (method, budget) with
    ``accuracy_mean``, ``accuracy_std``, ``accuracies`` / ``seconds`` / ``indices_sha256`` / ``details``
    (one per repeat); ``subsets``: per (budget, repeat) the subset's seed, size, hash (and indices for k
    per class); ``protocol``; ``checkpoint`` (sha256, size, step); ``environment``; ``timing``.
    An exception raised by ``progress`` aborts the evaluation and nothing is written (a way to cancel).
    """
    started = time.perf_counter()
    budgets, methods = check_budgets(budgets), _check_methods(methods)
    config = run.config()
    data = load_dataset(config.data.dataset, root=config.data.root, download=config.data.download,
                        test_fraction=config.data.test_fraction, seed=config.data.split_seed,
                        train_limit=config.data.train_limit)  # the exact split training used
    protocol = _protocol(config, data, budgets, repeats, seed, methods, dict(supervised or {}))
    if not force and (stored := _reusable(run, protocol)) is not None:
        return stored
    subsets = label_subsets(data.train.labels, budgets, repeats, seed)  # validates budgets against the data
    dev = pick_device(device)
    encoder, checkpoint = _load_encoder(run, data, dev)
    loaded = time.perf_counter()
    inputs = _Inputs(config, data, encoder, dev, dict(supervised or {}), seed)
    featured = time.perf_counter()
    tick = _progress_ticker(progress, methods, len(budgets) * repeats)
    results = [_run_method(m, inputs, subsets, b, repeats, tick) for b in budgets for m in methods]
    out = {"version": EVAL_VERSION, "run_id": run.id, "created": time.time(), "checkpoint": checkpoint,
           "protocol": protocol, "environment": {"device": str(dev), "torch": torch.__version__,
                                                 "threads": torch.get_num_threads()},
           "subsets": _subset_records(subsets, seed), "results": results,
           "timing": {"load_s": round(loaded - started, 3), "features_s": round(featured - loaded, 3),
                      "total_s": round(time.perf_counter() - started, 3)}}
    write_json_atomic(run.path / "eval.json", out)
    return out


def _check_methods(methods: Sequence[str]) -> list[str]:
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown evaluation method {unknown[0] if unknown else None!r}; "
                         f"choose from {', '.join(METHODS)}")
    return list(dict.fromkeys(methods))


def _progress_ticker(progress: Progress | None, methods: Sequence[str],
                     fits_per_method: int) -> Callable[[str, str], None]:
    """A callback for each finished fit that reports the fraction of (cost-weighted) work done."""
    total = sum(_COST[m] for m in methods) * fits_per_method
    done = 0

    def tick(method: str, message: str) -> None:
        nonlocal done
        done += _COST[method]
        if progress is not None:
            progress(min(1.0, done / total), message)

    return tick


def format_results_table(eval_dict: dict[str, Any]) -> str:
    """A text table of eval.json's results: rows = label budgets, columns = methods, cells "97.1 ± 0.3" (%)."""
    results = eval_dict.get("results", [])
    methods = list(dict.fromkeys(r["method"] for r in results))
    budgets = list(dict.fromkeys(r["labels_per_class"] for r in results))
    cells = {(r["labels_per_class"], r["method"]): f"{100 * r['accuracy_mean']:.1f} ± {100 * r['accuracy_std']:.1f}"
             for r in results}
    rows = [["labels/class", *methods]] + [[str(b), *(cells.get((b, m), "-") for m in methods)] for b in budgets]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    p = eval_dict.get("protocol", {})
    lines.append(f"test accuracy (%), mean ± std over {p.get('repeats', '?')} repeats; "
                 f"train {p.get('train_size', '?')} / test {p.get('test_size', '?')} images")
    return "\n".join(lines)
