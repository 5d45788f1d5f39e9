"""Building the world of a market day from a Scenario: feeder, profiles, agents.

`build_world` returns a `World` that `EnergyMarketModel.__init__` assigns to the attributes it
declares (gridledger/model.py); nothing here sets an attribute on the model. Its parts:
`build_network` -> `Network`, `build_profiles` -> `Profiles`, `build_agents` (the households'
users and producers, the REPs) and `build_parties` (grid, operator, TDNO, faults) -> `Population`.
Mesa agents join the model they are built for.

One seed drives everything: `seed_streams` splits it into independent named streams (load, PV,
prices, prosumer choice, reliability thresholds, faults, forecast error, EVs, order), so changing
one part of a scenario does not reshuffle the random draws of another.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gridledger.agents.grid import GridAgent
from gridledger.agents.operator import NetworkOperator, derive_letb_areas
from gridledger.agents.producer import LocalProducer, day_starts
from gridledger.agents.rep import RepAgent
from gridledger.agents.tdno import TDNO
from gridledger.agents.user import UserAgent, ev_profile_kw
from gridledger.day import measured, world_grid
from gridledger.network import profiles
from gridledger.network.devices import ZIPLoad
from gridledger.network.feeder import BUNDLED_FEEDERS, Feeder, load_feeder
from gridledger.network.grid_data import GridData, is_grid_spec
from gridledger.scenario import ScenarioError

if TYPE_CHECKING:
    from gridledger.model import EnergyMarketModel
    from gridledger.scenario import Scenario

STREAMS = ("load", "pv", "price", "prosumers", "rt", "faults", "forecast", "ev", "order")


class MarketSetupError(RuntimeError):
    """The world cannot be built from the scenario (names the field or party at fault)."""


@dataclass(frozen=True, eq=False)
class Network:
    """The run's physical network."""

    feeder: Feeder  # the feeder (its own PV removed unless Scenario.include_feeder_pv)
    area_of_bus: dict[int, int]  # bus -> LETB area (0..n_areas-1)
    n_areas: int  # number of LETB areas (one LETB contract each)
    zip: ZIPLoad  # ZIP load model of every household (Scenario.zip_*)
    grid_data: GridData | None = None  # a real grid's converted tables (day/world_grid.py)


@dataclass(frozen=True, eq=False)
class Profiles:
    """The run's shapes and prices, one value per market hour."""

    clock_hours: np.ndarray  # clock hour (0..23) of each market hour
    feeder_load_shape: np.ndarray  # the feeder's load multiplier (no household noise)
    load_shape_args: tuple[int, slice, dict[str, Any]] | None  # (hours built, run slice, shape)
    pv_shape: np.ndarray  # PV output per kW of nameplate (clear sky x seeded clearness)
    tariff: np.ndarray  # retail ToU tariff, USD/MWh
    wholesale: np.ndarray  # wholesale price at the substation, USD/MWh
    fit: float  # feed-in tariff, USD/MWh (the floor of every local offer)
    hour_index: pd.DatetimeIndex | None = None  # calendar time of each hour (Scenario.start)


@dataclass(frozen=True, eq=False)
class Population:
    """The run's agents (Mesa agents of the model they were built for) and pre-drawn faults."""

    users: list[UserAgent]  # one per household, in bus order
    producers: list[LocalProducer]  # one per prosumer household (rooftop PV + battery)
    reps: list[RepAgent]  # renewable energy producers (Scenario.rep_plants)
    grid: GridAgent  # supplier of last resort at the substation
    operator: NetworkOperator  # prices the hours (DLMP caps), opens the markets
    tdno: TDNO  # meters deliveries and settles
    faults: np.ndarray  # hour x seller: delivery faulty (producers first, then REPs)


@dataclass(frozen=True, eq=False)
class World:
    """Everything `build_world` makes: the random streams, the network, profiles and agents."""

    rngs: dict[str, np.random.Generator]  # one independent generator per name in STREAMS
    seqs: dict[str, np.random.SeedSequence]  # their seed sequences
    network: Network
    profiles: Profiles
    population: Population


def seed_streams(
    seed: int,
) -> tuple[dict[str, np.random.Generator], dict[str, np.random.SeedSequence]]:
    """Independent generators (and their seed sequences) per named stream of STREAMS."""
    seqs = np.random.SeedSequence(seed).spawn(len(STREAMS))
    rngs = {n: np.random.default_rng(s) for n, s in zip(STREAMS, seqs, strict=True)}
    return rngs, dict(zip(STREAMS, seqs, strict=True))


def build_world(model: EnergyMarketModel) -> World:
    """Network, profiles and agents of `model.params` (the agents join `model`): a bundled or
    CSV feeder's households here, a real grid's own loads in day/world_grid.py."""
    sc = model.params
    rngs, seqs = seed_streams(sc.seed)
    if is_grid_spec(sc.feeder):
        gw = world_grid.build_grid_world(model, sc, rngs)
        net = Network(gw.feeder, gw.area_of_bus, gw.n_areas, gw.zip, grid_data=gw.grid_data)
        users, producers, reps = gw.users, gw.producers, gw.reps
        prof = Profiles(
            clock_hours=gw.clock_hours,
            feeder_load_shape=np.ones(sc.hours),  # replaced by the residual load below
            load_shape_args=None,
            pv_shape=gw.pv_shape,
            tariff=gw.tariff,
            wholesale=np.zeros(sc.hours),  # priced from the residual load below
            fit=gw.fit,
            hour_index=gw.hour_index,
        )
    else:
        net = build_network(sc)
        prof = build_profiles(sc, rngs)
        users, producers, reps = build_agents(model, net, prof, rngs, seqs)
    if sc.start is not None:  # measured time: price from the residual load (day/measured.py)
        wholesale, load_shape = measured.residual_wholesale(sc, rngs["price"], users, reps)
        prof = dataclasses.replace(prof, wholesale=wholesale, feeder_load_shape=load_shape)
    pop = build_parties(model, net, rngs, users, producers, reps)
    return World(rngs, seqs, net, prof, pop)


def build_network(sc: Scenario) -> Network:
    """Feeder (without its own PV unless asked), REP buses checked, LETB areas, ZIP load."""
    spec_ok = sc.feeder in BUNDLED_FEEDERS or Path(sc.feeder).is_dir() or is_grid_spec(sc.feeder)
    if not spec_ok:  # before any work (grid specs are checked by the Scenario)
        reason = f"not a bundled feeder {BUNDLED_FEEDERS} nor an existing folder"
        raise ScenarioError("feeder", sc.feeder, reason)
    feeder = load_feeder(sc.feeder)
    if not sc.include_feeder_pv and feeder.buses["pv_kw"].any():
        feeder = feeder.with_pv({int(b): 0.0 for b in feeder.buses.index})
    for plant in sc.rep_plants:
        if plant.bus not in feeder.buses.index:
            raise MarketSetupError(
                f"scenario field 'rep_plants': bus {plant.bus} is not on feeder {feeder.name}"
            )
    area_of_bus = derive_letb_areas(feeder, sc.letb_areas, sc.letb_area_roots)
    return Network(
        feeder=feeder,
        area_of_bus=area_of_bus,
        n_areas=len(set(area_of_bus.values())),
        zip=ZIPLoad(
            z_p=sc.zip_z, i_p=sc.zip_i, p_p=sc.zip_p, z_q=sc.zip_z, i_q=sc.zip_i, p_q=sc.zip_p
        ),
    )


def build_profiles(sc: Scenario, rngs: dict[str, np.random.Generator]) -> Profiles:
    """The day's shapes and prices, indexed by market hour (clock hours sliced from 0)."""
    n = sc.start_hour + sc.hours  # profiles are indexed from clock hour 0; slice the run
    sl = slice(sc.start_hour, n)
    shape_kw = dict(
        base=sc.load_base_fraction,
        peak_hours=sc.load_peak_hours,
        peak_heights=sc.load_peak_heights,
        peak_widths_h=sc.load_peak_widths_h,
    )
    clock_hours = (np.arange(n) % 24)[sl]
    feeder_load_shape = profiles.load_shape(n, **shape_kw)[sl]
    pv_shape = profiles.pv_shape(
        n,
        rng=rngs["pv"],
        sunrise_h=sc.pv_sunrise_h,
        sunset_h=sc.pv_sunset_h,
        cloudiness=sc.pv_cloudiness,
    )[sl]
    tariff = profiles.tou_tariff(
        n,
        offpeak_usd_per_mwh=sc.tariff_offpeak_usd_per_mwh,
        midpeak_usd_per_mwh=sc.tariff_midpeak_usd_per_mwh,
        onpeak_usd_per_mwh=sc.tariff_onpeak_usd_per_mwh,
        onpeak=sc.tariff_onpeak_periods,
        midpeak=sc.tariff_midpeak_periods,
    )[sl]
    wholesale = profiles.wholesale_price(
        n,
        rng=rngs["price"],
        load=profiles.load_shape(n, **shape_kw),
        base_usd_per_mwh=sc.wholesale_base_usd_per_mwh,
        slope_usd_per_mwh=sc.wholesale_slope_usd_per_mwh,
        noise_usd_per_mwh=sc.wholesale_noise_usd_per_mwh,
    )[sl]
    hour_index = None
    if sc.start is not None:  # measured time: calendar PV and tariff (day/measured.py)
        cal = measured.on_calendar(sc)
        hour_index, pv_shape, tariff = cal.hour_index, cal.pv_shape, cal.tariff
    return Profiles(
        clock_hours=clock_hours,
        feeder_load_shape=feeder_load_shape,
        load_shape_args=(n, sl, shape_kw),
        pv_shape=pv_shape,
        tariff=tariff,
        wholesale=wholesale,
        fit=float(sc.feed_in_tariff_usd_per_mwh),
        hour_index=hour_index,
    )


def build_agents(
    model: EnergyMarketModel,
    net: Network,
    prof: Profiles,
    rngs: dict[str, np.random.Generator],
    seqs: dict[str, np.random.SeedSequence],
) -> tuple[list[UserAgent], list[LocalProducer], list[RepAgent]]:
    """Users (one per household), prosumers' producers and REPs of a bundled feeder (they join
    `model`, Mesa)."""
    sc = model.params
    assert prof.load_shape_args is not None  # a bundled or CSV feeder's profiles
    n, sl, shape_kw = prof.load_shape_args
    shapes = measured.household_shapes(sc) if sc.load_profiles == "simbench" else None
    buses = net.feeder.buses
    load_buses = [int(b) for b in buses.index if buses.at[b, "p_kw"] > 0]
    households = [(b, k) for b in load_buses for k in range(sc.households_per_bus)]
    hh_seqs = seqs["load"].spawn(len(households))
    n_pros = round(sc.prosumer_share * len(households))
    pros = set(rngs["prosumers"].choice(len(households), size=n_pros, replace=False).tolist())
    n_ev = round(sc.ev_share * len(households))
    evs = set(rngs["ev"].choice(len(households), size=n_ev, replace=False).tolist())
    spread = sc.reliability_threshold_spread
    rts = np.clip(
        sc.reliability_threshold + rngs["rt"].integers(-spread, spread + 1, size=len(households)),
        0,
        1000,
    )
    ev_kw = ev_profile_kw(
        sc.hours,
        prof.clock_hours,
        sc.ev_energy_kwh,
        sc.ev_window_start_h,
        sc.ev_window_end_h,
        sc.dt_h,
    )
    users: list[UserAgent] = []
    producers: list[LocalProducer] = []
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
            sc.rooftop_pv_kw_per_peak_kw * peak_p * prof.pv_shape
            if i in pros
            else np.zeros(sc.hours)
        )
        user = UserAgent(
            model,
            bus=bus,
            area=net.area_of_bus[bus],
            index=i,
            load_kw=peak_p * shape,
            q_kvar=peak_q * shape,
            self_pv_kw=pv_kw,
            ev_kw=ev_kw if i in evs else np.zeros(sc.hours),
            reliability_threshold=int(rts[i]),
        )
        users.append(user)
        if i in pros:
            pv_nameplate = sc.rooftop_pv_kw_per_peak_kw * peak_p
            producers.append(
                world_grid.make_prosumer(model, sc, user, pv_nameplate, index=len(producers))
            )
    err = rngs["forecast"].standard_normal((len(sc.rep_plants), sc.hours))
    reps: list[RepAgent] = []
    for j, plant in enumerate(sc.rep_plants):
        forecast = plant.p_kw * prof.pv_shape
        actual = forecast * np.clip(1.0 + sc.forecast_error_std * err[j], 0.0, None)
        reps.append(
            RepAgent(
                model,
                bus=plant.bus,
                index=j,
                nameplate_kw=plant.p_kw,
                forecast_kw=forecast,
                actual_kw=actual,
                stable_fraction=sc.rep_stable_fraction,
                day_start=day_starts(prof.clock_hours),
            )
        )
    return users, producers, reps


def build_parties(
    model: EnergyMarketModel,
    net: Network,
    rngs: dict[str, np.random.Generator],
    users: list[UserAgent],
    producers: list[LocalProducer],
    reps: list[RepAgent],
) -> Population:
    """Grid, network operator and TDNO at the substation; pre-drawn faults; with the traders,
    the run's Population."""
    sc = model.params
    sub = int(net.feeder.substation_bus)
    grid = GridAgent(model, bus=sub)
    operator = NetworkOperator(model, feeder=net.feeder)
    tdno = TDNO(model, bus=sub)
    # faults: pre-drawn per (hour, seller) so they do not depend on the trading path
    n_sellers = len(producers) + len(reps)
    faults = rngs["faults"].random((sc.hours, n_sellers)) < sc.fault_rate
    return Population(users, producers, reps, grid, operator, tdno, faults)
