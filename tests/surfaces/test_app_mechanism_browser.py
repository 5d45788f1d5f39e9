"""The page's market-mechanism drop-down in the browser: choose the double auction, Reset builds
a model that runs it, a step trades on it (`gridledger viz` offline, Debian's chromium)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STEP_TIMEOUT_MS = 120_000


def test_switch_to_the_double_auction_in_the_browser(viz_server: ServerProcess, browser) -> None:
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(viz_server.url)
    step = page.get_by_role("button", name="Step")
    step.wait_for(timeout=STEP_TIMEOUT_MS)
    expect(page.locator(".gl-mechanism")).to_have_text("paper", timeout=STEP_TIMEOUT_MS)
    page.locator(".v-input").filter(has_text="Market mechanism").locator(".v-select__slot").click()
    page.locator(".v-menu__content .v-list-item").filter(has_text="double_auction").click()
    page.wait_for_timeout(1000)  # the value travels to the server
    page.get_by_role("button", name="Reset").click()
    expect(page.locator(".gl-mechanism")).to_have_text("double_auction", timeout=STEP_TIMEOUT_MS)
    expect(page.get_by_text("Time: 0.0")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    for k in (1, 2):
        step.click()
        expect(page.get_by_text(f"Time: {k}.0")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    assert page.locator(".gl-local").inner_text() != "0 kWh"  # prosumers sold in the auction
    page.close()
    assert not errors, "page errors:\n" + "\n".join(errors)
    assert "Traceback" not in viz_server.tail(), viz_server.tail()
