"""Figures of a run longer than a day: savings per month (or day) and the grid-import duration
curve, with and without trading (matplotlib Agg, like gridledger/report.py).

fig_savings:       users' cost without and with trading per calendar month (per day when the run
                   has no dates: there are no months to sum), the saving in % above each pair
fig_grid_duration: every hour's grid import sorted from the largest down, with and without
                   trading: how many hours the feeder draws more than a given power

`period_figures(results)` names the ones a run gets (file stem -> drawing).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from gridledger.report import AFTER, BEFORE, GREEN, _need
from gridledger.results import Results

SAVINGS_BY_MONTH = "fig8_savings_by_month"
SAVINGS_BY_DAY = "fig8_savings_by_day"
GRID_DURATION = "fig9_grid_import_duration"
PERIOD_FIGURE_NAMES = (SAVINGS_BY_MONTH, SAVINGS_BY_DAY, GRID_DURATION)
"""Every file stem a period figure may have (a new run removes the ones it did not draw)."""
MAX_BAR_LABELS = 40
"""Above this many periods the saving % is not written over each pair of bars."""


def fig_savings(results: Results) -> Figure:
    """Users' cost without and with trading per month (per day without dates), saving % above."""
    monthly = results.monthly
    table, key, what = (
        (results.daily, "day", "day") if monthly is None else (monthly, "month", "month")
    )
    _need(table, f"{what}ly table", "user_cost_usd", "user_cost_usd_baseline")
    fig, ax = plt.subplots(figsize=(9, 4.8), layout="constrained")
    x = np.arange(len(table))
    before = table["user_cost_usd_baseline"].to_numpy(float)
    after = table["user_cost_usd"].to_numpy(float)
    ax.bar(x - 0.2, before, width=0.4, color=BEFORE, label="without trading (tariff)")
    ax.bar(x + 0.2, after, width=0.4, color=AFTER, label="with P2P trading")
    if len(table) <= MAX_BAR_LABELS:
        for xi, b, pct in zip(x, before, table["cost_saving_pct"], strict=True):
            ax.text(xi, b, f"{pct:.1f} %", ha="center", va="bottom", fontsize=8, color=GREEN)
    labels = [str(v) for v in table[key]]
    step = max(1, len(x) // 24)
    ax.set_xticks(x[::step], labels[::step], rotation=45 if what == "day" else 0)
    ax.set_xlabel("day of the run (the scenario has no start date)" if what == "day" else "month")
    ax.set_ylabel(f"users' electricity cost per {what} ($)")
    ax.set_ylim(0, float(np.max(before, initial=1.0)) * 1.18)
    total = float(before.sum() - after.sum())
    pct = 100.0 * total / max(float(before.sum()), 1e-9)
    saved = f"saved ${total:,.0f} = {pct:.1f} %"
    ax.set_title(f"Users' cost per {what} without and with trading ({saved})")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def fig_grid_duration(results: Results) -> Figure:
    """Hourly grid import sorted from the largest down, without and with trading."""
    h = results.hourly
    _need(h, "hourly", "grid_import_kwh", "grid_import_kwh_baseline")
    before = np.sort(h["grid_import_kwh_baseline"].to_numpy(float))[::-1]
    after = np.sort(h["grid_import_kwh"].to_numpy(float))[::-1]
    edges = np.arange(len(before) + 1)  # the k-th largest hour spans [k - 1, k)
    fig, ax = plt.subplots(figsize=(9, 4.8), layout="constrained")
    ax.stairs(before, edges, baseline=None, color=BEFORE, lw=2, label="without trading")
    ax.stairs(after, edges, baseline=None, color=AFTER, lw=2, label="with P2P trading")
    peak_b, peak = float(before.max(initial=0.0)), float(after.max(initial=0.0))
    ax.text(
        0.99,
        0.98,
        f"peak hour {peak_b:,.0f} -> {peak:,.0f} kWh; grid energy {before.sum():,.0f} -> "
        f"{after.sum():,.0f} kWh over {len(before)} hours",
        ha="right",
        va="top",
        transform=ax.transAxes,
        fontsize=9,
    )
    ax.set_xlabel("hours of the run, sorted by grid import (largest first)")
    ax.set_ylabel("users' grid import (kWh per market hour)")
    ax.set_xlim(0, max(len(before), 1))
    ax.set_ylim(0, max(peak_b, peak, 1.0) * 1.12)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title("Grid import duration curve")
    return fig


def period_figures(results: Results) -> dict[str, Callable[[Results], Figure]]:
    """The period figures of `results`: savings by month (by day without dates), duration."""
    savings = SAVINGS_BY_DAY if results.monthly is None else SAVINGS_BY_MONTH
    return {savings: fig_savings, GRID_DURATION: fig_grid_duration}


__all__ = [
    "GRID_DURATION",
    "PERIOD_FIGURE_NAMES",
    "SAVINGS_BY_DAY",
    "SAVINGS_BY_MONTH",
    "fig_grid_duration",
    "fig_savings",
    "period_figures",
]
