"""Issue 18, the page's everyday needs without a browser (a real model): no `nan` totals and no
empty charts before the first step, clock-hour axes, the line saying when trading begins."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from matplotlib.figure import Figure

from gridledger import EnergyMarketModel
from gridledger.app import (
    SCHEME,
    TABS,
    agent_lines_figure,
    time_series_figure,
    totals,
    trading_schedule,
    trading_start_line,
)

GRID = {"grid_import_kwh": SCHEME[0], "grid_import_kwh_baseline": SCHEME[1]}
PRICE = {"user_price_usd_per_mwh": SCHEME[0], "user_price_usd_per_mwh_baseline": SCHEME[1]}


def tick_labels(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.axes[0].get_xticklabels()]


@pytest.mark.slow
def test_before_and_after_the_first_steps_on_clock_hours() -> None:
    model = EnergyMarketModel(hours=2, start_hour=10, seed=5)
    before = totals(model)
    assert before and all(v == 0.0 and not math.isnan(v) for v in before.values())
    assert time_series_figure(model, GRID, "grid", "kWh") is None
    assert agent_lines_figure(model, "soc", ("producer",), "SoC", "SoC") is None
    assert trading_start_line(model).startswith("Trading begins with the first step: ")

    model.step()
    model.step()
    grid = time_series_figure(model, GRID, "grid", "kWh")
    assert tick_labels(grid) == ["10:00", "11:00"]
    line = grid.axes[0].get_lines()[0]
    assert list(line.get_xdata()) == [10.0, 11.0]  # a market hour's point at its start
    price = time_series_figure(model, PRICE, "price", "$/MWh", steps=True)
    assert tick_labels(price) == ["10:00", "11:00"]
    assert price.axes[0].get_xlim() == (10.0, 12.0)  # steps span [10:00, 12:00)
    stairs = price.axes[0].patches[0]
    assert list(stairs.get_data().edges) == [10.0, 11.0, 12.0]
    hourly = pd.DataFrame(model.hourly_rows)
    assert list(stairs.get_data().values) == list(hourly["user_price_usd_per_mwh"])
    soc = agent_lines_figure(model, "soc", ("producer",), "SoC", "SoC")
    assert tick_labels(soc) == ["11:00", "12:00"]  # the state at the end of each hour
    after = totals(model)
    assert after["demand_kwh"] == pytest.approx(hourly["demand_kwh"].sum())


@pytest.mark.slow
def test_the_paper_day_says_when_trading_begins() -> None:
    # the paper's day trades from midnight: batteries sell the charge the evening left
    model = EnergyMarketModel()
    assert trading_schedule(model)["letb"] == 0
    assert trading_start_line(model).startswith("Trading begins with the first step: ")
    # batteries kept for the evening peak ("price_peak"): nothing trades before the PV plants
    model = EnergyMarketModel(producer_strategy="price_peak")
    plan = trading_schedule(model)
    assert plan["retb"] == min(a.window[0] for a in model.agents if a.role == "rep") > 0
    assert plan["letb"] is not None and plan["letb"] > plan["retb"]
    first = model.params.clock_hour(plan["retb"])
    line = trading_start_line(model)
    assert line.startswith(
        f"Trading begins at {first:02d}:00 (step {plan['retb'] + 1} of {model.params.hours}; "
        f"set 'Start at clock hour' to {first} and Reset to start there)"
    ), line
    assert f"prosumers plan to sell stored energy on LETB from {plan['letb']:02d}:00" in line


def test_tabs_are_named_for_what_they_show() -> None:
    assert list(TABS) == ["Feeder, grid and price", "Batteries, reputation and gas"]
    assert not any(name.startswith("Page") for name in TABS)
