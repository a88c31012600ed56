"""The Embeddings page's pure helpers: the WebGL map figure, the component's arguments, clicks, neighbour strips."""
from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from ui.embedding_data import job_ended
from ui.embedding_map import ECHO_TRACE, PAGE, MapPanel, component_dir, map_args, map_figure, new_click, rounded
from ui.embedding_neighbours import neighbour_strip

CLASSES = ("zero", "one", "two")


def points(n: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)).astype(np.float32), rng.permutation(np.arange(n) % 3)


def class_traces(figure: dict) -> list[dict]:
    return [t for t in figure["data"] if t["name"] in CLASSES]


def test_a_map_has_one_webgl_trace_per_class_named_after_it() -> None:
    coords, labels = points()
    figure = map_figure(coords, labels, CLASSES, title="features", revision="r")
    go.Figure(figure)  # plotly's own validation: raises on any unknown or badly typed property
    json.dumps(figure, allow_nan=False)
    assert [t["name"] for t in figure["data"]] == [*CLASSES, ECHO_TRACE]
    assert all(t["type"] == "scattergl" for t in figure["data"])
    assert figure["layout"]["uirevision"] == "r"


def test_every_point_appears_once_with_its_position_as_customdata() -> None:
    coords, labels = points()
    traces = class_traces(map_figure(coords, labels, CLASSES, title="t", revision="r"))
    positions = [p for t in traces for p in t["customdata"]]
    assert sorted(positions) == list(range(len(coords)))
    for label, trace in enumerate(traces):
        assert all(labels[p] == label for p in trace["customdata"])
        # each marker sits at its point's coordinates (to the rounding the JSON uses)
        np.testing.assert_allclose(trace["x"], coords[trace["customdata"], 0], atol=1e-2)
        np.testing.assert_allclose(trace["y"], coords[trace["customdata"], 1], atol=1e-2)


def test_the_query_and_its_neighbours_are_ringed_and_the_echo_trace_is_last_and_empty() -> None:
    coords, labels = points()
    figure = map_figure(coords, labels, CLASSES, title="t", revision="r", query=4, neighbours=[7, 9])
    ring, echo = figure["data"][-2:]
    assert ring["customdata"] == [4, 7, 9] and ring["x"][0] == pytest.approx(coords[4, 0], abs=1e-2)
    assert echo["name"] == ECHO_TRACE and echo["x"] == [] and echo["hoverinfo"] == "skip"


def test_labels_beyond_the_class_names_are_shown_as_numbers() -> None:
    coords, _ = points(4)
    figure = map_figure(coords, np.array([0, 5, 5, 0]), ("zero",), title="t", revision="r")
    assert [t["name"] for t in figure["data"][:2]] == ["zero", "5"]


def test_a_map_refuses_coordinates_that_do_not_match_the_labels() -> None:
    with pytest.raises(ValueError, match="one label per row"):
        map_figure(np.zeros((3, 2)), np.zeros(4, dtype=int), CLASSES, title="t", revision="r")


def test_rounding_keeps_a_thousandth_of_the_span() -> None:
    values = np.array([0.123456, -0.5, 0.49])
    assert rounded(values, 1.0) == [0.123, -0.5, 0.49]
    assert rounded(np.array([51.2345]), 120.0) == [51.2]
    assert rounded(np.array([1.23456789]), 0.0) == [1.234568]  # one point: no span to judge by


def test_component_args_are_strict_json_with_one_thumbnail_and_id_per_point() -> None:
    coords, labels = points(5)
    panel = MapPanel("features", map_figure(coords, labels, CLASSES, title="t", revision="r"))
    args = map_args([panel], ["data:image/png;base64,AA"] * 5, np.arange(10, 15), "test")
    assert json.loads(args["maps"][0]["figure"]) == panel.figure
    assert args["ids"] == [10, 11, 12, 13, 14] and all(type(i) is int for i in args["ids"])
    with pytest.raises(ValueError, match="one thumbnail per point"):
        map_args([panel], ["x"] * 4, np.arange(5), "test")
    named = map_args([panel], ["x"] * 5, np.arange(5), "test", names=[f"cats/{i}.jpg" for i in range(5)])
    assert named["names"][2] == "cats/2.jpg" and args["names"] == []
    with pytest.raises(ValueError, match="one file name per point"):
        map_args([panel], ["x"] * 5, np.arange(5), "test", names=["a.jpg"])
    broken = MapPanel("nan", {"data": [{"x": [float("nan")]}], "layout": {}})
    with pytest.raises(ValueError):
        map_args([broken], [], [], "test")


def test_component_folder_serves_the_map_page_and_plotly() -> None:
    folder = component_dir(PAGE, "embedding-map")
    assert (folder / "index.html").read_bytes() == PAGE.read_bytes()
    assert (folder / "plotly.min.js").stat().st_size > 1_000_000


@pytest.mark.parametrize("value, expected", [
    ({"position": 3, "id": 40, "nonce": 2}, 3),
    ({"position": 3, "id": 40, "nonce": 1}, None),  # the click already handled
    (None, None),
    ({"position": 10, "nonce": 2}, None),  # out of range
    ({"position": -1, "nonce": 2}, None),
    ({"position": "3", "nonce": 2}, None),
    ({"position": True, "nonce": 2}, None),
    ({"position": 3}, None),  # no nonce
    ([3], None),
])
def test_only_a_new_well_formed_click_chooses_a_point(value, expected) -> None:  # noqa: ANN001
    assert new_click(value, last_nonce=1, n_points=10) == expected


def test_neighbour_strip_shows_the_query_first_then_the_nearest_with_labels_and_distances() -> None:
    # Directions 0, 10, 30, 90 degrees: from point 0 the nearest are 1, then 2, then 3.
    angles = np.deg2rad([0.0, 10.0, 30.0, 90.0])
    features = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    images = np.arange(4, dtype=np.uint8).repeat(64).reshape(4, 1, 8, 8)
    labels = np.array([0, 0, 1, 2])
    strip = neighbour_strip(features, images, labels, CLASSES, query=0, k=2)
    assert strip.positions == [0, 1, 2]
    assert strip.captions == ["query: zero", f"zero · d={1 - np.cos(np.deg2rad(10)):.3f}",
                              f"one · d={1 - np.cos(np.deg2rad(30)):.3f}"]
    assert strip.same_label == 1
    assert [int(p.max()) for p in strip.pictures] == [0, 1, 2]  # each picture is its own image
    assert strip.pictures[0].shape[0] >= 56  # enlarged: an 8x8 digit is unreadable at its own size
    with pytest.raises(ValueError, match="query"):
        neighbour_strip(features, images, labels, CLASSES, query=4)


def test_the_page_is_redrawn_when_a_running_tsne_job_ends() -> None:
    assert job_ended(["running", "ready"], ["ready", "ready"])
    assert job_ended(["running", "running"], ["running", "failed"])
    assert not job_ended(["running", "ready"], ["running", "ready"])  # still computing
    assert not job_ended(["failed", "ready"], ["missing", "ready"])  # nothing was running: nothing to wait for


def test_neighbour_captions_show_class_names_as_written_not_as_markdown() -> None:
    # Image captions render Markdown; a class name is a person's folder name (an imported dataset).
    features = np.array([[1.0, 0.0], [0.9, 0.1]])
    images = np.zeros((2, 1, 8, 8), dtype=np.uint8)
    strip = neighbour_strip(features, images, np.array([0, 1]), ["![x](http://host/b.png)", "a*b*"], query=0, k=1)
    assert strip.captions[0] == r"query: \!\[x\]\(http\:\/\/host\/b\.png\)"
    assert strip.captions[1].startswith(r"a\*b\* · d=")
