"""Optimal power flow of a radial feeder: DistFlow SOCP relaxation, DLMPs, exactness check.

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
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import cvxpy as cp
import numpy as np
import pandas as pd
import scipy.sparse as sp

from gridledger.network.devices import EVCharger, PVPlant, RegulatedPlant, Storage, ZIPLoad
from gridledger.network.feeder import Feeder
from gridledger.network.opf.conic import ConicHourly
from gridledger.network.powerflow import _sweep_matrices, bus_vector, sweep, zip_arrays

__all__ = [
    "HourlyOPF",
    "OPFError",
    "OPFExactness",
    "OPFInexactWarning",
    "OPFInfeasibleError",
    "OPFResult",
    "delivery_charge_usd_per_mwh",
    "solve_opf",
]

Device = RegulatedPlant | PVPlant | Storage | EVCharger

# 1e-9 keeps the relaxation gap at ~1e-7 p.u. on SCE-56; 1e-10 makes Clarabel stop with
# "almost solved" (optimal_inaccurate) at some midday hours.
_CLARABEL_OPTS = {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9}


class OPFError(RuntimeError):
    """The OPF solver failed for a reason other than infeasibility."""


class OPFInfeasibleError(OPFError):
    """No dispatch satisfies the limits; `cause` names the binding limit (bus, hour)."""

    def __init__(self, message: str, *, cause: str, bus: int | None = None, hour: Any = None):
        self.cause = cause
        self.bus = bus
        self.hour = hour
        super().__init__(message)


class OPFInexactWarning(UserWarning):
    """The SOCP relaxation was not tight; a remedy was applied (see the message)."""


@dataclass(frozen=True, eq=False)
class OPFExactness:
    """How far the relaxed solution is from an AC power flow solution."""

    max_relaxation_gap: float  # max |z|·|l - (P²+Q²)/v_from|, p.u. power (1e-6 = 1 VA @ 1 MVA)
    max_v_error_pu: float  # max |V_OPF - V_AC| over buses and hours (nan if not checked)
    max_current_gap_pu: float  # max |l - (P²+Q²)/v_from|, p.u. squared current (raw SOC slack)
    hours: pd.Index = field(repr=False)
    gap: np.ndarray = field(repr=False)  # per hour
    v_error: np.ndarray = field(repr=False)  # per hour
    current_gap: np.ndarray = field(repr=False)  # per hour

    @cached_property
    def gap_by_hour(self) -> pd.Series:
        return pd.Series(self.gap, index=self.hours, name="relaxation_gap")

    @cached_property
    def v_error_by_hour(self) -> pd.Series:
        return pd.Series(self.v_error, index=self.hours, name="v_error_pu")


@dataclass(frozen=True, eq=False)
class OPFResult:
    """OPF solution; frames are indexed hour × bus (hours = the input's index, 0 for a Series).

    dlmp_usd_per_mwh / dlmp_q_usd_per_mvarh: locational marginal prices of P and Q.
    v_pu: voltage magnitudes of the OPF; v_ac_pu: those of the AC check at the same injections.
    p_substation_kw / q_substation_kvar / loss_kw / p_substation_ac_kw: per hour.
    p_net_kw / q_net_kvar: net bus load at the OPF's dispatch (loads at 1 p.u. minus devices).
    dispatch: per-device frames (hour × device label): gen_p_kw, gen_q_kvar, pv_p_kw, pv_q_kvar,
        storage_p_kw (discharge positive), storage_e_kwh (end of hour), ev_p_kw.
    objective_usd: total cost over the horizon. status: "optimal", "remedied" (loss penalty
    applied, exact), "inexact" (warned) or "optimal_inaccurate" (solver's reduced accuracy).
    The pandas objects are built on first access from the stored arrays (cheap re-solves).
    """

    hours: pd.Index
    buses: pd.Index = field(repr=False)
    objective_usd: float
    exactness: OPFExactness
    status: str
    loss_penalty_usd_per_mwh: float
    solver_time_s: float
    wall_time_s: float
    arrays: dict[str, np.ndarray] = field(repr=False)  # (T, n) bus arrays or (T,) hour arrays
    dispatch_arrays: dict[str, tuple[list, np.ndarray]] = field(repr=False)

    def _bus_frame(self, key: str) -> pd.DataFrame:
        return pd.DataFrame(self.arrays[key], index=self.hours, columns=self.buses)

    def _hour_series(self, key: str) -> pd.Series:
        return pd.Series(self.arrays[key], index=self.hours, name=key)

    @cached_property
    def dlmp_usd_per_mwh(self) -> pd.DataFrame:
        return self._bus_frame("dlmp_usd_per_mwh")

    @cached_property
    def dlmp_q_usd_per_mvarh(self) -> pd.DataFrame:
        return self._bus_frame("dlmp_q_usd_per_mvarh")

    @cached_property
    def v_pu(self) -> pd.DataFrame:
        return self._bus_frame("v_pu")

    @cached_property
    def v_ac_pu(self) -> pd.DataFrame:
        return self._bus_frame("v_ac_pu")

    @cached_property
    def p_net_kw(self) -> pd.DataFrame:
        return self._bus_frame("p_net_kw")

    @cached_property
    def q_net_kvar(self) -> pd.DataFrame:
        return self._bus_frame("q_net_kvar")

    @cached_property
    def p_substation_kw(self) -> pd.Series:
        return self._hour_series("p_substation_kw")

    @cached_property
    def q_substation_kvar(self) -> pd.Series:
        return self._hour_series("q_substation_kvar")

    @cached_property
    def loss_kw(self) -> pd.Series:
        return self._hour_series("loss_kw")

    @cached_property
    def p_substation_ac_kw(self) -> pd.Series:
        return self._hour_series("p_substation_ac_kw")

    @cached_property
    def dispatch(self) -> dict[str, pd.DataFrame]:
        return {
            name: pd.DataFrame(values, index=self.hours, columns=labels)
            for name, (labels, values) in self.dispatch_arrays.items()
        }


# ======================================================================================
# the compiled model


@dataclass(frozen=True)
class _Options:
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


class _Model:
    """cvxpy DPP problem of a horizon of `hours` hours (1 for the hourly re-solve)."""

    def __init__(self, feeder: Feeder, o: _Options, zip_coef: np.ndarray) -> None:
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
        lhs_p = c_in @ (P - sp.diags(r) @ L) - c_out @ P + e_root @ p0 + inj_p
        lhs_q = c_in @ (Q - sp.diags(x) @ L) - c_out @ Q + e_root @ q0 + inj_q
        if shunt.any():
            lhs_q = lhs_q + sp.diags(shunt) @ V
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


def _get_model(feeder: Feeder, o: _Options, zip_coef: np.ndarray, kind: str = "cvxpy") -> Any:
    """The compiled model for these options, cached on the feeder (built once)."""
    cache: dict = feeder.__dict__.setdefault("_opf_cache", {})
    model = cache.get((kind, o))
    if model is None:
        if kind == "cvxpy":
            model = _Model(feeder, o, zip_coef)
        else:
            model = ConicHourly(feeder, o, zip_coef, tol=_CLARABEL_OPTS["tol_feas"])
        cache[(kind, o)] = model
    return model


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


def solve_opf(
    feeder: Feeder,
    p_kw: pd.Series | pd.DataFrame,
    q_kvar: pd.Series | pd.DataFrame,
    *,
    price_usd_per_mwh: float | Sequence[float] | pd.Series,
    pv_kw: pd.Series | pd.DataFrame | None = None,
    devices: Sequence[Device] = (),
    include_pv: bool = True,
    include_shunts: bool = True,
    zip: ZIPLoad | Mapping[int, ZIPLoad] | None = None,
    v_min_pu: float = 0.95,
    v_max_pu: float = 1.05,
    v0_pu: float = 1.0,
    loss_penalty_usd_per_mwh: float = 0.0,
    export_limit_kw: float | None = None,
    dt_h: float = 1.0,
    check_exactness: bool = True,
    gap_tol: float = 1e-6,
) -> OPFResult:
    """OPF of one hour (p_kw/q_kvar Series by bus) or a horizon (DataFrames hours × buses).

    Loads are consumption (kW/kvar, generation negative) with optional ZIP dependence;
    `pv_kw` the available PV per bus (and hour), None = nameplate (feeder `pv_kw` if
    `include_pv`, plus PVPlant devices); the OPF may curtail it. Storage and EVs need a horizon.
    A horizon without storage/EVs is solved hour by hour with the cached one-hour model
    (hours are independent then); with storage/EVs one coupled problem is solved.
    """
    opts = dict(
        devices=devices,
        include_pv=include_pv,
        include_shunts=include_shunts,
        zip=zip,
        v_min_pu=v_min_pu,
        v_max_pu=v_max_pu,
        v0_pu=v0_pu,
        export_limit_kw=export_limit_kw,
        dt_h=dt_h,
    )
    kw = dict(
        pv_kw=pv_kw,
        loss_penalty_usd_per_mwh=loss_penalty_usd_per_mwh,
        check_exactness=check_exactness,
        gap_tol=gap_tol,
    )
    multi = isinstance(p_kw, pd.DataFrame) or isinstance(q_kvar, pd.DataFrame)
    if not multi:
        return HourlyOPF(feeder, **opts).solve(p_kw, q_kvar, price_usd_per_mwh, **kw)
    hours = p_kw.index if isinstance(p_kw, pd.DataFrame) else q_kvar.index
    if any(isinstance(d, Storage | EVCharger) for d in devices):
        return HourlyOPF(feeder, hours=len(hours), **opts).solve(
            p_kw, q_kvar, price_usd_per_mwh, **kw
        )
    wall0 = time.perf_counter()
    model = HourlyOPF(feeder, **opts)
    price = _per_hour(price_usd_per_mwh, hours, "price_usd_per_mwh")
    pen = _per_hour(loss_penalty_usd_per_mwh, hours, "loss_penalty_usd_per_mwh")

    def row(x: Any, t: Any) -> Any:
        return x.loc[t] if isinstance(x, pd.DataFrame) else x

    parts = [
        model.solve(
            row(p_kw, t),
            row(q_kvar, t),
            price[i],
            **{**kw, "pv_kw": row(pv_kw, t), "loss_penalty_usd_per_mwh": pen[i]},
            hour=t,
        )
        for i, t in enumerate(hours)
    ]
    return _concat(parts, hours, wall0)


def _concat(parts: list[OPFResult], hours: pd.Index, wall0: float) -> OPFResult:
    """One result of a horizon from independent one-hour results."""
    statuses = [r.status for r in parts]
    status = next(
        (s for s in ("inexact", "remedied", "optimal_inaccurate") if s in statuses), "optimal"
    )
    gap = np.concatenate([r.exactness.gap for r in parts])
    verr = np.concatenate([r.exactness.v_error for r in parts])
    cur = np.concatenate([r.exactness.current_gap for r in parts])
    first = parts[0]
    return OPFResult(
        hours=hours,
        buses=first.buses,
        objective_usd=float(sum(r.objective_usd for r in parts)),
        exactness=OPFExactness(
            max_relaxation_gap=float(gap.max()),
            max_v_error_pu=float(verr.max()),
            max_current_gap_pu=float(cur.max()),
            hours=hours,
            gap=gap,
            v_error=verr,
            current_gap=cur,
        ),
        status=status,
        loss_penalty_usd_per_mwh=float(max(r.loss_penalty_usd_per_mwh for r in parts)),
        solver_time_s=float(sum(r.solver_time_s for r in parts)),
        wall_time_s=time.perf_counter() - wall0,
        arrays={k: np.concatenate([r.arrays[k] for r in parts]) for k in first.arrays},
        dispatch_arrays={
            k: (labels, np.concatenate([r.dispatch_arrays[k][1] for r in parts]))
            for k, (labels, _) in first.dispatch_arrays.items()
        },
    )


def delivery_charge_usd_per_mwh(result: OPFResult, from_bus: int, to_bus: int) -> pd.Series:
    """Marginal network cost of moving energy from `from_bus` to `to_bus`, per hour ($/MWh).

    = DLMP(to_bus) − DLMP(from_bus): the change of the optimal system cost when a source at
    from_bus injects 1 MWh more and a load at to_bus takes 1 MWh more (losses, and voltage
    limits when they bind). The operator ranks renewable plants for a user at `to_bus` by
    offer price + this charge (lowest delivered cost incl. losses first)."""
    d = result.dlmp_usd_per_mwh
    for b in (from_bus, to_bus):
        if b not in d.columns:
            raise KeyError(f"bus {b} is not in the OPF result")
    return (d[to_bus] - d[from_bus]).rename("delivery_charge_usd_per_mwh")
