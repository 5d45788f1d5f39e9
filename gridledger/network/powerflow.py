"""AC power flow of a radial feeder by backward/forward sweep (vectorised with numpy).

Per sweep: bus currents I = conj(S(V)/V) -> branch currents J = A·I (A = ancestor matrix,
one sparse product sums every subtree) -> voltages V = V0 - Aᵀ·(z∘J) (sums the drops along every
path). Loads are ZIP with the exact voltage dependence (devices.ZIPLoad), shunts are constant
impedance (Q injected = shunt_kvar·|V|², P drawn = shunt_kw·|V|²), PV is a constant-power
injection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gridledger.network.devices import ZIPLoad
from gridledger.network.feeder import Feeder

__all__ = [
    "PowerFlowDivergedError",
    "PowerFlowResult",
    "bus_vector",
    "run_power_flow",
    "shunt_admittance",
]


class PowerFlowDivergedError(RuntimeError):
    """The sweep did not converge; the message names the iteration count and worst bus."""


@dataclass(frozen=True)
class PowerFlowResult:
    """Solution of one AC power flow. Powers in kW/kvar, voltages in p.u."""

    v_pu: pd.Series  # voltage magnitude by bus
    va_deg: pd.Series  # voltage angle by bus (substation 0)
    loss_kw: float
    p_substation_kw: float
    q_substation_kvar: float
    iterations: int
    branch: pd.DataFrame  # per line: from_bus, to_bus, p_from_kw, q_from_kvar, i_pu, loss_kw
    p_load_kw: pd.Series  # voltage-dependent load actually drawn (ZIP, shunts, PV included)
    q_load_kvar: pd.Series


def bus_vector(
    feeder: Feeder, values: pd.Series | np.ndarray | float | None, name: str
) -> np.ndarray:
    """Values per bus as an array in the feeder's bus order (missing buses = 0).

    Accepts a Series indexed by bus (subset allowed), an array in bus order, a scalar or None."""
    n = feeder.n_buses
    if values is None:
        return np.zeros(n)
    if isinstance(values, pd.Series):
        index = feeder.buses.index
        if values.index.equals(index):
            out = values.to_numpy(dtype=float, copy=True)
        else:
            pos = index.get_indexer(values.index)
            if (pos < 0).any():
                unknown = list(values.index[pos < 0])[:10]
                raise ValueError(f"{name}: unknown bus(es) {unknown} for feeder {feeder.name!r}")
            out = np.zeros(n)
            np.add.at(out, pos, values.to_numpy(dtype=float))
    else:
        out = np.broadcast_to(np.asarray(values, dtype=float), (n,)).copy()
    bad = np.flatnonzero(~np.isfinite(out))
    if len(bad):
        raise ValueError(f"{name}: non-finite value at bus {feeder.bus_ids[bad[0]]}")
    return out


def shunt_admittance(feeder: Feeder, include: bool = True) -> np.ndarray:
    """Shunt admittance per bus in p.u., g + jb (conductance draws P, susceptance injects Q)."""
    if not include:
        return np.zeros(feeder.n_buses, dtype=complex)
    kva = feeder.base_mva * 1e3
    return (feeder.buses.shunt_kw.to_numpy() + 1j * feeder.buses.shunt_kvar.to_numpy()) / kva


def zip_arrays(feeder: Feeder, zip: ZIPLoad | Mapping[int, ZIPLoad] | None) -> np.ndarray:
    """(6, n) array of ZIP coefficients z_p, i_p, p_p, z_q, i_q, p_q per bus."""
    n = feeder.n_buses
    out = np.zeros((6, n))
    out[2] = out[5] = 1.0
    if zip is None:
        return out
    items = {int(b): zip for b in feeder.bus_ids} if isinstance(zip, ZIPLoad) else dict(zip)
    pos = feeder.topology.pos
    for b, z in items.items():
        if b not in pos:
            raise ValueError(f"zip: unknown bus {b} for feeder {feeder.name!r}")
        if not isinstance(z, ZIPLoad):
            raise TypeError(f"zip[{b}] must be a ZIPLoad, got {type(z).__name__}")
        out[:, pos[b]] = (z.z_p, z.i_p, z.p_p, z.z_q, z.i_q, z.p_q)
    return out


def _sweep_matrices(feeder: Feeder) -> tuple[np.ndarray, Any, Any]:
    """z of the line feeding each bus, ancestor matrix and its transpose (cached per feeder)."""
    cache = feeder.__dict__.get("_sweep_cache")
    if cache is None:
        topo = feeder.topology
        z_bus = np.zeros(feeder.n_buses, dtype=complex)
        k_line = topo.line_of_bus
        has = k_line >= 0
        r, x = feeder.lines.r_pu.to_numpy(), feeder.lines.x_pu.to_numpy()
        z_bus[has] = r[k_line[has]] + 1j * x[k_line[has]]
        a = topo.ancestor
        cache = (z_bus, a, a.T.tocsr())
        feeder.__dict__["_sweep_cache"] = cache
    return cache


def sweep(
    feeder: Feeder,
    p0: np.ndarray,
    q0: np.ndarray,
    zc: np.ndarray,
    shunt: np.ndarray,
    pv: np.ndarray,
    qg: np.ndarray,
    v0_pu: float = 1.0,
    tol_pu: float = 1e-10,
    max_iter: int = 100,
) -> tuple[np.ndarray, int]:
    """Backward/forward sweep on per-unit arrays in bus order; complex voltages, sweeps.

    p0/q0: ZIP loads at 1 p.u. (coefficients zc, 6 × n); shunt: shunt admittance g + jb
    (`shunt_admittance`); pv/qg: constant-power injections."""
    z_bus, a, at = _sweep_matrices(feeder)
    y_conj = np.conj(np.asarray(shunt, dtype=complex))
    v = np.full(len(p0), complex(v0_pu))
    err = np.inf
    it = 0
    for it in range(1, max_iter + 1):
        vm = np.abs(v)
        vm2 = vm * vm
        s = (
            p0 * (zc[0] * vm2 + zc[1] * vm + zc[2])
            - pv
            + 1j * (q0 * (zc[3] * vm2 + zc[4] * vm + zc[5]) - qg)
            + y_conj * vm2
        )
        i_bus = np.conj(s / v)
        j = a @ i_bus
        v_new = v0_pu - at @ (z_bus * j)
        err = float(np.max(np.abs(v_new - v)))
        v = v_new
        if not np.all(np.isfinite(v)) or np.min(np.abs(v)) < 0.2:
            worst = int(np.nanargmin(np.abs(v))) if np.all(np.isfinite(v)) else 0
            raise PowerFlowDivergedError(
                f"feeder {feeder.name!r}: voltage collapse after {it} sweeps "
                f"(bus {feeder.bus_ids[worst]}); the load is beyond the feeder's capability"
            )
        if err < tol_pu:
            return v, it
    raise PowerFlowDivergedError(
        f"feeder {feeder.name!r}: no convergence in {max_iter} sweeps "
        f"(last max |dV| = {err:.3g} p.u.)"
    )


def run_power_flow(
    feeder: Feeder,
    p_kw: pd.Series | np.ndarray | float | None = None,
    q_kvar: pd.Series | np.ndarray | float | None = None,
    *,
    include_shunts: bool = True,
    include_pv: bool = True,
    pv_kw: pd.Series | np.ndarray | None = None,
    zip: ZIPLoad | Mapping[int, ZIPLoad] | None = None,
    p_gen_kw: pd.Series | np.ndarray | None = None,
    q_gen_kvar: pd.Series | np.ndarray | None = None,
    v0_pu: float | None = None,
    tol_pu: float = 1e-10,
    max_iter: int = 100,
) -> PowerFlowResult:
    """Solve the AC power flow.

    p_kw, q_kvar: net load per bus (consumption positive, generation negative); None = the
        feeder's table values (`feeder.buses.p_kw` / `q_kvar`). ZIP coefficients apply to them.
    include_shunts: shunts (`feeder.buses.shunt_kvar`, `shunt_kw`) as constant impedance.
    v0_pu: substation voltage; None = `feeder.v0_pu`.
    include_pv: subtract PV output, `pv_kw` (per bus) or the feeder's nameplate `pv_kw` if None.
    p_gen_kw, q_gen_kvar: further constant-power injections per bus (generators, storage),
        not subject to ZIP.
    Raises PowerFlowDivergedError if |ΔV| > tol_pu after max_iter sweeps (or V collapses).
    """
    topo = feeder.topology
    base_kva = feeder.base_mva * 1e3
    p = bus_vector(feeder, feeder.buses.p_kw.to_numpy() if p_kw is None else p_kw, "p_kw")
    q = bus_vector(feeder, feeder.buses.q_kvar.to_numpy() if q_kvar is None else q_kvar, "q_kvar")
    p0, q0 = p / base_kva, q / base_kva
    zc = zip_arrays(feeder, zip)
    shunt = shunt_admittance(feeder, include_shunts)
    v0_pu = feeder.v0_pu if v0_pu is None else float(v0_pu)
    if include_pv:
        pv = bus_vector(feeder, feeder.buses.pv_kw.to_numpy() if pv_kw is None else pv_kw, "pv_kw")
        pv = pv / base_kva
    else:
        pv = np.zeros(len(p))
    pv = pv + bus_vector(feeder, p_gen_kw, "p_gen_kw") / base_kva
    qg = bus_vector(feeder, q_gen_kvar, "q_gen_kvar") / base_kva
    v, it = sweep(feeder, p0, q0, zc, shunt, pv, qg, v0_pu, tol_pu, max_iter)
    a = topo.ancestor
    vm = np.abs(v)
    vm2 = vm * vm
    p_drawn = p0 * (zc[0] * vm2 + zc[1] * vm + zc[2]) - pv + shunt.real * vm2
    q_drawn = q0 * (zc[3] * vm2 + zc[4] * vm + zc[5]) - shunt.imag * vm2 - qg
    # final currents consistent with the final voltages
    j = a @ np.conj((p_drawn + 1j * q_drawn) / v)
    s_sub = v0_pu * np.conj(j[topo.root])
    lf, lt = topo.line_from, topo.line_to
    j_line = j[lt]
    s_from = v[lf] * np.conj(j_line)
    r = feeder.lines.r_pu.to_numpy()
    loss_line = r * np.abs(j_line) ** 2
    idx = feeder.buses.index
    branch = pd.DataFrame(
        {
            "from_bus": feeder.lines.from_bus.to_numpy(),
            "to_bus": feeder.lines.to_bus.to_numpy(),
            "p_from_kw": s_from.real * base_kva,
            "q_from_kvar": s_from.imag * base_kva,
            "i_pu": np.abs(j_line),
            "loss_kw": loss_line * base_kva,
        },
        index=feeder.lines.index,
    )
    return PowerFlowResult(
        v_pu=pd.Series(vm, index=idx, name="v_pu"),
        va_deg=pd.Series(np.degrees(np.angle(v)), index=idx, name="va_deg"),
        loss_kw=float(loss_line.sum() * base_kva),
        p_substation_kw=float(s_sub.real * base_kva),
        q_substation_kvar=float(s_sub.imag * base_kva),
        iterations=it,
        branch=branch,
        p_load_kw=pd.Series(p_drawn * base_kva, index=idx, name="p_kw"),
        q_load_kvar=pd.Series(q_drawn * base_kva, index=idx, name="q_kvar"),
    )
