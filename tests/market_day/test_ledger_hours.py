"""The ledger's hour and position filters (what the hourly invariant checks read) select the
same events as filtering the whole run's frame, on the default day's real ledger."""

from __future__ import annotations

import pandas as pd

from gridledger import EnergyMarketModel, Results


def _keys(df: pd.DataFrame) -> list[tuple[str, int]]:
    return sorted(zip(df["tx_hash"], df["log_index"].astype(int), strict=True))


def test_hour_filter_equals_the_filtered_run(day: tuple[EnergyMarketModel, Results]) -> None:
    led = day[0].ledger
    full = {"trades": led.trades(), "settlements": led.settlements(), "feedback": led.feedback()}
    assert all(len(df) for df in full.values())  # the day trades, settles and rates
    for t in range(day[0].params.hours):
        for name, df in full.items():
            hour = getattr(led, name)(t=t)
            assert _keys(hour) == _keys(df[df["t"] == t]), (name, t)
            assert hour.columns.is_unique


def test_start_filter_keeps_the_later_rows(day: tuple[EnergyMarketModel, Results]) -> None:
    led = day[0].ledger
    every = led.events()
    half = led.n_events // 2
    assert _keys(led.events(start=half)) == _keys(every.iloc[half:])
    incentives = led.incentives()
    assert len(incentives)  # RETB pays incentives on the default day
    later = incentives.merge(every.iloc[half:][["tx_hash", "log_index"]])
    assert _keys(led.incentives(start=half)) == _keys(later)
    assert led.events(start=led.n_events).empty
