"""The browser page end to end: `gridledger viz` offline, driven in Debian's chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .conftest import ServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STEP_TIMEOUT_MS = 120_000  # one market hour (OPF, two chains, settlement) on a busy CI core


def plot_images(page: Page) -> list[str]:
    """The src (PNG data) of every figure on the current tab."""
    imgs = page.locator(".vue-grid-item img")
    return [imgs.nth(i).get_attribute("src") or "" for i in range(imgs.count())]


def test_step_control_reset_in_the_browser(
    viz_server: ServerProcess, browser, artifacts_dir: Path
) -> None:
    failures: list[str] = []
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.on("requestfailed", lambda r: failures.append(f"failed {r.url}: {r.failure}"))
    page.on(
        "response",
        lambda r: failures.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None,
    )
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(viz_server.url)
    step = page.get_by_role("button", name="Step")
    step.wait_for(timeout=STEP_TIMEOUT_MS)
    expect(page.get_by_text("Time: 0.0")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    expect(page.locator(".gl-hours")).to_have_text(re.compile(r"^0 of \d+$"))
    prosumers_before = page.locator(".gl-prosumers").inner_text()
    page.locator(".vue-grid-item img").first.wait_for(timeout=STEP_TIMEOUT_MS)
    before = plot_images(page)
    assert len(before) >= 3, "feeder and time-series figures are drawn"

    for k in range(1, 4):
        step.click()
        expect(page.get_by_text(f"Time: {k}.0")).to_be_visible(timeout=STEP_TIMEOUT_MS)
        expect(page.locator(".gl-hours")).to_have_text(re.compile(rf"^{k} of \d+$"))
    after = plot_images(page)
    changed = sum(a != b for a, b in zip(before, after, strict=False))
    assert changed >= 3, f"only {changed} of {len(before)} figures changed after 3 steps"
    assert page.locator(".gl-gas").inner_text() != "0 / 0"

    # the market tab: SoC, reputation, gas
    page.get_by_role("tab", name="Page 1").click()
    for chart in ("soc", "reputation", "gas"):
        page.locator(f".gl-{chart}-chart img").wait_for(timeout=STEP_TIMEOUT_MS)
    expect(page.locator(".gl-totals")).to_have_count(0)  # page 0 is hidden
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts_dir / "viz_page_market.png"), full_page=True)
    page.get_by_role("tab", name="Page 0").click()

    # move the share-of-prosumers slider up (one click on its track, as a user does), then
    # Reset builds a new model with the new value
    control = page.locator(".v-input").filter(has_text="Share of prosumers")
    slider = control.get_by_role("slider")
    share_before = float(slider.get_attribute("aria-valuenow") or "nan")
    track = control.locator(".v-slider").bounding_box()
    assert track is not None
    page.mouse.click(track["x"] + 0.9 * track["width"], track["y"] + track["height"] / 2)
    page.wait_for_timeout(1000)  # the value travels to the server
    share_after = float(slider.get_attribute("aria-valuenow") or "nan")
    assert share_after >= share_before + 0.2
    page.get_by_role("button", name="Reset").click()
    expect(page.get_by_text("Time: 0.0")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    expect(page.locator(".gl-hours")).to_have_text(re.compile(r"^0 of \d+$"))
    expect(page.locator(".gl-share")).to_have_text(f"{share_after:.2f}")
    expect(page.locator(".gl-prosumers")).not_to_have_text(prosumers_before)
    n_before = int(prosumers_before.split("/")[0])
    n_after = int(page.locator(".gl-prosumers").inner_text().split("/")[0])
    assert n_after > n_before

    step.click()
    expect(page.get_by_text("Time: 1.0")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    page.screenshot(path=str(artifacts_dir / "viz_page.png"), full_page=True)
    page.close()

    assert not failures, "requests failed:\n" + "\n".join(failures)
    assert not errors, "page errors:\n" + "\n".join(errors)
    assert "Traceback" not in viz_server.tail(), viz_server.tail()
