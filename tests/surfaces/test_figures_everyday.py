"""Issue 18, the figures on a real run (07:00-10:00: one hour before the PV plants' stable window
opens, two in it): Fig. 3 draws the half-paper gas bounds and labels each bar at the bar, Fig. 7's
steps change at the hour ticks, Fig. 5 shades the stable window and says why output outside it
is exported."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import LineCollection

from gridledger import Scenario, run_scenario
from gridledger.contracts.gas_bounds import bound_of
from gridledger.report import BOUND_LABEL, fig3_gas, fig5_pv_deficit, fig7_price
from gridledger.results import Results

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def morning() -> Results:
    return run_scenario(Scenario(start_hour=7, hours=3), progress=False)


def test_fig3_draws_the_bounds_and_labels_each_bar(morning: Results) -> None:
    fig = fig3_gas(morning)
    ax = fig.axes[0]
    ops = [t.get_text() for t in ax.get_yticklabels()]
    bounds = next(c for c in ax.collections if c.get_label() == BOUND_LABEL)
    assert isinstance(bounds, LineCollection)
    xs = [seg[0][0] for seg in bounds.get_segments()]
    assert xs == pytest.approx([bound_of(op) / 1000 for op in ops])
    assert {140.0, 55.0, 75.0, 2400.0} >= set(np.round(xs, 6))
    assert BOUND_LABEL in [t.get_text() for t in ax.get_legend().get_texts()]
    bars = ax.patches
    labels = [t for t in ax.texts if "tx" in t.get_text()]
    assert len(bars) == len(labels) == len(ops)
    gas = morning.gas[morning.gas["t"] >= 0]
    for bar, label, op in zip(bars, labels, ops, strict=True):
        x, y = label.get_position()
        assert x == pytest.approx(bar.get_width())  # at the end of its own bar
        assert y == pytest.approx(bar.get_y() + bar.get_height() / 2)
        contract, operation = op.split(".")
        rows = gas[(gas["contract"] == contract) & (gas["operation"] == operation)]
        assert bar.get_width() == pytest.approx(rows["gas_used"].mean() / 1000)
        assert f"x {len(rows)} tx" in label.get_text()


def test_fig7_steps_change_at_the_hour_ticks(morning: Results) -> None:
    ax = fig7_price(morning).axes[0]
    ticks = list(ax.get_xticks())
    assert [t.get_text() for t in ax.get_xticklabels()] == ["07:00", "08:00", "09:00"]
    after = next(p for p in ax.patches if p.get_label() == "after (P2P trading)")
    edges = list(after.get_data().edges)
    assert edges == [7.0, 8.0, 9.0, 10.0]
    assert ticks == edges[:-1]  # each step changes exactly at an hour tick
    assert ax.get_xlim() == (7.0, 10.0)
    values = after.get_data().values
    assert list(values) == list(morning.hourly["user_price_usd_per_mwh"])


def test_fig5_shades_the_stable_window_and_says_why(morning: Results) -> None:
    h = morning.hourly
    offered = h["offered_renewable_kwh"].to_numpy() > 0
    assert list(offered) == [False, True, True]  # the window opens at 08:00 on this day
    assert h["rep_pv_kwh"].iloc[0] > 0 and h["renewable_kwh"].iloc[0] == 0  # 07:00: exported
    ax = fig5_pv_deficit(morning).axes[0]
    spans = [p for p in ax.patches if p.get_facecolor()[:3] == pytest.approx((0xDD / 255,) * 3)]
    assert len(spans) == 1
    x0, x1 = spans[0].get_x(), spans[0].get_x() + spans[0].get_width()
    assert (x0, x1) == pytest.approx((7.5, 9.5))  # the bars of 08:00 and 09:00
    note = next(t.get_text() for t in ax.texts if "stable window" in t.get_text())
    assert f"forecast >= {morning.scenario.rep_stable_fraction:.0%} of nameplate" in note
    assert "outside it they do not offer" in note and "export it all" in note
