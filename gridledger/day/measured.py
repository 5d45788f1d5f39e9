"""Measured time: market hours on the calendar of the SimBench profiles' year (Scenario.start).

- Hours: market hour t is `start` + `start_hour` + t hours (`hour_index`); clock hours, weekdays
  and seasons are the calendar's, and every profile is read at those hours from a SimBench
  profile table (`GridData.profiles`: hourly means of the 15-min multipliers of nominal power).
- Tariff (`calendar_tariff`): the scenario's time-of-use periods on weekdays; with
  `tariff_weekends_offpeak` (the default, as SCE's time-of-use schedules) weekends and
  `tariff_holidays` are off-peak all day.
- Wholesale price (`residual_wholesale`): the data has no price series, so the substation
  energy price follows the world's residual load, load minus renewable output (the merit-order
  effect: sunny and windy hours are cheap): base + slope · residual_t / peak load of the run
  (+ seeded noise), floored at 5 $/MWh — the synthetic day's formula (network/profiles.py
  `wholesale_price`) with the measured residual load in place of the two-peak load shape.
- Bundled feeders (SCE-56) with `start` (`on_calendar`): PV (REPs, rooftop) follows the mean of
  the PV profiles of REFERENCE_GRID; households' load keeps the synthetic shape, or with
  `load_profiles = "simbench"` takes the SimBench household (H0) profiles of REFERENCE_GRID,
  household i the i-th of them in turn, scaled so that the profile's peak hour of the year is
  the bus's tabulated peak load (`household_shapes`).

Every function here is pure (scenario and data in, arrays out); day/world.py puts the results
on the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gridledger.network import profiles
from gridledger.scenario import PROFILE_YEAR, Scenario, start_hour_of_year

if TYPE_CHECKING:
    from gridledger.agents.rep import RepAgent
    from gridledger.agents.user import UserAgent
    from gridledger.network.grid_data import GridData

REFERENCE_GRID = "1-LV-urban6--0-sw"
"""SimBench grid whose household and PV profiles a bundled feeder takes in measured time."""
HOUSEHOLD_PROFILE_PREFIX = "H0-"


class ProfileDataError(ValueError):
    """A profile the world needs is missing from the grid's profile table (names it)."""


def hour_index(sc: Scenario) -> pd.DatetimeIndex:
    """Calendar timestamp of every market hour (needs `sc.start`)."""
    h0 = start_hour_of_year(sc)
    first = pd.Timestamp(year=PROFILE_YEAR, month=1, day=1) + pd.Timedelta(hours=h0)
    return pd.date_range(first, periods=sc.hours, freq="h")


def profile_block(table: pd.DataFrame, columns: list[str], index: pd.DatetimeIndex) -> np.ndarray:
    """Hours × columns multipliers of `table` at the market hours `index`."""
    missing = sorted(set(columns) - set(table.columns))
    if missing:
        raise ProfileDataError(f"profile table has no column(s) {missing[:5]}")
    rows = table.index.get_indexer(index)
    if (rows < 0).any():
        raise ProfileDataError(f"profile table does not cover {index[rows < 0][0]}")
    return table[columns].to_numpy(dtype=float)[rows]


def off_days(sc: Scenario, index: pd.DatetimeIndex) -> np.ndarray:
    """Market hours on a weekend or a holiday (off-peak all day with tariff_weekends_offpeak)."""
    holidays = pd.DatetimeIndex(list(sc.tariff_holidays)).normalize()
    return (index.dayofweek >= 5) | index.normalize().isin(holidays)


def calendar_tariff(sc: Scenario, index: pd.DatetimeIndex) -> np.ndarray:
    """Retail tariff per market hour: weekday periods by clock hour, off-days off-peak."""
    weekday = profiles.tou_tariff(
        24,
        offpeak_usd_per_mwh=sc.tariff_offpeak_usd_per_mwh,
        midpeak_usd_per_mwh=sc.tariff_midpeak_usd_per_mwh,
        onpeak_usd_per_mwh=sc.tariff_onpeak_usd_per_mwh,
        onpeak=sc.tariff_onpeak_periods,
        midpeak=sc.tariff_midpeak_periods,
    )
    tariff = weekday[index.hour.to_numpy()]
    if sc.tariff_weekends_offpeak:
        tariff[off_days(sc, index)] = sc.tariff_offpeak_usd_per_mwh
    return tariff


def pv_columns(table: pd.DataFrame) -> list[str]:
    """The PV profiles of a SimBench profile table ("PV1".."PV8")."""
    return [c for c in table.columns if str(c).startswith("PV")]


def reference_pv(table: pd.DataFrame, index: pd.DatetimeIndex) -> np.ndarray:
    """Mean of the table's PV profiles at the market hours (multiplier of nameplate)."""
    cols = pv_columns(table)
    if not cols:
        raise ProfileDataError("profile table has no PV profile (PV*) for the REP plants")
    return profile_block(table, cols, index).mean(axis=1)


def reference_grid() -> GridData:
    """The SimBench grid whose profiles bundled feeders use in measured time."""
    from gridledger.network.grid_data import grid_source

    return grid_source(f"simbench:{REFERENCE_GRID}")


@dataclass(frozen=True, eq=False)
class Calendar:
    """A bundled feeder's profiles on the calendar (replacing the synthetic day's)."""

    hour_index: pd.DatetimeIndex  # calendar timestamp of each market hour
    pv_shape: np.ndarray  # PV output per kW of nameplate: mean of REFERENCE_GRID's PV profiles
    tariff: np.ndarray  # retail tariff by calendar (calendar_tariff), USD/MWh


def on_calendar(sc: Scenario) -> Calendar:
    """A bundled feeder's PV and tariff on the calendar of `sc.start` (module docstring)."""
    index = hour_index(sc)
    return Calendar(
        index, reference_pv(reference_grid().profiles, index), calendar_tariff(sc, index)
    )


def household_shapes(sc: Scenario) -> np.ndarray:
    """Hours × profiles load multipliers of REFERENCE_GRID's H0 profiles (1.0 = each profile's
    peak hour of the year); household i takes column i mod their number (`household_shape`)."""
    table = reference_grid().profiles
    cols = sorted(
        c for c in table.columns if c.startswith(HOUSEHOLD_PROFILE_PREFIX) and "_pload" in c
    )
    return profile_block(table, cols, hour_index(sc)) / table[cols].max().to_numpy()


def household_shape(shapes: np.ndarray, i: int) -> np.ndarray:
    """Load multiplier of household i (1.0 = its bus's peak) from `household_shapes`."""
    return shapes[:, i % shapes.shape[1]]


def residual_wholesale(
    sc: Scenario, rng: np.random.Generator, users: Sequence[UserAgent], reps: Sequence[RepAgent]
) -> tuple[np.ndarray, np.ndarray]:
    """Wholesale price from the world's residual load (module docstring) and the load
    multiplier of the whole grid (1.0 = the run's peak load)."""
    load_kw = sum((u.load_kw + u.ev_kw for u in users), np.zeros(sc.hours))
    gen_kw = sum((u.self_pv_kw for u in users), np.zeros(sc.hours))
    gen_kw = sum((r.forecast_kw for r in reps), gen_kw)
    peak_kw = max(float(load_kw.max()), 1e-9)
    wholesale = profiles.wholesale_price(
        sc.hours,
        rng=rng,
        load=(load_kw - gen_kw) / peak_kw,
        base_usd_per_mwh=sc.wholesale_base_usd_per_mwh,
        slope_usd_per_mwh=sc.wholesale_slope_usd_per_mwh,
        noise_usd_per_mwh=sc.wholesale_noise_usd_per_mwh,
    )
    return wholesale, load_kw / peak_kw
