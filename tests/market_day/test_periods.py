"""Issue 16, outputs of long runs: the calendar of market hours (gridledger/timeline.py), the
daily table of a real two-day run and the monthly table of a dated run (gridledger/periods.py),
both saved beside the frames with the same run id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from gridledger import Results, Scenario, run_scenario
from gridledger.periods import day_results, monthly_frame
from gridledger.timeline import (
    DayError,
    day_label,
    day_numbers,
    hour_label,
    hour_timestamps,
    parse_day,
    run_days,
)


class Dated:
    """A scenario with a start date (`Scenario.start` comes from another branch): every field of
    `scenario`, plus `start`."""

    def __init__(self, scenario: Scenario, start: str) -> None:
        self._scenario = scenario
        self.start = start

    def __getattr__(self, name: str) -> Any:
        return getattr(self._scenario, name)


@pytest.fixture(scope="module")
def two_days() -> Results:
    return run_scenario(Scenario(hours=48), progress=False)


def test_hours_get_dates_only_with_a_start() -> None:
    sc = Scenario(start_hour=22, hours=4)
    assert hour_timestamps(sc, 4) is None
    stamps = hour_timestamps(Dated(sc, "2016-06-30"), 4)
    assert list(stamps.strftime("%Y-%m-%d %H:%M")) == [
        "2016-06-30 22:00",
        "2016-06-30 23:00",
        "2016-07-01 00:00",
        "2016-07-01 01:00",
    ]
    assert list(day_numbers(sc, np.arange(4))) == [1, 1, 2, 2]
    assert [hour_label(sc, t) for t in (1, 2)] == ["day 1 23:00", "day 2 00:00"]
    assert hour_label(Dated(sc, "2016-06-30"), 2) == "2016-07-01 00:00"
    assert day_label(Dated(sc, "2016-06-30"), 2) == "day 2 (2016-07-01, Friday)"


def test_a_day_outside_the_run_is_named_with_the_runs_days() -> None:
    sc = Scenario(start_hour=10, hours=48)
    days = run_days(sc, np.arange(48))
    assert list(days) == [1, 2, 3]  # 10:00-23:00, a whole day, 00:00-09:00
    assert parse_day("3", sc, days) == 3
    assert parse_day("2016-06-02", Dated(sc, "2016-06-01"), days) == 2
    with pytest.raises(DayError, match=r"^--day 4: outside the run, which has days 1\.\.3$"):
        parse_day("4", sc, days)
    dated = r"days 1\.\.3 = 2016-06-01\.\.2016-06-03$"
    with pytest.raises(DayError, match=rf"^--day 2016-05-31: outside the run, which has {dated}"):
        parse_day("2016-05-31", Dated(sc, "2016-06-01"), days)
    with pytest.raises(DayError, match=r"this run has no dates .* give a day number"):
        parse_day("2016-06-01", sc, days)
    with pytest.raises(DayError, match="--day June: not a day number or an ISO date"):
        parse_day("June", sc, days)


@pytest.mark.slow
def test_daily_table_sums_each_day_of_a_two_day_run(two_days: Results) -> None:
    h, trades = two_days.hourly, two_days.trades
    daily = two_days.daily
    assert list(daily["day"]) == [1, 2] and list(daily["hours"]) == [24, 24]
    assert list(daily["first_t"]) == [0, 24] and "date" not in daily.columns
    for i, day in enumerate((h[h["t"] < 24], h[h["t"] >= 24])):
        row = daily.iloc[i]
        for col in ("user_cost_usd", "user_cost_usd_baseline", "grid_import_kwh", "local_kwh",
                    "renewable_kwh", "tx_count", "gas_used"):  # fmt: skip
            assert row[col] == pytest.approx(day[col].sum(), rel=1e-12), col
        assert row["cost_saving_pct"] == pytest.approx(
            100 * (1 - day["user_cost_usd"].sum() / day["user_cost_usd_baseline"].sum())
        )
        in_day = trades["t"].between(24 * i, 24 * i + 23)
        for chain in ("letb", "retb"):
            n = int((in_day & (trades["chain"] == chain)).sum())
            assert row[f"{chain}_trades"] == n > 0  # both markets trade on both days
    assert two_days.monthly is None  # no start date: no months invented


@pytest.mark.slow
def test_monthly_table_of_a_dated_run(two_days: Results, tmp_path: Path) -> None:
    dated = Results(**{**two_days.frames(), "summary": two_days.summary})
    dated.scenario = Dated(two_days.scenario, "2016-06-30")  # type: ignore[assignment]
    daily = dated.daily
    assert list(daily["date"].dt.strftime("%Y-%m-%d")) == ["2016-06-30", "2016-07-01"]
    monthly = dated.monthly
    assert list(monthly["month"]) == ["2016-06", "2016-07"] and list(monthly["days"]) == [1, 1]
    for col in ("hours", "user_cost_usd", "grid_import_kwh", "letb_trades", "retb_trades"):
        assert list(monthly[col]) == list(daily[col]), col
    assert list(monthly["cost_saving_pct"]) == pytest.approx(list(daily["cost_saving_pct"]))
    # saved beside the frames, tagged with the save's run id; the CSV is the same table
    dated.save(tmp_path)
    run_id = pq.read_schema(tmp_path / "hourly.parquet").metadata[b"gridledger_run_id"]
    for name in ("daily", "monthly"):
        assert pq.read_schema(tmp_path / f"{name}.parquet").metadata[b"gridledger_run_id"] == run_id
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "monthly.parquet"), monthly)
    csv = pd.read_csv(tmp_path / "monthly.csv")
    assert list(csv["month"]) == ["2016-06", "2016-07"]
    assert list(csv["user_cost_usd"]) == pytest.approx(list(monthly["user_cost_usd"]))
    # the same folder saved again by an undated run: its months are gone, not left stale
    two_days.save(tmp_path)
    assert not (tmp_path / "monthly.parquet").exists() and not (tmp_path / "monthly.csv").exists()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "daily.parquet"), two_days.daily)
    assert Results.load(tmp_path).daily.equals(two_days.daily)
    assert monthly_frame(two_days.daily) is None


@pytest.mark.slow
def test_day_results_hold_only_that_days_hours(two_days: Results) -> None:
    second = day_results(two_days, 2)
    assert list(second.hourly["t"]) == list(range(24, 48))
    assert set(second.trades["t"]) <= set(range(24, 48)) and len(second.trades) > 0
    assert set(second.agents["t"]) == set(range(24, 48))
    assert len(second.gas) == int(second.hourly["tx_count"].sum())


@pytest.mark.slow
def test_a_dated_run_has_months_dates_and_dated_figures(tmp_path: Path) -> None:
    from matplotlib import pyplot as plt

    from gridledger.report import draw_figures
    from gridledger.report_periods import SAVINGS_BY_MONTH

    res = run_scenario(Scenario(start="2016-06-30", hours=48), progress=False)
    assert list(hour_timestamps(res.scenario, 48)[[0, 47]].strftime("%m-%d %H")) == [
        "06-30 00",
        "07-01 23",
    ]
    assert list(res.monthly["month"]) == ["2016-06", "2016-07"]
    assert list(res.monthly["hours"]) == [24, 24]
    res.save(tmp_path)
    assert list(pd.read_csv(tmp_path / "monthly.csv")["month"]) == ["2016-06", "2016-07"]
    loaded = Results.load(tmp_path)
    assert list(loaded.daily["date"].dt.strftime("%Y-%m-%d")) == ["2016-06-30", "2016-07-01"]
    figures = dict(draw_figures(loaded, "2016-07-01"))
    try:
        title = figures["fig6_grid_demand"].axes[0].get_title()
        assert title.endswith("\nday 2 (2016-07-01, Friday)")
        assert len(figures[SAVINGS_BY_MONTH].axes[0].patches) == 4  # 2 months x 2 bars
    finally:
        for fig in figures.values():
            plt.close(fig)
    with pytest.raises(DayError, match=r"which has days 1\.\.2 = 2016-06-30\.\.2016-07-01$"):
        dict(draw_figures(loaded, "2016-07-02"))
