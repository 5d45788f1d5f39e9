"""Issue 16: measured time (Scenario.start) and worlds built from a real grid's own loads.

Real SimBench grids (the `simbench` extra), real chains, the real OPF; every run checks the
hourly invariants (day/invariant_checks.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from gridledger import EnergyMarketModel, Results, Scenario
from gridledger.day import measured
from gridledger.day.world_grid import letb_areas, profile_kw, rep_generators
from gridledger.model import MarketSetupError
from gridledger.network import solve_opf
from gridledger.scenario import RepPlant, ScenarioError

if TYPE_CHECKING:
    from gridledger.network.grid_data import GridData


LV = "simbench:1-LV-urban6--0-sw"
MVLV = "simbench:1-MVLV-urban-6.305-0-sw"
SCENARIOS = Path(__file__).resolve().parents[2] / "gridledger" / "scenarios"
LV_PLANTS = (RepPlant(53, 60.0), RepPlant(19, 40.0))


def lv_scenario(**kw: object) -> Scenario:
    return Scenario(**{"feeder": LV, "start": "2016-06-01", "rep_plants": LV_PLANTS, **kw})


def grid(spec: str) -> GridData:
    from gridledger.network.grid_data import grid_source

    return grid_source(spec)


@pytest.fixture(scope="module")
def lv_day() -> tuple[EnergyMarketModel, Results]:
    model = EnergyMarketModel(lv_scenario())
    return model, model.run()


# --- calendar -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"start": "2017-03-01"}, "start", "profiles' year 2016"),
        ({"start": "1 June"}, "start", "ISO date"),
        ({"start": "2016-12-31", "hours": 25}, "start", "runs past the end"),
        ({"start": "2016-01-01", "start_hour": 5, "hours": 8784}, "start", "8779 hours are left"),
        ({"load_profiles": "simbench"}, "load_profiles", "set start"),
        ({"start": "2016-06-01", "load_profiles": "measured"}, "load_profiles", "one of"),
        ({"feeder": LV}, "start", "set start"),
        ({"tariff_holidays": ["2015-12-25"]}, "tariff_holidays", "profiles' year"),
    ],
)
def test_bad_calendar_is_refused_by_name(changes: dict, field: str, reason: str) -> None:
    with pytest.raises(ScenarioError, match=reason) as err:
        Scenario(**changes)
    assert err.value.field == field


def test_a_whole_year_fits_and_round_trips_through_toml(tmp_path: Path) -> None:
    sc = Scenario(start="2016-01-01", hours=8784, tariff_weekends_offpeak=False)
    index = measured.hour_index(sc)
    assert (index[0], index[-1]) == (pd.Timestamp("2016-01-01"), pd.Timestamp("2016-12-31 23:00"))
    (tmp_path / "year.toml").write_text(sc.to_toml())
    assert Scenario.from_toml(tmp_path / "year.toml") == sc
    (tmp_path / "day.toml").write_text(Scenario().to_toml())  # None: the key is left out
    assert "\nstart = " not in Scenario().to_toml()
    assert Scenario.from_toml(tmp_path / "day.toml").start is None


def test_weekends_and_holidays_are_off_peak() -> None:
    sc = Scenario(start="2016-05-13", hours=96)  # Fri 13 May .. Mon 16 May (Whit Monday)
    index = measured.hour_index(sc)
    tariff = pd.Series(measured.calendar_tariff(sc, index), index=index)
    assert tariff["2016-05-13 18:00"] == sc.tariff_onpeak_usd_per_mwh  # Friday evening
    assert tariff["2016-05-13 10:00"] == sc.tariff_midpeak_usd_per_mwh
    for day in ("2016-05-14", "2016-05-15", "2016-05-16"):  # Sat, Sun, holiday
        assert (tariff[day] == sc.tariff_offpeak_usd_per_mwh).all(), day
    every_day = sc.replace(tariff_weekends_offpeak=False)
    assert measured.calendar_tariff(every_day, index)[24 + 18] == sc.tariff_onpeak_usd_per_mwh


# --- the grid's own loads as agents ---------------------------------------------------------


@pytest.mark.slow
def test_lv_day_every_load_an_agent_trading_on_both_chains(
    lv_day: tuple[EnergyMarketModel, Results],
) -> None:
    model, r = lv_day
    g = model.grid_data
    assert len(model.users) == len(g.loads) == 111
    assert sorted(u.load_name for u in model.users) == sorted(g.loads["name"])
    assert {u.kind for u in model.users} == {"household", "business"}
    # every user its own key, and the LETB requests are signed by the users themselves
    keys = {u.account.address for u in model.users}
    assert len(keys) == len(model.users)
    requests = r.gas[(r.gas["operation"] == "request") & (r.gas["chain"] == "letb")]
    assert set(requests["sender"]) <= keys and requests["sender"].nunique() > 100
    # rooftop PV: the loads at the 5 PV buses are the prosumers, PV split by nominal power
    pv_buses = set(g.generators["bus"])
    assert {p.bus for p in model.producers} == pv_buses
    assert len(model.producers) == int(g.loads["bus"].isin(pv_buses).sum())
    nameplate = sum(p.capacity_kwh for p in model.producers) / model.params.battery_kwh_per_pv_kw
    assert nameplate == pytest.approx(g.generators["p_kw"].sum())
    # an LV-only grid: the scenario's plants are the REPs; one LETB area
    assert [(a.bus, a.nameplate_kw) for a in model.reps] == [(53, 60.0), (19, 40.0)]
    assert model.n_areas == 1
    # both markets trade, loads follow their own profiles
    chains = r.trades.groupby("chain").size()
    assert chains["letb"] > 0 and chains["retb"] > 0
    assert r.hourly["local_kwh"].sum() > 0 and r.hourly["renewable_kwh"].sum() > 0
    h0 = next(u for u in model.users if u.load_name == g.loads["name"].iloc[0])
    row = g.loads.iloc[0]
    profile = g.profiles.loc["2016-06-01", f"{row['profile']}_pload"].to_numpy()
    assert np.allclose(h0.load_kw, row["p_kw"] * profile)
    # the wholesale price follows the residual load (load minus rooftop PV and REP output)
    load = sum(u.load_kw for u in model.users)
    residual = (
        load - sum(u.self_pv_kw for u in model.users) - sum(a.forecast_kw for a in model.reps)
    )
    assert np.corrcoef(residual, r.hourly["wholesale_usd_per_mwh"])[0, 1] > 0.9
    assert r.summary["complete"]


@pytest.mark.slow
def test_three_measured_days_trade_every_day() -> None:
    r = EnergyMarketModel(lv_scenario(hours=72)).run()
    trades = r.trades.assign(day=r.trades["t"] // 24)
    per_day = trades.groupby(["day", "chain"]).size().unstack(fill_value=0)
    assert list(per_day.index) == [0, 1, 2]
    assert (per_day["letb"] > 0).all() and (per_day["retb"] > 0).all()
    # the days differ: the weather and the loads are measured, not one repeated day
    daily = r.hourly.assign(day=r.hourly["t"] // 24).groupby("day")["demand_kwh"].sum()
    assert daily.nunique() == 3


def test_rep_plants_must_be_on_an_lv_only_grid() -> None:
    with pytest.raises(MarketSetupError, match=r"rep_plants.*bus 999"):
        EnergyMarketModel(lv_scenario(rep_plants=(RepPlant(999, 50.0),)))


def test_mvlv_areas_are_its_lv_grids_and_mv_plants_are_reps() -> None:
    g = grid(MVLV)
    areas = letb_areas(g)
    lv = g.lv_grid_of_bus
    n_lv = int(lv.max()) + 1
    mv_loads = bool((lv.reindex(g.loads["bus"]) < 0).any())
    assert len(set(areas.values())) == n_lv + mv_loads
    for bus, a in areas.items():  # an LV bus is in its own LV grid's area; MV buses in area k
        assert a == (lv[bus] if lv[bus] >= 0 else n_lv)
    reps = g.generators.iloc[rep_generators(g)]
    assert (reps["voltage_level"] <= 5).all()  # its LV PV is all rooftop (buses with loads)
    assert len(reps) == int((g.generators["voltage_level"] <= 5).sum()) > 100


@pytest.mark.slow
def test_mvlv_urban6305_day_opens_132_rep_buses_and_trades_on_both_markets() -> None:
    """1-MVLV-urban-6.305 (the packaged mvlv_urban6305_day.toml) has REPs (aggregated LV
    renewables on MV buses) at 132 buses: the operator opens each RETB hour in calls of at most
    64 caps (open_hour again continues the hour), and the day trades on LETB and RETB."""
    sc = Scenario.from_toml(SCENARIOS / "mvlv_urban6305_day.toml")
    model = EnergyMarketModel(sc)
    assert len({r.bus for r in model.reps}) == 132 and len(model.users) == 249
    r = model.run()
    opens = r.gas[(r.gas["operation"] == "open_hour") & (r.gas["chain"] == "retb")]
    per_hour = opens.groupby("t").size()
    assert per_hour.max() == 3 and (opens["status"] == 1).all()  # 64 + 64 + 4 caps
    chains = r.trades.groupby("chain").size()
    assert chains["letb"] > 0 and chains["retb"] > 0
    assert r.summary["complete"]


def bus_day_kw(g: GridData, day: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hour x bus net load (kW, generation negative) and reactive load of a grid's own data."""
    index = measured.hour_index(Scenario(start=day))
    ld, gen = g.loads, g.generators
    p = profile_kw(g.profiles, [f"{x}_pload" for x in ld["profile"]], ld["p_kw"], index)
    q = profile_kw(g.profiles, [f"{x}_qload" for x in ld["profile"]], ld["q_kvar"], index)
    pg = profile_kw(g.profiles, list(gen["profile"]), gen["p_kw"], index)
    cols = g.feeder.buses.index
    by_bus = [
        pd.DataFrame(a, index=range(24))
        .T.groupby(b.to_numpy())
        .sum()
        .T.reindex(columns=cols, fill_value=0.0)
        for a, b in ((p, ld["bus"]), (q, ld["bus"]), (pg, gen["bus"]))
    ]
    return by_bus[0] - by_bus[2], by_bus[1]


@pytest.mark.parametrize("spec", [LV, MVLV])
def test_opf_prices_a_real_grid_day(spec: str) -> None:
    """The OPF on a converted grid (HV/MV and MV/LV transformers in one per-unit system on
    1-MVLV-urban-6.305): exact, and each bus's DLMP carries its losses."""
    g = grid(spec)
    p, q = bus_day_kw(g, "2016-06-01")
    sc = Scenario(start="2016-06-01")
    price = measured.calendar_tariff(sc, measured.hour_index(sc))
    res = solve_opf(
        g.feeder, p, q, price_usd_per_mwh=price, include_pv=False, v_min_pu=0.9, v_max_pu=1.1
    )
    assert res.status in ("optimal", "optimal_inaccurate")  # Clarabel: reduced accuracy ok
    assert res.exactness.max_v_error_pu < 1e-4  # the relaxation is exact: V = the AC power flow's
    dlmp = res.dlmp_usd_per_mwh.to_numpy()
    assert np.isfinite(dlmp).all()
    sub = dlmp[:, g.feeder.topology.pos[g.feeder.substation_bus]]
    assert np.allclose(sub, price, rtol=1e-3)
    assert (dlmp.max(axis=1) > sub).all()  # losses: somewhere a kWh costs more than at the root


@pytest.mark.slow
def test_sce56_takes_simbench_household_profiles() -> None:
    sc = Scenario(start="2016-06-01", load_profiles="simbench")
    model = EnergyMarketModel(sc)
    peaks = model.feeder.buses["p_kw"]
    for u in model.users:  # measured shapes, at most the bus's peak
        assert u.load_kw.max() <= peaks[u.bus] + 1e-9
    shapes = {tuple(np.round(u.load_kw / peaks[u.bus], 6)) for u in model.users}
    assert len(shapes) == 5  # the five H0 profiles of the reference grid, in turn
    r = model.run()
    chains = r.trades.groupby("chain").size()
    assert chains["letb"] > 0 and chains["retb"] > 0


def test_sce56_on_a_saturday_keeps_its_synthetic_load_under_measured_sun_and_tariff() -> None:
    sc = Scenario(start="2016-06-04")  # a Saturday: off-peak all day
    model = EnergyMarketModel(sc)
    synthetic = EnergyMarketModel(Scenario())
    assert (model.tariff == sc.tariff_offpeak_usd_per_mwh).all()
    index = measured.hour_index(sc)
    assert np.allclose(model.pv_shape, measured.reference_pv(grid(LV).profiles, index))
    for u, v in zip(model.users, synthetic.users, strict=True):  # the same seeded load shapes
        assert np.allclose(u.load_kw, v.load_kw)
