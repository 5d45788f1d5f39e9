"""The market plug-in layer (gridledger/markets/): the registry, the phase names the gas frame
carries, and the agents' own decisions the markets rely on, on a real model (embedded chains,
real OPF prices)."""

from __future__ import annotations

import pandas as pd
import pytest

from gridledger import EnergyMarketModel, Scenario
from gridledger.day.conservation import ConservationError
from gridledger.day.kpis import TRADE_COLUMNS
from gridledger.markets import (
    MARKETS,
    MECHANISMS,
    Fill,
    MarketHour,
    Offer,
    Phase,
    UnknownMechanismError,
    markets_of,
)
from gridledger.markets.base import Rating, trade_row
from gridledger.markets.letb import LocalBook
from gridledger.markets.retb import RenewableZone


@pytest.fixture(scope="module")
def model() -> EnergyMarketModel:
    """A 2-hour midday day, run: agents hold keys, reputations, the operator's DLMPs."""
    m = EnergyMarketModel(Scenario(hours=2, start_hour=11))
    m.run()
    return m


def test_paper_mechanism_is_letb_then_retb_and_every_market_is_complete() -> None:
    assert markets_of("paper") == (LocalBook, RenewableZone)
    for name, cls in MARKETS.items():
        assert cls.name == name
        assert not cls.__abstractmethods__, f"{name} leaves {cls.__abstractmethods__} abstract"
    for mechanism, names in MECHANISMS.items():
        assert set(names) <= set(MARKETS), mechanism


def test_unknown_mechanism_is_named() -> None:
    with pytest.raises(UnknownMechanismError, match=r"'dutch_auction'.*paper"):
        markets_of("dutch_auction")


def test_gas_frame_phases_are_phase_names_and_hour_phases_have_a_stage(
    model: EnergyMarketModel,
) -> None:
    gas = model.results().gas
    phases = {Phase(p) for p in gas["phase"].unique()}  # ValueError if one is not a Phase
    hour_phases = set(gas.loc[gas["t"] >= 0, "phase"].map(Phase))
    assert Phase.SETUP in phases and Phase.SETTLE in hour_phases
    assert all(p.stage in (1, 2, 3, 4) for p in hour_phases)
    assert [Phase.POST_OFFER.stage, Phase.RETB_REQUEST.stage, Phase.SETTLE.stage] == [1, 2, 3]
    assert Phase.FEEDBACK.stage == 4 and Phase.CHECKS.stage is None


def test_trade_rows_have_the_trades_frame_columns(model: EnergyMarketModel) -> None:
    trades = model.results().trades
    assert not trades.empty
    fill = Fill("letb", "letb", 0, 1, "0xb", 2, "0xs", 3, 0, 500, 10**14, "0xh", 7, {})
    row = trade_row(5, Rating(fill, 400, 4), 0)
    assert tuple(row) == TRADE_COLUMNS
    assert (row["price_usd_per_mwh"], row["delivered_wh"], row["feedback"]) == (100.0, 400, 4)


def test_tdno_refuses_fills_of_a_seller_the_market_does_not_know(model: EnergyMarketModel) -> None:
    stranger = "0x" + "de" * 20
    fill = Fill("letb", "letb", 0, 1, "0xb", 2, stranger, 3, 0, 500, 10**14, "0xh", 7, {})
    with pytest.raises(ConservationError, match="unknown sellers"):
        model.tdno.meter(0, [fill], model.producers)


def _offer(rep, *, e_wh: int, reputation: int, end: int, price: int = 10**14) -> Offer:
    return Offer("retb", rep.unique_id, rep.account.address, rep.bus, e_wh, price, 0, end,
                 reputation)  # fmt: skip


def test_user_chooses_the_plant_the_operator_ranks_first_among_those_that_fit(
    model: EnergyMarketModel,
) -> None:
    user = next(u for u in model.users if u.rt > 0)
    user.m_wh, user.local_wh = 900, 300  # shortage 600 Wh in hour 0
    rep = model.reps[0]
    too_small = _offer(rep, e_wh=599, reputation=1000, end=5)
    distrusted = _offer(rep, e_wh=10_000, reputation=user.rt - 1, end=5)
    closed = _offer(rep, e_wh=10_000, reputation=1000, end=0)
    dear = _offer(rep, e_wh=10_000, reputation=1000, end=5, price=2 * 10**14)
    cheap = _offer(rep, e_wh=600, reputation=user.rt, end=1)
    assert user.choose_plant(0, [too_small, distrusted, closed], model.operator) is None
    assert user.shortage_wh == 600
    assert user.choose_plant(0, [dear, too_small, cheap], model.operator) is cheap
    req = user.renewable_request("retb", 0, [dear, cheap], model.operator)
    assert req is not None
    assert (req.e_wh, req.seller, req.window_start_t, req.window_end_t) == (600, cheap.seller, 0, 1)
    user.local_wh = 900  # no shortage: no renewable request
    assert user.choose_plant(0, [cheap], model.operator) is None


def test_user_local_request_only_with_demand_and_offers_in_its_book(
    model: EnergyMarketModel,
) -> None:
    user = model.users[0]
    user.m_wh = 700
    req = user.local_request("letb", 3, book_has_offers=True)
    assert req is not None and (req.e_wh, req.rt, req.window_start_t, req.window_end_t) == (
        700, user.rt, 3, 4,
    )  # fmt: skip
    assert user.local_request("letb", 3, book_has_offers=False) is None
    user.m_wh = 0
    assert user.local_request("letb", 3, book_has_offers=True) is None


def test_market_hour_is_frozen(model: EnergyMarketModel) -> None:
    hour = MarketHour(0, {}, 200.0, 40.0, 1.0, tuple(model.users))
    with pytest.raises(AttributeError):
        hour.t = 1  # type: ignore[misc]


class RenamedBook(LocalBook):
    """The paper's local book under another name: a plug-in that is one class and one line."""

    name = "renamed_book"


def test_a_registered_market_runs_through_the_generic_hour(monkeypatch: pytest.MonkeyPatch):
    """The hour loop knows no market by name: the paper's mechanism with its local book
    registered under another name trades exactly as the paper's."""
    sc = Scenario(hours=2, start_hour=11)
    paper = EnergyMarketModel(sc).run()
    monkeypatch.setitem(MARKETS, RenamedBook.name, RenamedBook)
    monkeypatch.setitem(MECHANISMS, "paper", (RenamedBook.name, "retb"))
    model = EnergyMarketModel(sc)
    assert [type(m) for m in model.markets] == [RenamedBook, RenewableZone]
    renamed = model.run()
    assert len(paper.trades) > 0
    for name in ("trades", "hourly"):
        pd.testing.assert_frame_equal(getattr(renamed, name), getattr(paper, name), obj=name)
