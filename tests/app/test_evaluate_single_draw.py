"""AppTest: an evaluation with one repeat shows its scores without a spread and no firm verdict."""
from __future__ import annotations

import json
from pathlib import Path

from sslcore.runs.files import write_json_atomic
from sslcore.runs.process_manager import JobManager
from tests.app.conftest import open_page
from tests.conftest import tiny_config


def one_repeat_results() -> dict:
    rows = [{"method": m, "labels_per_class": 4, "accuracies": [acc], "accuracy_mean": acc, "accuracy_std": 0.0,
             "seconds": [0.5], "indices_sha256": ["ab12"], "details": [{}]}
            for m, acc in (("linear_probe", 0.82), ("supervised", 0.51))]
    protocol = {"budgets": [4], "repeats": 1, "seed": 0, "methods": ["linear_probe", "supervised"],
                "train_size": 1438, "test_size": 359, "num_classes": 10, "subset_seeds": [0],
                "dataset": {"dataset": "digits"}}
    subset = {"labels_per_class": 4, "repeat": 0, "seed": 0, "size": 40, "indices_sha256": "ab12"}
    return {"results": rows, "protocol": protocol, "subsets": [subset]}


def test_one_repeat_shows_no_spread_and_says_the_verdict_is_one_draw(jobs: JobManager, tmp_path: Path) -> None:
    run = jobs.store.create(tiny_config())
    run.update_status(state="completed")
    write_json_atomic(run.path / "eval.json", one_repeat_results())

    at = open_page("app_pages/evaluate.py", run_id=run.id)
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert "on a single draw of labels" in text and "not a verdict" in text
    assert "beat training from scratch" not in text
    assert "no spread" in text  # the protocol paragraph
    [table] = at.dataframe
    cells = table.value.astype(str).to_numpy().ravel().tolist()
    assert "82.0" in cells and not any("±" in c for c in cells)
    [figure] = [json.loads(c.proto.spec) for c in at.get("plotly_chart")
                if "Label efficiency" in json.dumps(json.loads(c.proto.spec)["layout"].get("title", ""))]
    hover = [t for t in figure["data"] if t.get("hovertemplate")]
    assert hover and all(d == " (one repeat, no spread)" for t in hover for d in t["customdata"])
