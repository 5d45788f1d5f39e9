"""What the browser page shows of a model: pure functions of an EnergyMarketModel (no Solara).

Used by the page's components (gridledger/app.py) and testable without a browser: participants'
buses, the shown hour's bus values and line flows, hourly records, agent series, gas per
operation, running totals, and when trading begins (from the plans the agents make at set-up).
"""

from __future__ import annotations

import mesa
import numpy as np
import pandas as pd


def participants(model: mesa.Model) -> dict[str, list[int]]:
    """Buses of the PV plants, prosumers and users (agents' ``role`` and ``bus``)."""
    kinds = {"rep": "PV plant", "producer": "prosumer", "user": "user"}
    out: dict[str, set[int]] = {kind: set() for kind in kinds.values()}
    for agent in model.agents:
        kind = kinds.get(getattr(agent, "role", ""))
        if kind is not None:
            out[kind].add(int(agent.bus))
    return {kind: sorted(buses) for kind, buses in out.items()}


def hour_row(frame: pd.DataFrame | pd.Series | None, t: int) -> pd.Series | None:
    """Bus values of hour ``t`` from an (hour × bus) frame (clipped to its hours)."""
    if frame is None:
        return None
    if isinstance(frame, pd.Series):
        return frame.rename(index=int)
    if frame.empty:
        return None
    hours = list(frame.index)
    row = frame.loc[t] if t in hours else frame.iloc[min(max(t, 0), len(hours) - 1)]
    return pd.Series(row.to_numpy(dtype=float), index=[int(c) for c in frame.columns])


def model_hours_done(model: mesa.Model) -> int:
    """Market hours done (``model.t``)."""
    return int(getattr(model, "t", 0))


def model_hours(model: mesa.Model) -> int:
    """Market hours of the model's scenario."""
    return int(model.params.hours)


def shown_hour(model: mesa.Model) -> int:
    """The market hour the feeder view shows: the last hour done (hour 0 before any step)."""
    return max(int(getattr(model, "t", 0)) - 1, 0)


def clock_label(model: mesa.Model, t: int) -> str:
    """Clock time "HH:00" of market hour t."""
    return f"{model.params.clock_hour(t):02d}:00"


def trading_schedule(model: mesa.Model) -> dict[str, int | None]:
    """First market hour of each market, as planned at set-up: `retb` when the PV plants'
    stable window opens, `letb` the first hour a prosumer plans to sell stored energy (None if
    never in the run)."""
    hours = model_hours(model)
    windows = [a.window for a in model.agents if getattr(a, "role", "") == "rep"]
    retb = min((w[0] for w in windows if w[1] > w[0] and w[0] < hours), default=None)
    letb_starts = []
    for a in model.agents:
        mask = getattr(a, "sell_mask", None) if getattr(a, "role", "") == "producer" else None
        if mask is not None and np.any(mask[:hours]):
            letb_starts.append(int(np.argmax(mask[:hours])))
    return {"retb": retb, "letb": min(letb_starts, default=None)}


def trading_start_line(model: mesa.Model) -> str:
    """One sentence: when trading begins (so an empty first hours is not mistaken for a fault)."""
    plan = trading_schedule(model)
    starts = [t for t in plan.values() if t is not None]
    if not starts:
        return "No trading is planned in this run's hours: no PV plant output, no stored energy."
    first = min(starts)
    parts = []
    if plan["retb"] is not None:
        parts.append(f"PV plants offer on RETB from {clock_label(model, plan['retb'])}")
    if plan["letb"] is not None:
        parts.append(f"prosumers plan to sell stored energy on LETB from "
                     f"{clock_label(model, plan['letb'])}")  # fmt: skip
    when = (
        "with the first step"
        if first == 0
        else f"at {clock_label(model, first)} (step {first + 1} of {model_hours(model)}; set "
        f"'Start at clock hour' to {model.params.clock_hour(first)} and Reset to start there)"
    )
    return f"Trading begins {when}: " + "; ".join(parts) + "."


def bus_values(model: mesa.Model, quantity: str) -> tuple[pd.Series | None, str]:
    """DLMP ($/MWh) or voltage (p.u.) per bus of the shown hour, from ``model.last_opf`` (before
    the first hour: the day-ahead OPF, if the scenario prices the day ahead)."""
    opf = getattr(model, "last_opf", None) or getattr(model, "day_ahead", None)
    if opf is None:
        return None, ""
    t = shown_hour(model)
    if quantity == "voltage":
        return hour_row(opf.v_pu, t), "voltage (p.u.)"
    return hour_row(opf.dlmp_usd_per_mwh, t), "DLMP ($/MWh)"


def line_flows(model: mesa.Model) -> pd.Series | None:
    """Active power per line (kW, indexed by to_bus) of the last metered hour, if known."""
    pf = getattr(model, "last_power_flow", None)
    if pf is None or getattr(pf, "branch", None) is None:
        return None
    branch = pf.branch
    return pd.Series(branch["p_from_kw"].to_numpy(float), index=branch["to_bus"].astype(int))


def hourly_frame(model: mesa.Model) -> pd.DataFrame:
    """One row per hour done (the model's hourly records, a superset of the DataCollector's)."""
    return pd.DataFrame(model.hourly_rows)


def agent_series(model: mesa.Model, variable: str, role: str) -> pd.DataFrame:
    """(hour × agent) frame of one agent reporter for the agents of one role."""
    frame = model.datacollector.get_agent_vars_dataframe()
    if frame.empty or variable not in frame.columns:
        return pd.DataFrame()
    ids = {a.unique_id for a in model.agents if getattr(a, "role", None) == role}
    frame = frame.reset_index()
    frame = frame[frame["AgentID"].isin(ids)]
    if frame.empty:
        return pd.DataFrame()
    return frame.pivot_table(index="Step", columns="AgentID", values=variable, aggfunc="last")


def gas_by_operation(model: mesa.Model) -> pd.DataFrame:
    """Mean gas per transaction and count by (chain, contract, operation) so far."""
    gas = pd.DataFrame(model.gas_rows)
    if not gas.empty:
        gas = gas[gas["t"] >= 0]  # market hours only (set-up transactions have t = -1)
    if gas.empty:
        return pd.DataFrame(columns=["chain", "label", "gas_mean", "count"])
    grouped = gas.groupby(["chain", "contract", "operation"])["gas_used"].agg(["mean", "count"])
    grouped = grouped.reset_index().sort_values("mean")
    grouped["label"] = grouped["contract"] + "." + grouped["operation"]
    return grouped.rename(columns={"mean": "gas_mean"})[["chain", "label", "gas_mean", "count"]]


def totals(model: mesa.Model) -> dict[str, float]:
    """Running totals of the hours done: energy by source, grid relief, users' cost, gas."""
    frame = hourly_frame(model)

    def total(column: str) -> float:
        if frame.empty:
            return 0.0  # no hour done yet
        return float(frame[column].sum()) if column in frame.columns else float("nan")

    return {
        "demand_kwh": total("demand_kwh"),
        "local_kwh": total("local_kwh"),
        "renewable_kwh": total("renewable_kwh"),
        "grid_import_kwh": total("grid_import_kwh"),
        "grid_import_kwh_baseline": total("grid_import_kwh_baseline"),
        "user_cost_usd": total("user_cost_usd"),
        "user_cost_usd_baseline": total("user_cost_usd_baseline"),
        "tx_count": total("tx_count"),
        "gas_used": total("gas_used"),
    }


__all__ = [
    "agent_series",
    "bus_values",
    "clock_label",
    "gas_by_operation",
    "hour_row",
    "hourly_frame",
    "line_flows",
    "model_hours",
    "model_hours_done",
    "participants",
    "shown_hour",
    "totals",
    "trading_schedule",
    "trading_start_line",
]
