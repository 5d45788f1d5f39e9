"""The one-hour DistFlow SOCP of `model.CvxpyModel`, written directly in Clarabel's conic form.

Same variables, constraints and objective as the cvxpy model (model.py docstring), built once
per feeder and options as sparse matrices; each hour only the vectors q (prices, loss penalty)
and b (loads, PV availability) and, with voltage-dependent ZIP loads, the V-coefficients of
the balance rows change, and are updated in place (`DefaultSolver.update`). This skips cvxpy's
per-solve canonicalisation and result unpacking. Tests check that both give the same
dispatch, cost and DLMPs.

Clarabel: minimise ½xᵀPx + qᵀx s.t. Ax + s = b, s ∈ K. Rows: zero cone (P balance, Q balance,
voltage drop, root voltage), nonnegative cone (limits), then one 4-dimensional second-order cone
per line: (l + v_from, 2P, 2Q, l − v_from). The dual z of a balance row is −d(cost)/d(load).
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any

import clarabel
import numpy as np
import scipy.sparse as sp

from gridledger.network.devices import PVPlant, RegulatedPlant

if TYPE_CHECKING:
    from gridledger.network.feeder import Feeder
    from gridledger.network.opf.model import ModelOptions

_OK = {"Solved": "optimal", "AlmostSolved": "optimal_inaccurate"}
_INFEASIBLE = {"PrimalInfeasible", "AlmostPrimalInfeasible"}


class ConicHourly:
    """Persistent Clarabel solver for one hour; `set(...)` then `solve()` then `values()`."""

    def __init__(self, feeder: Feeder, o: ModelOptions, zip_coef: np.ndarray, tol: float) -> None:
        topo = feeder.topology
        n, m = feeder.n_buses, feeder.n_lines
        base = feeder.base_mva
        kva = base * 1e3
        r = feeder.lines.r_pu.to_numpy()
        x = feeder.lines.x_pu.to_numpy()
        lf, lt = topo.line_from, topo.line_to
        root = topo.root
        gens = [d for d in o.devices if isinstance(d, RegulatedPlant)]
        pv_buses = list(o.pv_buses)
        G, K = len(gens), len(pv_buses)
        qmax_pv = np.zeros(K)
        pv_cost = np.zeros(K)
        for d in o.devices:
            if isinstance(d, PVPlant):
                k = pv_buses.index(d.bus)
                qmax_pv[k] += d.q_max_kvar / kva
                pv_cost[k] = max(pv_cost[k], d.cost_usd_per_mwh)
        has_qpv = bool(qmax_pv.any())
        # ---- variable layout
        sizes = {"P": m, "Q": m, "L": m, "V": n, "p0": 1, "q0": 1, "pg": G, "qg": G, "ppv": K}
        if has_qpv:
            sizes["qpv"] = K
        off, start = {}, 0
        for name, size in sizes.items():
            off[name] = np.arange(start, start + size)
            start += size
        nx = start
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        b_parts: list[np.ndarray] = []
        row0 = [0]

        def block(n_rows: int, entries: list[tuple[Any, Any, Any]], b: np.ndarray) -> np.ndarray:
            """Append rows; entries are (local row, column, value) arrays."""
            for rr, cc, vv in entries:
                rr, cc = np.atleast_1d(rr), np.atleast_1d(cc)
                vv = np.broadcast_to(np.asarray(vv, dtype=float), rr.shape)
                rows.append(rr + row0[0])
                cols.append(cc)
                vals.append(vv)
            b_parts.append(np.broadcast_to(np.asarray(b, dtype=float), (n_rows,)).copy())
            idx = np.arange(row0[0], row0[0] + n_rows)
            row0[0] += n_rows
            return idx

        allb = np.arange(n)
        gen_pos = topo.positions([g.bus for g in gens]) if G else np.zeros(0, int)
        pv_pos = topo.positions(pv_buses) if K else np.zeros(0, int)
        shunt = feeder.buses.shunt_kvar.to_numpy() / kva if o.include_shunts else np.zeros(n)
        shunt_g = feeder.buses.shunt_kw.to_numpy() / kva if o.include_shunts else np.zeros(n)
        # V entries of the balance rows exist only where needed (ZIP with Z/I terms: every bus,
        # refreshed each hour; otherwise capacitor buses only) — explicit zeros cost fill-in
        has_zip_v = bool(
            np.any(zip_coef[0] + zip_coef[1] / 2) or np.any(zip_coef[3] + zip_coef[4] / 2)
        )
        v_bus_p = allb if has_zip_v else np.flatnonzero(shunt_g)
        v_bus_q = allb if has_zip_v else np.flatnonzero(shunt)
        self.row_bal_p = block(
            n,
            [
                (lt, off["P"], 1.0),
                (lf, off["P"], -1.0),
                (lt, off["L"], -r),
                (root, off["p0"], 1.0),
                (gen_pos, off["pg"], 1.0),
                (pv_pos, off["ppv"], 1.0),
                (v_bus_p, off["V"][v_bus_p], -shunt_g[v_bus_p]),
            ],
            0.0,
        )
        entries_q = [
            (lt, off["Q"], 1.0),
            (lf, off["Q"], -1.0),
            (lt, off["L"], -x),
            (root, off["q0"], 1.0),
            (gen_pos, off["qg"], 1.0),
            (v_bus_q, off["V"][v_bus_q], shunt[v_bus_q]),
        ]
        if has_qpv:
            entries_q.append((pv_pos, off["qpv"], 1.0))
        self.row_bal_q = block(n, entries_q, 0.0)
        ar = np.arange(m)
        block(
            m,
            [
                (ar, off["V"][lt], 1.0),
                (ar, off["V"][lf], -1.0),
                (ar, off["P"], 2 * r),
                (ar, off["Q"], 2 * x),
                (ar, off["L"], -(r * r + x * x)),
            ],
            0.0,
        )
        block(1, [(0, off["V"][root], 1.0)], o.v0_pu**2)
        n_zero = row0[0]
        nonroot = np.flatnonzero(allb != root)
        nr = np.arange(len(nonroot))
        block(len(nonroot), [(nr, off["V"][nonroot], 1.0)], o.v_max_pu**2)
        block(len(nonroot), [(nr, off["V"][nonroot], -1.0)], -(o.v_min_pu**2))
        if o.export_limit_kw is not None:
            block(1, [(0, off["p0"], -1.0)], o.export_limit_kw / kva)
        if G:
            g = np.arange(G)
            block(G, [(g, off["pg"], 1.0)], np.array([d.p_max_kw for d in gens]) / kva)
            block(G, [(g, off["pg"], -1.0)], -np.array([d.p_min_kw for d in gens]) / kva)
            block(G, [(g, off["qg"], 1.0)], np.array([d.q_max_kvar for d in gens]) / kva)
            block(G, [(g, off["qg"], -1.0)], -np.array([d.q_min_kvar for d in gens]) / kva)
        if K:
            k = np.arange(K)
            self.row_pv = block(K, [(k, off["ppv"], 1.0)], 0.0)
            block(K, [(k, off["ppv"], -1.0)], 0.0)
            if has_qpv:
                block(K, [(k, off["qpv"], 1.0)], qmax_pv)
                block(K, [(k, off["qpv"], -1.0)], qmax_pv)
        n_nonneg = row0[0] - n_zero
        # SOC per line: s = -A x = (L + Vf, 2P, 2Q, L - Vf)
        base_row = 4 * ar
        block(
            4 * m,
            [
                (base_row, off["L"], -1.0),
                (base_row, off["V"][lf], -1.0),
                (base_row + 1, off["P"], -2.0),
                (base_row + 2, off["Q"], -2.0),
                (base_row + 3, off["L"], -1.0),
                (base_row + 3, off["V"][lf], 1.0),
            ],
            0.0,
        )
        n_rows = row0[0]
        rr = np.concatenate(rows)
        cc = np.concatenate(cols)
        vv = np.concatenate(vals)
        # locate the V entries of the balance rows in the CSC data (pattern kept, no dups)
        tag = np.zeros(len(rr))
        v_cols = off["V"]
        is_vp = np.isin(rr, self.row_bal_p) & np.isin(cc, v_cols)
        is_vq = np.isin(rr, self.row_bal_q) & np.isin(cc, v_cols)
        tag[is_vp] = 1 + (rr[is_vp] - self.row_bal_p[0])  # 1..n
        tag[is_vq] = 1 + n + (rr[is_vq] - self.row_bal_q[0])  # n+1..2n
        A = sp.coo_matrix((vv, (rr, cc)), shape=(n_rows, nx)).tocsc()
        T = sp.coo_matrix((tag + 0.5, (rr, cc)), shape=(n_rows, nx)).tocsc()  # same pattern
        A.sort_indices()
        T.sort_indices()
        assert np.array_equal(A.indices, T.indices) and np.array_equal(A.indptr, T.indptr)
        t = np.round(T.data - 0.5).astype(int)
        self.a_pos_vp = np.flatnonzero((t >= 1) & (t <= n))[np.argsort(t[(t >= 1) & (t <= n)])]
        self.a_pos_vq = np.flatnonzero(t > n)[np.argsort(t[t > n])]
        self.A = A
        self.b = np.concatenate(b_parts)
        self.shunt = shunt
        self.shunt_g = shunt_g
        # objective
        dt_mw = o.dt_h * base
        self.q_base = np.zeros(nx)
        if G:
            self.q_base[off["pg"]] = dt_mw * np.array([d.cost_b_usd_per_mwh for d in gens])
        if K:
            self.q_base[off["ppv"]] = dt_mw * pv_cost
        pdiag = np.zeros(nx)
        if G:
            pdiag[off["pg"]] = (
                2 * o.dt_h * base**2 * np.array([d.cost_a_usd_per_mw2h for d in gens])
            )
        nzp = np.flatnonzero(pdiag)  # only true entries: explicit zeros would enlarge the KKT
        self.P = sp.csc_matrix((pdiag[nzp], (nzp, nzp)), shape=(nx, nx))
        self.const = o.dt_h * sum(d.cost_c_usd_per_h for d in gens)
        self.cones = [
            clarabel.ZeroConeT(n_zero),
            clarabel.NonnegativeConeT(n_nonneg),
            *[clarabel.SecondOrderConeT(4) for _ in range(m)],
        ]
        settings = clarabel.DefaultSettings()
        settings.verbose = False
        settings.presolve_enable = False
        settings.input_sparse_dropzeros = False
        settings.tol_gap_abs = settings.tol_gap_rel = settings.tol_feas = tol
        self.settings = settings
        self.off, self.nx, self.r, self.x = off, nx, r, x
        self.dt_mw = dt_mw
        self.zip_coef = zip_coef
        self.has_zip_v = bool(
            np.any(zip_coef[0] + zip_coef[1] / 2) or np.any(zip_coef[3] + zip_coef[4] / 2)
        )
        self.gens, self.pv_buses, self.has_qpv = gens, pv_buses, has_qpv
        self.n = n
        self.solver: Any = None
        self.sol: Any = None
        self._first: tuple[np.ndarray, np.ndarray, sp.csc_matrix] | None = None
        self._built_as_is = False  # the solver holds exactly its first data, never updated

    def set(
        self,
        p_pu: np.ndarray,
        q_pu: np.ndarray,
        price: float,
        loss_pen: float,
        pv_avail_pu: np.ndarray | None,
    ) -> None:
        zc = self.zip_coef
        b = self.b
        b[self.row_bal_p] = p_pu * (zc[2] + zc[1] / 2)
        b[self.row_bal_q] = q_pu * (zc[5] + zc[4] / 2)
        if self.pv_buses:
            b[self.row_pv] = pv_avail_pu
        q = self.q_base.copy()
        q[self.off["p0"]] = self.dt_mw * price
        q[self.off["L"]] = self.dt_mw * loss_pen * self.r
        self.q = q
        a_new = None
        if self.has_zip_v:
            data = self.A.data
            data[self.a_pos_vp] = -self.shunt_g - p_pu * (zc[0] + zc[1] / 2)
            data[self.a_pos_vq] = self.shunt - q_pu * (zc[3] + zc[4] / 2)
            a_new = data
        if self.solver is None:
            # kept for `twin`: Clarabel scales the problem by the matrices it is built with
            # (A changes with the hour under voltage-dependent loads)
            self._first = (q.copy(), b.copy(), self.A.copy())
            self.solver = clarabel.DefaultSolver(self.P, q, self.A, b, self.cones, self.settings)
            self._built_as_is = True
        elif self._built_as_is and self._is_first(q, b):
            pass  # solved as built: a solve after an update to the same data rounds differently
        elif a_new is not None:
            self.solver.update(q=q, b=b, A=a_new)
        else:
            self.solver.update(q=q, b=b)
        self._built_as_is = self._built_as_is and self._is_first(q, b)

    def _is_first(self, q: np.ndarray, b: np.ndarray) -> bool:
        q0, b0, a0 = self._first
        return (
            np.array_equal(q, q0) and np.array_equal(b, b0) and np.array_equal(self.A.data, a0.data)
        )

    def twin(self) -> ConicHourly:
        """An independent engine for another thread: the same compiled problem, its solver
        built from this one's first data, so that any hour solved after an update gives the
        same bits on either (Clarabel scales by the matrices a solver is built with; the first
        solve on the data it was built with, which `set` keeps without an update, rounds
        differently from a solve after an update). This engine must have been `set` before."""
        if self.solver is None:
            raise RuntimeError("twin() needs an engine whose solver exists (call set first)")
        q0, b0, a0 = self._first
        other = copy.copy(self)
        other.A, other.b = a0.copy(), b0.copy()
        other.solver = clarabel.DefaultSolver(self.P, q0, other.A, other.b, self.cones,
                                              self.settings)  # fmt: skip
        other.sol = None
        other._built_as_is = True
        return other

    def solve(self) -> tuple[str, float]:
        """Solve; returns (status, seconds spent in Clarabel's solve call).

        Timed here: Clarabel's own `solve_time` adds the set-up time of the solver object,
        which a re-solve after `update` does not pay again."""
        t0 = time.perf_counter()
        sol = self.solver.solve()
        elapsed = time.perf_counter() - t0
        self.sol = sol
        name = str(sol.status).split(".")[-1]
        if name in _OK:
            return _OK[name], elapsed
        if name in _INFEASIBLE:
            return "infeasible", elapsed
        return name, elapsed

    def values(self) -> dict[str, Any]:
        """Primal values shaped like the cvxpy model's ((size, 1) arrays) and balance duals."""
        x = np.asarray(self.sol.x)
        z = np.asarray(self.sol.z)
        col = lambda name: x[self.off[name]][:, None]  # noqa: E731
        out = {
            "P": col("P"),
            "Q": col("Q"),
            "L": col("L"),
            "V": col("V"),
            "p0": col("p0").T,
            "q0": col("q0").T,
            "y_p": z[self.row_bal_p][:, None],
            "y_q": z[self.row_bal_q][:, None],
            "objective": float(self.sol.obj_val) + self.const,
        }
        if self.gens:
            out["pg"], out["qg"] = col("pg"), col("qg")
        if self.pv_buses:
            out["ppv"] = col("ppv")
            out["qpv"] = col("qpv") if self.has_qpv else np.zeros_like(out["ppv"])
        return out
