"""The page's controls and starting scenario (no browser)."""

from __future__ import annotations

from pathlib import Path

import pytest
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
from gridledger.viz_server import SCENARIO_ENV


def test_controls_are_model_keywords_and_default_to_the_paper_day() -> None:
    params = model_params(Scenario())
    assert all(isinstance(p, Slider) for p in params.values())  # nothing fixed on the paper day
    values = initial_values(params)
    assert Scenario().replace(**values) == Scenario()
    for name in ("prosumer_share", "reliability_threshold", "fault_rate", "seed"):
        assert name in params
    assert any("tariff" in name for name in params)


def test_every_slider_combination_is_a_valid_scenario() -> None:
    params = model_params(Scenario())
    lows = {k: p.min for k, p in params.items()}
    highs = {k: p.max for k, p in params.items()}
    Scenario().replace(**lows)
    Scenario().replace(**highs)
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
    model = EnergyMarketModel(hours=1, start_hour=11, seed=5)
    who = participants(model)
    assert set(who) == {"PV plant", "prosumer", "user"}
    assert who["PV plant"] == sorted(p.bus for p in model.params.rep_plants)
    assert 0 < len(who["prosumer"]) <= len(who["user"])
    model.step()
    s = totals(model)
    hourly = model.results().hourly
    assert s["demand_kwh"] == pytest.approx(hourly["demand_kwh"].sum())
    assert s["grid_import_kwh"] == pytest.approx(hourly["grid_import_kwh"].sum())
    assert s["user_cost_usd"] == pytest.approx(hourly["user_cost_usd"].sum())


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
    assert dlmp.to_dict() == model.last_opf.dlmp_usd_per_mwh.loc[1].rename(int).to_dict()
    assert volts.between(0.9, 1.1).all()
    flows = line_flows(model)
    assert len(flows) == model.feeder.n_lines
    first_line = int(model.feeder.lines.iloc[0].to_bus)
    assert flows[first_line] == pytest.approx(model.last_power_flow.p_substation_kw, abs=1.0)
    gas = gas_by_operation(model)
    assert {"LETB.open_hour", "RETB.open_hour"} <= set(gas["label"])
    assert (gas["count"] > 0).all() and gas["gas_mean"].is_monotonic_increasing
