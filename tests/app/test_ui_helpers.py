"""The dashboard's pure helpers: figure builders, image grids, form metadata, progress text, the chart component."""
from __future__ import annotations

import json
import math
import re
import string

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from sslcore.config import FieldSpec, TrainConfig, field_specs
from sslcore.data import load_dataset
from sslcore.engine.trainer import Trainer
from sslcore.tasks.build import build_task
from tests.conftest import tiny_config
from ui import charts
from ui.forms import describe_bounds, float_step, planned_lr
from ui.images import image_grid, upscale_factor
from ui.live import format_seconds, progress_text, where_trained
from ui.live_charts import PAGE, Chart, chart_args, component_dir
from ui.plain_text import escape_markdown
from ui.runs_compare import Curves, compare_figure

FIGURES = {
    "loss": lambda: charts.loss_figure([1, 2, 3], [3.0, 2.0, 2.5], revision="r"),
    "lr": lambda: charts.lr_figure([1, 2, 3], [1e-3, 2e-3, 1e-3], revision="r"),
    "epoch": lambda: charts.epoch_figure([0, 1, 2], [0.5, 0.7, 0.8], title="k-NN", y_title="acc", revision="r",
                                         percent=True),
    "schedule": lambda: charts.schedule_figure([0, 5, 9], [1e-4, 2e-3, 1e-5], steps_per_epoch=5),
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figures_are_valid_plotly_with_a_ui_revision_and_svg_traces(name: str) -> None:
    fig = FIGURES[name]()
    go.Figure(fig)  # plotly's own validation: raises on any unknown or badly typed property
    assert fig["layout"]["uirevision"]
    assert all(trace["type"] == "scatter" for trace in fig["data"])  # SVG, not scattergl
    json.dumps(fig, allow_nan=False)


def test_figures_name_their_fonts_in_valid_css_and_keep_titles_above_the_legend() -> None:
    # Each family quoted, or plain words none of which starts with a digit: one invalid name voids the list
    valid = re.compile(r'"[^"]+"|[A-Za-z][\w-]*( [A-Za-z][\w-]*)*')
    assert all(valid.fullmatch(name.strip()) for name in charts.FONT.split(",")), charts.FONT
    fig = charts.figure([charts.line([0, 1], [1.0, 2.0], name=n, color="#000", width=1) for n in ("a", "b")],
                        title="Spread", subtitle="1 = evenly spread", x_title="epoch", y_title="", revision="r",
                        height=charts.SMALL_HEIGHT)
    title = fig["layout"]["title"]
    # pinned to the figure's top and pushing the plot (and the legend above it) down: never drawn over each other
    assert (title["yref"], title["y"], title["yanchor"], title["automargin"]) == ("container", 1.0, "top", True)
    assert title["subtitle"]["text"] == "1 = evenly spread" and fig["layout"]["legend"]["yanchor"] == "bottom"
    go.Figure(fig)


@pytest.mark.parametrize("scores", [[0.95], [0.3, 0.99, 1.0], [0.1, 0.12]])
def test_accuracy_axes_run_from_0_to_100_percent_never_past(scores: list[float]) -> None:
    # With plotly's automatic range a single score near 95% drew an axis up to 150%.
    epochs = list(range(len(scores)))
    live = charts.epoch_figure(epochs, scores, title="k-NN", y_title="acc", revision="r", percent=True)
    assert live["layout"]["yaxis"]["range"] == [0.0, 1.0] and live["layout"]["yaxis"]["autorange"] is False
    assert live["data"][0]["cliponaxis"] is False  # a score of exactly 100% is drawn whole
    curves = Curves("a", [1, 2], [2.0, 1.0], [1.0, 2.0], epochs, [10 * e for e in epochs], [float(e) for e in epochs],
                    scores)
    compared = compare_figure([curves])
    assert compared["layout"]["yaxis2"]["range"] == [0.0, 1.0] and compared["layout"]["yaxis2"]["autorange"] is False
    go.Figure(live), go.Figure(compared)  # valid plotly


@pytest.mark.parametrize("text", ["![x](http://host/beacon.png)", "**bold** _it_ `code` ~~s~~",
                                  ":red[x] :material/home:", "$\\href{http://x}{y}$", "# heading",
                                  "<img src=x onerror=alert(1)>", "a\\b", "plain"])
def test_plain_text_escapes_every_markdown_character_and_reads_as_written(text: str) -> None:
    escaped = escape_markdown(text)
    assert re.sub(r"\\(.)", r"\1", escaped) == text  # backslash escapes undone: the text as written
    unescaped = re.sub(r"\\.", "", escaped)  # what is left outside escapes holds no Markdown syntax at all
    assert not set(unescaped) & set(string.punctuation)


def test_loss_figure_draws_raw_steps_faint_and_the_smoothed_trend_bold() -> None:
    raw, trend = charts.loss_figure(list(range(1, 101)), [float(100 - i) for i in range(100)], revision="run-1")["data"]
    assert raw["opacity"] < 0.5 and raw["line"]["width"] < trend["line"]["width"]
    assert raw["x"] == trend["x"] == list(range(1, 101))


def test_smoothing_is_debiased_and_skips_non_finite_values() -> None:
    assert charts.smooth([2.0, 2.0, 2.0], weight=0.9) == pytest.approx([2.0, 2.0, 2.0])  # no pull towards 0
    out = charts.smooth([1.0, math.nan, 3.0], weight=0.5)
    assert out[0] == out[1] == 1.0 and 1.0 < out[2] < 3.0
    with pytest.raises(ValueError):
        charts.smooth([1.0], weight=1.0)


def test_thinning_keeps_the_first_and_last_points_within_the_limit() -> None:
    xs = list(range(10_001))
    x, y = charts.thin(xs, [v * 2 for v in xs], max_points=1000)
    assert len(x) <= 1001 and x[0] == 0 and x[-1] == 10_000 and y[-1] == 20_000
    assert charts.thin([1, 2], [3, 4]) == ([1, 2], [3, 4])


def test_non_finite_values_become_gaps_and_are_never_sent_as_nan() -> None:
    fig = charts.lr_figure([1, 2, 3], [1e-3, math.inf, math.nan], revision="r")
    assert fig["data"][0]["y"] == [1e-3, None, None]
    with pytest.raises(ValueError):
        chart_args([Chart("bad", {"data": [{"type": "scatter", "y": [math.nan]}], "layout": {}})])


def test_image_grid_tiles_and_enlarges_without_blurring() -> None:
    grey = np.arange(6 * 8 * 8, dtype=np.uint8).reshape(6, 1, 8, 8)
    grid = image_grid(grey, columns=3, pad=2)
    factor = upscale_factor(8, 8)
    assert factor == 7 and grid.shape == (2 * 56 + 2, 3 * 56 + 2 * 2)  # 2 rows x 3 columns of 56 px tiles
    assert (grid[:factor, :factor] == grey[0, 0, 0, 0]).all()  # one source pixel -> a block of equal pixels
    colour = image_grid(np.random.default_rng(0).random((2, 3, 32, 32)), columns=5)
    assert colour.shape == (64, 2 * 64 + 2, 3) and colour.dtype == np.uint8
    with pytest.raises(ValueError):
        image_grid(np.zeros((1, 2, 4, 4), np.uint8), columns=1)


def spec(**kw) -> FieldSpec:  # noqa: ANN003
    base = dict(name="x", type=float, default=0.4, help="", min=0.0, max=1.0, choices=None, advanced=False)
    return FieldSpec(**{**base, **kw})


def test_form_steps_and_bounds_follow_the_field_metadata() -> None:
    assert float_step(spec(default=2e-3, min=1e-7, max=10.0)) == pytest.approx(1e-3)
    assert float_step(spec(default=0.4)) == pytest.approx(0.1)
    assert float_step(spec(default=0.0, min=0.0, max=1.0)) == pytest.approx(0.01)
    assert describe_bounds(spec()) == "between 0 and 1"
    assert describe_bounds(spec(max=None)) == ">= 0"
    assert describe_bounds(spec(type=str, choices=("a", "b"))) == "one of a, b"
    assert all(s.help for s in field_specs(TrainConfig))  # every generated widget has help text


def test_planned_learning_rate_is_the_one_the_trainer_uses() -> None:
    config = tiny_config(**{"train.epochs": 3, "train.warmup_epochs": 1.0})
    data = load_dataset("digits")
    trainer = Trainer.create(config, build_task(config, data), data, torch.device("cpu"))
    steps, lrs, per_epoch = planned_lr(config, len(data.train), points=50)
    assert per_epoch == trainer.state.steps_per_epoch and steps[-1] == trainer.state.total_steps - 1
    assert lrs == pytest.approx([trainer.learning_rate(s) for s in steps])


def test_the_run_header_names_its_device_or_its_processes() -> None:
    assert where_trained({"device": "cpu", "devices": ["cpu"]}) == "device cpu"
    assert where_trained({"device": "cuda"}) == "device cuda"  # runs from before distributed training
    two = {"device": "cuda:0", "devices": ["cuda:0 (NVIDIA H200)", "cuda:1 (NVIDIA H200)"]}
    assert where_trained(two) == "2 processes (cuda:0 (NVIDIA H200), cuda:1 (NVIDIA H200))"
    assert where_trained({**two, "precision": "bf16"}).endswith("(NVIDIA H200)) · bf16")
    assert where_trained({"device": "cpu", "precision": "fp32"}) == "device cpu · fp32"
    assert where_trained({"device": "cpu", "precision": "<b>x</b>"}) == "device cpu"  # only the two it writes


def test_progress_text_says_where_the_run_stands() -> None:
    heartbeat = {"phase": "training", "epoch": 1, "epochs": 5, "step": 20, "total_steps": 75,
                 "elapsed_s": 12.4, "eta_s": 65.0}
    fraction, text = progress_text("running", {"epochs": 5}, heartbeat)
    assert fraction == pytest.approx(20 / 75)
    assert text == "Epoch 2/5 · step 20/75 · 0:12 elapsed · ETA 1:05"
    assert progress_text("queued", {}, {})[1].startswith("Queued")
    assert progress_text("running", {}, {"phase": "starting"})[1].startswith("Starting")
    assert progress_text("cancelled", {"epochs": 5}, {**heartbeat, "phase": "cancelled"})[1] == \
        "Cancelled after 1/5 epochs, 20/75 steps, 0:12"
    assert progress_text("failed", {"epochs": 5}, {})[1] == "Failed before training started"
    assert (format_seconds(None), format_seconds(3725), format_seconds(65.4)) == ("?", "1:02:05", "1:05")
    assert format_seconds(float("nan")) == format_seconds(float("inf")) == "?"  # a damaged heartbeat: no crash


def test_chart_component_folder_holds_the_page_and_plotly() -> None:
    folder = component_dir()
    assert (folder / "index.html").read_bytes() == PAGE.read_bytes()
    assert (folder / "plotly.min.js").stat().st_size > 1_000_000
    assert component_dir() == folder  # built once
