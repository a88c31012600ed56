"""Tests for the label-efficiency protocol: label subsets, evaluate_run end to end, reuse, the results table."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from sslcore.config import default_config
from sslcore.data import load_dataset
from sslcore.engine.checkpoint import load_checkpoint, save_checkpoint
from sslcore.engine.training_run import execute_run
from sslcore.evaluation import (
    METHODS,
    LinearProbe,
    SupervisedBaseline,
    check_budgets,
    evaluate_run,
    format_results_table,
    indices_hash,
    label_subsets,
)
from sslcore.runs import RunStore

BUDGETS = [1, "all"]
REPEATS = 2
# A short step budget keeps the supervised baseline to seconds; the protocol records it.
FAST_SUPERVISED = {"max_steps": 30, "eval_every": 10, "steps_without_holdout": 10}

# ------------------------------------------------------------------------------ label subsets


def test_label_subsets_are_stratified_seeded_and_nested() -> None:
    labels = torch.arange(60) % 3  # 20 per class
    subsets = label_subsets(labels, [2, 5, "all"], repeats=3, seed=7)
    assert set(subsets) == {(b, r) for b in (2, 5, "all") for r in range(3)}
    for (budget, _), idx in subsets.items():
        counts = np.bincount(labels[idx].numpy(), minlength=3)
        assert (counts == (20 if budget == "all" else budget)).all()
        assert (np.diff(idx) > 0).all()  # sorted, no duplicates
    again = label_subsets(labels, [2, 5, "all"], repeats=3, seed=7)
    assert all(np.array_equal(subsets[key], again[key]) for key in subsets)  # same seed -> same subsets
    assert not np.array_equal(subsets[(5, 0)], subsets[(5, 1)])  # each repeat draws its own subset
    other = label_subsets(labels, [5], repeats=1, seed=8)
    assert np.array_equal(other[(5, 0)], subsets[(5, 1)])  # repeat r uses seed + r
    assert not np.array_equal(other[(5, 0)], subsets[(5, 0)])  # a different seed -> a different subset
    assert set(subsets[(2, 1)]) <= set(subsets[(5, 1)])  # nested budgets compare like with like


def test_budgets_are_validated() -> None:
    assert check_budgets([4, "all", 4, np.int64(2)]) == [4, "all", 2]
    for bad in (0, -1, "some", True, 2.5):
        with pytest.raises(ValueError, match="label budget"):
            check_budgets([bad])
    with pytest.raises(ValueError, match="per class"):  # more labels per class than the class has
        label_subsets(torch.tensor([0, 0, 1]), [2], repeats=1, seed=0)


def test_results_table_has_a_row_per_budget_and_a_column_per_method() -> None:
    results = [{"method": m, "labels_per_class": b, "accuracy_mean": 0.971, "accuracy_std": 0.003}
               for b in (4, "all") for m in ("linear_probe", "supervised")]
    table = format_results_table({"results": results, "protocol": {"repeats": 3, "train_size": 40, "test_size": 9}})
    lines = table.splitlines()
    assert lines[0].split() == ["labels/class", "linear_probe", "supervised"]
    assert lines[2].split()[0] == "4" and lines[3].split()[0] == "all"
    assert table.count("97.1 ± 0.3") == 4 and "3 repeats" in table


# ------------------------------------------------------------------------------ evaluate_run end to end


class Recorder:
    """Wraps an estimator's ``fit`` to record the labels (and images) it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, torch.Tensor | np.ndarray, np.ndarray]] = []

    def wrap(self, cls: type) -> object:
        original = cls.fit
        calls = self.calls

        def fit(estimator, X, y):  # noqa: ANN001, ANN202
            calls.append((type(estimator).__name__, X, np.asarray(y)))
            return original(estimator, X, y)

        return fit


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory):
    """A one-epoch autoencoder run on digits, evaluated once; fits of the probe and baseline recorded."""
    store = RunStore(tmp_path_factory.mktemp("runs"))
    run = store.create(default_config(**{"data.dataset": "digits", "task.name": "autoencoder", "train.epochs": 1,
                                         "encoder.width": 8, "train.threads": 1, "train.snapshot_images": 2}))
    assert execute_run(run) == "completed"
    torch.set_num_threads(1)
    recorder, fractions = Recorder(), []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(LinearProbe, "fit", recorder.wrap(LinearProbe))  # RawPixelProbe inherits this fit too
        mp.setattr(SupervisedBaseline, "fit", recorder.wrap(SupervisedBaseline))
        started = time.perf_counter()
        result = evaluate_run(run, BUDGETS, repeats=REPEATS, seed=3, progress=lambda f, m: fractions.append(f),
                              supervised=FAST_SUPERVISED)
        seconds = time.perf_counter() - started
    return run, result, recorder, fractions, seconds


def test_every_method_and_budget_is_reported(evaluated) -> None:
    _, result, _, fractions, _ = evaluated
    rows = {(r["method"], r["labels_per_class"]): r for r in result["results"]}
    assert set(rows) == {(m, b) for m in METHODS for b in BUDGETS}
    for row in rows.values():
        assert len(row["accuracies"]) == len(row["seconds"]) == len(row["indices_sha256"]) == REPEATS
        assert all(0.0 <= a <= 1.0 for a in row["accuracies"])
        assert row["accuracy_mean"] == pytest.approx(np.mean(row["accuracies"]))
        assert row["accuracy_std"] == pytest.approx(np.std(row["accuracies"]))
    assert rows[("linear_probe", "all")]["accuracy_mean"] > 0.5  # even a one-epoch autoencoder beats chance
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)


def test_protocol_is_recorded(evaluated) -> None:
    run, result, _, _, _ = evaluated
    p = result["protocol"]
    data = load_dataset("digits")
    assert (p["train_size"], p["test_size"]) == (len(data.train), len(data.test))
    assert p["budgets"] == BUDGETS and p["repeats"] == REPEATS and p["subset_seeds"] == [3, 4]
    assert p["methods"] == list(METHODS)
    assert p["supervised"]["max_steps"] == 30 and p["supervised"]["encoder_name"] == "convnet"
    assert result["checkpoint"]["sha256"] and result["timing"]["total_s"] > 0
    # With one label per class there is nothing to hold out: fixed steps, and the details say so.
    sup = {r["labels_per_class"]: r for r in result["results"] if r["method"] == "supervised"}
    assert all(not d["early_stopping"] and d["steps"] == 10 for d in sup[1]["details"])
    assert all(d["early_stopping"] and d["holdout_size"] > 0 for d in sup["all"]["details"])
    assert json.loads((run.path / "eval.json").read_text()) == result


def test_all_methods_use_the_same_subset_per_repeat(evaluated) -> None:
    _, result, recorder, _, _ = evaluated
    data = load_dataset("digits")
    expected = label_subsets(data.train.labels, BUDGETS, REPEATS, seed=3)
    for budget in BUDGETS:
        hashes = [r["indices_sha256"] for r in result["results"] if r["labels_per_class"] == budget]
        assert hashes == [[indices_hash(expected[(budget, r)]) for r in range(REPEATS)]] * len(METHODS)
    recorded = {(s["labels_per_class"], s["repeat"]): s for s in result["subsets"]}
    assert recorded[(1, 1)]["indices"] == expected[(1, 1)].tolist()
    # The probe and the baseline were fitted on exactly those training samples, never on test images.
    sup_calls = [c for c in recorder.calls if c[0] == "SupervisedBaseline"]
    probe_calls = [c for c in recorder.calls if c[0] == "LinearProbe"]
    assert len(sup_calls) == len(BUDGETS) * REPEATS
    assert len(probe_calls) == len(BUDGETS) * REPEATS - (REPEATS - 1)  # the repeated "all" subset is fitted once
    for (_, images, labels), key in zip(sup_calls, [(b, r) for b in BUDGETS for r in range(REPEATS)], strict=True):
        assert torch.equal(images, data.train.images[torch.from_numpy(expected[key])])
        assert np.array_equal(labels, data.train.labels.numpy()[expected[key]])
    assert np.array_equal(probe_calls[0][2], sup_calls[0][2])


def test_second_call_reuses_eval_json(evaluated) -> None:
    run, result, _, _, _ = evaluated
    before = (run.path / "eval.json").stat().st_mtime_ns
    started = time.perf_counter()
    again = evaluate_run(run, BUDGETS, repeats=REPEATS, seed=3, supervised=FAST_SUPERVISED)
    assert time.perf_counter() - started < 5.0
    assert again == result and (run.path / "eval.json").stat().st_mtime_ns == before


def test_changed_protocol_or_checkpoint_recomputes(evaluated) -> None:
    run, result, _, _, _ = evaluated
    knn_only = evaluate_run(run, BUDGETS, repeats=REPEATS, seed=3, methods=("knn",))
    assert [r["method"] for r in knn_only["results"]] == ["knn", "knn"]
    knn_rows = [r for r in result["results"] if r["method"] == "knn"]
    assert [r["accuracies"] for r in knn_only["results"]] == [r["accuracies"] for r in knn_rows]
    assert evaluate_run(run, BUDGETS, repeats=REPEATS, seed=3, methods=("knn",)) == knn_only  # reused
    path = run.checkpoint_dir / "last.pt"
    save_checkpoint(path, {**load_checkpoint(path), "note": "re-saved"})  # same weights, new file
    recomputed = evaluate_run(run, BUDGETS, repeats=REPEATS, seed=3, methods=("knn",))
    assert recomputed["checkpoint"]["sha256"] != knn_only["checkpoint"]["sha256"]
    assert evaluate_run(run, BUDGETS, repeats=REPEATS, seed=3, methods=("knn",), force=True)["created"] > \
        recomputed["created"]


def test_bad_arguments_fail_clearly(evaluated, tmp_path: Path) -> None:
    run = evaluated[0]
    with pytest.raises(ValueError, match="unknown evaluation method"):
        evaluate_run(run, [1], methods=("linear_probe", "magic"))
    with pytest.raises(ValueError, match="label budget"):
        evaluate_run(run, [0])
    empty = RunStore(tmp_path).create(default_config(**{"data.dataset": "digits"}))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        evaluate_run(empty, [1], methods=("knn",))
    wider = RunStore(tmp_path).create(default_config(**{"data.dataset": "digits", "task.name": "autoencoder",
                                                        "encoder.width": 16}))
    save_checkpoint(wider.checkpoint_dir / "last.pt", load_checkpoint(run.checkpoint_dir / "last.pt"))
    with pytest.raises(ValueError, match="does not fit the network"):
        evaluate_run(wider, [1], methods=("knn",))


# ------------------------------------------------------------------------------ weights sources, fine-tuning


def test_an_imported_run_is_evaluated_from_its_encoder_file(evaluated, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from sslcore.runs.weights import ENCODER_FILE, IMAGE_SHAPE_KEY, final_encoder_state, format_image_shape

    run, result = evaluated[0], evaluated[1]
    imported = RunStore(tmp_path).create(run.config())  # no last.pt: only the encoder, as an import leaves it
    imported.checkpoint_dir.mkdir()
    save_file(final_encoder_state(run), str(imported.checkpoint_dir / ENCODER_FILE),
              metadata={IMAGE_SHAPE_KEY: format_image_shape(load_dataset("digits").image_shape)})
    again = evaluate_run(imported, BUDGETS, repeats=REPEATS, seed=3, methods=("knn", "linear_probe"))
    assert again["checkpoint"]["path"] == "checkpoints/encoder.safetensors"
    original = {(r["method"], r["labels_per_class"]): r["accuracies"] for r in result["results"]}
    for row in again["results"]:  # the same weights give the same scores
        assert row["accuracies"] == original[(row["method"], row["labels_per_class"])]


def test_fine_tuning_starts_from_the_ssl_weights(evaluated) -> None:
    from sslcore.evaluation.finetune import FineTuned
    from sslcore.runs.weights import final_encoder_state

    run = evaluated[0]
    data, config = load_dataset("digits"), run.config()
    state = final_encoder_state(run)
    subset = torch.from_numpy(label_subsets(data.train.labels, [4], 1, seed=0)[(4, 0)])
    frozen = {"max_steps": 2, "eval_every": 1, "lr": 0.0, "weight_decay": 0.0, "device": "cpu", "augment": False}
    tuned = FineTuned(state, config.encoder.name, config.encoder.width, **frozen).fit(
        data.train.images[subset], data.train.labels[subset])
    weights = dict(tuned.model_[0].named_parameters())
    assert all(torch.equal(weights[name], state[name]) for name in weights)  # lr 0: still the SSL weights
    scratch = SupervisedBaseline(config.encoder.name, config.encoder.width, **frozen).fit(
        data.train.images[subset], data.train.labels[subset])
    assert not all(torch.equal(p, weights[n]) for n, p in scratch.model_[0].named_parameters())
    assert 0.0 <= tuned.score(data.test.images, data.test.labels) <= 1.0


def test_typed_budgets_are_parsed_in_order_and_bad_parts_named() -> None:
    from sslcore.evaluation.protocol import parse_budgets

    assert parse_budgets("1, 4,10 ,100, ALL") == [1, 4, 10, 100, "all"]
    for text, part in (("4, four", "'four'"), ("-1", "'-1'"), ("2.5", "'2.5'")):
        with pytest.raises(ValueError, match=f"label budget {part} is not allowed"):
            parse_budgets(text)
