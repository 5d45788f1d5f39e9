"""`HourlyOPF`: the compiled model re-solved in place for each hour's loads and price, with
the exactness check, the loss-penalty remedy and the infeasibility diagnosis.

Speed: `HourlyOPF` compiles the one-hour problem once and re-solves it in place per hour with
its own Clarabel engine (conic.py; `backend="cvxpy"` re-solves the cvxpy DPP model instead,
the reference). The compiled problems are cached on the feeder. A horizon of `hours` > 1
(storage, EVs) is one coupled cvxpy problem.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd

from gridledger.network.devices import EVCharger, PVPlant, RegulatedPlant, Storage, ZIPLoad
from gridledger.network.feeder import Feeder
from gridledger.network.opf.exactness import (
    ac_check,
    ac_violation,
    diagnose_infeasible,
    relaxation_gap,
)
from gridledger.network.opf.model import (
    CvxpyModel,
    Device,
    ModelOptions,
    bus_hour_array,
    compiled_model,
    hour_array,
    zip_key,
)
from gridledger.network.opf.result import (
    OPFError,
    OPFExactness,
    OPFInexactWarning,
    OPFInfeasibleError,
    OPFResult,
)
from gridledger.network.powerflow import zip_arrays

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
        v0_pu: float | None = None,
        export_limit_kw: float | None = None,
        dt_h: float = 1.0,
        hours: int = 1,
        backend: str = "clarabel",
    ) -> None:
        if backend not in ("clarabel", "cvxpy"):
            raise ValueError(f"backend must be 'clarabel' or 'cvxpy', got {backend!r}")
        if not 0 < v_min_pu < v_max_pu:
            raise ValueError(f"need 0 < v_min_pu < v_max_pu, got {v_min_pu}, {v_max_pu}")
        v0_pu = feeder.v0_pu if v0_pu is None else v0_pu  # None: the feeder's slack voltage
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
        self.options = ModelOptions(
            hours=hours,
            devices=devices,
            zip_key=zip_key(zip),
            include_shunts=include_shunts,
            pv_buses=pv_buses,
            v_min_pu=float(v_min_pu),
            v_max_pu=float(v_max_pu),
            v0_pu=float(v0_pu),
            export_limit_kw=None if export_limit_kw is None else float(export_limit_kw),
            dt_h=float(dt_h),
        )
        self.backend = backend if hours == 1 else "cvxpy"
        self.engine = compiled_model(feeder, self.options, self.zip_coef, self.backend)
        self._sol: dict[str, Any] = {}

    def twin(self) -> HourlyOPF:
        """This OPF on an engine of its own (conic.py `ConicHourly.twin`), for another thread:
        its results are bit-identical to this one's. Clarabel backend, after `solve` or
        `prime`."""
        if self.backend != "clarabel":
            raise ValueError("twin() needs the clarabel backend")
        other = copy.copy(self)
        other.engine = self.engine.twin()
        other._sol = {}
        return other

    @property
    def model(self) -> CvxpyModel:
        """The cvxpy (DPP) model of these options: the reference formulation."""
        return compiled_model(self.feeder, self.options, self.zip_coef, "cvxpy")

    def _set(self, p, q, price, pen, avail) -> None:
        """Set the hour's data (kW arrays, bus order) on the engine."""
        kva = self.feeder.base_mva * 1e3
        eng = self.engine
        av = None if avail is None else avail / kva
        if self.backend == "clarabel":
            eng.set(
                p[:, 0] / kva, q[:, 0] / kva, price[0], pen[0], None if av is None else av[:, 0]
            )
        else:
            eng.set(p / kva, q / kva, price, pen, av)

    def _run(self, p, q, price, pen, avail) -> tuple[str, float]:
        """Set the hour's data on the engine, solve, keep the values."""
        self._set(p, q, price, pen, avail)
        eng = self.engine
        status, t = eng.solve()
        if status in ("optimal", "optimal_inaccurate"):
            self._sol = eng.values()
        return status, t

    def _inputs(self, p_kw, q_kvar, price_usd_per_mwh, pv_kw, loss_penalty_usd_per_mwh, hour):
        """`solve`'s arguments as (hours, p, q, price, penalty, PV availability) arrays."""
        feeder, o = self.feeder, self.options
        if isinstance(p_kw, pd.DataFrame):
            hours = p_kw.index
        elif isinstance(q_kvar, pd.DataFrame):
            hours = q_kvar.index
        else:
            hours = pd.Index([hour], name="hour")
        if len(hours) != o.hours:
            raise ValueError(f"this model is compiled for {o.hours} hour(s), got {len(hours)}")
        p = bus_hour_array(feeder, p_kw, hours, "p_kw")
        q = bus_hour_array(feeder, q_kvar, hours, "q_kvar")
        price = hour_array(price_usd_per_mwh, hours, "price_usd_per_mwh")
        pen = hour_array(loss_penalty_usd_per_mwh, hours, "loss_penalty_usd_per_mwh")
        if np.any(pen < 0):
            raise ValueError("loss_penalty_usd_per_mwh must be >= 0")
        return hours, p, q, price, pen, self._pv_available(pv_kw, hours)

    def prime(
        self,
        p_kw: pd.Series | pd.DataFrame,
        q_kvar: pd.Series | pd.DataFrame,
        price_usd_per_mwh: float | Sequence[float] | pd.Series,
        *,
        pv_kw: pd.Series | pd.DataFrame | None = None,
        loss_penalty_usd_per_mwh: float = 0.0,
        hour: Any = 0,
    ) -> None:
        """Set an hour's data (as `solve` takes it) on the engine without solving: a solver
        built here is the one a first `solve` of that hour builds (see `twin`)."""
        _, p, q, price, pen, avail = self._inputs(
            p_kw, q_kvar, price_usd_per_mwh, pv_kw, loss_penalty_usd_per_mwh, hour
        )
        self._set(p, q, price, pen, avail)

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
        hours, p, q, price, pen, avail = self._inputs(
            p_kw, q_kvar, price_usd_per_mwh, pv_kw, loss_penalty_usd_per_mwh, hour
        )
        status, t_solver = self._run(p, q, price, pen, avail)
        if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
            raise diagnose_infeasible(feeder, o, self.zip_coef, p, q, price, pen, avail, hours)
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
                violation = ac_violation(feeder, o, result)
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

    # ------------------------------------------------------------------------------
    def _pv_available(self, pv_kw: Any, hours: pd.Index) -> np.ndarray | None:
        buses = self.options.pv_buses
        if not buses:
            if pv_kw is not None and np.any(
                bus_hour_array(self.feeder, pv_kw, hours, "pv_kw") != 0
            ):
                raise ValueError("pv_kw given but the feeder has no PV capacity (include_pv?)")
            return None
        pos = self.feeder.topology.positions(buses)
        cap = self.pv_capacity_kw.to_numpy()[pos][:, None]
        if pv_kw is None:
            return np.repeat(cap, len(hours), axis=1)
        full = bus_hour_array(self.feeder, pv_kw, hours, "pv_kw")
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
        """Per-hour relaxation gap of the last solution (keeps the raw current gap)."""
        gap, self._current_gap = relaxation_gap(self.feeder, self._sol)
        return gap

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
        if check:
            v_ac, p_ac = ac_check(f, o, self.zip_coef, p, q, gen_p, gen_q)
        else:
            v_ac, p_ac = np.full((f.n_buses, T), np.nan), np.full(T, np.nan)
        verr = np.abs(v - v_ac).max(axis=0)
        exact = OPFExactness.of_hours(hours, gap, verr, self._current_gap)
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
