"""AppTest: the collapse diagnostics on the Train page (charts beside the loss, a plain warning when a run
collapses) and overlaid on Runs → Compare. The runs are folders with hand-written records, so the
collapse is exact and the test does not depend on a method's numerics."""
from __future__ import annotations

import json
import time

import pytest

from sslcore.runs import Run
from sslcore.runs.process_manager import JobManager
from tests.app.conftest import live_charts, open_page
from tests.conftest import tiny_config

TRAIN = "app_pages/train.py"
RUNS = "app_pages/runs.py"
#: (eff_rank, emb_std) per epoch 0-3, for D = 512: a healthy SimCLR-like run and one that folds up.
HEALTHY = [(105.0, 0.0116), (98.0, 0.0165), (102.0, 0.0203), (103.0, 0.0214)]
COLLAPSING = [(105.0, 0.0116), (60.0, 0.006), (9.0, 0.0011), (2.1, 0.0003)]


def finished_run(jobs: JobManager, name: str, figures: list[tuple[float, float]], two_views: bool = True) -> Run:
    """A completed run folder whose metrics.jsonl holds steps and the given per-epoch figures."""
    run = jobs.store.create(tiny_config(**{"train.epochs": len(figures) - 1}), name=name)
    now = time.time()
    records: list[dict] = []
    for epoch, (rank, std) in enumerate(figures):
        if epoch:
            records += [{"kind": "step", "step": 10 * epoch - k, "epoch": epoch - 1, "loss": 3.0 / epoch, "lr": 1e-3,
                         "time": now + epoch - 0.1 * k} for k in (1, 0)]
        record = {"kind": "epoch", "epoch": epoch, "step": 10 * epoch, "time": now + epoch, "elapsed": epoch,
                  "knn_acc": 0.5, "eff_rank": rank, "emb_std": std, "emb_dim": 512}
        if two_views:  # two-view methods also have a projection head
            record.update(alignment=0.3, uniformity=-1.2, head_rank=40.0, head_std=0.08, head_dim=128)
        records.append(record)
    run.append_metrics(*records)
    run.update_status(state="completed", started=now, ended=now + len(figures))
    return run



def test_a_collapsing_run_is_called_out_in_plain_words(jobs: JobManager) -> None:
    run = finished_run(jobs, "folding", COLLAPSING)
    at = open_page(TRAIN, run.id)
    assert not at.exception
    [warning] = [w.value for w in at.warning if "collapsing" in w.value]
    assert warning.startswith("This run is collapsing: at epoch 3")
    assert "Effective rank 2.1 of 512" in warning and "predictor" in warning
    charts = live_charts(at)
    rank = charts["eff_rank"]["data"][0]
    assert rank["name"] == "features" and rank["y"] == [r for r, _ in COLLAPSING]
    subtitle = charts["eff_rank"]["layout"]["title"]["subtitle"]["text"]
    assert subtitle == "of 512 (features), 128 (head)"
    spread = charts["emb_std"]["data"][0]  # std * sqrt(D): 1 = evenly spread, whatever the dimension
    assert spread["y"] == pytest.approx([s * 512 ** 0.5 for _, s in COLLAPSING])
    assert charts["emb_std"]["layout"]["shapes"][0]["y0"] == 1.0


def test_a_healthy_run_gets_no_warning_and_shows_its_two_view_figures(jobs: JobManager) -> None:
    run = finished_run(jobs, "healthy", HEALTHY)
    at = open_page(TRAIN, run.id)
    assert not at.exception
    assert not [w for w in at.warning if "collapsing" in w.value]
    charts = live_charts(at)
    assert list(charts)[:2] == ["loss", "lr"]
    assert {"eff_rank", "emb_std", "align_uniform"} <= set(charts)
    assert [t["name"] for t in charts["align_uniform"]["data"]] == ["alignment", "uniformity"]
    assert [t["name"] for t in charts["eff_rank"]["data"]] == ["features", "head output"]
    assert charts["emb_std"]["data"][1]["y"] == pytest.approx([0.08 * 128 ** 0.5] * len(HEALTHY))


def test_a_single_view_run_has_no_alignment_chart(jobs: JobManager) -> None:
    at = open_page(TRAIN, finished_run(jobs, "single view", HEALTHY, two_views=False).id)
    assert not at.exception
    assert {"eff_rank", "emb_std"} <= set(live_charts(at)) and "align_uniform" not in live_charts(at)


def test_compare_overlays_the_collapse_figures_of_the_chosen_runs(jobs: JobManager) -> None:
    healthy, folding = finished_run(jobs, "healthy", HEALTHY), finished_run(jobs, "folding", COLLAPSING)
    at = open_page(RUNS)
    at.multiselect(key="runs.chosen").set_value([healthy.id, folding.id]).run()
    assert not at.exception
    loss, collapse = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert "effective rank" in collapse["layout"]["title"]["text"]
    traces = [(t["name"], t.get("yaxis", "y"), t["y"]) for t in collapse["data"]]
    assert [(name, axis) for name, axis, _ in traces] == [("healthy", "y"), ("healthy", "y2"), ("folding", "y"),
                                                          ("folding", "y2")]
    assert traces[2][2] == [r for r, _ in COLLAPSING]
    assert traces[3][2] == pytest.approx([s * 512 ** 0.5 for _, s in COLLAPSING])
