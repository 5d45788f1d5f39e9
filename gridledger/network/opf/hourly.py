"""`HourlyOPF`: the compiled model re-solved in place for each hour's loads and price, with
the exactness check, the loss-penalty remedy and the infeasibility diagnosis.

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

Speed: `HourlyOPF` compiles the one-hour problem once (cvxpy DPP Parameters) and re-solves it
per hour with Clarabel through cvxpy. The compiled problems are cached on the feeder.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd

from gridledger.network.devices import EVCharger, PVPlant, RegulatedPlant, Storage, ZIPLoad
from gridledger.network.feeder import Feeder
from gridledger.network.opf.model import Device, _get_model, _Model, _Options
from gridledger.network.opf.result import (
    OPFError,
    OPFExactness,
    OPFInexactWarning,
    OPFInfeasibleError,
    OPFResult,
)
from gridledger.network.powerflow import _sweep_matrices, bus_vector, sweep, zip_arrays

# ======================================================================================
# input shaping


def _frame(
    feeder: Feeder, values: pd.Series | pd.DataFrame | np.ndarray | None, hours: pd.Index, name: str
) -> np.ndarray:
    """(n, T) array in bus order from a Series (one hour) or DataFrame (hours × buses)."""
    n, T = feeder.n_buses, len(hours)
    if values is None:
        return np.zeros((n, T))
    if isinstance(values, pd.DataFrame):
        unknown = values.columns.difference(feeder.buses.index)
        if len(unknown):
            raise ValueError(f"{name}: unknown bus(es) {list(unknown)[:10]} for {feeder.name!r}")
        arr = values.reindex(columns=feeder.buses.index, fill_value=0.0).to_numpy(float).T
    elif isinstance(values, pd.Series) or np.ndim(values) <= 1:
        arr = np.repeat(bus_vector(feeder, values, name)[:, None], T, axis=1)
    else:
        arr = np.asarray(values, dtype=float)
    if arr.shape != (n, T):
        raise ValueError(f"{name}: expected {T} hour(s) × {n} buses, got shape {arr.T.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: non-finite values")
    return arr


def _per_hour(value: Any, hours: pd.Index, name: str) -> np.ndarray:
    arr = value.reindex(hours).to_numpy(float) if isinstance(value, pd.Series) else value
    arr = np.broadcast_to(np.asarray(arr, dtype=float), (len(hours),)).copy()
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: needs a finite value for every hour {list(hours)}")
    return arr


def _zip_key(zip: ZIPLoad | Mapping[int, ZIPLoad] | None) -> tuple:
    if zip is None or isinstance(zip, ZIPLoad):
        return (zip,)
    return tuple(sorted(zip.items()))


# ======================================================================================
# public API


class HourlyOPF:
    """One-hour OPF compiled once (cvxpy DPP) and re-solved for each hour's loads and price.

    Devices: RegulatedPlant and PVPlant (storage and EVs need a horizon: use `solve_opf` with a
    DataFrame). Options as in `solve_opf`.
    """

    def __init__(
        self,
        feeder: Feeder,
        *,
        devices: Sequence[Device] = (),
        include_pv: bool = True,
        include_shunts: bool = True,
        zip: ZIPLoad | Mapping[int, ZIPLoad] | None = None,
        v_min_pu: float = 0.95,
        v_max_pu: float = 1.05,
        v0_pu: float = 1.0,
        export_limit_kw: float | None = None,
        dt_h: float = 1.0,
        hours: int = 1,
        backend: str = "clarabel",
    ) -> None:
        if backend not in ("clarabel", "cvxpy"):
            raise ValueError(f"backend must be 'clarabel' or 'cvxpy', got {backend!r}")
        if not 0 < v_min_pu < v_max_pu:
            raise ValueError(f"need 0 < v_min_pu < v_max_pu, got {v_min_pu}, {v_max_pu}")
        if not v_min_pu <= v0_pu <= v_max_pu:
            raise ValueError(f"v0_pu = {v0_pu} is outside [{v_min_pu}, {v_max_pu}]")
        if dt_h <= 0:
            raise ValueError(f"dt_h must be > 0, got {dt_h}")
        devices = tuple(devices)
        for d in devices:
            if not isinstance(d, RegulatedPlant | PVPlant | Storage | EVCharger):
                raise TypeError(f"unsupported device {d!r}")
            if d.bus not in feeder.topology.pos:
                raise ValueError(f"{type(d).__name__} at unknown bus {d.bus}")
        if hours == 1 and any(isinstance(d, Storage | EVCharger) for d in devices):
            raise ValueError("Storage and EVCharger couple hours: solve a horizon (DataFrame)")
        self.feeder = feeder
        self.include_pv = include_pv
        self.zip = zip
        self.zip_coef = zip_arrays(feeder, zip)
        cap = feeder.buses.pv_kw.to_numpy().copy() if include_pv else np.zeros(feeder.n_buses)
        for d in devices:
            if isinstance(d, PVPlant):
                cap[feeder.topology.pos[d.bus]] += d.capacity_kw
        self.pv_capacity_kw = pd.Series(cap, index=feeder.buses.index)
        pv_buses = tuple(int(b) for b in feeder.bus_ids[cap > 0])
        self.options = _Options(
            hours=hours,
            devices=devices,
            zip_key=_zip_key(zip),
            include_shunts=include_shunts,
            pv_buses=pv_buses,
            v_min_pu=float(v_min_pu),
            v_max_pu=float(v_max_pu),
            v0_pu=float(v0_pu),
            export_limit_kw=None if export_limit_kw is None else float(export_limit_kw),
            dt_h=float(dt_h),
        )
        self.backend = backend if hours == 1 else "cvxpy"
        self.engine = _get_model(feeder, self.options, self.zip_coef, self.backend)
        self._sol: dict[str, Any] = {}

    @property
    def model(self) -> _Model:
        """The cvxpy (DPP) model of these options: the reference formulation."""
        return _get_model(self.feeder, self.options, self.zip_coef, "cvxpy")

    def _run(self, p, q, price, pen, avail) -> tuple[str, float]:
        """Set the hour's data on the engine, solve, keep the values."""
        kva = self.feeder.base_mva * 1e3
        eng = self.engine
        av = None if avail is None else avail / kva
        if self.backend == "clarabel":
            eng.set(
                p[:, 0] / kva, q[:, 0] / kva, price[0], pen[0], None if av is None else av[:, 0]
            )
        else:
            eng.set(p / kva, q / kva, price, pen, av)
        status, t = eng.solve()
        if status in ("optimal", "optimal_inaccurate"):
            self._sol = eng.values()
        return status, t

    def solve(
        self,
        p_kw: pd.Series | pd.DataFrame,
        q_kvar: pd.Series | pd.DataFrame,
        price_usd_per_mwh: float | Sequence[float] | pd.Series,
        *,
        pv_kw: pd.Series | pd.DataFrame | None = None,
        loss_penalty_usd_per_mwh: float = 0.0,
        check_exactness: bool = True,
        gap_tol: float = 1e-6,
        remedy_loss_penalty_usd_per_mwh: float = 10.0,
        hour: Any = 0,
    ) -> OPFResult:
        """Solve for loads p_kw/q_kvar (Series by bus = one hour labelled `hour`, or DataFrame
        hours × buses), energy price per hour and PV availability `pv_kw` (kW per bus; None =
        nameplate)."""
        wall0 = time.perf_counter()
        feeder, o = self.feeder, self.options
        if isinstance(p_kw, pd.DataFrame):
            hours = p_kw.index
        elif isinstance(q_kvar, pd.DataFrame):
            hours = q_kvar.index
        else:
            hours = pd.Index([hour], name="hour")
        if len(hours) != o.hours:
            raise ValueError(f"this model is compiled for {o.hours} hour(s), got {len(hours)}")
        p = _frame(feeder, p_kw, hours, "p_kw")
        q = _frame(feeder, q_kvar, hours, "q_kvar")
        price = _per_hour(price_usd_per_mwh, hours, "price_usd_per_mwh")
        pen = _per_hour(loss_penalty_usd_per_mwh, hours, "loss_penalty_usd_per_mwh")
        if np.any(pen < 0):
            raise ValueError("loss_penalty_usd_per_mwh must be >= 0")
        avail = self._pv_available(pv_kw, hours)
        status, t_solver = self._run(p, q, price, pen, avail)
        if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            raise self._diagnose(p, q, price, pen, avail, hours)
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            raise OPFError(f"OPF on feeder {feeder.name!r}: solver status {status!r}")
        gap = self._gap()
        used_pen = pen
        tried = []
        if gap.max() > gap_tol:
            extra = remedy_loss_penalty_usd_per_mwh
            for _ in range(4):
                used_pen = pen + extra
                status, t2 = self._run(p, q, price, used_pen, avail)
                t_solver += t2
                if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
                    raise OPFError(
                        f"OPF on feeder {feeder.name!r}: solver status {status!r} with loss "
                        f"penalty +{extra:g} $/MWh (remedy for gap {gap.max():.3g})"
                    )
                new_gap = self._gap()
                tried.append((extra, float(new_gap.max())))
                if new_gap.max() <= gap_tol:
                    break
                extra *= 10
            exact = new_gap.max() <= gap_tol
            result = self._result(
                p,
                q,
                hours,
                new_gap,
                "remedied" if exact else "inexact",
                used_pen,
                t_solver,
                wall0,
                check_exactness or not exact,
            )
            if not exact:
                violation = self._ac_violation(result)
                if violation is not None:
                    msg, bus, hour_at = violation
                    raise OPFInfeasibleError(
                        f"OPF on feeder {feeder.name!r} has no exact solution: {msg}; the SOCP "
                        f"relaxation meets the limits only with fictitious losses (gap "
                        f"{new_gap.max():.3g} p.u. after loss penalties {tried})",
                        cause=msg,
                        bus=bus,
                        hour=hour_at,
                    )
            warnings.warn(
                f"OPF on {feeder.name!r}: SOCP relaxation not exact (gap {gap.max():.3g} p.u. "
                f"> {gap_tol:g}, hour(s) {list(hours[gap > gap_tol])[:5]}); remedy: "
                f"loss penalty (+$/MWh, gap) {tried}"
                + ("" if exact else "; STILL INEXACT: prices are approximate"),
                OPFInexactWarning,
                stacklevel=2,
            )
            return result
        return self._result(p, q, hours, gap, status, used_pen, t_solver, wall0, check_exactness)

    def _ac_violation(self, result: OPFResult) -> tuple[str, int | None, Any] | None:
        """The worst limit the AC power flow violates at the OPF's dispatch, if any."""
        o, f = self.options, self.feeder
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

    # ------------------------------------------------------------------------------
    def _pv_available(self, pv_kw: Any, hours: pd.Index) -> np.ndarray | None:
        buses = self.options.pv_buses
        if not buses:
            if pv_kw is not None and np.any(_frame(self.feeder, pv_kw, hours, "pv_kw") != 0):
                raise ValueError("pv_kw given but the feeder has no PV capacity (include_pv?)")
            return None
        pos = self.feeder.topology.positions(buses)
        cap = self.pv_capacity_kw.to_numpy()[pos][:, None]
        if pv_kw is None:
            return np.repeat(cap, len(hours), axis=1)
        full = _frame(self.feeder, pv_kw, hours, "pv_kw")
        if np.any(full < 0):
            raise ValueError("pv_kw must be >= 0")
        outside = np.flatnonzero(full.any(axis=1) & (self.pv_capacity_kw.to_numpy() == 0))
        if len(outside):
            raise ValueError(f"pv_kw: bus {self.feeder.bus_ids[outside[0]]} has no PV capacity")
        over = full[pos] > cap + 1e-9
        if over.any():
            k = int(np.argwhere(over)[0][0])
            raise ValueError(f"pv_kw at bus {buses[k]} exceeds its capacity {cap[k, 0]:g} kW")
        return full[pos]

    def _gap(self) -> np.ndarray:
        """Per hour: max_k |z_k|·|l_k − (P_k² + Q_k²)/v_from| (p.u. power), the apparent power
        the relaxation books beyond the physical branch losses. Also keeps the raw squared-
        current gap max_k |l_k − (P_k² + Q_k²)/v_from| in `self._current_gap`."""
        s = self._sol
        P, Q, L, V = s["P"], s["Q"], s["L"], s["V"]
        vf = V[self.feeder.topology.line_from]
        g = np.abs(L - (P * P + Q * Q) / vf)
        lines = self.feeder.lines
        z = np.hypot(lines.r_pu.to_numpy(), lines.x_pu.to_numpy())
        live = z > 0  # zero-impedance ties: l has no physical effect
        if not live.any():
            self._current_gap = np.zeros(L.shape[1])
            return np.zeros(L.shape[1])
        self._current_gap = g[live].max(axis=0)
        return (z[live][:, None] * g[live]).max(axis=0)

    def _result(
        self,
        p: np.ndarray,
        q: np.ndarray,
        hours: pd.Index,
        gap: np.ndarray,
        status: str,
        pen: np.ndarray,
        t_solver: float,
        wall0: float,
        check: bool,
    ) -> OPFResult:
        f, o, sol = self.feeder, self.options, self._sol
        kva = f.base_mva * 1e3
        dt_mw = o.dt_h * f.base_mva
        T = len(hours)
        # both backends return the balance duals y with Lagrangian f + y·(lhs - rhs), so
        # d(cost)/d(load) = -y; per MWh: DLMP = -y / (dt·base)
        lam_p = -np.asarray(sol["y_p"]).reshape(f.n_buses, T) / dt_mw
        lam_q = -np.asarray(sol["y_q"]).reshape(f.n_buses, T) / dt_mw
        v = np.sqrt(np.maximum(sol["V"], 0.0))
        # net injections of devices per bus (kW), for the AC check and reporting
        gen_p = np.zeros((f.n_buses, T))
        gen_q = np.zeros((f.n_buses, T))
        dispatch: dict[str, tuple[list, np.ndarray]] = {}
        pos = f.topology.pos
        devs = o.devices
        gens = [d for d in devs if isinstance(d, RegulatedPlant)]
        stores = [d for d in devs if isinstance(d, Storage)]
        evs = [d for d in devs if isinstance(d, EVCharger)]

        def add(name: str, devs: Sequence[Any], val: np.ndarray, sign: float, q_val=None) -> None:
            labels = [f"{type(d).__name__}@{d.bus}#{i}" for i, d in enumerate(devs)]
            dispatch[name] = (labels, val.T * kva)
            for i, d in enumerate(devs):
                gen_p[pos[d.bus]] += sign * val[i] * kva
                if q_val is not None:
                    gen_q[pos[d.bus]] += q_val[i] * kva

        if gens:
            add("gen_p_kw", gens, sol["pg"], 1.0, sol["qg"])
            dispatch["gen_q_kvar"] = (dispatch["gen_p_kw"][0], sol["qg"].T * kva)
        if o.pv_buses:
            ppv, qpv = sol["ppv"], sol["qpv"]
            dispatch["pv_p_kw"] = (list(o.pv_buses), ppv.T * kva)
            dispatch["pv_q_kvar"] = (list(o.pv_buses), qpv.T * kva)
            pv_pos = f.topology.positions(o.pv_buses)
            gen_p[pv_pos] += ppv * kva
            gen_q[pv_pos] += qpv * kva
        if stores:
            add("storage_p_kw", stores, sol["pdis"] - sol["pch"], 1.0)
            dispatch["storage_e_kwh"] = (dispatch["storage_p_kw"][0], sol["E"][:, 1:].T)
        if evs:
            add("ev_p_kw", evs, sol["pev"], -1.0)
        loss = (f.lines.r_pu.to_numpy() @ sol["L"]) * kva
        v_ac = np.full((f.n_buses, T), np.nan)
        p_ac = np.full(T, np.nan)
        if check:
            # the same sweep as run_power_flow, on arrays (exact ZIP, shunts, injections)
            zc = self.zip_coef
            shunt = f.buses.shunt_kvar.to_numpy() / kva if o.include_shunts else np.zeros(f.n_buses)
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
                    + 1j
                    * (
                        q[:, t] / kva * (zc[3] * vm * vm + zc[4] * vm + zc[5])
                        - shunt * vm * vm
                        - gen_q[:, t] / kva
                    )
                )
                j_root = (anc @ np.conj(load / vc))[root]
                p_ac[t] = float((o.v0_pu * np.conj(j_root)).real * kva)
        verr = np.abs(v - v_ac).max(axis=0)
        exact = OPFExactness(
            max_relaxation_gap=float(gap.max()),
            max_v_error_pu=float(verr.max()) if check else float("nan"),
            max_current_gap_pu=float(self._current_gap.max()),
            hours=hours,
            gap=gap,
            v_error=verr,
            current_gap=self._current_gap,
        )
        return OPFResult(
            hours=hours,
            buses=f.buses.index,
            objective_usd=float(sol["objective"]),
            exactness=exact,
            status=status,
            loss_penalty_usd_per_mwh=float(np.max(pen)),
            solver_time_s=t_solver,
            wall_time_s=time.perf_counter() - wall0,
            arrays={
                "dlmp_usd_per_mwh": lam_p.T,
                "dlmp_q_usd_per_mvarh": lam_q.T,
                "v_pu": v.T,
                "v_ac_pu": v_ac.T,
                "p_net_kw": (p - gen_p).T,
                "q_net_kvar": (q - gen_q).T,
                "p_substation_kw": sol["p0"][0] * kva,
                "q_substation_kvar": sol["q0"][0] * kva,
                "loss_kw": loss,
                "p_substation_ac_kw": p_ac,
            },
            dispatch_arrays=dispatch,
        )

    def _diagnose(
        self,
        p: np.ndarray,
        q: np.ndarray,
        price: np.ndarray,
        pen: np.ndarray,
        avail: np.ndarray | None,
        hours: pd.Index,
    ) -> OPFInfeasibleError:
        """Solve with slack on voltage and export limits; name the most violated limit."""
        f, o = self.feeder, self.options
        kva = f.base_mva * 1e3
        relaxed = _get_model(f, replace(o, relax=True), self.zip_coef)
        relaxed.set(p / kva, q / kva, price, pen, None if avail is None else avail / kva)
        status, _ = relaxed.solve()
        base = f"OPF on feeder {f.name!r} is infeasible"
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
            return OPFInfeasibleError(
                f"{base}; even with voltage and export limits relaxed (status {status}): "
                "check device limits (storage end state, EV energy, generator bounds)",
                cause="devices",
            )
        worst: tuple[float, str, int | None, Any] = (0.0, "", None, None)
        v = np.sqrt(np.maximum(relaxed.V.value, 0))
        for key, s in relaxed.slacks.items():
            val = np.asarray(s.value)
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
        return OPFInfeasibleError(
            f"{base}: {worst[1]}", cause=worst[1], bus=worst[2], hour=worst[3]
        )
