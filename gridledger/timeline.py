"""The calendar of a run's market hours: days, dates and clock labels.

Market hour t starts `start_hour + t * dt_h` hours after midnight of the run's first day. A
scenario with a `start` date ("2016-06-01", `Scenario.start`, the day of market hour 0) gives
every hour a timestamp; without one the hours only have day numbers. Days are numbered from 1
(the day of market hour 0), as the user sees them: `daily.parquet`'s `day`, `--day N`, the
progress bar's "day N HH:00". A run starting at 10:00 has a short day 1 (10:00-23:00).

Everything here reads only `start`, `start_hour` and `dt_h` of the scenario (any object with
those attributes; `start` may be absent, meaning no date), so a results folder of an older run
and a stand-in in a test work alike.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

HOURS_PER_DAY = 24


class DayError(ValueError):
    """A day asked for (`--day`) is not understood or not in the run; the message names the
    option and the run's range."""


def start_date(scenario: Any) -> pd.Timestamp | None:
    """Midnight of the run's first day (`scenario.start`), or None when the run has no date."""
    start = getattr(scenario, "start", None)
    if start is None or start == "":
        return None
    return pd.Timestamp(str(start)).normalize()


def hour_offsets_h(scenario: Any, t: np.ndarray | int) -> np.ndarray:
    """Hours from midnight of the first day to the start of market hour(s) t."""
    return scenario.start_hour + np.asarray(t, dtype=float) * scenario.dt_h


def hour_timestamps(scenario: Any, n_hours: int) -> pd.DatetimeIndex | None:
    """Start time of market hours 0..n_hours-1, or None when the scenario has no `start`."""
    first = start_date(scenario)
    if first is None:
        return None
    offsets = pd.to_timedelta(hour_offsets_h(scenario, np.arange(n_hours)), unit="h")
    return pd.DatetimeIndex(first + offsets, name="time")


def day_numbers(scenario: Any, t: np.ndarray | int) -> np.ndarray:
    """Day number (1 = the day of market hour 0) of market hour(s) t:
    (start_hour + t * dt_h) // 24 + 1."""
    return (hour_offsets_h(scenario, t) // HOURS_PER_DAY).astype(int) + 1


def day_date(scenario: Any, day: int) -> dt.date | None:
    """Calendar date of day number `day`, or None without a `start`."""
    first = start_date(scenario)
    return None if first is None else (first + pd.Timedelta(days=day - 1)).date()


def hour_label(scenario: Any, t: int) -> str:
    """Where market hour t lies in simulated time: "2016-06-01 07:00" or "day 1 07:00"."""
    offset = float(hour_offsets_h(scenario, t))
    clock = f"{int(offset % HOURS_PER_DAY):02d}:{round(offset % 1 * 60):02d}"
    day = int(day_numbers(scenario, t))
    date = day_date(scenario, day)
    return f"{date.isoformat()} {clock}" if date is not None else f"day {day} {clock}"


def day_label(scenario: Any, day: int) -> str:
    """ "day 3 (2016-06-03, Friday)" or "day 3"."""
    date = day_date(scenario, day)
    return f"day {day}" if date is None else f"day {day} ({date.isoformat()}, {date:%A})"


def run_days(scenario: Any, t: np.ndarray) -> np.ndarray:
    """The distinct day numbers of market hours t, in order."""
    return np.unique(day_numbers(scenario, np.asarray(t)))


def day_range_text(scenario: Any, days: np.ndarray) -> str:
    """The run's days as a message shows them: "days 1..14" (+ " = 2016-06-01..2016-06-14")."""
    if len(days) == 0:
        return "no days (no hours run)"
    first, last = int(days.min()), int(days.max())
    text = f"days {first}..{last}"
    d0, d1 = day_date(scenario, first), day_date(scenario, last)
    return text if d0 is None else f"{text} = {d0.isoformat()}..{d1.isoformat()}"


def parse_day(value: str | int, scenario: Any, days: np.ndarray, *, option: str = "--day") -> int:
    """Day number of `value` (a day number "3" or an ISO date "2016-06-03") checked against
    the run's `days`; DayError naming `option` and the run's range otherwise."""
    text = str(value).strip()
    where = day_range_text(scenario, days)
    if text.lstrip("-").isdigit():
        day = int(text)
    else:
        try:
            date = dt.date.fromisoformat(text)
        except ValueError:
            raise DayError(
                f"{option} {value}: not a day number or an ISO date (YYYY-MM-DD); the run has "
                f"{where}"
            ) from None
        first = start_date(scenario)
        if first is None:
            raise DayError(
                f"{option} {value}: this run has no dates (its scenario sets no start); give a "
                f"day number, the run has {where}"
            )
        day = (date - first.date()).days + 1
    if day not in set(days.tolist()):
        raise DayError(f"{option} {value}: outside the run, which has {where}")
    return day


__all__ = [
    "HOURS_PER_DAY",
    "DayError",
    "day_date",
    "day_label",
    "day_numbers",
    "day_range_text",
    "hour_label",
    "hour_offsets_h",
    "hour_timestamps",
    "parse_day",
    "run_days",
    "start_date",
]
