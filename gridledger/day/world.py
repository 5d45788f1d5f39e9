"""Building the world of a market day from a Scenario: feeder, profiles, agents.

One seed drives everything: `seed_streams` splits it into independent named streams (load, PV,
prices, prosumer choice, reliability thresholds, faults, forecast error, EVs, order), so changing
one part of a scenario does not reshuffle the random draws of another.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gridledger.agents.grid import GridAgent
from gridledger.agents.operator import NetworkOperator, derive_letb_areas
from gridledger.agents.producer import LocalProducer, day_starts
from gridledger.agents.rep import RepAgent
from gridledger.agents.tdno import TDNO
from gridledger.agents.user import UserAgent, ev_profile_kw
from gridledger.day import measured, world_grid
from gridledger.day.attacks import mark_cheaters
from gridledger.network import profiles
from gridledger.network.devices import Storage, ZIPLoad
from gridledger.network.feeder import BUNDLED_FEEDERS, Feeder, load_feeder
from gridledger.network.grid_data import is_grid_spec
from gridledger.scenario import ScenarioError

if TYPE_CHECKING:
    from gridledger.model import EnergyMarketModel

STREAMS = ("load", "pv", "price", "prosumers", "rt", "faults", "forecast", "ev", "order")


class MarketSetupError(RuntimeError):
    """The world cannot be built from the scenario (names the field or party at fault)."""


def seed_streams(
    seed: int,
) -> tuple[dict[str, np.random.Generator], dict[str, np.random.SeedSequence]]:
    """Independent generators (and their seed sequences) per named stream of STREAMS."""
    seqs = np.random.SeedSequence(seed).spawn(len(STREAMS))
    rngs = {n: np.random.default_rng(s) for n, s in zip(STREAMS, seqs, strict=True)}
    return rngs, dict(zip(STREAMS, seqs, strict=True))


def build_world(model: EnergyMarketModel) -> None:
    """Network, profiles and agents of `model.params`, set on the model."""
    sc = model.params
    model.rngs, model.seqs = seed_streams(sc.seed)
    if is_grid_spec(sc.feeder):  # agents from the grid's own loads (day/world_grid.py)
        gw = world_grid.build_grid_world(model, sc, model.rngs)
        for f in dataclasses.fields(gw):
            setattr(model, f.name, getattr(gw, f.name))
    else:
        build_network(model)
        build_profiles(model)
        build_agents(model)
    build_parties(model)
    if sc.start is not None:  # measured time: price from the residual load (day/measured.py)
        model.wholesale, model.feeder_load_shape = measured.residual_wholesale(
            sc, model.rngs["price"], model.users, model.reps
        )


def build_network(model: EnergyMarketModel) -> None:
    """Feeder (without its own PV unless asked), REP buses checked, LETB areas, ZIP load."""
    sc = model.params
    spec_ok = sc.feeder in BUNDLED_FEEDERS or Path(sc.feeder).is_dir() or is_grid_spec(sc.feeder)
    if not spec_ok:  # before any work (grid specs are checked by the Scenario)
        reason = f"not a bundled feeder {BUNDLED_FEEDERS} nor an existing folder"
        raise ScenarioError("feeder", sc.feeder, reason)
    feeder = load_feeder(sc.feeder)
    if not sc.include_feeder_pv and feeder.buses["pv_kw"].any():
        feeder = feeder.with_pv({int(b): 0.0 for b in feeder.buses.index})
    model.feeder: Feeder = feeder
    for plant in sc.rep_plants:
        if plant.bus not in feeder.buses.index:
            raise MarketSetupError(
                f"scenario field 'rep_plants': bus {plant.bus} is not on feeder {feeder.name}"
            )
    model.area_of_bus = derive_letb_areas(feeder, sc.letb_areas, sc.letb_area_roots)
    model.n_areas = len(set(model.area_of_bus.values()))
    model.zip = ZIPLoad(
        z_p=sc.zip_z, i_p=sc.zip_i, p_p=sc.zip_p, z_q=sc.zip_z, i_q=sc.zip_i, p_q=sc.zip_p
    )


def build_profiles(model: EnergyMarketModel) -> None:
    """The day's shapes and prices, indexed by market hour (clock hours sliced from 0)."""
    sc = model.params
    n = sc.start_hour + sc.hours  # profiles are indexed from clock hour 0; slice the run
    sl = slice(sc.start_hour, n)
    shape_kw = dict(
        base=sc.load_base_fraction,
        peak_hours=sc.load_peak_hours,
        peak_heights=sc.load_peak_heights,
        peak_widths_h=sc.load_peak_widths_h,
    )
    model.clock_hours = (np.arange(n) % 24)[sl]
    model.feeder_load_shape = profiles.load_shape(n, **shape_kw)[sl]
    model.load_shape_args = (n, sl, shape_kw)
    model.pv_shape = profiles.pv_shape(
        n,
        rng=model.rngs["pv"],
        sunrise_h=sc.pv_sunrise_h,
        sunset_h=sc.pv_sunset_h,
        cloudiness=sc.pv_cloudiness,
    )[sl]
    model.tariff = profiles.tou_tariff(
        n,
        offpeak_usd_per_mwh=sc.tariff_offpeak_usd_per_mwh,
        midpeak_usd_per_mwh=sc.tariff_midpeak_usd_per_mwh,
        onpeak_usd_per_mwh=sc.tariff_onpeak_usd_per_mwh,
        onpeak=sc.tariff_onpeak_periods,
        midpeak=sc.tariff_midpeak_periods,
    )[sl]
    model.wholesale = profiles.wholesale_price(
        n,
        rng=model.rngs["price"],
        load=profiles.load_shape(n, **shape_kw),
        base_usd_per_mwh=sc.wholesale_base_usd_per_mwh,
        slope_usd_per_mwh=sc.wholesale_slope_usd_per_mwh,
        noise_usd_per_mwh=sc.wholesale_noise_usd_per_mwh,
    )[sl]
    model.fit = float(sc.feed_in_tariff_usd_per_mwh)
    if sc.start is not None:  # measured time: calendar PV and tariff (day/measured.py)
        cal = measured.on_calendar(sc)
        model.hour_index, model.pv_shape, model.tariff = cal.hour_index, cal.pv_shape, cal.tariff


def build_agents(model: EnergyMarketModel) -> None:
    """Users (one per household), prosumers' producers and REPs of a bundled feeder."""
    sc = model.params
    n, sl, shape_kw = model.load_shape_args
    shapes = measured.household_shapes(sc) if sc.load_profiles == "simbench" else None
    buses = model.feeder.buses
    load_buses = [int(b) for b in buses.index if buses.at[b, "p_kw"] > 0]
    households = [(b, k) for b in load_buses for k in range(sc.households_per_bus)]
    hh_seqs = model.seqs["load"].spawn(len(households))
    n_pros = round(sc.prosumer_share * len(households))
    pros = set(model.rngs["prosumers"].choice(len(households), size=n_pros, replace=False).tolist())
    n_ev = round(sc.ev_share * len(households))
    evs = set(model.rngs["ev"].choice(len(households), size=n_ev, replace=False).tolist())
    spread = sc.reliability_threshold_spread
    rts = np.clip(
        sc.reliability_threshold
        + model.rngs["rt"].integers(-spread, spread + 1, size=len(households)),
        0,
        1000,
    )
    ev_kw = ev_profile_kw(
        sc.hours,
        model.clock_hours,
        sc.ev_energy_kwh,
        sc.ev_window_start_h,
        sc.ev_window_end_h,
        sc.dt_h,
    )
    model.users: list[UserAgent] = []
    model.producers: list[LocalProducer] = []
    for i, (bus, _k) in enumerate(households):
        peak_p = float(buses.at[bus, "p_kw"]) / sc.households_per_bus
        peak_q = float(buses.at[bus, "q_kvar"]) / sc.households_per_bus
        shape = (
            measured.household_shape(shapes, i)
            if shapes is not None
            else profiles.load_shape(
                n,
                rng=np.random.default_rng(hh_seqs[i]),
                noise=sc.load_variability,
                **shape_kw,
            )[sl]
        )
        pv_kw = (
            sc.rooftop_pv_kw_per_peak_kw * peak_p * model.pv_shape
            if i in pros
            else np.zeros(sc.hours)
        )
        user = UserAgent(
            model,
            bus=bus,
            area=model.area_of_bus[bus],
            index=i,
            load_kw=peak_p * shape,
            q_kvar=peak_q * shape,
            self_pv_kw=pv_kw,
            ev_kw=ev_kw if i in evs else np.zeros(sc.hours),
            reliability_threshold=int(rts[i]),
        )
        model.users.append(user)
        if i in pros:
            pv_nameplate = sc.rooftop_pv_kw_per_peak_kw * peak_p
            cap = sc.battery_kwh_per_pv_kw * pv_nameplate
            storage = Storage(
                bus=bus,
                e_max_kwh=max(sc.battery_soc_max * cap, 1e-9),
                e_min_kwh=sc.battery_soc_min * cap,
                e_init_kwh=sc.battery_soc_initial * cap,
                p_ch_max_kw=sc.battery_c_rate * cap,
                p_dis_max_kw=sc.battery_c_rate * cap,
                eta_ch=sc.battery_eta_charge,
                eta_dis=sc.battery_eta_discharge,
            )
            prod = LocalProducer(
                model,
                bus=bus,
                area=model.area_of_bus[bus],
                index=len(model.producers),
                pv_surplus_kw=user.pv_surplus_kw,
                storage=storage,
                capacity_kwh=max(cap, 1e-9),
            )
            prod.household = user
            model.producers.append(prod)
    err = model.rngs["forecast"].standard_normal((len(sc.rep_plants), sc.hours))
    model.reps: list[RepAgent] = []
    for j, plant in enumerate(sc.rep_plants):
        forecast = plant.p_kw * model.pv_shape
        actual = forecast * np.clip(1.0 + sc.forecast_error_std * err[j], 0.0, None)
        model.reps.append(
            RepAgent(
                model,
                bus=plant.bus,
                index=j,
                nameplate_kw=plant.p_kw,
                forecast_kw=forecast,
                actual_kw=actual,
                stable_fraction=sc.rep_stable_fraction,
                day_start=day_starts(model.clock_hours),
            )
        )


def build_parties(model: EnergyMarketModel) -> None:
    """Grid, network operator and TDNO at the substation; pre-drawn faults; cheaters."""
    sc = model.params
    sub = int(model.feeder.substation_bus)
    model.grid = GridAgent(model, bus=sub)
    model.operator = NetworkOperator(model, feeder=model.feeder)
    model.tdno = TDNO(model, bus=sub)
    # faults: pre-drawn per (hour, seller) so they do not depend on the trading path
    n_sellers = len(model.producers) + len(model.reps)
    model.faults = model.rngs["faults"].random((sc.hours, n_sellers)) < sc.fault_rate
    mark_cheaters(model)
