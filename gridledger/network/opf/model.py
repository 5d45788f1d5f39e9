"""The DistFlow SOCP of a radial feeder as a cvxpy (DPP) model, compiled once per options.

Branch flow model (Farivar & Low; paper eq. 17-22), per hour t, line k = (i -> j), in per unit:
    balance P at j:  P_k - r_k l_k - sum_{children c of j} P_c + g_j = d_j        (dual -> DLMP_P)
    balance Q at j:  Q_k - x_k l_k - sum_c Q_c + h_j + b_j v_j = e_j              (dual -> DLMP_Q)
    voltage drop:    v_j = v_i - 2 (r_k P_k + x_k Q_k) + (r_k² + x_k²) l_k
    relaxation:      P_k² + Q_k² <= l_k v_i  (second-order cone; exact iff equality holds)
    limits:          v_min² <= v_j <= v_max²,  v_root = v0²
with v = V², l = |I|², P/Q the sending-end flows, g/h device injections, d/e loads, b the
capacitors (constant impedance, exact in v). The substation injection p0 enters the root balance.

Objective (paper eq. 23), $ over the horizon:
    sum_t dt·[ price_t·p0_t + loss_penalty_t·sum_k r_k l_k + sum_g (a p_g² + b p_g + c)
               + pv_cost·p_pv + storage_cost·(p_ch + p_dis) ]  (powers in MW).
Losses are paid through p0 (energy bought = load + losses); `loss_penalty_usd_per_mwh` is an
extra weight on losses, 0 by default and the documented remedy for inexactness (below).

DLMP (eq. 24): the dual of bus j's P balance = d(optimal cost)/d(load at j), in $/MWh; the same
for Q in $/Mvarh. p0 appears only in the root balance and the objective (and in the optional
export limit), so at the substation the P-DLMP equals the energy price exactly (minus the
export limit's shadow price in hours where that limit binds).

ZIP loads: the constant-current term is linearised as V ≈ (1 + v)/2 (devices.ZIPLoad); the AC
check uses the exact form, so any linearisation error shows up in `max_v_error_pu`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd
import scipy.sparse as sp

from gridledger.network.devices import EVCharger, PVPlant, RegulatedPlant, Storage, ZIPLoad
from gridledger.network.feeder import Feeder
from gridledger.network.opf.conic import ConicHourly
from gridledger.network.opf.result import OPFError
from gridledger.network.powerflow import bus_vector

Device = RegulatedPlant | PVPlant | Storage | EVCharger

# 1e-9 keeps the relaxation gap at ~1e-7 p.u. on SCE-56; 1e-10 makes Clarabel stop with
# "almost solved" (optimal_inaccurate) at some midday hours.
_CLARABEL_OPTS = {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9}


@dataclass(frozen=True)
class ModelOptions:
    hours: int
    devices: tuple[Device, ...]
    zip_key: tuple
    include_shunts: bool
    pv_buses: tuple[int, ...]
    v_min_pu: float
    v_max_pu: float
    v0_pu: float
    export_limit_kw: float | None
    dt_h: float
    relax: bool = False


class CvxpyModel:
    """cvxpy DPP problem of a horizon of `hours` hours (1 for the hourly re-solve)."""

    def __init__(self, feeder: Feeder, o: ModelOptions, zip_coef: np.ndarray) -> None:
        topo = feeder.topology
        n, m, T = feeder.n_buses, feeder.n_lines, o.hours
        self.feeder, self.o = feeder, o
        r = feeder.lines.r_pu.to_numpy()
        x = feeder.lines.x_pu.to_numpy()
        self.r, self.x = r, x
        base = feeder.base_mva
        self.base_mva = base
        lf, lt = topo.line_from, topo.line_to
        ar = np.arange(m)
        c_in = sp.csr_matrix((np.ones(m), (lt, ar)), shape=(n, m))
        c_out = sp.csr_matrix((np.ones(m), (lf, ar)), shape=(n, m))
        s_from = sp.csr_matrix((np.ones(m), (ar, lf)), shape=(m, n))
        s_to = sp.csr_matrix((np.ones(m), (ar, lt)), shape=(m, n))
        e_root = sp.csr_matrix(([1.0], ([topo.root], [0])), shape=(n, 1))
        nonroot = np.flatnonzero(np.arange(n) != topo.root)
        sel_nonroot = sp.csr_matrix(
            (np.ones(len(nonroot)), (np.arange(len(nonroot)), nonroot)), shape=(len(nonroot), n)
        )
        self.nonroot = nonroot

        P = cp.Variable((m, T), name="P")
        Q = cp.Variable((m, T), name="Q")
        L = cp.Variable((m, T), name="l")
        V = cp.Variable((n, T), name="v")
        p0 = cp.Variable((1, T), name="p0")
        q0 = cp.Variable((1, T), name="q0")
        self.P, self.Q, self.L, self.V, self.p0, self.q0 = P, Q, L, V, p0, q0

        # parameters (per unit loads; $/MWh prices)
        self.pd0 = cp.Parameter((n, T), name="pd0")
        self.qd0 = cp.Parameter((n, T), name="qd0")
        self.price = cp.Parameter(T, name="price")
        self.loss_pen = cp.Parameter(T, nonneg=True, name="loss_penalty")
        self.zip_coef = zip_coef
        self.has_zip_v = bool(
            np.any(zip_coef[0] + zip_coef[1] / 2) or np.any(zip_coef[3] + zip_coef[4] / 2)
        )
        if self.has_zip_v:
            self.pd1 = cp.Parameter((n, T), name="pd1")
            self.qd1 = cp.Parameter((n, T), name="qd1")

        def bus_map(buses: Sequence[int]) -> sp.csr_matrix:
            pos = topo.positions(buses)
            return sp.csr_matrix(
                (np.ones(len(pos)), (pos, np.arange(len(pos)))), shape=(n, len(pos))
            )

        inj_p: Any = 0
        inj_q: Any = 0
        cons: list[Any] = []
        dt_mw = o.dt_h * base  # $/h per pu·($/MWh) factor
        cost: Any = dt_mw * (self.price @ p0[0, :]) + dt_mw * (self.loss_pen @ (r @ L))

        gens = [d for d in o.devices if isinstance(d, RegulatedPlant)]
        stores = [d for d in o.devices if isinstance(d, Storage)]
        evs = [d for d in o.devices if isinstance(d, EVCharger)]
        self.gens, self.stores, self.evs = gens, stores, evs
        kva = base * 1e3
        if gens:
            G = len(gens)
            pg = cp.Variable((G, T), name="pg")
            qg = cp.Variable((G, T), name="qg")
            self.pg, self.qg = pg, qg
            B = bus_map([g.bus for g in gens])
            inj_p = inj_p + B @ pg
            inj_q = inj_q + B @ qg
            col = lambda vals: np.array(vals, dtype=float)[:, None]  # noqa: E731
            cons += [
                pg >= col([g.p_min_kw for g in gens]) / kva,
                pg <= col([g.p_max_kw for g in gens]) / kva,
                qg >= col([g.q_min_kvar for g in gens]) / kva,
                qg <= col([g.q_max_kvar for g in gens]) / kva,
            ]
            a = np.array([g.cost_a_usd_per_mw2h for g in gens])
            b = np.array([g.cost_b_usd_per_mwh for g in gens])
            c = np.array([g.cost_c_usd_per_h for g in gens])
            cost = cost + o.dt_h * (
                cp.sum(cp.multiply(a[:, None] * base**2, cp.square(pg)))
                + cp.sum(b @ pg) * base
                + T * c.sum()
            )
        # PV: one variable per PV bus (feeder nameplates + PVPlant devices), 0 <= p <= available
        self.pv_buses = list(o.pv_buses)
        if self.pv_buses:
            K = len(self.pv_buses)
            ppv = cp.Variable((K, T), name="ppv")
            self.ppv = ppv
            self.pv_avail = cp.Parameter((K, T), nonneg=True, name="pv_avail")
            B = bus_map(self.pv_buses)
            inj_p = inj_p + B @ ppv
            cons += [ppv >= 0, ppv <= self.pv_avail]
            qmax = np.zeros(K)
            pv_cost = np.zeros(K)
            for d in o.devices:
                if isinstance(d, PVPlant):
                    k = self.pv_buses.index(d.bus)
                    qmax[k] += d.q_max_kvar / kva
                    pv_cost[k] = max(pv_cost[k], d.cost_usd_per_mwh)
            if qmax.any():
                qpv = cp.Variable((K, T), name="qpv")
                self.qpv = qpv
                inj_q = inj_q + B @ qpv
                cons += [cp.abs(qpv) <= qmax[:, None]]
            if pv_cost.any():
                cost = cost + dt_mw * cp.sum(pv_cost @ ppv)
        if stores:
            S = len(stores)
            pch = cp.Variable((S, T), nonneg=True, name="pch")
            pdis = cp.Variable((S, T), nonneg=True, name="pdis")
            E = cp.Variable((S, T + 1), name="e")  # kWh
            self.pch, self.pdis, self.E = pch, pdis, E
            B = bus_map([s.bus for s in stores])
            inj_p = inj_p + B @ (pdis - pch)
            col = lambda vals: np.array(vals, dtype=float)[:, None]  # noqa: E731
            eta_c = col([s.eta_ch for s in stores])
            eta_d = col([s.eta_dis for s in stores])
            cons += [
                pch <= col([s.p_ch_max_kw for s in stores]) / kva,
                pdis <= col([s.p_dis_max_kw for s in stores]) / kva,
                E[:, 0] == np.array([s.e0_kwh for s in stores]),
                E[:, 1:]
                == E[:, :-1]
                + o.dt_h * kva * (cp.multiply(eta_c, pch) - cp.multiply(1.0 / eta_d, pdis)),
                col([s.e_min_kwh for s in stores]) <= E,
                col([s.e_max_kwh for s in stores]) >= E,
            ]
            ends = [i for i, s in enumerate(stores) if s.end_at_least_init]
            if ends:
                cons.append(E[ends, T] >= np.array([stores[i].e0_kwh for i in ends]))
            sc = np.array([s.cost_usd_per_mwh for s in stores])
            cost = cost + dt_mw * cp.sum(sc @ (pch + pdis))
        if evs:
            NE = len(evs)
            pev = cp.Variable((NE, T), nonneg=True, name="pev")
            self.pev = pev
            mask = np.zeros((NE, T))
            for i, ev in enumerate(evs):
                ev.check_feasible(o.dt_h)
                mask[i, ev.t_arrive : min(ev.t_depart, T)] = ev.p_max_kw / kva
                if ev.t_depart > T:
                    raise ValueError(
                        f"EVCharger at bus {ev.bus}: t_depart = {ev.t_depart} is beyond the "
                        f"horizon of {T} hours"
                    )
            B = bus_map([e.bus for e in evs])
            inj_p = inj_p - B @ pev
            cons += [
                pev <= mask,
                o.dt_h * kva * cp.sum(pev, axis=1) == np.array([e.e_demand_kwh for e in evs]),
            ]

        shunt = feeder.buses.shunt_kvar.to_numpy() / kva if o.include_shunts else np.zeros(n)
        shunt_g = feeder.buses.shunt_kw.to_numpy() / kva if o.include_shunts else np.zeros(n)
        lhs_p = c_in @ (P - sp.diags(r) @ L) - c_out @ P + e_root @ p0 + inj_p
        lhs_q = c_in @ (Q - sp.diags(x) @ L) - c_out @ Q + e_root @ q0 + inj_q
        if shunt.any():
            lhs_q = lhs_q + sp.diags(shunt) @ V
        if shunt_g.any():
            lhs_p = lhs_p - sp.diags(shunt_g) @ V
        if self.has_zip_v:
            lhs_p = lhs_p - cp.multiply(self.pd1, V)
            lhs_q = lhs_q - cp.multiply(self.qd1, V)
        self.bal_p = lhs_p == self.pd0
        self.bal_q = lhs_q == self.qd0
        vf = s_from @ V
        cons += [
            self.bal_p,
            self.bal_q,
            s_to @ V == vf - 2 * (sp.diags(r) @ P + sp.diags(x) @ Q) + sp.diags(r * r + x * x) @ L,
            V[topo.root, :] == o.v0_pu**2,
            cp.SOC(
                cp.vec(L + vf, order="F"),
                cp.vstack(
                    [cp.vec(2 * P, order="F"), cp.vec(2 * Q, order="F"), cp.vec(L - vf, order="F")]
                ),
                axis=0,
            ),
        ]
        vn = sel_nonroot @ V
        self.slacks: dict[str, Any] = {}
        if o.relax:
            s_lo = cp.Variable((len(nonroot), T), nonneg=True)
            s_hi = cp.Variable((len(nonroot), T), nonneg=True)
            self.slacks.update(v_lo=s_lo, v_hi=s_hi)
            cons += [vn >= o.v_min_pu**2 - s_lo, vn <= o.v_max_pu**2 + s_hi]
        else:
            cons += [vn >= o.v_min_pu**2, vn <= o.v_max_pu**2]
        if o.export_limit_kw is not None:
            lim = -o.export_limit_kw / kva
            if o.relax:
                s_ex = cp.Variable((1, T), nonneg=True)
                self.slacks["export"] = s_ex
                cons.append(p0 >= lim - s_ex)
            else:
                cons.append(p0 >= lim)
        if o.relax:
            big = 1e4  # $ per p.u.² of slack: dominant yet well conditioned
            cost = cost + big * sum(cp.sum(s) for s in self.slacks.values())
        self.problem = cp.Problem(cp.Minimize(cost), cons)
        assert self.problem.is_dcp(dpp=True)

    # ------------------------------------------------------------------------------
    def set(
        self,
        p_pu: np.ndarray,
        q_pu: np.ndarray,
        price: np.ndarray,
        loss_pen: np.ndarray,
        pv_avail_pu: np.ndarray | None,
    ) -> None:
        zc = self.zip_coef
        k0p, k1p = zc[2] + zc[1] / 2, zc[0] + zc[1] / 2
        k0q, k1q = zc[5] + zc[4] / 2, zc[3] + zc[4] / 2
        self.pd0.value = p_pu * k0p[:, None]
        self.qd0.value = q_pu * k0q[:, None]
        if self.has_zip_v:
            self.pd1.value = p_pu * k1p[:, None]
            self.qd1.value = q_pu * k1q[:, None]
        self.price.value = price
        self.loss_pen.value = loss_pen
        if self.pv_buses:
            self.pv_avail.value = pv_avail_pu

    def solve(self) -> tuple[str, float]:
        try:
            self.problem.solve(solver=cp.CLARABEL, **_CLARABEL_OPTS)
        except cp.error.SolverError as exc:
            raise OPFError(f"Clarabel failed on feeder {self.feeder.name!r}: {exc}") from exc
        return self.problem.status, float(self.problem.solver_stats.solve_time or 0.0)

    def values(self) -> dict[str, Any]:
        out = {name: getattr(self, name).value for name in ("P", "Q", "L", "V", "p0", "q0")}
        out["y_p"] = np.asarray(self.bal_p.dual_value).reshape(self.pd0.shape)
        out["y_q"] = np.asarray(self.bal_q.dual_value).reshape(self.pd0.shape)
        out["objective"] = float(self.problem.value)
        for name in ("pg", "qg", "ppv", "pch", "pdis", "E", "pev"):
            if hasattr(self, name):
                out[name] = getattr(self, name).value
        if self.pv_buses:
            out["qpv"] = self.qpv.value if hasattr(self, "qpv") else np.zeros_like(out["ppv"])
        return out


def compiled_model(
    feeder: Feeder, o: ModelOptions, zip_coef: np.ndarray, kind: str = "cvxpy"
) -> Any:
    """The compiled model for these options, cached on the feeder (built once)."""
    cache: dict = feeder.__dict__.setdefault("_opf_cache", {})
    model = cache.get((kind, o))
    if model is None:
        if kind == "cvxpy":
            model = CvxpyModel(feeder, o, zip_coef)
        else:
            model = ConicHourly(feeder, o, zip_coef, tol=_CLARABEL_OPTS["tol_feas"])
        cache[(kind, o)] = model
    return model


# ======================================================================================
# input shaping


def bus_hour_array(
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


def hour_array(value: Any, hours: pd.Index, name: str) -> np.ndarray:
    """(T,) array of a per-hour value: a scalar, a sequence or a Series indexed by hour."""
    arr = value.reindex(hours).to_numpy(float) if isinstance(value, pd.Series) else value
    arr = np.broadcast_to(np.asarray(arr, dtype=float), (len(hours),)).copy()
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: needs a finite value for every hour {list(hours)}")
    return arr


def zip_key(zip: ZIPLoad | Mapping[int, ZIPLoad] | None) -> tuple:
    """A hashable key of the ZIP option (part of `ModelOptions`, the model cache key)."""
    if zip is None or isinstance(zip, ZIPLoad):
        return (zip,)
    return tuple(sorted(zip.items()))
