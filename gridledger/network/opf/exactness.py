"""How exact an OPF solution is, and why an OPF is infeasible.

Exactness: every result carries `max_relaxation_gap` = max_k,t |z_k|·|l_k − (P_k² + Q_k²)/v_i|,
the apparent power (p.u.; 1e-6 = 1 VA on a 1 MVA base) that the relaxation books in a branch
beyond its physical loss. Weighting by |z_k| makes the measure physical: on low-impedance
branches the interior-point solver leaves a squared-current slack of ~1e-6 p.u. that costs
nothing and moves no voltage (zero-impedance ties drop out entirely). The raw slack
max |l − (P² + Q²)/v_i| is reported too (`max_current_gap_pu`). And `max_v_error_pu` =
max |V_OPF − V_AC| from `run_power_flow` at the OPF's injections. If the gap exceeds `gap_tol`
(typical cause: reverse flow with an upper voltage limit binding, or negative prices), the
solve is repeated with a loss penalty (`remedy_loss_penalty_usd_per_mwh`, ×10 up to three
times) and `OPFInexactWarning` is issued. If it stays inexact and the AC power flow at the
OPF's dispatch violates a limit, the relaxation met that limit only with fictitious losses:
`OPFInfeasibleError` names the limit, bus and hour. Otherwise the status is "inexact" and the
warning says so. Prices from an inexact solution are never returned silently.

Infeasible inputs raise `OPFInfeasibleError`; its message names the binding cause found by a
relaxed solve with slack on the voltage limits and the export limit (e.g. "lower voltage limit
0.95 p.u. at bus 54, hour 19").
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd

from gridledger.network.feeder import Feeder
from gridledger.network.opf.model import ModelOptions, compiled_model
from gridledger.network.opf.result import OPFInfeasibleError, OPFResult
from gridledger.network.powerflow import _sweep_matrices, shunt_admittance, sweep


def relaxation_gap(feeder: Feeder, s: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per hour: max_k |z_k|·|l_k − (P_k² + Q_k²)/v_from| (p.u. power), the apparent power
    the relaxation books beyond the physical branch losses. Also keeps the raw squared-
    current gap max_k |l_k − (P_k² + Q_k²)/v_from| (second value)."""
    P, Q, L, V = s["P"], s["Q"], s["L"], s["V"]
    vf = V[feeder.topology.line_from]
    g = np.abs(L - (P * P + Q * Q) / vf)
    lines = feeder.lines
    z = np.hypot(lines.r_pu.to_numpy(), lines.x_pu.to_numpy())
    live = z > 0  # zero-impedance ties: l has no physical effect
    if not live.any():
        return np.zeros(L.shape[1]), np.zeros(L.shape[1])
    return (z[live][:, None] * g[live]).max(axis=0), g[live].max(axis=0)


def ac_check(
    feeder: Feeder,
    o: ModelOptions,
    zip_coef: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    gen_p: np.ndarray,
    gen_q: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """AC voltages (n, T) and substation import (T,) kW at the loads p/q and the devices'
    injections gen_p/gen_q (kW, kvar; (n, T)): the same sweep as run_power_flow, on arrays
    (exact ZIP, shunts, injections)."""
    f = feeder
    kva = f.base_mva * 1e3
    T = p.shape[1]
    v_ac = np.empty((f.n_buses, T))
    p_ac = np.empty(T)
    zc = zip_coef
    shunt = shunt_admittance(f, o.include_shunts)
    _z_bus, anc, _ = _sweep_matrices(f)
    root = f.topology.root
    for t in range(T):
        vc, _ = sweep(
            f,
            p[:, t] / kva,
            q[:, t] / kva,
            zc,
            shunt,
            gen_p[:, t] / kva,
            gen_q[:, t] / kva,
            o.v0_pu,
        )
        vm = np.abs(vc)
        v_ac[:, t] = vm
        load = (
            p[:, t] / kva * (zc[0] * vm * vm + zc[1] * vm + zc[2])
            - gen_p[:, t] / kva
            + 1j * (q[:, t] / kva * (zc[3] * vm * vm + zc[4] * vm + zc[5]) - gen_q[:, t] / kva)
            + np.conj(shunt) * vm * vm
        )
        j_root = (anc @ np.conj(load / vc))[root]
        p_ac[t] = float((o.v0_pu * np.conj(j_root)).real * kva)
    return v_ac, p_ac


def ac_violation(
    feeder: Feeder, o: ModelOptions, result: OPFResult
) -> tuple[str, int | None, Any] | None:
    """The worst limit the AC power flow violates at the OPF's dispatch, if any."""
    f = feeder
    v = result.v_ac_pu
    lo = (o.v_min_pu - v).max().max()
    hi = (v - o.v_max_pu).max().max()
    tol = 1e-6
    if max(lo, hi) > tol:
        side, lim = ("lower", o.v_min_pu) if lo >= hi else ("upper", o.v_max_pu)
        dev = (o.v_min_pu - v) if lo >= hi else (v - o.v_max_pu)
        hour_at, bus = dev.stack().idxmax()
        return (
            f"{side} voltage limit {lim:g} p.u. at bus {bus}, hour {hour_at} "
            f"(AC voltage {v.loc[hour_at, bus]:.4f} p.u.)",
            int(bus),
            hour_at,
        )
    if o.export_limit_kw is not None:
        excess = -result.p_substation_ac_kw - o.export_limit_kw
        if excess.max() > 1e-3:
            hour_at = excess.idxmax()
            return (
                f"export limit {o.export_limit_kw:g} kW at the substation, hour {hour_at} "
                f"(AC export {-result.p_substation_ac_kw[hour_at]:.1f} kW)",
                f.substation_bus,
                hour_at,
            )
    return None


_DIAGNOSE_LOCK = threading.Lock()


def diagnose_infeasible(
    feeder: Feeder,
    o: ModelOptions,
    zip_coef: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    price: np.ndarray,
    pen: np.ndarray,
    avail: np.ndarray | None,
    hours: pd.Index,
) -> OPFInfeasibleError:
    """Solve with slack on voltage and export limits; name the most violated limit.

    One diagnosis at a time: the relaxed model is cached on the feeder and shared by the
    threads of a horizon (horizon.py)."""
    f = feeder
    kva = f.base_mva * 1e3
    with _DIAGNOSE_LOCK:
        relaxed = compiled_model(f, replace(o, relax=True), zip_coef)
        relaxed.set(p / kva, q / kva, price, pen, None if avail is None else avail / kva)
        status, _ = relaxed.solve()
        v_sq = None if relaxed.V.value is None else np.array(relaxed.V.value)
        slacks = {k: np.array(s.value) for k, s in relaxed.slacks.items()}
    base = f"OPF on feeder {f.name!r} is infeasible"
    if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        return OPFInfeasibleError(
            f"{base}; even with voltage and export limits relaxed (status {status}): "
            "check device limits (storage end state, EV energy, generator bounds)",
            cause="devices",
        )
    worst: tuple[float, str, int | None, Any] = (0.0, "", None, None)
    v = np.sqrt(np.maximum(v_sq, 0))
    for key, val in slacks.items():
        if val.size == 0 or val.max() <= worst[0]:
            continue
        i, t = np.unravel_index(int(np.argmax(val)), val.shape)
        hour = hours[t]
        if key == "export":
            msg = (
                f"export limit {o.export_limit_kw:g} kW at the substation, hour {hour} "
                f"(needs {val[i, t] * kva:.1f} kW more export)"
            )
            worst = (float(val.max()), msg, f.substation_bus, hour)
        else:
            bus = int(f.bus_ids[relaxed.nonroot[i]])
            lim = o.v_min_pu if key == "v_lo" else o.v_max_pu
            side = "lower" if key == "v_lo" else "upper"
            msg = (
                f"{side} voltage limit {lim:g} p.u. at bus {bus}, hour {hour} "
                f"(best reachable {v[relaxed.nonroot[i], t]:.4f} p.u.)"
            )
            worst = (float(val.max()), msg, bus, hour)
    if worst[2] is None:
        return OPFInfeasibleError(f"{base} (solver: infeasible; no slack needed)", cause="?")
    return OPFInfeasibleError(f"{base}: {worst[1]}", cause=worst[1], bus=worst[2], hour=worst[3])
