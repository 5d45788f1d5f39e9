"""The operator prices the day: OPF on the forecast net loads -> DLMP per bus and hour (the caps).

The substation energy price of the OPF is `model.reference_price` (Scenario.dlmp_reference):
by default the retail ToU tariff, what grid energy costs the feeder's users, so each bus's DLMP is
the tariff adjusted for marginal losses and voltage limits and the cap it sets on local prices
means "never more than grid supply delivered to this bus". With "wholesale" the caps sit near the
wholesale price, far below the tariff, and bind every offer.

"day_ahead" solves every hour once at set-up (hours are independent without storage in the OPF,
so `solve_opf` re-solves one compiled hourly problem); "hourly" keeps one compiled `HourlyOPF`
and re-solves it at the start of each market hour. Producers plan their battery hours on the
day-ahead caps (or, in "hourly" mode, on the reference energy price they expect).

Infeasible network (issue 7, scenario 10): if the day-ahead OPF raises `OPFInfeasibleError`, the
operator re-prices hour by hour. An hour whose OPF is infeasible falls back to the safe rule
"grid_only": its DLMP caps are 0 $/MWh at every bus, below the feed-in tariff, so the operator
opens no seller bus on either chain and nobody can sell that hour; users buy from the grid at the
tariff. Each such hour is logged in `model.opf_failures` (hour, cause, bus, message) and flagged
in the hourly row (`opf_status`, `fallback`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gridledger.network import HourlyOPF, OPFInfeasibleError, OPFResult, solve_opf

FALLBACK_RULE = "grid_only"
"""What an hour with an infeasible OPF does: no local or renewable sale, all from the grid."""

if TYPE_CHECKING:
    from gridledger.model import EnergyMarketModel


def bus_sum(model: EnergyMarketModel, agents: list, attr: str) -> np.ndarray:
    """Hour × bus array summing a per-agent hourly array attribute by the agents' buses."""
    pos = model.feeder.topology.pos
    out = np.zeros((model.params.hours, model.feeder.n_buses))
    for a in agents:
        out[:, pos[a.bus]] += getattr(a, attr)
    return out


def opf_inputs(model: EnergyMarketModel) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Forecast net loads of the day (hour × bus): users' metered demand, REP forecasts as
    negative loads."""
    pos = model.feeder.topology.pos
    p = bus_sum(model, model.users, "demand_kw")
    q = bus_sum(model, model.users, "q_kvar")
    for r in model.reps:
        p[:, pos[r.bus]] -= r.forecast_kw
    index = pd.RangeIndex(model.params.hours, name="hour")
    cols = model.feeder.buses.index
    return pd.DataFrame(p, index=index, columns=cols), pd.DataFrame(q, index=index, columns=cols)


def _feeder_pv(model: EnergyMarketModel, hours: np.ndarray) -> pd.DataFrame | None:
    if not model.params.include_feeder_pv:
        return None
    nameplate = model.feeder.buses["pv_kw"].to_numpy()
    return pd.DataFrame(
        np.outer(model.pv_shape[hours], nameplate), index=hours, columns=model.feeder.buses.index
    )


@dataclass(frozen=True, eq=False)
class DayPricing:
    """What pricing the day at set-up leaves for the hours (the model assigns each field)."""

    opf_p: pd.DataFrame  # forecast net active load, hour x bus, kW (users' demand - REPs)
    opf_q: pd.DataFrame  # forecast reactive load, hour x bus, kvar
    opf_mode: str  # "day_ahead", or "hourly" (asked for, or after an infeasible day-ahead OPF)
    day_ahead: OPFResult | None  # the day-ahead OPF (None when pricing hour by hour)
    hourly_opf: HourlyOPF | None  # the compiled one-hour OPF (None in day-ahead mode)
    opf_failures: list[dict[str, object]]  # infeasible OPFs: t, cause, bus, rule, message


def price_day(model: EnergyMarketModel) -> DayPricing:
    """Set-up: the operator's DLMP table (day-ahead) or an empty one (hourly); producers plan.

    Sets the operator's DLMP table and the producers' battery plans; returns the rest."""
    sc = model.params
    opf_p, opf_q = opf_inputs(model)
    price = model.reference_price
    opf_failures: list[dict[str, object]] = []
    opf_mode = sc.opf_mode
    res = None
    hourly_opf = None
    if sc.opf_mode == "day_ahead":
        t0 = time.perf_counter()
        try:
            res = solve_opf(
                model.feeder,
                opf_p,
                opf_q,
                price_usd_per_mwh=price,
                pv_kw=_feeder_pv(model, np.arange(sc.hours)),
                include_pv=sc.include_feeder_pv,
                v_min_pu=sc.v_min_pu,
                v_max_pu=sc.v_max_pu,
                dt_h=sc.dt_h,
            )
        except OPFInfeasibleError as exc:
            # some hour cannot be priced: re-price hour by hour, infeasible hours fall back
            opf_failures.append(_failure(None, exc, "day-ahead -> hourly"))
            opf_mode = "hourly"
        model.timing["opf_s"] += time.perf_counter() - t0
    if res is not None:
        dlmp = res.dlmp_usd_per_mwh.to_numpy()
        plan = dlmp
    else:
        hourly_opf = HourlyOPF(
            model.feeder,
            include_pv=sc.include_feeder_pv,
            v_min_pu=sc.v_min_pu,
            v_max_pu=sc.v_max_pu,
            dt_h=sc.dt_h,
        )
        dlmp = np.full((sc.hours, model.feeder.n_buses), np.nan)
        plan = np.repeat(np.asarray(price, dtype=float)[:, None], model.feeder.n_buses, axis=1)
    model.operator.set_dlmp(pd.DataFrame(dlmp, columns=model.feeder.buses.index))
    pos = model.feeder.topology.pos
    demand_kw = bus_sum(model, model.users, "demand_kw").sum(axis=1)  # the OPF's forecast
    for prod in model.producers:
        prod.plan_day(
            plan[:, pos[prod.bus]],
            sc.producer_strategy,
            sc.producer_peak_hours,
            clock_hours=model.clock_hours,
            demand_kw=demand_kw,
            fit_usd_per_mwh=model.fit,
        )
        if sc.battery_start == "cyclic" and sc.hours >= 24:  # a shorter run: soc_initial
            prod.warm_up(sc.dt_h)
    return DayPricing(opf_p, opf_q, opf_mode, res, hourly_opf, opf_failures)


def _failure(t: int | None, exc: OPFInfeasibleError, rule: str) -> dict[str, object]:
    return {"t": t, "cause": exc.cause, "bus": exc.bus, "rule": rule, "message": str(exc)}


def price_hour(model: EnergyMarketModel, t: int) -> OPFResult | None:
    """Hour t's OPF result: the day-ahead one, or a fresh solve of the compiled hourly OPF;
    None if hour t is infeasible (its caps are set by the fallback rule, module docstring)."""
    if model.opf_mode != "hourly":
        return model.day_ahead
    pv = _feeder_pv(model, np.array([t]))
    t0 = time.perf_counter()
    try:
        res = model.hourly_opf.solve(
            model.opf_p.iloc[t],
            model.opf_q.iloc[t],
            float(model.reference_price[t]),
            pv_kw=None if pv is None else pv.iloc[0],
            hour=t,
        )
    except OPFInfeasibleError as exc:
        model.opf_failures.append(_failure(t, exc, FALLBACK_RULE))
        model.operator.set_dlmp_hour(t, np.zeros(model.feeder.n_buses))
        return None
    finally:
        model.timing["opf_s"] += time.perf_counter() - t0
    model.operator.set_dlmp_hour(t, res.dlmp_usd_per_mwh.iloc[0].to_numpy())
    return res
