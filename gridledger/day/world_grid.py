"""The world of a real grid (Scenario.feeder = "simbench:<code>" or a pandapower .json net).

The grid's data decides who trades (network/grid_data.py `GridData`):
- Users: every in-service load is one user agent at its bus, signing its own transactions,
  with its own SimBench profile times its nominal power (P and Q), on the calendar of
  `Scenario.start` (day/measured.py). `user.kind` is the load's kind: "household" (H0-*),
  "business" (G*), "farm" (L*) or "other" (e.g. an MV customer or an aggregated LV grid).
  `households_per_bus`, `prosumer_share` and `rooftop_pv_kw_per_peak_kw` do not apply.
- Prosumers: a load at a bus with a low-voltage generator (voltage level 6-7, rooftop PV) owns
  that generation behind its meter; several loads at the bus split it in proportion to their
  nominal power. Each such load also gets a local producer (LETB seller) with a home battery
  sized by the scenario's rules (battery_kwh_per_pv_kw x its PV nameplate share, c-rate, SoC
  limits, efficiencies).
- REPs (RETB): every other generator — MV-connected (voltage level <= 5) PV, wind, hydro, the
  aggregated LV renewables SimBench puts on MV buses, and an LV generator at a bus without loads —
  with its own profile as forecast (actual = forecast x seeded forecast error). A grid without such
  generators (an LV-only grid) uses the scenario's `rep_plants`, following the mean of the grid's
  PV profiles; their buses must be on the grid (MarketSetupError).
- Areas: each LV grid behind an MV/LV transformer (`GridData.lv_grid_of_bus`) is one LETB area,
  0..k-1; loads on MV buses (SimBench's MV customers and aggregated LV grids) form one more LETB
  area, k (they have no local sellers, so they buy on RETB and from the grid). The whole grid is
  the RETB zone. `letb_areas` and `letb_area_roots` do not apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import mesa
import numpy as np
import pandas as pd

from gridledger.agents.producer import LocalProducer, day_starts
from gridledger.agents.rep import RepAgent
from gridledger.agents.user import UserAgent, ev_profile_kw
from gridledger.day import measured
from gridledger.network.devices import Storage, ZIPLoad
from gridledger.scenario import Scenario

if TYPE_CHECKING:
    from gridledger.network.feeder import Feeder
    from gridledger.network.grid_data import GridData

Rngs = dict[str, np.random.Generator]
"""The world's named random streams (day/world.py seed_streams)."""

LV_LEVELS = (6, 7)
"""SimBench voltage levels of low-voltage generators (7 = LV, 6 = MV/LV substation)."""
MAX_BUS = 65535
"""Largest bus number the markets accept (contracts/market_base.vy MAX_BUS; the least is 1)."""


@dataclass(frozen=True, eq=False)
class GridWorld:
    """What a real grid's world is made of; fields are named like the model attributes (and
    day/world.py's network and profile fields) they become."""

    grid_data: GridData  # the converted grid
    feeder: Feeder
    area_of_bus: dict[int, int]  # bus -> LETB area (letb_areas)
    n_areas: int
    zip: ZIPLoad
    hour_index: pd.DatetimeIndex  # calendar timestamp of each market hour
    clock_hours: np.ndarray
    pv_shape: np.ndarray  # mean PV profile of the grid (the scenario's REP plants follow it)
    tariff: np.ndarray  # USD/MWh by calendar
    fit: float  # feed-in tariff, USD/MWh
    users: list[UserAgent]  # one per load, in the loads table's order
    producers: list[LocalProducer]  # one per load with rooftop generation
    reps: list[RepAgent]


def build_grid_world(model: mesa.Model, sc: Scenario, rngs: Rngs) -> GridWorld:
    """Feeder, areas, calendar profiles, users, producers and REPs of a real grid (the agents
    join `model`); MarketSetupError for what the markets cannot run, before any chain work."""
    from gridledger.day.world import MarketSetupError  # world.py hooks this module in
    from gridledger.network.grid_data import grid_source

    grid = grid_source(sc.feeder)
    for plant in sc.rep_plants if not rep_generators(grid).size else ():
        if plant.bus not in grid.feeder.buses.index:
            raise MarketSetupError(
                f"scenario field 'rep_plants': bus {plant.bus} is not on grid {grid.name}"
            )
    area_of_bus = letb_areas(grid)
    index = measured.hour_index(sc)
    clock_hours = index.hour.to_numpy()
    pv_shape = measured.reference_pv(grid.profiles, index)
    users, producers = make_users(model, sc, rngs, grid, index, area_of_bus)
    reps = make_reps(model, sc, rngs["forecast"], grid, index, pv_shape)
    check_market_limits(grid.name, users, producers, reps, MarketSetupError)
    return GridWorld(
        grid_data=grid,
        feeder=grid.feeder,
        area_of_bus=area_of_bus,
        n_areas=len(set(area_of_bus.values())),
        zip=ZIPLoad(
            z_p=sc.zip_z, i_p=sc.zip_i, p_p=sc.zip_p, z_q=sc.zip_z, i_q=sc.zip_i, p_q=sc.zip_p
        ),
        hour_index=index,
        clock_hours=clock_hours,
        pv_shape=pv_shape,
        tariff=measured.calendar_tariff(sc, index),
        fit=float(sc.feed_in_tariff_usd_per_mwh),
        users=users,
        producers=producers,
        reps=reps,
    )


def check_market_limits(
    name: str,
    users: list[UserAgent],
    producers: list[LocalProducer],
    reps: list[RepAgent],
    error: type[Exception],
) -> None:
    """Refuse, before any chain work, a world the contracts cannot run: a bus number outside
    1..MAX_BUS (converted grids number from 1: network/pandapower_grid.py BUS_OFFSET). Any
    number of seller buses is fine: the operator opens an hour with one call per 64 caps
    (market/contracts.py `open_hour_calls`)."""
    buses = {a.bus for a in (*users, *producers, *reps)}
    if buses and not 1 <= min(buses) <= max(buses) <= MAX_BUS:
        raise error(
            f"grid {name}: agents at bus {min(buses)}..{max(buses)}; the markets number "
            f"buses 1..{MAX_BUS}"
        )


def letb_areas(grid: GridData) -> dict[int, int]:
    """LETB area of every bus that has one: its LV grid, or the MV area k if MV buses have loads."""
    lv = grid.lv_grid_of_bus.astype(int)
    k = int(lv.max()) + 1 if (lv >= 0).any() else 0
    mv_loads = bool((lv.reindex(grid.loads["bus"]).fillna(-1).to_numpy() < 0).any())
    return {int(b): int(a) if a >= 0 else k for b, a in lv.items() if a >= 0 or mv_loads}


def rep_generators(grid: GridData) -> np.ndarray:
    """Row positions of the generators that trade as REPs (module docstring)."""
    gens = grid.generators
    load_buses = set(grid.loads["bus"].astype(int))
    rooftop = gens["voltage_level"].isin(LV_LEVELS) & gens["bus"].astype(int).isin(load_buses)
    return np.flatnonzero(~rooftop.to_numpy())


def _p_columns(loads: pd.DataFrame, table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Each load's P and Q profile columns (Q falls back to P when the table has no Q column)."""
    p_cols = [f"{p}_pload" for p in loads["profile"]]
    q_cols = [
        f"{p}_qload" if f"{p}_qload" in table.columns else f"{p}_pload" for p in loads["profile"]
    ]
    return p_cols, q_cols


def rooftop_pv_kw(grid: GridData, index: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Per load: rooftop generation (hours × loads, kW) and nameplate share (kW), split among a
    bus's loads in proportion to their nominal power."""
    loads, gens = grid.loads, grid.generators
    roof = gens.drop(index=gens.index[rep_generators(grid)])
    out = np.zeros((len(index), len(loads)))
    nameplate = np.zeros(len(loads))
    if roof.empty:
        return out, nameplate
    gen_kw = profile_kw(grid.profiles, list(roof["profile"]), roof["p_kw"], index)
    bus_of_load = loads["bus"].astype(int).to_numpy()
    p_nom = loads["p_kw"].to_numpy(dtype=float)
    for j, bus in enumerate(roof["bus"].astype(int)):
        at_bus = np.flatnonzero(bus_of_load == bus)
        weights = p_nom[at_bus] / p_nom[at_bus].sum() if p_nom[at_bus].sum() > 0 else None
        weights = np.full(len(at_bus), 1.0 / len(at_bus)) if weights is None else weights
        out[:, at_bus] += np.outer(gen_kw[:, j], weights)
        nameplate[at_bus] += float(roof["p_kw"].iloc[j]) * weights
    return out, nameplate


def profile_kw(
    table: pd.DataFrame, columns: list[str], nominal_kw: pd.Series, index: pd.DatetimeIndex
) -> np.ndarray:
    """Hours × items power (kW): each item's profile column times its nominal power."""
    unique = sorted(set(columns))
    block = measured.profile_block(table, unique, index)
    pick = [unique.index(c) for c in columns]
    return block[:, pick] * nominal_kw.to_numpy(dtype=float)


def make_users(
    model: mesa.Model,
    sc: Scenario,
    rngs: Rngs,
    grid: GridData,
    index: pd.DatetimeIndex,
    area_of_bus: dict[int, int],
) -> tuple[list[UserAgent], list[LocalProducer]]:
    """One user per load; a load with rooftop PV is also a local producer with a battery."""
    loads = grid.loads.reset_index(drop=True)
    n = len(loads)
    p_cols, q_cols = _p_columns(loads, grid.profiles)
    load_kw = profile_kw(grid.profiles, p_cols, loads["p_kw"], index)
    q_kvar = profile_kw(grid.profiles, q_cols, loads["q_kvar"], index)
    pv_kw, pv_nameplate = rooftop_pv_kw(grid, index)
    rts, evs = draw_user_traits(sc, rngs, n)
    ev_kw = ev_profile_kw(
        sc.hours,
        index.hour.to_numpy(),
        sc.ev_energy_kwh,
        sc.ev_window_start_h,
        sc.ev_window_end_h,
        sc.dt_h,
    )
    users: list[UserAgent] = []
    producers: list[LocalProducer] = []
    for i, row in enumerate(loads.itertuples(index=False)):
        bus = int(row.bus)
        user = UserAgent(
            model,
            bus=bus,
            area=area_of_bus[bus],
            index=i,
            load_kw=load_kw[:, i],
            q_kvar=q_kvar[:, i],
            self_pv_kw=pv_kw[:, i],
            ev_kw=ev_kw if i in evs else np.zeros(sc.hours),
            reliability_threshold=int(rts[i]),
        )
        user.kind = str(row.kind)
        user.load_name = str(row.name)
        users.append(user)
        if pv_nameplate[i] > 0:
            producers.append(make_prosumer(model, sc, user, float(pv_nameplate[i]), len(producers)))
    return users, producers


def draw_user_traits(sc: Scenario, rngs: Rngs, n: int) -> tuple[np.ndarray, set[int]]:
    """Users' reliability thresholds (rt ± spread) and the EV owners, from their seed streams."""
    spread = sc.reliability_threshold_spread
    offsets = rngs["rt"].integers(-spread, spread + 1, size=n)
    rts = np.clip(sc.reliability_threshold + offsets, 0, 1000)
    n_ev = round(sc.ev_share * n)
    evs = set(rngs["ev"].choice(n, size=n_ev, replace=False).tolist())
    return rts, evs


def home_battery(sc: Scenario, bus: int, pv_nameplate_kw: float) -> tuple[Storage, float]:
    """The home battery of a prosumer with `pv_nameplate_kw` of PV (scenario rules) and its
    capacity (kWh)."""
    cap = sc.battery_kwh_per_pv_kw * pv_nameplate_kw
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
    return storage, cap


def make_prosumer(
    model: mesa.Model, sc: Scenario, user: UserAgent, pv_nameplate_kw: float, index: int
) -> LocalProducer:
    """The local producer (PV surplus + home battery) of a user with rooftop PV."""
    storage, cap = home_battery(sc, user.bus, pv_nameplate_kw)
    prod = LocalProducer(
        model,
        bus=user.bus,
        area=user.area,
        index=index,
        pv_surplus_kw=user.pv_surplus_kw,
        storage=storage,
        capacity_kwh=max(cap, 1e-9),
    )
    prod.household = user
    return prod


def make_reps(
    model: mesa.Model,
    sc: Scenario,
    rng: np.random.Generator,
    grid: GridData,
    index: pd.DatetimeIndex,
    pv_shape: np.ndarray,
) -> list[RepAgent]:
    """REPs: the grid's own non-rooftop generators, else the scenario's plants on `pv_shape`
    (forecast errors from `rng`, the "forecast" stream)."""
    gens = grid.generators.iloc[rep_generators(grid)]
    if len(gens):
        forecast = profile_kw(grid.profiles, list(gens["profile"]), gens["p_kw"], index)
        plants = [
            (int(b), float(p), forecast[:, j])
            for j, (b, p) in enumerate(zip(gens["bus"], gens["p_kw"], strict=True))
        ]
    else:
        plants = [(p.bus, p.p_kw, p.p_kw * pv_shape) for p in sc.rep_plants]
    err = rng.standard_normal((len(plants), sc.hours))
    starts = day_starts(index.hour.to_numpy())
    return [
        RepAgent(
            model,
            bus=bus,
            index=j,
            nameplate_kw=p_kw,
            forecast_kw=fc,
            actual_kw=fc * np.clip(1.0 + sc.forecast_error_std * err[j], 0.0, None),
            stable_fraction=sc.rep_stable_fraction,
            day_start=starts,
        )
        for j, (bus, p_kw, fc) in enumerate(plants)
    ]
