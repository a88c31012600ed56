"""Baseline fits kept between evaluations: the second run evaluated on the same data trains no baseline again,
gets the same baseline figures, and anything that changes a fit (its settings, force, a damaged file) fits anew."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from sslcore.config import default_config
from sslcore.engine.training_run import execute_run
from sslcore.evaluation import SupervisedBaseline, evaluate_run
from sslcore.evaluation.baseline_fits import FOLDER, BaselineFits, kept_count
from sslcore.runs import Run, RunStore
from tests.evaluation.test_protocol import FAST_SUPERVISED

BUDGETS = [1, "all"]
REPEATS = 2
METHODS = ("linear_probe", "supervised", "raw_pixels")


def trained(store: RunStore, task: str) -> Run:
    run = store.create(default_config(**{"data.dataset": "digits", "task.name": task, "train.epochs": 1,
                                         "encoder.width": 8, "train.threads": 1, "train.snapshot_images": 2}))
    assert execute_run(run) == "completed"
    return run


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Run, dict]:
    """Two runs of different tasks in one store; the first evaluated (its baseline fits kept)."""
    store = RunStore(tmp_path_factory.mktemp("runs"))
    first, second = trained(store, "autoencoder"), trained(store, "rotation")
    torch.set_num_threads(1)
    result = evaluate_run(first, BUDGETS, REPEATS, methods=METHODS, supervised=FAST_SUPERVISED)
    return first, second, result


def rows(result: dict, method: str) -> list[list[float]]:
    return [r["accuracies"] for r in result["results"] if r["method"] == method]


def counting_fits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = SupervisedBaseline.fit

    def fit(model, images, labels):  # noqa: ANN001, ANN202
        calls.append(len(labels))
        return original(model, images, labels)

    monkeypatch.setattr(SupervisedBaseline, "fit", fit)
    return calls


def test_a_second_run_on_the_same_data_reads_the_baselines_back(two_runs, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second, result = two_runs
    assert len(list((first.path.parent / FOLDER).glob("*.npz"))) == 2 * len(BUDGETS) * REPEATS - (REPEATS - 1)
    calls = counting_fits(monkeypatch)
    again = evaluate_run(second, BUDGETS, REPEATS, methods=METHODS, supervised=FAST_SUPERVISED)
    assert calls == [], "no supervised network should be trained again"
    for method in ("supervised", "raw_pixels"):
        assert rows(again, method) == rows(result, method)
        kept = [r for r in again["results"] if r["method"] == method]
        assert all("kept_fit" in d for r in kept for d in r["details"])
    supervised_all = next(r for r in again["results"] if r["method"] == "supervised" and r["labels_per_class"] == "all")
    assert all(d["early_stopping"] and d["steps"] > 0 for d in supervised_all["details"])  # the fit's own details
    assert rows(again, "linear_probe") != rows(result, "linear_probe")  # the run's own features: fitted


def test_force_or_other_settings_fit_the_baselines_again(two_runs, monkeypatch: pytest.MonkeyPatch) -> None:
    _, second, result = two_runs
    calls = counting_fits(monkeypatch)
    forced = evaluate_run(second, BUDGETS, REPEATS, methods=METHODS, supervised=FAST_SUPERVISED, force=True)
    assert len(calls) == len(BUDGETS) * REPEATS
    assert all("kept_fit" not in d for r in forced["results"] for d in r["details"])
    # Made again on the same machine, the same fits give the same figures (or within a test image or two).
    for made, kept in zip(rows(forced, "supervised"), rows(result, "supervised"), strict=True):
        assert made == pytest.approx(kept, abs=0.01)
    calls.clear()
    evaluate_run(second, BUDGETS, REPEATS, methods=("supervised",), supervised={**FAST_SUPERVISED, "max_steps": 20})
    assert len(calls) == len(BUDGETS) * REPEATS, "other settings are other fits"


def test_a_damaged_kept_fit_is_made_again(two_runs, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second, _ = two_runs
    for path in (first.path.parent / FOLDER).glob("*.npz"):
        path.write_bytes(b"not a zip")
    calls = counting_fits(monkeypatch)
    result = evaluate_run(second, BUDGETS, REPEATS, methods=("supervised",), supervised=FAST_SUPERVISED, force=False)
    assert len(calls) == len(BUDGETS) * REPEATS
    assert all(0.0 <= a <= 1.0 for r in result["results"] for a in r["accuracies"])
    readable = [p for p in (first.path.parent / FOLDER).glob("*.npz") if p.read_bytes()[:2] == b"PK"]
    assert len(readable) >= len(BUDGETS) * REPEATS  # replaced by the new fits


def test_kept_fits_are_not_listed_as_runs(two_runs, tmp_path: Path) -> None:
    first, _, _ = two_runs
    assert (first.path.parent / FOLDER).is_dir()
    assert all(not r.path.name.startswith(".") for r in RunStore(first.path.parent).list())


def test_the_evaluate_page_says_which_fits_were_read_back(two_runs) -> None:
    from ui.evaluate_results import protocol_paragraph

    first, second, result = two_runs
    assert "read back" not in protocol_paragraph(result)  # the first evaluation made its fits
    again = evaluate_run(second, BUDGETS, REPEATS, methods=("supervised", "raw_pixels"), supervised=FAST_SUPERVISED)
    kept = kept_count(again)
    assert kept > 0 and f"{kept} baseline fits were read back" in protocol_paragraph(again)


def test_the_kept_fits_are_a_bounded_cache_that_evicts_the_least_recently_used(tmp_path: Path) -> None:
    fits = BaselineFits(tmp_path, max_kept=3)
    for i, key in enumerate("abc"):
        fits.save(key, np.full(5, i), {"fit": i})
        os.utime(fits.folder / f"{key}.npz", (1000.0 + i, 1000.0 + i))  # a, b, c: oldest first
    loaded = fits.load("a")  # read back: used now, so kept over b and c
    assert loaded is not None and loaded[0].tolist() == [0] * 5 and loaded[1] == {"fit": 0}
    fits.save("d", np.full(5, 3), {"fit": 3})
    assert sorted(p.stem for p in fits.folder.glob("*.npz")) == ["a", "c", "d"]
    assert fits.load("b") is None  # evicted: that fit is simply made again
    fits.save("e", np.full(5, 4), {"fit": 4})
    assert sorted(p.stem for p in fits.folder.glob("*.npz")) == ["a", "d", "e"]


def test_networks_trained_in_another_precision_are_other_fits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ui.evaluate_results import protocol_paragraph

    store = RunStore(tmp_path)  # a store of its own: no fits kept yet, in either precision
    first, second = trained(store, "autoencoder"), trained(store, "rotation")
    monkeypatch.setattr("sslcore.evaluation.protocol.trains_in_bf16", lambda *args: False)  # as on CPUs
    before = evaluate_run(first, BUDGETS, REPEATS, methods=("supervised", "raw_pixels"), supervised=FAST_SUPERVISED)
    assert before["environment"]["network_precision"] == "fp32" and "bf16" not in protocol_paragraph(before)
    # As on a GPU with bf16, where the supervised networks train in bf16 autocast:
    monkeypatch.setattr("sslcore.evaluation.protocol.trains_in_bf16", lambda *args: True)
    calls = counting_fits(monkeypatch)
    result = evaluate_run(second, BUDGETS, REPEATS, methods=("supervised", "raw_pixels"), supervised=FAST_SUPERVISED)
    assert len(calls) == len(BUDGETS) * REPEATS, "an fp32 network's fit is not read back as a bf16 one"
    raw = [d for r in result["results"] if r["method"] == "raw_pixels" for d in r["details"]]
    assert all("kept_fit" in d for d in raw)  # logistic regression has no bf16: still the same fits
    assert result["environment"]["network_precision"] == "bf16"
    assert "in bf16 autocast" in protocol_paragraph(result)
