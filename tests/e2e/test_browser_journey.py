"""The dashboard's main journey in a real browser: quick demo, live loss curve (zoom kept), reload, a
second tab, other pages, Stop, and polling that ends with the run.

Chromium (headless, through playwright) against `streamlit run app.py` on a free localhost port. The run
trains in a real worker process; the test stops it, so it takes about a minute on 2 cores.
"""
from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlparse

import pytest

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import Page, expect
except ImportError:  # the `chromium` fixture then skips the test with the reason (and fails it in CI)
    PlaywrightError = Exception

from sslcore.runs import RunStore
from tests.e2e.conftest import AppServer

pytestmark = pytest.mark.e2e

FIRST_POINT_TIMEOUT = 120.0  # worker start (imports torch) + data + the untrained epoch-0 evaluation
UPDATE_TIMEOUT = 60.0
# The live charts live in a same-origin iframe (the live-charts component): read its plotly div directly.
LOSS_POINTS_JS = """() => {
  const frame = document.querySelector('iframe[src*="live_charts"]');
  const chart = frame && frame.contentDocument && frame.contentDocument.getElementById('chart-loss');
  return chart && chart.data ? chart.data[0].x.length : 0;
}"""


LOSS_PLOT_AREA_JS = """() => {
  const frame = document.querySelector('iframe[src*="live_charts"]');
  frame.scrollIntoView({block: 'center'});
  const outer = frame.getBoundingClientRect();
  const inner = frame.contentDocument.querySelector('#chart-loss .nsewdrag').getBoundingClientRect();
  return {x: outer.x + inner.x, y: outer.y + inner.y, width: inner.width, height: inner.height};
}"""
LOSS_X_RANGE_JS = """() => document.querySelector('iframe[src*="live_charts"]').contentDocument
  .getElementById('chart-loss')._fullLayout.xaxis.range"""


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
    context.close()
