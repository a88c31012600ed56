"""The label-efficiency protocol: linear probe, k-NN, supervised and raw-pixel baselines on the same labels.

For each label budget (k labels per class, or "all") and each repeat, ONE stratified, seeded labelled
subset of the run's training split is drawn (:func:`label_subsets`) and every method is fitted on exactly
those indices, then scored on the test split, which nothing ever trains on or selects with. Results go to
``<run>/eval.json`` (atomically replaced), every fit's test predictions to ``<run>/eval_predictions.npz``;
both are reused while the weights and the protocol are unchanged. The methods live in
:mod:`sslcore.evaluation.methods`.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Literal

import numpy as np
import torch

from sslcore.config import RunConfig
from sslcore.data import DATASETS, DatasetSplit, load_run_data, stratified_subset
from sslcore.engine.device import pick_device
from sslcore.evaluation.baseline_fits import BaselineFits, fit_key
from sslcore.evaluation.encoder_source import file_sha256, load_evaluated_encoder, weights_path
from sslcore.evaluation.methods import (
    ALL_METHODS,
    COST,
    DETERMINISTIC,
    METHODS,
    OPTIONAL_METHODS,
    RUNNERS,
    TABLE_METHODS,
    Inputs,
    check_methods,
    default_methods,
    supervised_baseline,
)
from sslcore.evaluation.parallel_fits import NETWORK_METHODS, FitPool, fit_processes
from sslcore.evaluation.predictions import PREDICTIONS_FILE, prediction_key, save_predictions
from sslcore.evaluation.probes import KNNProbe, LinearProbe, RawPixelProbe
from sslcore.evaluation.results import budget_amount, format_results_table, method_label
from sslcore.evaluation.shared_baselines import BASELINES
from sslcore.evaluation.supervised import trains_in_bf16
from sslcore.evaluation.trees import GradientBoostingBaseline, min_leaf
from sslcore.runs import ACTIVE_STATES, Run
from sslcore.runs.files import DamagedFileError, read_json_object, write_json_atomic

__all__ = ["ALL_METHODS", "METHODS", "TABLE_METHODS", "OPTIONAL_METHODS", "EVAL_VERSION", "Budget", "check_budgets",
           "evaluate_run", "format_results_table", "indices_hash", "label_subsets", "supervised_baseline"]

Budget = int | Literal["all"]
Progress = Callable[[float, str], None]
#: 2: test predictions kept in eval_predictions.npz; imported runs evaluated from encoder.safetensors.
EVAL_VERSION = 2


def parse_budgets(text: str) -> list[Budget]:
    """'1, 4, all' -> [1, 4, 'all']; ValueError naming the part that is neither a positive integer nor 'all'.

    The one reader of budgets typed by a person, for the CLI's --labels-per-class and the Evaluate page.
    """
    budgets: list[Budget] = []
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        if part == "all":
            budgets.append("all")
        elif part.isdigit() and int(part) > 0:
            budgets.append(int(part))
        else:
            raise ValueError(f"label budget {part!r} is not allowed: expected positive whole numbers of labels "
                             "per class or 'all', separated by commas (e.g. 1, 4, 10, 100, all)")
    if not budgets:
        raise ValueError("no label budget given: expected e.g. 1, 4, 10, 100, all")
    return budgets


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


def _protocol(config: RunConfig, data: DatasetSplit, budgets: list[Budget], repeats: int, seed: int,
              methods: Sequence[str], supervised: dict[str, Any]) -> dict[str, Any]:
    """Everything that defines the numbers (reuse needs an exact match), JSON-normalised."""
    sup = supervised_baseline(config, data, supervised, seed).get_params()
    for key in ("device", "random_state"):
        sup.pop(key)
    protocol = {
        "dataset": config.to_dict()["data"], "train_size": len(data.train), "test_size": len(data.test),
        "num_classes": len(data.class_names), "budgets": budgets, "repeats": repeats, "seed": seed,
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
    if DATASETS.get(config.data.dataset).user:  # the user's data can change (labels added): results follow it
        protocol["data_version"] = DATASETS.get(config.data.dataset).version
    if "finetune" in methods:
        protocol["finetune"] = "the supervised baseline's settings, starting from the run's encoder weights"
    if "raw_columns" in methods:
        protocol["raw_columns"] = LinearProbe().get_params()
    if "gradient_boosting" in methods:
        protocol["gradient_boosting"] = {**GradientBoostingBaseline().get_params(), "min_samples_leaf":
                                         f"min(20, max(2, rows // 10)), e.g. {min_leaf(40)} for 40 labelled rows"}
    return json.loads(json.dumps(protocol))


class _KeptFits:
    """Baseline fits kept in the run store (:mod:`sslcore.evaluation.baseline_fits`), for one evaluation."""

    def __init__(self, run: Run, protocol: dict[str, Any], device: torch.device, network_bf16: bool,
                 reuse: bool) -> None:
        self.fits, self.protocol, self.device = BaselineFits(run.path.parent), protocol, device.type
        # The supervised network trains in bf16 on some machines (trains_in_bf16): other numerics, other fits.
        self.network_numerics = device.type + ("+bf16" if network_bf16 else "")
        self.reuse = reuse  # False: make every fit afresh (and keep the new ones)

    def _key(self, method: str, inputs: Inputs, digest: str, repeat: int) -> str:
        numerics = self.network_numerics if method == "supervised" else self.device
        return fit_key(method, self.protocol, digest, inputs.seed, repeat, numerics)

    def lookup(self, method: str, inputs: Inputs, digest: str, repeat: int) -> tuple[np.ndarray, dict[str, Any]] | None:
        """The (test predictions, details) an earlier evaluation kept for this fit, or None (none kept, not a
        baseline, or reuse is off)."""
        if not self.reuse or method not in BASELINES:
            return None
        key = self._key(method, inputs, digest, repeat)
        if (kept := self.fits.load(key)) is None or len(kept[0]) != len(inputs.test_labels):
            return None
        return kept[0], {**kept[1], "kept_fit": key[:16]}

    def keep(self, method: str, inputs: Inputs, digest: str, repeat: int, predicted: np.ndarray,
             details: dict[str, Any]) -> None:
        """Keep a baseline's fit made now for later evaluations on the same data (other methods: nothing)."""
        if method in BASELINES:
            self.fits.save(self._key(method, inputs, digest, repeat), predicted, details)

    def fit(self, method: str, inputs: Inputs, idx: np.ndarray, digest: str, repeat: int,
            ) -> tuple[np.ndarray, dict[str, Any]]:
        """The fit's (test predictions, details): kept from an earlier evaluation, or made now and kept."""
        if (found := self.lookup(method, inputs, digest, repeat)) is not None:
            return found
        predicted, details = RUNNERS[method](inputs, idx, repeat)
        self.keep(method, inputs, digest, repeat, predicted, details)
        return predicted, details


def _new_row(method: str, budget: Budget) -> dict[str, Any]:
    return {"method": method, "labels_per_class": budget, "accuracies": [], "seconds": [], "indices_sha256": [],
            "details": []}


def _add_fit(row: dict[str, Any], predicted: np.ndarray, details: dict[str, Any], seconds: float, digest: str,
             test_labels: np.ndarray) -> None:
    """One repeat's fit into ``row``: its test accuracy, seconds, subset hash and details."""
    row["accuracies"].append(float(np.mean(predicted == test_labels)))
    row["seconds"].append(round(seconds, 3))
    row["indices_sha256"].append(digest)
    row["details"].append(details)


def _finish_row(row: dict[str, Any]) -> dict[str, Any]:
    row["accuracy_mean"] = float(np.mean(row["accuracies"]))
    row["accuracy_std"] = float(np.std(row["accuracies"]))
    row["seconds_total"] = round(sum(row["seconds"]), 3)
    return row


def _run_method(method: str, inputs: Inputs, subsets: dict[tuple[Budget, int], np.ndarray], budget: Budget,
                repeats: int, predictions: dict[str, np.ndarray], tick: Callable[[str, str], None],
                kept: _KeptFits | None = None) -> dict[str, Any]:
    """One results row: ``method`` fitted on every repeat's subset of ``budget``, scored on the test split.

    Each fit's test predictions (T,) go into ``predictions`` under :func:`prediction_key`. With ``kept``,
    baseline fits made by an earlier evaluation on the same data and settings are read back, not made again.
    """
    row = _new_row(method, budget)
    done: dict[str, tuple[np.ndarray, dict[str, Any], int]] = {}
    for r in range(repeats):
        idx = subsets[(budget, r)]
        digest = indices_hash(idx)
        started = time.perf_counter()
        if method in DETERMINISTIC and digest in done:
            predicted, details, first = done[digest]
            details = {**details, "reused_from_repeat": first}
        else:
            predicted, details = kept.fit(method, inputs, idx, digest, r) if kept else RUNNERS[method](inputs, idx, r)
            done[digest] = (predicted, details, r)
        predictions[prediction_key(method, budget, r)] = predicted
        _add_fit(row, predicted, details, time.perf_counter() - started, digest, inputs.test_labels)
        tick(method, f"{method_label(method)} · {budget_amount(budget)} · repeat {r + 1}/{repeats}")
    return _finish_row(row)


KeptOrQueued = tuple[np.ndarray, dict[str, Any]] | Future  # a kept fit's (predictions, details), or a queued fit


class _NetworkFits:
    """The network methods' fits of one evaluation: each read back from a kept fit or queued on a
    :class:`FitPool` of single-threaded processes (queued at the start: they train while the cheap methods run
    here). ``fits`` maps (method, budget, repeat) to (subset hash, kept fit or Future)."""

    def __init__(self, pool: FitPool, fits: dict[tuple[str, Budget, int], tuple[str, KeptOrQueued]],
                 inputs: Inputs, kept: _KeptFits) -> None:
        self.pool, self.fits, self.inputs, self.kept = pool, fits, inputs, kept

    def row(self, method: str, budget: Budget, repeats: int, predictions: dict[str, np.ndarray],
            tick: Callable[[str, str], None]) -> dict[str, Any]:
        """The results row of ``method`` at ``budget``, once its fits are done (waits for them)."""
        row = _new_row(method, budget)
        for r in range(repeats):
            digest, fit = self.fits[(method, budget, r)]
            if isinstance(fit, Future):
                predicted, details, seconds = fit.result()
                self.kept.keep(method, self.inputs, digest, r, predicted, details)
            else:  # kept from an earlier evaluation
                (predicted, details), seconds = fit, 0.0
            predictions[prediction_key(method, budget, r)] = predicted
            _add_fit(row, predicted, details, seconds, digest, self.inputs.test_labels)
            tick(method, f"{method_label(method)} · {budget_amount(budget)} · repeat {r + 1}/{repeats}")
        return _finish_row(row)


def _network_fits(methods: Sequence[str], inputs: Inputs, data: DatasetSplit,
                  subsets: dict[tuple[Budget, int], np.ndarray], kept: _KeptFits) -> _NetworkFits | None:
    """The network methods' fits that are not kept already, queued on a process pool when the device and the
    thread count call for one (:func:`fit_processes`); else None: they run in this process, one by one."""
    networks = [m for m in sorted(methods, key=lambda name: COST[name]) if m in NETWORK_METHODS]  # rows' order
    if not fit_processes(inputs.device, len(networks) * len(subsets)):
        return None  # a GPU or one thread: no kept fit needs reading here, the rows read them as they go
    found = {(m, budget, r): (digest, kept.lookup(m, inputs, digest, r))
             for m in networks for (budget, r), idx in subsets.items() for digest in [indices_hash(idx)]}
    processes = fit_processes(inputs.device, sum(fit is None for _, fit in found.values()))
    if not processes:
        return None
    order = {b: i for i, b in enumerate(_largest_first(list(dict.fromkeys(b for b, _ in subsets)), subsets))}
    # the SSL encoder's weights go to the workers only when fine-tuning starts from them
    encoder_state = inputs.encoder_state if "finetune" in networks else {}
    pool = FitPool(processes, inputs.config, data, inputs.supervised, inputs.seed, encoder_state)
    try:
        fits: dict[tuple[str, Budget, int], tuple[str, KeptOrQueued]] = {}
        # method by method, in the order their rows are read (equal costs: the caller's), largest subsets first
        queue_order = sorted(found.items(), key=lambda item: (networks.index(item[0][0]), order[item[0][1]]))
        for (m, budget, r), (digest, fit) in queue_order:
            fits[(m, budget, r)] = (digest, fit if fit is not None else pool.submit(m, subsets[(budget, r)], r))
    except BaseException:
        pool.terminate()
        raise
    return _NetworkFits(pool, fits, inputs, kept)


def _largest_first(budgets: Sequence[Budget], subsets: dict[tuple[Budget, int], np.ndarray]) -> list[Budget]:
    """``budgets`` by their subsets' size, largest first (ties keep their order): the order the pool fits
    them in. A fit costs about steps x min(batch, subset size), so the long fits start first and the last ones to
    finish are short: no worker idles for long at the end (one mnist5k "all" fit is 16 s on one thread)."""
    return sorted(budgets, key=lambda b: -len(subsets[(b, 0)]))


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
    """The stored eval.json if made with ``protocol`` from the current weights, predictions intact; else None."""
    try:
        stored = read_json_object(run.path / "eval.json")
    except DamagedFileError:  # recomputing replaces it
        return None
    if stored is None or stored.get("version") != EVAL_VERSION or stored.get("protocol") != protocol:
        return None
    try:
        weights = weights_path(run)
    except FileNotFoundError:
        return None
    if stored.get("checkpoint", {}).get("sha256") != file_sha256(weights):
        return None
    saved = run.path / PREDICTIONS_FILE
    if not saved.exists() or stored.get("predictions", {}).get("sha256") != file_sha256(saved):
        return None
    return stored


def labelled_data(data: DatasetSplit) -> DatasetSplit:
    """The split reduced to its labelled images (the user's datasets may have few or none); ValueError
    saying how to add labels when either side has none."""
    labelled = data.labelled()
    if len(labelled.train) == 0 or len(labelled.test) == 0:
        side = "any" if not data.has_labels else ("training" if len(labelled.train) == 0 else "test") + " split"
        raise ValueError(f"dataset {data.name!r} has no labels in the {side}, and evaluation needs some: add labels "
                         f"for a few images per class on the Data page or with `sslcore data label {data.name} "
                         "labels.csv` (rows of file,label)")
    return labelled


def _load_data(config: RunConfig) -> DatasetSplit:
    """The labelled samples of the exact split the run trained on."""
    return labelled_data(load_run_data(config.data))


def evaluate_run(run: Run, budgets: Sequence[Budget], repeats: int = 3, seed: int = 0,
                 methods: Sequence[str] | None = None, progress: Progress | None = None, *, force: bool = False,
                 device: str = "auto", supervised: dict[str, Any] | None = None,
                 on_row: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Evaluate ``run``'s latest weights under the label-efficiency protocol; writes and returns eval.json.

    budgets: labels per class (ints) and/or "all"; repeats: labelled subsets per budget (seeds seed + r);
    methods: any of those that apply to the run's kind of data (default: :data:`METHODS` for images,
    :data:`TABLE_METHODS` for tables); progress(fraction in [0, 1], message) is
    called as work completes; force: recompute even if eval.json already holds this protocol for these
    weights, and fit the baselines afresh instead of reading those an earlier evaluation on the same data
    kept (:mod:`sslcore.evaluation.baseline_fits`); device: where the encoder and the networks run;
    supervised: overrides of :class:`SupervisedBaseline`'s parameters (e.g. ``{"augment": False}``,
    ``{"max_steps": 50}``), used by fine-tuning too; on_row(row) is called with each results row as soon as it
    is finished. The methods run cheapest first (every budget of one method, then the next), so the rows of
    the probes on the frozen features and of raw pixels arrive in seconds while the supervised networks still
    train; the stored rows keep the budget-major order of ``budgets`` x ``methods``. On a CPU with two or more
    threads the networks (supervised, fine-tuning) train side by side in single-threaded worker processes
    (:mod:`sslcore.evaluation.parallel_fits`), queued at the start, largest subsets first, and their rows arrive
    in that order.

    The weights are ``checkpoints/last.pt``, or ``checkpoints/encoder.safetensors`` for an imported run.
    The result has ``results``: one row per (method, budget) with ``accuracy_mean``, ``accuracy_std``,
    ``accuracies`` / ``seconds`` / ``indices_sha256`` / ``details`` (one per repeat); ``subsets``: per
    (budget, repeat) the subset's seed, size, hash (and indices for k per class); ``protocol``;
    ``checkpoint`` (file, sha256, size, step); ``predictions`` (file, sha256); ``environment``; ``timing``.
    An exception raised by ``progress`` aborts the evaluation and nothing is written (a way to cancel).
    """
    if run.state in ACTIVE_STATES and run.is_alive():  # the checkpoint changes every epoch: no fixed weights to score
        raise ValueError(f"run {run.id} is still {run.state}; evaluate it when training has ended (or stop it)")
    started = time.perf_counter()
    budgets = check_budgets(budgets)
    config = run.config()
    data = _load_data(config)
    methods = check_methods(default_methods(data.kind) if methods is None else methods, data.kind)
    protocol = _protocol(config, data, budgets, repeats, seed, methods, dict(supervised or {}))
    if not force and (stored := _reusable(run, protocol)) is not None:
        return stored
    subsets = label_subsets(data.train.labels, budgets, repeats, seed)  # validates budgets against the data
    dev = pick_device(device)
    encoder, checkpoint = load_evaluated_encoder(run, data, dev)
    loaded = time.perf_counter()
    inputs = Inputs(config, data, encoder, dev, dict(supervised or {}), seed)
    featured = time.perf_counter()
    tick = _progress_ticker(progress, methods, len(budgets) * repeats)
    predictions: dict[str, np.ndarray] = {"test_labels": inputs.test_labels}
    network_bf16 = trains_in_bf16(dev, encoder, protocol["supervised"]["precision"])  # the fits decide alike
    kept = _KeptFits(run, protocol, dev, network_bf16, reuse=not force)
    rows: dict[tuple[str, Budget], dict[str, Any]] = {}
    networks = _network_fits(methods, inputs, data, subsets, kept)  # queued first: they train meanwhile
    try:
        for m in sorted(methods, key=lambda name: COST[name]):  # stable: equal costs keep the caller's order
            pooled = networks if m in NETWORK_METHODS else None
            for b in budgets if pooled is None else _largest_first(budgets, subsets):  # as the pool fits them
                if pooled is not None:
                    rows[(m, b)] = pooled.row(m, b, repeats, predictions, tick)
                else:
                    rows[(m, b)] = _run_method(m, inputs, subsets, b, repeats, predictions, tick, kept)
                if on_row is not None:
                    on_row(rows[(m, b)])
    except BaseException:  # a cancel or a failure: no fit may go on computing
        if networks is not None:
            networks.pool.terminate()
        raise
    if networks is not None:
        networks.pool.close()
    results = [rows[(m, b)] for b in budgets for m in methods]
    save_predictions(run.path / PREDICTIONS_FILE, predictions)  # first: eval.json vouches for it by hash
    out = {"version": EVAL_VERSION, "run_id": run.id, "created": time.time(), "checkpoint": checkpoint,
           "protocol": protocol, "environment": {"device": str(dev), "torch": torch.__version__,
                                                 "threads": torch.get_num_threads(),
                                                 "network_precision": "bf16" if network_bf16 else "fp32",
                                                 # 0: the networks trained here, with the threads above
                                                 "network_processes": networks.pool.processes if networks else 0},
           "subsets": _subset_records(subsets, seed), "results": results,
           "predictions": {"file": PREDICTIONS_FILE, "sha256": file_sha256(run.path / PREDICTIONS_FILE)},
           "timing": {"load_s": round(loaded - started, 3), "features_s": round(featured - loaded, 3),
                      "total_s": round(time.perf_counter() - started, 3)}}
    write_json_atomic(run.path / "eval.json", out)
    return out


def _progress_ticker(progress: Progress | None, methods: Sequence[str],
                     fits_per_method: int) -> Callable[[str, str], None]:
    """A callback for each finished fit that reports the fraction of (cost-weighted) work done."""
    total = sum(COST[m] for m in methods) * fits_per_method
    done = 0

    def tick(method: str, message: str) -> None:
        nonlocal done
        done += COST[method]
        if progress is not None:
            progress(min(1.0, done / total), message)

    return tick
