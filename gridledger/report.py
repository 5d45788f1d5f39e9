"""Figures of a run, matching the seed paper's Fig. 3-7, drawn from a Results (matplotlib Agg).

fig3_gas:        gas per contract operation (mean per transaction, count annotated)
fig4_battery:    battery power (charge < 0 < discharge) and users' load demand over the day
fig5_pv_deficit: renewable (REP) PV production against the users' power deficiency after LETB
fig6_grid:       users' total grid demand before/after trading, the reduction shaded
fig7_price:      users' average price before/after trading

`write_figures(results, folder)` writes them as PNG files and returns the paths.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from gridledger.results import Results

BEFORE = "#7f7f7f"
AFTER = "#1f77b4"
ACCENT = "#d62728"
GREEN = "#2ca02c"


class ReportError(ValueError):
    """A Results lacks a column a figure needs; the message names the frame and column."""


def _need(frame: pd.DataFrame, name: str, *cols: str) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ReportError(f"Results.{name} lacks column(s) {missing} needed for the figures")


def _hours(results: Results) -> tuple[np.ndarray, list[str]]:
    h = results.hourly
    x = np.asarray(h.index if "t" not in h.columns else h["t"], dtype=float)
    if "clock_hour" in h.columns:
        labels = [f"{int(c):02d}:00" for c in h["clock_hour"]]
    else:
        labels = [f"{int(t) % 24:02d}:00" for t in x]
    return x, labels


def _time_axis(ax: plt.Axes, x: np.ndarray, labels: list[str]) -> None:
    step = max(1, len(x) // 12)
    ax.set_xticks(x[::step], labels[::step], rotation=45, ha="right")
    ax.set_xlabel("hour of day (start of market hour)")
    ax.grid(True, alpha=0.3)
    ax.set_xlim(x[0] - 0.6, x[-1] + 0.6)


def fig3_gas(results: Results) -> Figure:
    """Mean gas per transaction for each contract operation (paper Fig. 3)."""
    gas = results.gas
    _need(gas, "gas", "contract", "operation", "gas_used")
    if "t" in gas.columns:  # market operations only (set-up: deployment, funding, registration)
        gas = gas[gas["t"] >= 0]
    fig, ax = plt.subplots(figsize=(9, 4.8), layout="constrained")
    if gas.empty:
        ax.text(0.5, 0.5, "no transactions", ha="center", va="center", transform=ax.transAxes)
        return fig
    stats = (
        gas.groupby(["contract", "operation"], sort=True)["gas_used"]
        .agg(["mean", "max", "count"])
        .reset_index()
        .sort_values(["contract", "mean"], ascending=[True, False])
    )
    labels = [f"{c}.{o}" for c, o in zip(stats["contract"], stats["operation"], strict=True)]
    contracts = sorted(stats["contract"].unique())
    palette = plt.get_cmap("tab10")
    colors = [palette(contracts.index(c) % 10) for c in stats["contract"]]
    y = np.arange(len(stats))
    ax.barh(y, stats["mean"] / 1000.0, color=colors)
    ax.errorbar(stats["max"] / 1000.0, y, fmt="|", color="black", markersize=10, label="max per tx")
    for yi, (m, mx, n) in enumerate(zip(stats["mean"], stats["max"], stats["count"], strict=True)):
        ax.text(mx / 1000.0, yi, f"  mean {m / 1000:.0f}k gas x {n} tx", va="center", fontsize=8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("gas per transaction (thousands; bar = mean, | = max)")
    ax.set_title("Gas per contract operation (market hours)")
    ax.set_xlim(0, stats["max"].max() / 1000.0 * 1.45)
    ax.grid(True, axis="x", alpha=0.3)
    return fig


def fig4_battery(results: Results) -> Figure:
    """Users' load demand (top) and aggregate battery power (bottom, discharge positive) on one
    time axis (paper Fig. 4): batteries charge from rooftop PV at midday and sell in the
    evening peak."""
    h = results.hourly
    _need(h, "hourly", "battery_power_kw", "demand_kwh")
    x, labels = _hours(results)
    fig, (ax_load, ax) = plt.subplots(
        2, 1, figsize=(9, 6), sharex=True, layout="constrained", height_ratios=(1, 1.3)
    )
    ax_load.plot(x, h["demand_kwh"].to_numpy(float), color=ACCENT, marker="o", lw=2)
    ax_load.set_ylabel("users' metered\nload demand (kW)")
    ax_load.set_ylim(bottom=0)
    ax_load.grid(True, alpha=0.3)
    ax_load.set_title("Users' load demand and home batteries over the day")
    p = h["battery_power_kw"].to_numpy(float)
    ax.bar(x, np.where(p > 0, p, 0), color=GREEN, width=0.8, label="discharge (sold on LETB)")
    ax.bar(x, np.where(p < 0, p, 0), color="#98df8a", width=0.8, label="charge (rooftop PV)")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("battery power (kW)")
    span = max(1.0, float(np.max(np.abs(p), initial=0.0)) * 1.15)
    ax.set_ylim(-span, span)
    _time_axis(ax, x, labels)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def fig5_pv_deficit(results: Results) -> Figure:
    """REP PV production against the users' power deficiency left after LETB (paper Fig. 5).

    Each hour's REP output (bar) is split into what users bought on RETB (delivered) and what the
    plants exported to the grid at the feed-in tariff; the line is the users' deficiency after
    LETB, i.e. what RETB and then the grid had to cover."""
    h = results.hourly
    _need(h, "hourly", "rep_pv_kwh", "deficiency_kwh", "renewable_kwh")
    x, labels = _hours(results)
    pv = h["rep_pv_kwh"].to_numpy(float)
    sold = np.minimum(h["renewable_kwh"].to_numpy(float), pv)
    deficiency = h["deficiency_kwh"].to_numpy(float)
    fig, ax = plt.subplots(figsize=(9, 4.8), layout="constrained")
    ax.bar(x, sold, width=0.8, color=AFTER, label="REP PV sold to users on RETB")
    ax.bar(
        x,
        pv - sold,
        bottom=sold,
        width=0.8,
        color="#ffbb78",
        label="REP PV exported to the grid (feed-in tariff)",
    )
    ax.plot(x, deficiency, color=ACCENT, marker="o", lw=2, label="users' deficiency after LETB")
    covered = float(sold.sum() / max(deficiency[pv > 0].sum(), 1e-9))
    ax.text(
        0.99,
        0.98,
        f"RETB covered {sold.sum():,.0f} kWh = {covered:.0%} of the deficiency "
        "in hours with REP output",
        ha="right",
        va="top",
        transform=ax.transAxes,
        fontsize=9,
    )
    ax.set_ylabel("energy per market hour (kWh)")
    ax.set_ylim(0, max(float(pv.max(initial=0)), float(deficiency.max(initial=0))) * 1.15 + 1)
    _time_axis(ax, x, labels)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Renewable (REP) PV production vs users' power deficiency")
    return fig


def fig6_grid(results: Results) -> Figure:
    """Users' total grid demand before and after trading, reduction shaded (paper Fig. 6)."""
    h = results.hourly
    _need(h, "hourly", "grid_import_kwh", "grid_import_kwh_baseline")
    x, labels = _hours(results)
    before = h["grid_import_kwh_baseline"].to_numpy(float)
    after = h["grid_import_kwh"].to_numpy(float)
    fig, ax = plt.subplots(figsize=(9, 4.8), layout="constrained")
    ax.plot(x, before, color=BEFORE, marker="o", lw=2, label="before (no trading)")
    ax.plot(x, after, color=AFTER, marker="o", lw=2, label="after (P2P trading)")
    ax.fill_between(
        x,
        after,
        before,
        where=before >= after,
        interpolate=True,
        color=GREEN,
        alpha=0.3,
        label="reduction (bought on LETB and RETB instead)",
    )
    saved = float(np.sum(before - after))
    ax.text(
        0.99,
        0.02,
        f"grid energy saved over the run: {saved:,.0f} kWh ({saved / max(before.sum(), 1e-9):.0%})",
        ha="right",
        va="bottom",
        transform=ax.transAxes,
        fontsize=9,
    )
    ax.set_ylabel("users' grid demand (kWh per market hour)")
    ax.set_ylim(bottom=0)
    _time_axis(ax, x, labels)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Total grid demand before and after P2P trading")
    return fig


def fig7_price(results: Results) -> Figure:
    """Users' average price before and after trading (paper Fig. 7)."""
    h = results.hourly
    _need(h, "hourly", "user_price_usd_per_mwh", "user_price_usd_per_mwh_baseline")
    x, labels = _hours(results)
    before = h["user_price_usd_per_mwh_baseline"].to_numpy(float)
    after = h["user_price_usd_per_mwh"].to_numpy(float)
    fig, ax = plt.subplots(figsize=(9, 4.8), layout="constrained")
    ax.step(x, before, where="mid", color=BEFORE, lw=2, label="before (ToU tariff)")
    ax.step(x, after, where="mid", color=AFTER, lw=2, label="after (P2P trading)")
    ax.fill_between(x, after, before, step="mid", color=GREEN, alpha=0.25, label="saving")
    if "dlmp_mean_usd_per_mwh" in h.columns:
        ax.step(
            x,
            h["dlmp_mean_usd_per_mwh"],
            where="mid",
            color="black",
            lw=1,
            ls=":",
            label="mean DLMP (cap of local prices)",
        )
    ax.set_ylabel("average price paid by users ($/MWh)")
    ax.set_ylim(bottom=0)
    _time_axis(ax, x, labels)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Users' electricity price before and after P2P trading")
    return fig


FIGURES: dict[str, Callable[[Results], Figure]] = {
    "fig3_gas_per_operation": fig3_gas,
    "fig4_battery_and_load": fig4_battery,
    "fig5_pv_vs_deficiency": fig5_pv_deficit,
    "fig6_grid_demand": fig6_grid,
    "fig7_user_price": fig7_price,
}


def write_figures(results: Results, folder: str | Path, *, dpi: int = 120) -> list[Path]:
    """Draw every figure into `folder` as PNG (written to a temp name, then moved into place)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw in FIGURES.items():
        fig = draw(results)
        path = folder / f"{name}.png"
        tmp = folder / f".{name}.png.tmp"
        try:
            fig.savefig(tmp, dpi=dpi, format="png")
            tmp.replace(path)
        finally:
            plt.close(fig)
            tmp.unlink(missing_ok=True)
        paths.append(path)
    return paths
