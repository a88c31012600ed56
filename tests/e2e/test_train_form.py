"""The Train form in a real browser at 1280 and 1024 px: every number fits its box, and a value out of range is refused
with the engine's message in view, never replaced by the last valid one (the browser's own number box would
keep the old value and only colour the box red)."""
from __future__ import annotations

import re

import pytest

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the `chromium` fixture then skips the test with the reason (and fails it in CI)
    pass

from tests.e2e.conftest import AppServer, BrowserWatch

pytestmark = pytest.mark.e2e

FORM_TIMEOUT = 120_000  # ms: the first Train page run imports torch and loads a dataset
# Room for text in each number box (its width less padding and the +/- buttons), and the width of 8 digits.
ROOM_JS = """() => { const ctx = document.createElement('canvas').getContext('2d');
  return [...document.querySelectorAll('input[type=number]')].map(input => {
    const style = getComputedStyle(input); ctx.font = style.font;
    return {label: input.getAttribute('aria-label'),
            room: input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight),
            needed: ctx.measureText('0.000123').width}; }); }"""


def set_number(page: Page, label: str, value: str) -> None:
    box = page.get_by_role("spinbutton", name=label, exact=True)
    box.fill(value)
    box.press("Enter")


def test_the_form_shows_whole_numbers_and_refuses_values_out_of_range(app: AppServer, chromium) -> None:  # noqa: ANN001
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watch = BrowserWatch(page, app.url)
    page.goto(f"{app.url}/train")
    train = page.get_by_role("button", name="Train", exact=True)
    expect(train).to_be_enabled(timeout=FORM_TIMEOUT)
    for summary in page.locator("summary").all():  # the folded settings too
        summary.click()
    for width in (1280, 1024):
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(1_000)
        boxes = page.evaluate(ROOM_JS)
        assert len(boxes) >= 15
        narrow = [b for b in boxes if b["room"] < b["needed"]]
        assert not narrow, f"at {width} px, number boxes too narrow for 8 characters: {narrow}"

    set_number(page, "epochs", "0")
    expect(page.get_by_text("train.epochs = 0 is not allowed: expected an integer between 1 and 10000").first) \
        .to_be_visible(timeout=30_000)
    expect(train).to_be_disabled()
    set_number(page, "epochs", "3")
    set_number(page, "lr", "100")
    expect(page.get_by_text(re.compile(r"train\.lr = 100(\.0)? is not allowed")).first).to_be_visible(timeout=30_000)
    expect(train).to_be_disabled()
    set_number(page, "lr", "0.01")
    expect(train).to_be_enabled(timeout=30_000)
    assert page.get_by_role("spinbutton", name="epochs", exact=True).input_value() == "3"
    context.close()
    watch.assert_clean()
