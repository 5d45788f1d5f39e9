"""Users' tokens granted by need (day/funding.py): a run longer than `user_initial_usd` lasts
gets every user what its demand can cost, so it trades to the end; a one-day run keeps the
scenario's grant (the default day's frames are unchanged: test_default_day_frames.py)."""

from __future__ import annotations

import numpy as np
import pytest

from gridledger.day.funding import TOKEN_GRANT_MARGIN, user_grant_units, user_token_need_usd
from gridledger.market.contracts import usd_to_base_units
from gridledger.model import EnergyMarketModel
from gridledger.scenario import Scenario

SMALL_GRANT_USD = 50.0
"""A grant the default scenario's largest users spend within the first day (hour 11 before
grants by need: `insufficient balance` in RETB.request)."""


def test_need_is_demand_at_the_highest_price_a_user_can_pay() -> None:
    demand_wh = np.array([1000.0, 0.0, 2000.0])
    tariff = np.array([200.0, 300.0, 40.0, 999.0])  # longer than the run: the run's hours count
    # hour 0 at the tariff, hour 1 has no demand, hour 2 at the feed-in tariff (above the tariff)
    want = TOKEN_GRANT_MARGIN * (1000 * 200 + 2000 * 50) / 1e6
    assert user_token_need_usd(demand_wh, tariff, 50.0) == pytest.approx(want)
    assert user_token_need_usd(demand_wh, tariff, 50.0, margin=1.0) == pytest.approx(0.3)


def test_grants_are_the_scenario_grant_or_the_need_if_larger() -> None:
    day = EnergyMarketModel(Scenario(hours=24))
    assert set(user_grant_units(day)) == {usd_to_base_units(day.params.user_initial_usd)}
    sc = Scenario(hours=72, user_initial_usd=SMALL_GRANT_USD)
    model = EnergyMarketModel(sc)
    grants = user_grant_units(model)
    for u, units in zip(model.users, grants, strict=True):
        demand_wh = np.round(u.demand_kw[:72] * 1000.0)
        need = user_token_need_usd(demand_wh, model.tariff, model.fit)
        assert units == usd_to_base_units(max(SMALL_GRANT_USD, need))
        for c in model.chains:  # granted on every chain (no bond in the default scenario)
            assert model.tokens[c].balance_of(u.account.address) == units
    assert max(grants) > usd_to_base_units(SMALL_GRANT_USD)


@pytest.mark.slow
def test_run_longer_than_the_grant_trades_every_hour() -> None:
    """Three days on a grant that lasts less than one: every hour trades, nobody runs out."""
    r = EnergyMarketModel(Scenario(hours=72, user_initial_usd=SMALL_GRANT_USD)).run()
    assert len(r.hourly) == 72
    assert set(r.trades["t"]) == set(range(72))
    for day in range(3):
        hours = r.trades[(r.trades["t"] // 24) == day]
        assert (hours["chain"] == "letb").any() and (hours["chain"] == "retb").any()
