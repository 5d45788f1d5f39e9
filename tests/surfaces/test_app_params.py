"""The page's controls and starting scenario (no browser)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mesa.visualization.user_param import Slider

from gridledger import EnergyMarketModel, Scenario
from gridledger.app import (
    bus_values,
    gas_by_operation,
    initial_values,
    line_flows,
    model_params,
    page_scenario,
    participants,
    totals,
)
from gridledger.market.contracts import BASE_UNITS_PER_USD as USD
from gridledger.network import HourlyOPF
from gridledger.network.powerflow import run_power_flow
from gridledger.viz_server import SCENARIO_ENV


def test_controls_are_model_keywords_and_default_to_the_paper_day() -> None:
    params = model_params(Scenario())
    mechanism = params.pop("market_mechanism")  # the one drop-down
    assert mechanism["type"] == "Select" and mechanism["value"] == "paper"
    assert set(mechanism["values"]) == {"paper", "double_auction"}
    assert all(isinstance(p, Slider) for p in params.values())  # nothing fixed on the paper day
    values = initial_values(params)
    assert Scenario().replace(**values) == Scenario()
    for name in ("prosumer_share", "reliability_threshold", "fault_rate", "seed"):
        assert name in params
    assert any("tariff" in name for name in params)


def _slider_values(params: dict[str, Slider]) -> st.SearchStrategy[dict[str, float | int]]:
    """Any position of every slider: min + k * step, k = 0 .. (max - min) / step."""

    def positions(p: Slider) -> st.SearchStrategy[float | int]:
        n = round((p.max - p.min) / p.step)
        kind = int if isinstance(p.step, int) else float
        return st.integers(0, n).map(lambda k: kind(min(p.min + k * p.step, p.max)))

    return st.fixed_dictionaries({k: positions(p) for k, p in params.items()})


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_every_slider_combination_is_a_valid_scenario(data: st.DataObject) -> None:
    params = model_params(Scenario())
    mechanism = params.pop("market_mechanism")
    values = data.draw(_slider_values(params))
    values["market_mechanism"] = data.draw(st.sampled_from(mechanism["values"]))
    assert Scenario().replace(**values).to_dict() == {**Scenario().to_dict(), **values}
    # the feed-in tariff can never reach the lowest retail tariff
    tariffs = [k for k in params if k.startswith("tariff_")]
    assert params["feed_in_tariff_usd_per_mwh"].max < min(params[k].min for k in tariffs)


def test_a_scenario_file_sets_sliders_and_fixed_fields(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("start_hour = 10\nhours = 30\nletb_areas = 2\nprosumer_share = 0.3\n")
    sc = page_scenario({SCENARIO_ENV: str(path)})
    params = model_params(sc)
    assert params["letb_areas"] == 2  # no control: passed as a fixed keyword
    assert params["prosumer_share"].value == 0.3
    assert params["hours"].max == 30  # the range covers the file's value
    assert Scenario().replace(**initial_values(params)) == sc
    assert page_scenario({}) == Scenario()


def test_running_totals_and_participants_of_a_real_model() -> None:
    """The page's totals of an evening hour against what the chains recorded: energy settled
    (the markets' Settled events), the users' token spend (balances on chain) plus the grid
    bill at the scenario's on-peak tariff, and the transactions and gas of the hour's blocks."""
    model = EnergyMarketModel(hours=1, start_hour=19, seed=5)
    who = participants(model)
    assert set(who) == {"PV plant", "prosumer", "user"}
    assert who["PV plant"] == sorted(p.bus for p in model.params.rep_plants)
    assert 0 < len(who["prosumer"]) <= len(who["user"])
    buyers = [u.account.address for u in model.users]
    before = {c: [model.tokens[c].balance_of(a) for a in buyers] for c in model.chains}
    first_block = {c: ch.block_number() + 1 for c, ch in model.chains.items()}
    model.step()
    s = totals(model)
    settled = model.ledger.settlements().groupby("chain")["delivered_wh"].sum()
    assert s["local_kwh"] == pytest.approx(settled["letb"] / 1e3) and s["local_kwh"] > 0
    assert s["renewable_kwh"] == pytest.approx(settled.get("retb", 0) / 1e3)
    grid_kwh = sum(u.grid_wh for u in model.users) / 1e3
    assert s["grid_import_kwh"] == pytest.approx(grid_kwh) and grid_kwh > 0
    assert s["demand_kwh"] == pytest.approx(s["local_kwh"] + s["renewable_kwh"] + grid_kwh)
    spent = sum(
        b0 - model.tokens[c].balance_of(a)
        for c in model.chains
        for a, b0 in zip(buyers, before[c], strict=True)
    ) - sum(m.credit_of(a) for m in model.letb for a in buyers)  # refunds not yet withdrawn
    sc = model.params
    assert any(a <= 19 < b for a, b in sc.tariff_onpeak_periods)
    grid_bill = grid_kwh * sc.tariff_onpeak_usd_per_mwh / 1e3
    assert s["user_cost_usd"] == pytest.approx(spent / USD + grid_bill, rel=1e-9)
    blocks = [
        ch.get_block(n)
        for c, ch in model.chains.items()
        for n in range(first_block[c], ch.block_number() + 1)
    ]
    assert s["tx_count"] == sum(b["tx_count"] for b in blocks) > 0
    assert s["gas_used"] == sum(b["gas_used"] for b in blocks)


def test_feeder_and_gas_views_read_the_models_hour() -> None:
    model = EnergyMarketModel(hours=2, start_hour=11, seed=5)
    before, label = bus_values(model, "dlmp")  # the day-ahead prices of hour 0
    assert label == "DLMP ($/MWh)" and len(before) == model.feeder.n_buses
    assert line_flows(model) is None  # nothing metered yet
    assert gas_by_operation(model).empty  # set-up transactions are not market operations
    model.step()
    model.step()
    dlmp, _ = bus_values(model, "dlmp")
    volts, label = bus_values(model, "voltage")
    assert label == "voltage (p.u.)"
    # hour 1's prices: the substation's is the reference price, another bus's the change of
    # the optimal cost per extra kWh there (finite difference of a fresh OPF of hour 1's loads)
    sc = model.params
    p, q, price = model.opf_p.iloc[1], model.opf_q.iloc[1], float(model.reference_price[1])
    assert dlmp[1] == pytest.approx(price, rel=1e-9)
    opf = HourlyOPF(model.feeder, v_min_pu=sc.v_min_pu, v_max_pu=sc.v_max_pu, dt_h=sc.dt_h)
    bus = int(dlmp.idxmin())
    cost = [
        opf.solve(p.add(pd.Series({bus: s}), fill_value=0), q, price, check_exactness=False)
        for s in (1.0, -1.0)
    ]
    fd = (cost[0].objective_usd - cost[1].objective_usd) / (2 / 1e3)
    assert dlmp[bus] == pytest.approx(fd, rel=1e-6) and dlmp[bus] != pytest.approx(price)
    # the voltages are those of an AC power flow of the same loads, within the OPF's limits
    ac = run_power_flow(model.feeder, p, q, include_pv=False).v_pu
    np.testing.assert_allclose(volts.to_numpy(), np.asarray(ac), atol=1e-6)
    assert volts.between(sc.v_min_pu, sc.v_max_pu).all()
    flows = line_flows(model)
    assert len(flows) == model.feeder.n_lines
    first_line = int(model.feeder.lines.iloc[0].to_bus)
    assert flows[first_line] == pytest.approx(model.last_power_flow.p_substation_kw, abs=1.0)
    gas = gas_by_operation(model)
    assert {"LETB.open_hour", "RETB.open_hour"} <= set(gas["label"])
    assert (gas["count"] > 0).all() and gas["gas_mean"].is_monotonic_increasing
