"""Figures of a run, matching the seed paper's Fig. 3-7, drawn from a Results (matplotlib Agg).

fig3_gas:        gas per contract operation (mean per transaction, count annotated)
fig4_battery:    battery power (charge < 0 < discharge); users' gross load, rooftop PV, demand
fig5_pv_deficit: renewable (REP) PV production against the users' power deficiency after LETB
fig6_grid:       users' total grid demand before/after trading, the reduction shaded
fig7_price:      users' average price before/after trading

Fig. 3 covers the whole run; Fig. 4-7 one day of it (`write_figures(..., day=N)`, `--day`; the
first day of a run longer than a day by default, the title saying which), as the paper draws one
day. A run longer than a day also gets the period figures of gridledger/report_periods.py
(savings per month or day, grid-import duration curve).

`write_figures(results, folder, formats=("png", "svg"))` writes them (PNG, PDF or SVG) and
returns the paths.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from gridledger.contracts.gas_bounds import BATCHED, GAS_BOUNDS, MAX_BATCH, OTHER_BOUND, bound_of
from gridledger.periods import calendar_of, day_results, hour_index
from gridledger.results import Results
from gridledger.timeline import day_label, parse_day, run_days

BEFORE = "#7f7f7f"
AFTER = "#1f77b4"
ACCENT = "#d62728"
GREEN = "#2ca02c"
BOUND_LABEL = (
    "bound: half the paper's gas ("
    + ", ".join(f"{op} {gas // 1000}k" for op, gas in GAS_BOUNDS.items() if op not in BATCHED)
    + f", others {OTHER_BOUND // 1000}k;\nsettle_many {MAX_BATCH * OTHER_BOUND // 1000}k per call "
    + f"of up to {MAX_BATCH} items, {OTHER_BOUND // 1000}k per item)"
)
FIGURE_FORMATS = ("png", "pdf", "svg")
"""Formats `write_figures` can write (matplotlib backends available with Agg)."""


class ReportError(ValueError):
    """A Results lacks a column a figure needs; the message names the frame and column."""


def _need(frame: pd.DataFrame, name: str, *cols: str) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ReportError(f"Results.{name} lacks column(s) {missing} needed for the figures")


def _hours(results: Results) -> tuple[np.ndarray, list[str]]:
    """x of each market hour: its start in hours since midnight of the first day (so a day
    starting at 10:00 runs 10..33), and its clock label "HH:00"."""
    h = results.hourly
    t = np.asarray(h.index if "t" not in h.columns else h["t"], dtype=float)
    start = float(h["clock_hour"].iloc[0]) - t[0] if "clock_hour" in h.columns and len(h) else 0.0
    x = t + start
    return x, [f"{int(v) % 24:02d}:00" for v in x]


def time_axis(ax: plt.Axes, x: np.ndarray, labels: list[str], *, spans: bool = False) -> None:
    """Clock-hour ticks at the start of market hours. `spans`: the data are drawn as steps over
    [start, start + 1 h) (limits from the first start to the last end), else centred on x."""
    step = max(1, len(x) // 12)
    ax.set_xticks(x[::step], labels[::step], rotation=45, ha="right")
    ax.set_xlabel("hour of day (start of market hour)")
    ax.grid(True, alpha=0.3)
    if spans:
        ax.set_xlim(x[0], x[-1] + 1.0)
    else:
        ax.set_xlim(x[0] - 0.6, x[-1] + 0.6)


GAS_AXIS_MIN_K = 10.0
"""Left end of Fig. 3's log gas axis (thousands of gas): below every contract call's cost."""


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
    mean_k, max_k = stats["mean"] / 1000.0, stats["max"] / 1000.0
    bound_k = (
        np.array(
            [
                bound_of(f"{c}.{o}")
                for c, o in zip(stats["contract"], stats["operation"], strict=True)
            ]
        )
        / 1000.0
    )
    ax.barh(y, mean_k, color=colors, height=0.7)
    ax.vlines(max_k, y - 0.35, y + 0.35, color="black", lw=1.5, label="max per tx")
    ax.vlines(bound_k, y - 0.45, y + 0.45, color=ACCENT, lw=2.5, label=BOUND_LABEL)
    # log axis: a batched settle_many call (up to 32 items, bound 2.4M) beside single calls
    # of 20-140k; a linear axis would flatten every single call's bar
    x_min, x_max = GAS_AXIS_MIN_K, max(float(max_k.max()), float(bound_k.max())) * 1.3
    ax.set_xscale("log")
    span = np.log(x_max / x_min)
    for yi, (m, n) in enumerate(zip(mean_k, stats["count"], strict=True)):
        # the label sits at the end of its bar: inside it, or just outside a bar too short for it
        inside = np.log(m / x_min) > 0.45 * span
        ax.text(m, yi, f" {m:.0f}k x {n} tx " if inside else f"  {m:.0f}k x {n} tx",
                va="center", ha="right" if inside else "left", fontsize=8,
                color="white" if inside else "black")  # fmt: skip
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("gas per transaction (thousands, log scale; bar = mean)")
    ax.set_title("Gas per contract operation (market hours) against half the paper's figures")
    ax.set_xlim(x_min, x_max)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=8, frameon=False)
    return fig


def fig4_battery(results: Results) -> Figure:
    """Users' gross load, rooftop PV and metered demand (top) and aggregate battery power
    (bottom, discharge positive) on one time axis (paper Fig. 4): the gross load peaks at the
    morning and evening peaks, batteries charge from rooftop PV at midday and sell over the
    evening and the night. (Results written before `load_kwh` existed show metered demand.)"""
    h = results.hourly
    _need(h, "hourly", "battery_power_kw", "demand_kwh")
    x, labels = _hours(results)
    fig, (ax_load, ax) = plt.subplots(
        2, 1, figsize=(9, 6), sharex=True, layout="constrained", height_ratios=(1, 1.3)
    )
    if "load_kwh" in h and "rooftop_pv_kwh" in h:
        ax_load.plot(
            x, h["load_kwh"].to_numpy(float), color=ACCENT, marker="o", lw=2, label="gross load"
        )
        ax_load.fill_between(
            x, h["rooftop_pv_kwh"].to_numpy(float), color="#ffdd71", alpha=0.7, label="rooftop PV"
        )
        ax_load.plot(
            x, h["demand_kwh"].to_numpy(float), color="grey", ls="--", lw=1.5,
            label="metered demand (gross load − own PV)",
        )  # fmt: skip
        ax_load.legend(loc="upper left", fontsize=8)
        ax_load.set_ylabel("users' load\nand rooftop PV (kW)")
    else:
        ax_load.plot(x, h["demand_kwh"].to_numpy(float), color=ACCENT, marker="o", lw=2)
        ax_load.set_ylabel("users' metered\nload demand (kW)")
    ax_load.set_ylim(bottom=0)
    ax_load.grid(True, alpha=0.3)
    ax_load.set_title("Users' load, rooftop PV and home batteries over the day")
    p = h["battery_power_kw"].to_numpy(float)
    ax.bar(x, np.where(p > 0, p, 0), color=GREEN, width=0.8, label="discharge (sold on LETB)")
    ax.bar(x, np.where(p < 0, p, 0), color="#98df8a", width=0.8, label="charge (rooftop PV)")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("battery power (kW)")
    span = max(1.0, float(np.max(np.abs(p), initial=0.0)) * 1.15)
    ax.set_ylim(-span, span)
    time_axis(ax, x, labels)
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
    _shade_retb_window(ax, results, x)
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
    ax.set_ylim(0, max(float(pv.max(initial=0)), float(deficiency.max(initial=0))) * 1.3 + 1)
    time_axis(ax, x, labels)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Renewable (REP) PV production vs users' power deficiency")
    return fig


def _shade_retb_window(ax: plt.Axes, results: Results, x: np.ndarray) -> None:
    """Shade the hours the plants posted on RETB (their stable window) and say why output
    outside them is exported."""
    h = results.hourly
    if "offered_renewable_kwh" not in h.columns:
        return
    posted = h["offered_renewable_kwh"].to_numpy(float) > 0
    if not posted.any():
        return
    first, last = float(x[posted].min()), float(x[posted].max())
    ax.axvspan(first - 0.5, last + 0.5, color="#dddddd", alpha=0.5, zorder=0)
    sc = results.scenario
    rule = (
        f"forecast >= {sc.rep_stable_fraction:.0%} of nameplate"
        if sc is not None
        else "steady forecast output"
    )
    ax.text(
        0.99,
        0.90,
        f"grey: the plants' stable window ({rule}), the only hours they offer on RETB;\n"
        "outside it they do not offer (RETB sells stable supply only) and export it all;\n"
        "inside it, output beyond the users' deficiency is exported",
        ha="right",
        va="top",
        transform=ax.transAxes,
        fontsize=8,
    )


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
        f"grid energy saved in these hours: {saved:,.0f} kWh "
        f"({saved / max(before.sum(), 1e-9):.0%})",
        ha="right",
        va="bottom",
        transform=ax.transAxes,
        fontsize=9,
    )
    ax.set_ylabel("users' grid demand (kWh per market hour)")
    ax.set_ylim(bottom=0)
    time_axis(ax, x, labels)
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
    edges = np.append(x, x[-1] + 1.0)  # market hour [start, start + 1 h): steps at the ticks
    ax.stairs(before, edges, baseline=None, color=BEFORE, lw=2, label="before (ToU tariff)")
    ax.stairs(after, edges, baseline=None, color=AFTER, lw=2, label="after (P2P trading)")
    ax.fill_between(
        edges, np.append(after, after[-1]), np.append(before, before[-1]), step="post",
        color=GREEN, alpha=0.25, label="saving",
    )  # fmt: skip
    if "dlmp_mean_usd_per_mwh" in h.columns:
        ax.stairs(
            h["dlmp_mean_usd_per_mwh"].to_numpy(float),
            edges,
            baseline=None,
            color="black",
            lw=1,
            ls=":",
            label="mean DLMP (cap of local prices)",
        )
    ax.set_ylabel("average price paid by users ($/MWh)")
    ax.set_ylim(0, float(np.nanmax(np.append(before, after), initial=1.0)) * 1.35)  # legend room
    time_axis(ax, x, labels, spans=True)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Users' electricity price before and after P2P trading")
    return fig


WHOLE_RUN_FIGURES = ("fig3_gas_per_operation",)
"""Figures of FIGURES drawn over the whole run; the others draw one day."""
FIGURES: dict[str, Callable[[Results], Figure]] = {
    "fig3_gas_per_operation": fig3_gas,
    "fig4_battery_and_load": fig4_battery,
    "fig5_pv_vs_deficiency": fig5_pv_deficit,
    "fig6_grid_demand": fig6_grid,
    "fig7_user_price": fig7_price,
}


class FigureFormatError(ValueError):
    """A figure format other than FIGURE_FORMATS was asked for."""


def save_figure(
    fig: Figure, folder: Path, name: str, formats: tuple[str, ...], dpi: int
) -> list[Path]:
    """Save `fig` as `folder/name.<fmt>` for each format (temp name, then moved into place) and
    close it."""
    bad = [f for f in formats if f not in FIGURE_FORMATS]
    if bad:
        raise FigureFormatError(
            f"figure format {bad[0]!r} unknown; use {', '.join(FIGURE_FORMATS)}"
        )
    paths = []
    try:
        for fmt in formats:
            path = folder / f"{name}.{fmt}"
            tmp = folder / f".{name}.{fmt}.tmp"
            try:
                fig.savefig(tmp, dpi=dpi, format=fmt)
                tmp.replace(path)
            finally:
                tmp.unlink(missing_ok=True)
            paths.append(path)
    finally:
        plt.close(fig)
    return paths


def figure_day(results: Results, day: str | int | None, *, option: str = "--day") -> int | None:
    """The day Fig. 4-7 draw: `day` (a day number or ISO date; DayError naming `option` and
    the run's days if it is not in the run), else day 1 of a run longer than a day, else None
    (a run of one day or less: all its hours, as the paper draws them)."""
    days = run_days(calendar_of(results), hour_index(results.hourly))
    if day is not None:
        return parse_day(day, calendar_of(results), days, option=option)
    return int(days[0]) if len(days) > 1 else None


def draw_figures(results: Results, day: str | int | None = None) -> Iterator[tuple[str, Figure]]:
    """(file stem, figure) of every figure of `results`, one at a time (each closed by the
    caller): FIGURES (Fig. 4-7 on the day `figure_day` picks, checked before any drawing), then
    for a run longer than a day the period figures (gridledger/report_periods.py)."""
    from gridledger.report_periods import period_figures

    shown = figure_day(results, day)
    calendar = calendar_of(results)
    one_day = results if shown is None else day_results(results, shown)
    for name, draw in FIGURES.items():
        fig = draw(results if name in WHOLE_RUN_FIGURES else one_day)
        if shown is not None and name not in WHOLE_RUN_FIGURES:
            ax = fig.axes[0]
            ax.set_title(f"{ax.get_title()}\n{day_label(calendar, shown)}")
        yield name, fig
    if len(run_days(calendar, hour_index(results.hourly))) > 1:
        for name, draw in period_figures(results).items():
            yield name, draw(results)


def write_figures(
    results: Results,
    folder: str | Path,
    *,
    dpi: int = 120,
    formats: tuple[str, ...] = ("png",),
    day: str | int | None = None,
) -> list[Path]:
    """Draw every figure (`draw_figures`) into `folder` in each of `formats` (png, pdf, svg);
    return the paths. `day` (a day number or ISO date): the day Fig. 4-7 draw."""
    figures = draw_figures(results, day)
    first = next(figures)  # a bad `day` fails here, before the folder is made
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in itertools.chain([first], figures):
        paths += save_figure(fig, folder, name, formats, dpi)
    return paths
