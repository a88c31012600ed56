"""The dashboard's main journey in a real browser: quick demo, live loss curve (zoom kept), reload, a
second tab, other pages, Stop, polling that ends with the run; then Resume from the Runs page, and, once
the run has finished, its reconstructions/views, its embedding map and a small evaluation. A second journey
brings the user's own images: a zip of coloured pictures in class folders, uploaded on the Data page,
previewed and stored, trained on for one epoch, and seen on an embedding map whose tooltips name the files.

Chromium (headless, through playwright) against `streamlit run serve.py` on a free localhost port. The run
trains in a real worker process, as does the evaluation; the journey takes a few minutes on 2 cores. All along,
the browser logs no console error and fetches nothing from outside the app's server (every tab is watched).
"""
from __future__ import annotations

import csv
import io
import re
import time
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import Page, expect
except ImportError:  # the `chromium` fixture then skips the test with the reason (and fails it in CI)
    PlaywrightError = Exception

from sslcore.runs import RunStore
from tests.e2e.conftest import AppServer, BrowserWatch

pytestmark = pytest.mark.e2e

FIRST_POINT_TIMEOUT = 120.0  # worker start (imports torch) + data + the untrained epoch-0 evaluation
UPDATE_TIMEOUT = 60.0
# These bound a journey, not a speed (the benchmarks measure speed): generous, because on a shared machine at
# load 10+ the quick demo's 5 epochs next to the browser and the app ran past 240 s (sessions 5 and 6).
RUN_END_TIMEOUT = 420.0  # the rest of the quick demo's 5 epochs, next to the browser and the app
EVAL_TIMEOUT = 300.0  # budgets 1 and 4, one repeat: features, probes and a small supervised baseline
# The live charts live in a same-origin iframe (the live-charts component): read its plotly div directly.
LOSS_POINTS_JS = """() => {
  const frame = document.querySelector('iframe[src*="live_charts"]');
  const chart = frame && frame.contentDocument && frame.contentDocument.getElementById('chart-loss');
  return chart && chart.data ? chart.data[0].x.length : 0;
}"""


# The loss chart itself is scrolled to the middle of the window (not its frame: the frame holds every chart and
# is taller than the window, so centring it can leave the loss chart, its first, above the top).
LOSS_PLOT_AREA_JS = """() => {
  const frame = document.querySelector('iframe[src*="live_charts"]');
  frame.contentDocument.getElementById('chart-loss').scrollIntoView({block: 'center'});
  const outer = frame.getBoundingClientRect();
  const inner = frame.contentDocument.querySelector('#chart-loss .nsewdrag').getBoundingClientRect();
  return {x: outer.x + inner.x, y: outer.y + inner.y, width: inner.width, height: inner.height};
}"""
LOSS_X_RANGE_JS = """() => document.querySelector('iframe[src*="live_charts"]').contentDocument
  .getElementById('chart-loss')._fullLayout.xaxis.range"""
LOSS_Y_TYPE_JS = """() => document.querySelector('iframe[src*="live_charts"]').contentDocument
  .getElementById('chart-loss')._fullLayout.yaxis.type"""


def loss_points(page: Page) -> int:
    """Points on the live loss chart; 0 before it exists."""
    try:
        return int(page.evaluate(LOSS_POINTS_JS))
    except PlaywrightError:  # the page is being replaced (reload, navigation)
        return 0


def wait_for_loss_updates(page: Page, updates: int, first_timeout: float = FIRST_POINT_TIMEOUT) -> list[int]:
    """Point counts seen: the first non-empty one, then ``updates`` larger ones (the chart redrawn live)."""
    seen: list[int] = []
    deadline = time.monotonic() + first_timeout
    while len(seen) < updates + 1:
        if time.monotonic() > deadline:
            raise AssertionError(f"the loss chart showed point counts {seen}; wanted {updates} updates")
        count = loss_points(page)
        if count and (not seen or count > seen[-1]):
            seen.append(count)
            deadline = time.monotonic() + UPDATE_TIMEOUT
        time.sleep(0.25)
    return seen


def drag_zoom_loss_chart(page: Page) -> list[float]:
    """Box-zoom into the middle of the loss chart with the mouse, as a person would; the new x range."""
    area = page.evaluate(LOSS_PLOT_AREA_JS)
    x, y = area["x"] + 0.25 * area["width"], area["y"] + 0.2 * area["height"]
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 0.4 * area["width"], y + 0.6 * area["height"], steps=8)
    page.mouse.up()
    return page.evaluate(LOSS_X_RANGE_JS)


def run_id_in(url: str) -> str:
    return parse_qs(urlparse(url).query)["run"][0]


def test_quick_demo_trains_live_survives_reload_and_stops(app: AppServer, chromium) -> None:  # noqa: ANN001
    context = chromium.new_context(viewport={"width": 1500, "height": 1300})
    watches: list[BrowserWatch] = []
    context.on("page", lambda new_page: watches.append(BrowserWatch(new_page, app.url)))
    page = context.new_page()
    requests_sent: list[float] = []  # browser -> server messages; a live panel sends one rerun request per poll
    page.on("websocket", lambda ws: ws.on("framesent", lambda _: requests_sent.append(time.monotonic())))
    page.goto(app.url)
    page.get_by_role("button", name="Quick demo").click()

    page.wait_for_url(re.compile(r"/train\?run="), timeout=60_000)
    run_id = run_id_in(page.url)
    run = RunStore(app.runs_dir).get(run_id)
    assert run.status()["name"] == "Quick demo"
    counts = wait_for_loss_updates(page, updates=2)
    assert counts[-1] > counts[0]

    # The user's zoom survives the next redraws with new points (plotly uirevision, chart updated in place).
    zoomed = drag_zoom_loss_chart(page)
    assert zoomed[1] - zoomed[0] < 0.6 * counts[-1]
    wait_for_loss_updates(page, updates=1)
    assert page.evaluate(LOSS_X_RANGE_JS) == pytest.approx(zoomed)

    # A reload (or the same URL in a second tab) finds the run again, still updating: state is on disk.
    page.reload()
    assert run_id_in(page.url) == run_id
    expect(page.get_by_text(run_id).first).to_be_visible(timeout=60_000)
    wait_for_loss_updates(page, updates=1)
    second_tab = context.new_page()
    second_tab.goto(page.url)
    expect(second_tab.get_by_role("heading", name="Quick demo")).to_be_visible(timeout=60_000)
    assert wait_for_loss_updates(second_tab, updates=1)
    second_tab.close()

    # Other pages open while it trains, and the Train page comes back to the same run.
    sidebar = page.get_by_test_id("stSidebarNavItems")
    sidebar.get_by_role("link", name="Home").click()
    expect(page.get_by_role("heading", name="Recent runs")).to_be_visible(timeout=30_000)
    sidebar.get_by_role("link", name="Train").click()  # the sidebar link carries no ?run=
    page.wait_for_url(re.compile(rf"/train\?run={run_id}"), timeout=30_000)

    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_text("cancelled", exact=True)).to_be_visible(timeout=90_000)
    assert run.state == "cancelled"
    assert (run.checkpoint_dir / "last.pt").exists()  # the last checkpoint is kept
    expect(page.get_by_role("button", name="Resume from the last checkpoint")).to_be_visible()

    # Polling stopped with the run: the browser asks the server for nothing more.
    page.wait_for_timeout(3_000)  # the one full rerun that drops the timer
    before = len(requests_sent)
    page.wait_for_timeout(6_000)  # (playwright delivers websocket events only while it waits)
    assert len(requests_sent) == before

    resume_on_runs_page(page, app, run)
    switch_the_loss_chart_to_a_log_scale(page)
    download_the_metrics_as_csv(page, run)
    see_reconstructions_or_views(page, run_id)
    see_embedding_maps_and_hover_a_point(page, run_id)
    evaluate_from_the_page(page, app, run)
    context.close()
    assert len(watches) == 2  # this tab and the second one
    for watch in watches:
        watch.assert_clean()


def main_links(page: Page):  # noqa: ANN201 - a playwright Locator
    """The page's own content, where links carry ``?run=`` (the sidebar's links to the same pages do not)."""
    return page.get_by_test_id("stMainBlockContainer")


def resume_on_runs_page(page: Page, app: AppServer, run) -> None:  # noqa: ANN001 - a sslcore Run
    """Resume the cancelled run from the Runs page: it finishes in the same folder, with one log line per epoch."""
    page.goto(f"{app.url}/runs?run={run.id}")  # a ?run= arriving from elsewhere starts out chosen
    page.get_by_role("button", name="Resume", exact=True).click()
    page.wait_for_url(re.compile(rf"/train\?run={run.id}"), timeout=30_000)
    expect(page.get_by_text("completed", exact=True).first).to_be_visible(timeout=RUN_END_TIMEOUT * 1000)
    assert run.state == "completed"
    epochs = [record["epoch"] for record in run.metrics("epoch")]
    assert epochs == list(range(run.config().train.epochs + 1))  # epoch 0 = untrained; no gap, no repeat


def switch_the_loss_chart_to_a_log_scale(page: Page) -> None:
    """The toggle above the finished run's loss chart redraws that chart on a log y axis."""
    assert page.evaluate(LOSS_Y_TYPE_JS) == "linear"
    page.get_by_text("Log scale", exact=True).click()
    page.wait_for_function(f"({LOSS_Y_TYPE_JS})() === 'log'", timeout=30_000)


def download_the_metrics_as_csv(page: Page, run) -> None:  # noqa: ANN001 - a sslcore Run
    """The Train page's CSV holds every step and epoch record the run logged, one row each."""
    with page.expect_download(timeout=30_000) as download:
        page.get_by_role("button", name="Metrics (CSV)").click()
    assert download.value.suggested_filename == f"{run.id}-metrics.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    records = run.metrics()
    assert [(r["kind"], int(r["step"])) for r in rows] == [(r["kind"], r["step"]) for r in records]
    last_step = [r for r in records if r["kind"] == "step"][-1]
    assert float([r for r in rows if r["kind"] == "step"][-1]["loss"]) == pytest.approx(last_step["loss"])


def see_reconstructions_or_views(page: Page, run_id: str) -> None:
    """From the finished run's Train page to its snapshot grid, drawn as real images."""
    main_links(page).get_by_role("link", name="Reconstructions & views").click()
    page.wait_for_url(re.compile(rf"/views\?run={run_id}"), timeout=30_000)
    expect(page.get_by_text("Epoch", exact=True).first).to_be_visible(timeout=60_000)
    pictures = page.get_by_test_id("stImage").locator("img")
    expect(pictures.first).to_be_visible(timeout=30_000)
    assert pictures.count() >= 8  # train.snapshot_images of the quick demo
    assert page.evaluate("(img) => img.naturalWidth", pictures.first.element_handle()) > 0


# The embedding maps live in the embedding-map component's iframe: one plotly <div> per map.
MAPS_JS = """() => {
  const frame = document.querySelector('iframe[src*="embedding_map"]');
  const divs = frame && frame.contentDocument ? [...frame.contentDocument.querySelectorAll('#maps > div')] : [];
  return divs.filter(d => d.data).map(d => ({
    types: [...new Set(d.data.map(t => t.type))],
    points: d.data.filter(t => t.marker.symbol !== 'circle-open')  // class traces, not the rings of a query
                  .reduce((n, t) => n + t.x.length, 0)}));
}"""
# Where point k of the first map is on the page (k wraps around its trace), from plotly's own axis transforms.
POINT_JS = """(k) => {
  const frame = document.querySelector('iframe[src*="embedding_map"]');
  const div = frame.contentDocument.querySelector('#maps > div');
  div.scrollIntoView({block: 'center'});
  const trace = div.data[0], xa = div._fullLayout.xaxis, ya = div._fullLayout.yaxis, i = k % trace.x.length;
  const box = div.getBoundingClientRect(), outer = frame.getBoundingClientRect();
  return {x: outer.x + box.x + xa._offset + xa.l2p(trace.x[i]), y: outer.y + box.y + ya._offset + ya.l2p(trace.y[i])};
}"""
TOOLTIP_JS = """() => {
  const doc = document.querySelector('iframe[src*="embedding_map"]').contentDocument;
  const tip = doc.getElementById('tip');
  return {shown: tip.style.display === 'block', src: doc.getElementById('tip-img').src,
          text: doc.getElementById('tip-text').textContent};
}"""


def settled_point(page: Page, k: int, timeout: float = 30.0) -> dict[str, float]:
    """Where point ``k`` of the first map is on screen, once it stops moving (figures fill in after the maps)."""
    deadline = time.monotonic() + timeout
    last = page.evaluate(POINT_JS, k)
    while True:
        page.wait_for_timeout(700)
        now = page.evaluate(POINT_JS, k)
        if now == last or time.monotonic() > deadline:
            return now
        last = now


def hover_until_tooltip(page: Page, timeout: float = 60.0) -> dict:
    """Hover points of the first map, as a person would, until one shows the image tooltip; the tooltip.

    One hover can miss on a loaded machine: the page can still grow (and the map move) between reading a
    point's position and the mouse arriving, and a rerun that redraws the map unhovers it. So each try reads
    the position afresh, comes in from outside the point, and the next try takes the next point.
    """
    deadline = time.monotonic() + timeout
    tries = 0
    while time.monotonic() < deadline:
        point = settled_point(page, tries)
        page.mouse.move(point["x"] - 30, point["y"] - 30)
        page.mouse.move(point["x"], point["y"], steps=5)
        shown_by = time.monotonic() + 4
        while time.monotonic() < shown_by:
            if (tip := page.evaluate(TOOLTIP_JS))["shown"]:
                return tip
            page.wait_for_timeout(200)
        tries += 1
    raise AssertionError(f"hovering {tries} points of the map showed no thumbnail")


def see_embedding_maps_and_hover_a_point(page: Page, run_id: str) -> None:
    """The Embeddings page draws the feature and raw-pixel maps with WebGL; hovering a point shows its image."""
    main_links(page).get_by_role("link", name="Embeddings").click()
    page.wait_for_url(re.compile(rf"/embeddings\?run={run_id}"), timeout=30_000)
    deadline = time.monotonic() + 90
    while len(maps := page.evaluate(MAPS_JS)) < 2:
        assert time.monotonic() < deadline, f"the embedding maps did not render: {maps}"
        page.wait_for_timeout(500)
    assert all(m["types"] == ["scattergl"] and m["points"] == 1000 for m in maps), maps  # mnist5k's test split
    tip = hover_until_tooltip(page)
    assert tip["src"].startswith("data:image/png;base64,") and " #" in tip["text"]


def evaluate_from_the_page(page: Page, app: AppServer, run) -> None:  # noqa: ANN001 - a sslcore Run
    """A small evaluation started from the Evaluate page runs as a job; its label-efficiency chart renders."""
    page.goto(f"{app.url}/evaluate?run={run.id}")
    page.get_by_role("textbox", name="Label budgets (labels per class)").fill("1, 4")
    page.get_by_role("spinbutton", name="Repeats").fill("1")
    page.get_by_role("button", name="Evaluate", exact=True).click()
    # The heading, not the chart of the same title: both appear together once eval.json is written.
    expect(page.get_by_role("heading", name="Label efficiency")).to_be_visible(timeout=EVAL_TIMEOUT * 1000)
    chart = page.get_by_test_id("stPlotlyChart")
    expect(chart.first.locator(".scatterlayer .trace").first).to_be_attached(timeout=30_000)
    expect(page.get_by_text(re.compile(r"With \d+ labels? per class")).first).to_be_visible()
    stored = run.eval_results()
    assert stored is not None and {r["labels_per_class"] for r in stored["results"]} == {1, 4}


OWN_COLOURS = {"red": (220, 30, 30), "green": (30, 190, 40), "blue": (30, 40, 220)}


def coloured_zip(path: Path, per_class: int = 12) -> Path:
    """A zip of small coloured PNGs (sizes and shades vary) in one folder per colour: the ImageFolder layout."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as zf:
        for name, colour in OWN_COLOURS.items():
            for i in range(per_class):
                w, h = (int(v) for v in rng.integers(28, 60, size=2))
                pixels = np.clip(rng.normal(colour, 25, (h, w, 3)), 0, 255).astype(np.uint8)
                buf = io.BytesIO()
                Image.fromarray(pixels).save(buf, "PNG")
                zf.writestr(f"colours/{name}/{name}_{i:02d}.png", buf.getvalue())
    return path


def test_own_images_upload_store_train_and_map(app: AppServer, chromium, tmp_path: Path) -> None:  # noqa: ANN001
    context = chromium.new_context(viewport={"width": 1500, "height": 1300})
    page = context.new_page()
    watch = BrowserWatch(page, app.url)
    page.goto(f"{app.url}/data")
    page.locator("input[type=file]").first.set_input_files(str(coloured_zip(tmp_path / "colours.zip")))
    expect(page.get_by_text("colours.zip")).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_text("36 colour 32×32 images in 3 classes")).to_be_visible(timeout=FIRST_POINT_TIMEOUT * 1000)
    expect(page.get_by_role("textbox", name="Name")).to_have_value("colours")
    page.get_by_role("button", name="Store").click()
    expect(page.get_by_text("Stored dataset colours")).to_be_visible(timeout=30_000)

    page.get_by_test_id("stSidebarNavItems").get_by_role("link", name="Train").click()
    page.get_by_test_id("stSelectbox").filter(has_text="Dataset").click()
    page.get_by_role("option", name=re.compile(r"^colours")).click()
    expect(page.get_by_text("3 classes", exact=False).first).to_be_visible(timeout=60_000)
    epochs = page.get_by_role("spinbutton", name="epochs", exact=True)
    epochs.fill("1")
    epochs.press("Tab")
    page.wait_for_timeout(1_500)  # the rerun that takes the new value
    page.get_by_role("button", name="Train", exact=True).click()
    page.wait_for_url(re.compile(r"/train\?run="), timeout=60_000)
    run = RunStore(app.runs_dir).get(run_id_in(page.url))
    assert run.config().data.dataset == "colours" and run.config().train.epochs == 1
    expect(page.get_by_text("completed", exact=True).first).to_be_visible(timeout=RUN_END_TIMEOUT * 1000)
    assert run.status()["dataset"]["content_hash"].startswith("sha256:")
    # A run this short can end between two polls: the page then makes one full rerun that drops the timer,
    # and a click during it is lost (seen once in CI). Let that rerun finish first.
    page.wait_for_timeout(3_000)

    main_links(page).get_by_role("link", name="Embeddings").click()
    page.wait_for_url(re.compile(rf"/embeddings\?run={run.id}"), timeout=30_000)
    deadline = time.monotonic() + 90
    while len(maps := page.evaluate(MAPS_JS)) < 2:
        assert time.monotonic() < deadline, f"the embedding maps did not render: {maps}"
        page.wait_for_timeout(500)
    assert all(m["points"] == 7 for m in maps), maps  # the test split: 20% of 36, stratified
    tip = hover_until_tooltip(page)
    assert re.search(r"(red|green|blue)/\w+\.png", tip["text"]), tip["text"]  # the image's own file name
    context.close()
    watch.assert_clean()
