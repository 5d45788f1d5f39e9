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
    imgs = page.locator(".gl-views img")
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
    expect(page.locator(".gl-hours")).to_have_text("0 of 6")  # from the --scenario file
    expect(page.locator(".gl-start")).to_have_text("10:00 / 6")
    expect(page.locator(".gl-areas")).to_have_text("2")
    prosumers_before = page.locator(".gl-prosumers").inner_text()
    page.locator(".gl-feeder img").wait_for(timeout=STEP_TIMEOUT_MS)
    # before the first step: no nan in the totals, a line instead of each empty chart, and a
    # line saying when trading begins (this scenario starts at 10:00, in the PV plants' window)
    for total in page.locator(".gl-totals").all():
        assert "nan" not in total.inner_text().lower(), total.inner_text()
    expect(page.locator(".gl-demand")).to_have_text("0 kWh")
    expect(page.locator(".gl-no-data")).to_have_count(2)  # grid import and price
    expect(page.locator(".gl-grid-chart")).to_contain_text("drawn after the first market hour")
    expect(page.locator(".gl-trading-start")).to_contain_text("Trading begins with the first step")
    before = plot_images(page)
    assert len(before) == 1, "only the feeder is drawn before the first step"
    page.screenshot(path=str(artifacts_dir / "viz_page_start.png"), full_page=True)
    # every slider shows its value (vuetify shows it only while dragging by default)
    share = page.locator(".v-input").filter(has_text="Share of prosumers")
    expect(share.locator(".v-slider__thumb-label")).to_be_visible()
    value = share.get_by_role("slider").get_attribute("aria-valuenow")
    expect(share.locator(".v-slider__thumb-label")).to_have_text(f"{float(value or 'nan'):g}")
    hours_control = page.locator(".v-input").filter(has_text="Market hours")
    expect(hours_control.locator(".v-slider__thumb-label")).to_have_text("6")
    step.click()
    expect(page.get_by_text("Time: 1.0")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    expect(page.locator(".gl-no-data")).to_have_count(0)
    before = plot_images(page)
    assert len(before) == 3, "feeder, grid import and price"

    for k in range(2, 4):
        step.click()
        expect(page.get_by_text(f"Time: {k}.0")).to_be_visible(timeout=STEP_TIMEOUT_MS)
        expect(page.locator(".gl-hours")).to_have_text(re.compile(rf"^{k} of \d+$"))
    after = plot_images(page)
    changed = sum(a != b for a, b in zip(before, after, strict=False))
    assert changed >= 3, f"only {changed} of {len(before)} figures changed after 2 more steps"
    assert page.locator(".gl-gas").inner_text() != "0 / 0"
    assert page.locator(".gl-local").inner_text() != "0 kWh"  # prosumers sold on LETB
    assert page.locator(".gl-renewable").inner_text() != "0 kWh"  # PV plants sold on RETB

    # the feeder coloured by voltage instead of DLMP
    feeder_img = page.locator(".gl-feeder img")
    dlmp_src = feeder_img.get_attribute("src")
    page.get_by_role("button", name="voltage").click()
    expect(feeder_img).not_to_have_attribute("src", dlmp_src or "", timeout=STEP_TIMEOUT_MS)

    # the market tab: SoC, reputation, gas
    page.get_by_role("tab", name="Batteries, reputation and gas").click()
    for chart in ("soc", "reputation", "gas"):
        page.locator(f".gl-{chart}-chart img").wait_for(timeout=STEP_TIMEOUT_MS)
    expect(page.locator(".gl-totals")).to_have_count(0)  # the first tab is hidden
    page.wait_for_timeout(500)
    page.screenshot(path=str(artifacts_dir / "viz_page_market.png"), full_page=True)
    page.get_by_role("tab", name="Feeder, grid and price").click()

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
    expect(page.locator(".gl-hours")).to_have_text("0 of 6")
    expect(page.locator(".gl-start")).to_have_text("10:00 / 6")
    expect(page.locator(".gl-areas")).to_have_text("2")  # a field without a control is kept
    expect(page.locator(".gl-share")).to_have_text(f"{share_after:.2f}")
    expect(page.locator(".gl-prosumers")).not_to_have_text(prosumers_before)
    n_before = int(prosumers_before.split("/")[0])
    n_after = int(page.locator(".gl-prosumers").inner_text().split("/")[0])
    assert n_after > n_before

    # Play runs hour after hour until paused
    page.get_by_role("button", name="▶").click()
    expect(page.get_by_text("Time: 2.0")).to_be_visible(timeout=2 * STEP_TIMEOUT_MS)
    page.get_by_role("button", name="❚❚").click()
    expect(step).to_be_enabled(timeout=STEP_TIMEOUT_MS)
    hours = page.locator(".gl-hours")
    paused_at, previous = hours.inner_text(), ""
    for _ in range(12):  # an hour already running when paused still finishes: let it settle
        page.wait_for_timeout(5000)
        previous, paused_at = paused_at, hours.inner_text()
        if paused_at == previous:
            break
    assert paused_at == previous, "time still advancing after pause"
    assert int(paused_at.split()[0]) <= 4, f"paused late: {paused_at}"
    page.screenshot(path=str(artifacts_dir / "viz_page.png"), full_page=True)
    page.close()

    assert not failures, "requests failed:\n" + "\n".join(failures)
    assert not errors, "page errors:\n" + "\n".join(errors)
    assert "Traceback" not in viz_server.tail(), viz_server.tail()
