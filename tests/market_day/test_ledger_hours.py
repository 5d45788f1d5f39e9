"""The ledger's `start` filter (what the hourly invariant checks read: the events since the
last check) selects the same events as slicing the whole run's frame, on the default day's
real ledger."""

from __future__ import annotations

import pandas as pd

from gridledger import EnergyMarketModel, Results


def _keys(df: pd.DataFrame) -> list[tuple[str, int]]:
    return sorted(zip(df["tx_hash"], df["log_index"].astype(int), strict=True))


def test_start_filter_keeps_the_later_rows(day: tuple[EnergyMarketModel, Results]) -> None:
    led = day[0].ledger
    every = led.events()
    half = led.n_events // 2
    assert _keys(led.events(start=half)) == _keys(every.iloc[half:])
    later = every.iloc[half:][["tx_hash", "log_index"]]
    for name in ("trades", "settlements", "feedback", "incentives"):
        frame = getattr(led, name)()
        assert len(frame)  # the default day has every kind of event
        assert _keys(getattr(led, name)(half)) == _keys(frame.merge(later)), name
    assert led.events(start=led.n_events).empty
