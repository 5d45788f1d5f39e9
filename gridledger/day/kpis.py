"""The hour's record and the day's KPIs: Results.hourly rows, Results.agents rows, summary.

`record_hour` (phase 8) runs the conservation checks, bills every user for the hour in the trading
scheme and in the no-trading baseline (all metered demand at the tariff) and returns the hour's
row; `summary` turns the hourly and gas frames into the KPIs of `Results.summary`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gridledger.day.attacks import attack_summary
from gridledger.day.conservation import check_tokens, check_user_energy
from gridledger.day.pricing import FALLBACK_RULE
from gridledger.market.contracts import usd_from_base_units

if TYPE_CHECKING:
    from gridledger.model import EnergyMarketModel


def record_hour(
    model: EnergyMarketModel, t: int, offers: dict[str, float], minted_units: int
) -> dict[str, Any]:
    """Phase 8: conservation checks, users' bills (scheme and baseline), the hour's row."""
    sc = model.params
    tariff = float(model.tariff[t])
    demand = local = ren = grid = 0
    cost = cost_b = 0.0
    check_user_energy(t, model.users)
    for u in model.users:
        u.hour_cost_usd = u.local_usd + u.renewable_usd + u.grid_usd
        u.hour_cost_usd_baseline = u.m_wh * tariff / 1e6
        u.cost_usd += u.hour_cost_usd
        u.cost_usd_baseline += u.hour_cost_usd_baseline
        demand += u.m_wh
        local += u.local_wh
        ren += u.renewable_wh
        grid += u.grid_wh
        cost += u.hour_cost_usd
        cost_b += u.hour_cost_usd_baseline
    check_tokens(model, t, minted_units)
    pf, pfb = model.last_power_flow, model.last_power_flow_baseline
    charge = sum(p.charge_kwh for p in model.producers)
    discharge = sum(p.discharge_kwh for p in model.producers)
    dlmp = np.fromiter(model.operator.caps(t).values(), dtype=float)
    opf = model.last_opf
    row = {
        "t": t,
        "clock_hour": int(model.clock_hours[t]),
        "demand_kwh": demand / 1000.0,
        # users' gross load (household + EV) before their own rooftop PV
        "load_kwh": float(sum(u.load_kw[t] + u.ev_kw[t] for u in model.users)) * sc.dt_h,
        "local_kwh": local / 1000.0,
        "renewable_kwh": ren / 1000.0,
        "grid_import_kwh": grid / 1000.0,
        "deficiency_kwh": (demand - local) / 1000.0,
        "demand_kwh_baseline": demand / 1000.0,
        "local_kwh_baseline": 0.0,
        "renewable_kwh_baseline": 0.0,
        "grid_import_kwh_baseline": demand / 1000.0,
        "user_cost_usd": cost,
        "user_cost_usd_baseline": cost_b,
        "user_price_usd_per_mwh": cost / demand * 1e6 if demand else tariff,
        "user_price_usd_per_mwh_baseline": tariff,
        "tariff_usd_per_mwh": tariff,
        "wholesale_usd_per_mwh": float(model.wholesale[t]),
        "dlmp_mean_usd_per_mwh": float(dlmp.mean()),
        "dlmp_max_usd_per_mwh": float(dlmp.max()),
        "rooftop_pv_kwh": float(sum(u.self_pv_kw[t] for u in model.users)) * sc.dt_h,
        "rep_pv_kwh": float(sum(r.actual_kw[t] for r in model.reps)) * sc.dt_h,
        "rep_forecast_kwh": float(sum(r.forecast_kw[t] for r in model.reps)) * sc.dt_h,
        "battery_charge_kwh": charge,
        "battery_discharge_kwh": discharge,
        "battery_power_kw": (discharge - charge) / sc.dt_h,
        "battery_energy_kwh": float(sum(p.e_kwh for p in model.producers)),
        "exported_kwh": model.grid.hour_bought_kwh,
        **offers,
        "incentives_usd": usd_from_base_units(minted_units),
        "p_substation_kw": pf.p_substation_kw,
        "p_substation_kw_baseline": pfb.p_substation_kw,
        "loss_kw": pf.loss_kw,
        "loss_kw_baseline": pfb.loss_kw,
        "v_min_pu": float(pf.v_pu.min()),
        "v_max_pu": float(pf.v_pu.max()),
        "opf_max_relaxation_gap": np.nan
        if opf is None
        else float(opf.exactness.gap_by_hour.iloc[0 if model.opf_mode == "hourly" else t]),
        "opf_max_v_error_pu": np.nan
        if opf is None
        else float(opf.exactness.v_error_by_hour.iloc[0 if model.opf_mode == "hourly" else t]),
        "opf_status": "infeasible" if opf is None else "ok",
        "fallback": FALLBACK_RULE if opf is None else "",
        "tx_count": model.hour_tx,
        "gas_used": int(sum(model.hour_gas.values())),
        "gas_used_letb": int(model.hour_gas["letb"]),
        "gas_used_retb": int(model.hour_gas["retb"]),
    }
    model.hourly_rows.append(row)
    return row


def record_agents(model: EnergyMarketModel, t: int) -> None:
    """One row per agent for hour t (Results.agents): a tuple in AGENT_COLUMNS order, a third
    of a dict's memory (a year of a real grid keeps about a million of them)."""
    for a in model.agents:
        rep = getattr(a, "reputation", None)
        model.agent_rows.append(
            (
                t,
                a.unique_id,
                a.role,
                int(a.bus),
                int(getattr(a, "area", -1)),
                float(a.soc) if hasattr(a, "soc") else np.nan,
                float(rep) if rep is not None else np.nan,
                float(a.cost_usd),
                float(getattr(a, "cost_usd_baseline", np.nan)),
            )
        )


def summary(
    model: EnergyMarketModel,
    hourly: pd.DataFrame,
    gas: pd.DataFrame,
    trades: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """KPIs of the hours run: energy, cost saving, gas per operation, chain capacity, OPF
    (`trades`: the trades frame if already built, else built from model.trade_rows)."""
    sc = model.params
    if hourly.empty:
        return {"hours": 0}
    cost = float(hourly["user_cost_usd"].sum())
    cost_b = float(hourly["user_cost_usd_baseline"].sum())
    grid = float(hourly["grid_import_kwh"].sum())
    grid_b = float(hourly["grid_import_kwh_baseline"].sum())
    ops = gas[gas["t"] >= 0]
    by_op = {
        f"{c}.{o}": {
            "count": len(g),
            "mean": float(g["gas_used"].mean()),
            "max": int(g["gas_used"].max()),
        }
        for (c, o), g in ops.groupby(["contract", "operation"])
    }
    budget_per_hour = sc.chain_block_gas_limit * 3600.0 / sc.chain_block_period_s
    cap_used = {
        c: float(hourly[f"gas_used_{c}"].max() / budget_per_hour * 100.0) for c in ("letb", "retb")
    }
    return {
        "hours": len(hourly),
        "seed": sc.seed,
        "chain": model.chain_spec,
        "users": len(model.users),
        "producers": len(model.producers),
        "reps": len(model.reps),
        "letb_areas": model.n_areas,
        "demand_kwh": float(hourly["demand_kwh"].sum()),
        "local_kwh": float(hourly["local_kwh"].sum()),
        "renewable_kwh": float(hourly["renewable_kwh"].sum()),
        "grid_import_kwh": grid,
        "grid_import_kwh_baseline": grid_b,
        "grid_energy_saved_kwh": grid_b - grid,
        "grid_energy_saved_pct": 100.0 * (grid_b - grid) / grid_b if grid_b else 0.0,
        "user_cost_usd": cost,
        "user_cost_usd_baseline": cost_b,
        "cost_saving_usd": cost_b - cost,
        "cost_saving_pct": 100.0 * (cost_b - cost) / cost_b if cost_b else 0.0,
        "incentives_usd": float(hourly["incentives_usd"].sum()),
        # refunds LETB holds for its users at the end (the users' money, not a cost: the next
        # request would spend it, withdraw() pays it out)
        "letb_credits_usd": usd_from_base_units(sum(model.letb_credit_units.values())),
        "trades": len(model.trade_rows),
        # scale: every agent signs its own transactions (operator and TDNO included); tx/s is
        # tx_total / timing_s["wall_s"] (wall-clock figures stay under timing_s)
        "agents": len(model.users) + len(model.producers) + len(model.reps) + 2,
        "tx_total": len(gas),
        "tx_count": len(ops),
        "total_gas": int(ops["gas_used"].sum()),
        "gas_by_operation": by_op,
        "chain_capacity_used_pct": cap_used,
        "chain_budget": {
            "block_gas_limit": sc.chain_block_gas_limit,
            "block_period_s": sc.chain_block_period_s,
        },
        "opf_mode": model.opf_mode,
        "opf_fallback_hours": [int(f["t"]) for f in model.opf_failures if f["t"] is not None],
        "opf_failures": [
            {k: (None if v is None else v if isinstance(v, str) else int(v)) for k, v in f.items()}
            for f in model.opf_failures
        ],
        "opf_max_relaxation_gap": float(hourly["opf_max_relaxation_gap"].max()),
        "opf_max_v_error_pu": float(hourly["opf_max_v_error_pu"].max()),
        "v_min_pu": float(hourly["v_min_pu"].min()),
        "v_max_pu": float(hourly["v_max_pu"].max()),
        "timing_s": {k: float(v) for k, v in model.timing.items()},
        "attacks": attack_summary(
            model,
            pd.DataFrame(model.trade_rows, columns=TRADE_COLUMNS) if trades is None else trades,
        ),
    }


MODEL_VARS = (
    "grid_import_kwh",
    "grid_import_kwh_baseline",
    "user_price_usd_per_mwh",
    "user_price_usd_per_mwh_baseline",
    "local_kwh",
    "renewable_kwh",
    "demand_kwh",
    "tx_count",
    "gas_used",
    "battery_power_kw",
    "dlmp_mean_usd_per_mwh",
    "incentives_usd",
    "v_min_pu",
    "v_max_pu",
)
TRADE_COLUMNS = (
    "t",
    "chain",
    "area",
    "buyer",
    "buyer_id",
    "seller",
    "producer_id",
    "nonce",
    "index",
    "e_wh",
    "price",
    "price_usd_per_mwh",
    "delivered_wh",
    "feedback",
    "incentive_usd",
    "tx_hash",
    "block",
)
AGENT_COLUMNS = (
    "t",
    "agent_id",
    "role",
    "bus",
    "area",
    "soc",
    "reputation",
    "cost_usd",
    "cost_usd_baseline",
)


def hour_value(key: str) -> Callable[[EnergyMarketModel], Any]:
    return lambda m: m.hour.get(key) if getattr(m, "hour", None) else None
