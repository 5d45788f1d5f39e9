"""Days and months of a run: the daily and monthly tables and one day's slice of the frames.

`daily_frame` sums the hourly frame per simulated day (gridledger/timeline.py numbers the days):
users' cost with and without trading, the saving, grid import with and without trading, local and
renewable energy, transactions, gas, and the LETB / RETB trades of the day. `monthly_frame` sums
the days per calendar month, only when the run has dates (`Scenario.start`); without dates there
are no months to sum and it returns None. `day_results` cuts a Results to one day's hours, so the
paper's per-day figures (Fig. 4-7) can draw any day of a long run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gridledger.timeline import day_date, day_numbers

if TYPE_CHECKING:
    from gridledger.results import Results

SUMMED = (
    "user_cost_usd",
    "user_cost_usd_baseline",
    "demand_kwh",
    "grid_import_kwh",
    "grid_import_kwh_baseline",
    "local_kwh",
    "renewable_kwh",
    "rep_pv_kwh",
    "rooftop_pv_kwh",
    "exported_kwh",
    "incentives_usd",
    "tx_count",
    "gas_used",
)
"""Hourly columns summed per day and per month (those an hourly frame has)."""
TRADE_CHAINS = ("letb", "retb")


def hour_index(hourly: pd.DataFrame) -> np.ndarray:
    """Market hour t of each hourly row (the `t` column, else the index)."""
    return np.asarray(hourly["t"] if "t" in hourly.columns else hourly.index, dtype=int)


def _with_savings(frame: pd.DataFrame) -> pd.DataFrame:
    cols = frame.columns
    if {"user_cost_usd", "user_cost_usd_baseline"} <= set(cols):
        base = frame["user_cost_usd_baseline"]
        frame["cost_saving_usd"] = base - frame["user_cost_usd"]
        frame["cost_saving_pct"] = np.where(base > 0, 100.0 * frame["cost_saving_usd"] / base, 0.0)
    if {"grid_import_kwh", "grid_import_kwh_baseline"} <= set(cols):
        grid, grid_b = frame["grid_import_kwh"], frame["grid_import_kwh_baseline"]
        frame["grid_energy_saved_kwh"] = grid_b - grid
    return frame


def daily_frame(hourly: pd.DataFrame, trades: pd.DataFrame | None, scenario: Any) -> pd.DataFrame:
    """One row per simulated day: day, date (if the run has dates), first_t, hours, the sums of
    SUMMED, cost_saving_usd / _pct, grid_energy_saved_kwh, letb_trades, retb_trades."""
    t = hour_index(hourly)
    days = day_numbers(scenario, t)
    sums = [c for c in SUMMED if c in hourly.columns]
    by_day = pd.DataFrame({"day": days, "t": t})
    for c in sums:
        by_day[c] = hourly[c].to_numpy()
    grouped = by_day.groupby("day", sort=True)
    out = grouped[sums].sum() if sums else pd.DataFrame(index=grouped.size().index)
    out.insert(0, "hours", grouped.size().astype("int64"))
    out.insert(0, "first_t", grouped["t"].min().astype("int64"))
    dates = [day_date(scenario, int(d)) for d in out.index]
    if dates and dates[0] is not None:
        out.insert(0, "date", pd.to_datetime(dates))
    out = _with_savings(out)
    if trades is not None and {"t", "chain"} <= set(trades.columns):
        trade_days = day_numbers(scenario, trades["t"].to_numpy(dtype=int))
        for chain in TRADE_CHAINS:
            n = pd.Series(trade_days[trades["chain"].to_numpy() == chain]).value_counts()
            out[f"{chain}_trades"] = n.reindex(out.index, fill_value=0).astype("int64")
    out = out.reset_index()
    out.index.name = None
    return out


def monthly_frame(daily: pd.DataFrame) -> pd.DataFrame | None:
    """One row per calendar month of a dated daily frame (month "2016-06", days, hours, sums,
    savings, trades); None when the days have no dates."""
    if "date" not in daily.columns:
        return None
    month = daily["date"].dt.strftime("%Y-%m")
    summed = [c for c in ("hours", *SUMMED, *(f"{c}_trades" for c in TRADE_CHAINS)) if c in daily]
    grouped = daily.assign(month=month).groupby("month", sort=True)
    out = grouped[summed].sum()
    out.insert(0, "days", grouped.size().astype("int64"))
    out = _with_savings(out).reset_index()
    out.index.name = None
    return out


def calendar_of(results: Results) -> Any:
    """What the calendar of `results` is read from: its scenario, or for a folder saved without
    one a default Scenario starting at the first hourly row's clock hour (no date)."""
    if results.scenario is not None:
        return results.scenario
    from gridledger.scenario import Scenario

    h = results.hourly
    if "clock_hour" not in h.columns or h.empty:
        return Scenario()
    return Scenario(start_hour=int(h["clock_hour"].iloc[0] - hour_index(h)[0]) % 24)


def daily_of(results: Results) -> pd.DataFrame:
    """The daily table of a Results (`daily_frame` of its hourly and trades frames)."""
    return daily_frame(results.hourly, results.trades, calendar_of(results))


def day_results(results: Results, day: int) -> Results:
    """`results` cut to the hours of day number `day` (frames with a `t` column filtered; the
    summary, scenario and set-up rows of other frames kept as they are)."""
    from gridledger.results import Results

    sc = calendar_of(results)
    hourly = results.hourly
    keep = day_numbers(sc, hour_index(hourly)) == day
    hours = set(hour_index(hourly)[keep].tolist())

    def cut(frame: pd.DataFrame) -> pd.DataFrame:
        if "t" not in frame.columns or frame.empty:
            return frame
        return frame[frame["t"].isin(hours)]

    return Results(
        hourly=hourly[keep],
        trades=cut(results.trades),
        gas=cut(results.gas),
        agents=cut(results.agents),
        summary=results.summary,
        scenario=results.scenario,
        attacks=results.attacks,
    )


__all__ = [
    "SUMMED",
    "calendar_of",
    "daily_frame",
    "daily_of",
    "day_results",
    "hour_index",
    "monthly_frame",
]
