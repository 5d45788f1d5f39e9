"""The hour's record and the day's KPIs: Results.hourly rows, Results.agents rows, summary.

`record_hour` (Phase.CHECKS) runs the conservation checks, bills every user for the hour in the
trading scheme and in the no-trading baseline (all metered demand at the tariff) and returns the
hour's row; `summary` turns the hourly and gas frames into the KPIs of `Results.summary`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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
    model: EnergyMarketModel,
    t: int,
    market_columns: dict[str, float],
    minted_by_chain: dict[str, int],
) -> dict[str, Any]:
    """Phase.CHECKS: conservation checks, users' bills (scheme and baseline), the hour's row
    (`market_columns`: the markets' own columns, `Market.hour_columns`)."""
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
    check_tokens(model, t, minted_by_chain)
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
        **market_columns,
        "incentives_usd": usd_from_base_units(sum(minted_by_chain.values())),
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


HOURLY_SUMS = (
    "demand_kwh",
    "local_kwh",
    "renewable_kwh",
    "grid_import_kwh",
    "grid_import_kwh_baseline",
    "user_cost_usd",
    "user_cost_usd_baseline",
    "incentives_usd",
)
HOURLY_MAXIMA = (
    "gas_used_letb",
    "gas_used_retb",
    "opf_max_relaxation_gap",
    "opf_max_v_error_pu",
    "v_max_pu",
)
HOURLY_MINIMA = ("v_min_pu",)


def _nan_merge(pick: Callable[[float, float], float], a: float | None, b: float) -> float:
    """`pick(a, b)` skipping NaN (as pandas' max/min skip it); `a` None: nothing yet."""
    if a is None or np.isnan(a):
        return b
    return a if np.isnan(b) else pick(a, b)


@dataclass
class RunTotals:
    """What the summary KPIs need of the hourly and gas frames: sums, extremes and counts,
    extended hour by hour with `add`, so a checkpoint's summary costs the hour's rows, not the
    run's (gridledger/checkpoint.py ResultsJournal). `RunTotals.of(whole frames)` gives the KPIs
    of a finished run exactly as summing the whole columns does."""

    hours: int = 0
    sums: dict[str, float] = field(default_factory=dict)
    maxima: dict[str, float] = field(default_factory=dict)
    minima: dict[str, float] = field(default_factory=dict)
    tx_total: int = 0
    """Transactions, set-up included."""
    ops: dict[tuple[str, str], tuple[int, int, int]] = field(default_factory=dict)
    """(contract, operation) -> (count, gas sum, gas max) of the market hours' transactions."""

    @classmethod
    def of(cls, hourly: pd.DataFrame, gas: pd.DataFrame) -> RunTotals:
        totals = cls()
        totals.add(hourly, gas)
        return totals

    def add(self, hourly: pd.DataFrame, gas: pd.DataFrame) -> None:
        """Take in more hourly rows and transactions (frames as `EnergyMarketModel.results()`
        builds them)."""
        if len(hourly):
            self.hours += len(hourly)
            for c in HOURLY_SUMS:
                self.sums[c] = self.sums.get(c, 0.0) + float(hourly[c].sum())
            for c in HOURLY_MAXIMA:
                self.maxima[c] = _nan_merge(max, self.maxima.get(c), float(hourly[c].max()))
            for c in HOURLY_MINIMA:
                self.minima[c] = _nan_merge(min, self.minima.get(c), float(hourly[c].min()))
        self.tx_total += len(gas)
        if not len(gas):
            return
        ops = gas[gas["t"] >= 0]
        for (c, o), g in ops.groupby(["contract", "operation"])["gas_used"]:
            n, total, top = self.ops.get((c, o), (0, 0, 0))
            self.ops[(c, o)] = (n + len(g), total + int(g.sum()), max(top, int(g.max())))


def summary(
    model: EnergyMarketModel, totals: RunTotals, trades: pd.DataFrame | None = None
) -> dict[str, Any]:
    """KPIs of the hours run: energy, cost saving, gas per operation, chain capacity, OPF
    (`totals` of the hourly and gas frames; `trades`: the trades frame if already built, else
    built from model.trade_rows when an attack summary needs it)."""
    sc = model.params
    if totals.hours == 0:
        return {"hours": 0}
    s, mx = totals.sums, totals.maxima
    cost, cost_b = s["user_cost_usd"], s["user_cost_usd_baseline"]
    grid, grid_b = s["grid_import_kwh"], s["grid_import_kwh_baseline"]
    by_op = {
        f"{c}.{o}": {"count": n, "mean": total / n, "max": top}
        for (c, o), (n, total, top) in sorted(totals.ops.items())
    }
    budget_per_hour = sc.chain_block_gas_limit * 3600.0 / sc.chain_block_period_s
    cap_used = {c: mx[f"gas_used_{c}"] / budget_per_hour * 100.0 for c in ("letb", "retb")}
    if trades is None and getattr(model, "cheaters", None):  # only attack rows read trades
        trades = pd.DataFrame(model.trade_rows, columns=TRADE_COLUMNS)
    return {
        "hours": totals.hours,
        "seed": sc.seed,
        "chain": model.chain_spec,
        "users": len(model.users),
        "producers": len(model.producers),
        "reps": len(model.reps),
        "letb_areas": model.n_areas,
        "demand_kwh": s["demand_kwh"],
        "local_kwh": s["local_kwh"],
        "renewable_kwh": s["renewable_kwh"],
        "grid_import_kwh": grid,
        "grid_import_kwh_baseline": grid_b,
        "grid_energy_saved_kwh": grid_b - grid,
        "grid_energy_saved_pct": 100.0 * (grid_b - grid) / grid_b if grid_b else 0.0,
        "user_cost_usd": cost,
        "user_cost_usd_baseline": cost_b,
        "cost_saving_usd": cost_b - cost,
        "cost_saving_pct": 100.0 * (cost_b - cost) / cost_b if cost_b else 0.0,
        "incentives_usd": s["incentives_usd"],
        # refunds LETB holds for its users at the end (the users' money, not a cost: the next
        # request would spend it, withdraw() pays it out)
        "letb_credits_usd": usd_from_base_units(sum(model.letb_credit_units.values())),
        "trades": len(model.trade_rows),
        # scale: every agent signs its own transactions (operator and TDNO included); tx/s is
        # tx_total / timing_s["wall_s"] (wall-clock figures stay under timing_s)
        "agents": len(model.users) + len(model.producers) + len(model.reps) + 2,
        "tx_total": totals.tx_total,
        "tx_count": sum(n for n, _, _ in totals.ops.values()),
        "total_gas": sum(total for _, total, _ in totals.ops.values()),
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
        "opf_max_relaxation_gap": mx["opf_max_relaxation_gap"],
        "opf_max_v_error_pu": mx["opf_max_v_error_pu"],
        "v_min_pu": totals.minima["v_min_pu"],
        "v_max_pu": mx["v_max_pu"],
        "timing_s": {k: float(v) for k, v in model.timing.items()},
        "attacks": attack_summary(model, trades),
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
