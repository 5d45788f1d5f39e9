"""The default day with `market_mechanism = "double_auction"` (markets/double_auction.py) on the
embedded chain and on anvil, invariants and conservation checks on (every hour, model.py): one
price per area and hour, every operation within its gas bound, the same frames on both nodes."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from gridledger import EnergyMarketModel, Results, Scenario
from gridledger.contracts.gas_bounds import BATCHED, bound_of, item_bound_of
from gridledger.market.contracts import price_to_base_units_per_wh
from gridledger.scenario import ScenarioError

AUCTION = Scenario(market_mechanism="double_auction")


@pytest.fixture(scope="module")
def auction_day() -> tuple[EnergyMarketModel, Results]:
    model = EnergyMarketModel(AUCTION)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = model.run()
    return model, results


def test_scenario_names_the_mechanism() -> None:
    with pytest.raises(ScenarioError, match="market_mechanism"):
        Scenario(market_mechanism="pay_as_bid")
    with pytest.raises(ScenarioError, match="sybil_identities"):
        Scenario(market_mechanism="double_auction", cheat_producers=1, sybil_identities=2)


@pytest.mark.slow
def test_the_default_day_clears_one_price_per_area_and_hour(auction_day) -> None:
    model, r = auction_day
    assert [m.name for m in model.markets] == ["double_auction", "retb"]
    assert len(r.hourly) == AUCTION.hours and r.summary["complete"]
    local = r.trades[r.trades["chain"] == "letb"]
    assert local["t"].nunique() >= 10 and local["area"].nunique() == AUCTION.letb_areas
    prices = local.groupby(["t", "area"])["price"].nunique()
    assert (prices == 1).all(), "pay-as-clear: every trade of an area and hour at one price"
    fit = price_to_base_units_per_wh(model.fit)
    assert (local["price"] >= fit).all()
    for (t, _area), price in local.groupby(["t", "area"])["price"].first().items():
        assert price <= price_to_base_units_per_wh(float(model.tariff[t]))  # no bid above it
    # every unit of local energy a user bought is a trade of the auction, delivered as metered
    assert local["delivered_wh"].sum() / 1000.0 == pytest.approx(r.hourly["local_kwh"].sum())
    assert r.summary["grid_import_kwh"] < r.summary["grid_import_kwh_baseline"]


@pytest.mark.slow
def test_every_operation_of_the_auction_day_within_its_gas_bound(auction_day) -> None:
    _model, r = auction_day
    gas = r.gas[r.gas["t"] >= 0]
    ops = gas["contract"] + "." + gas["operation"]
    assert {"DoubleAuction.post_bid", "DoubleAuction.clear"} <= set(ops)
    over = {op: g for op, g in zip(ops, gas["gas_used"], strict=True) if g > bound_of(op)}
    assert not over, f"operations above their gas bound: {over}"
    clears = gas[ops == "DoubleAuction.clear"]
    assert "DoubleAuction.clear" in BATCHED
    assert clears["gas_used"].max() <= 32 * item_bound_of("DoubleAuction.clear")


@pytest.mark.slow
@pytest.mark.anvil
def test_the_auction_day_on_anvil_equals_the_embedded_day(auction_day) -> None:
    from gridledger.chain.nodes import start_anvil

    _model, embedded = auction_day
    with (
        start_anvil(AUCTION.letb_chain_id) as letb,
        start_anvil(AUCTION.retb_chain_id) as retb,
    ):
        on_anvil = EnergyMarketModel(AUCTION, chain=f"{letb.url},{retb.url}").run()
    for frame in ("hourly", "trades", "agents"):
        a, b = getattr(embedded, frame), getattr(on_anvil, frame)
        same = [c for c in a.columns if c not in ("tx_hash", "block")]
        pd.testing.assert_frame_equal(a[same], b[same], obj=frame)
    cols = ["t", "phase", "sender", "operation", "gas_used", "status"]
    a, b = (x.gas[x.gas["t"] >= 0][cols].reset_index(drop=True) for x in (embedded, on_anvil))
    pd.testing.assert_frame_equal(a, b, obj="gas")


def test_a_sweep_over_the_mechanism(tmp_path) -> None:
    """`gridledger batch` sweeps `market_mechanism` like any scenario field (serial: the same
    run_one the Dask workers call); an unknown mechanism fails when the sweep is read."""
    from gridledger.batch import Sweep, SweepError, run_sweep

    grid = {"market_mechanism": ["paper", "double_auction"]}
    sweep = Sweep.from_dict({"hours": 2, "seeds": [1], "fixed": {"start_hour": 17}, "grid": grid})
    rows = run_sweep(sweep, tmp_path, serial=True, progress=False)
    assert list(rows["market_mechanism"]) == ["paper", "double_auction"]
    assert rows["local_kwh"].gt(0).all()
    assert rows["user_cost_usd"].nunique() == 2  # pay-as-offer and pay-as-clear differ
    with pytest.raises(SweepError, match="market_mechanism"):
        Sweep.from_dict({"hours": 2, "seeds": [1], "grid": {"market_mechanism": ["nope"]}})


def test_the_shipped_scenario_is_the_default_day_with_the_auction() -> None:
    from pathlib import Path

    import gridledger

    shipped = Path(gridledger.__file__).parent / "scenarios" / "double_auction.toml"
    assert Scenario.from_toml(shipped) == AUCTION
