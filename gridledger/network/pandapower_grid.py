"""Any radial pandapower net as `GridData` (`grid_from_pandapower`), and back.

What is converted (details and the exactness argument in docs/real-grids.md):
- topology first (gridledger/network/pandapower_topology.py): out-of-service elements dropped,
  closed bus-bus switches fuse their buses, open line/trafo switches open that end, parallel
  branches are merged; the result must be one tree rooted at the single in-service ext_grid —
  else `GridTopologyError` (a loop's buses, or the count of islanded buses and an example;
  re-exported here), before any other work;
- lines and two-winding transformers become DistFlow branches (pandapower's per-unit formulas:
  one base MVA, each bus's own base kV; `LV_BASE_MVA` for a net with LV buses, else
  net.sn_mva -- see `choose_base_mva`); line charging and transformer
  magnetising (pandapower's "pi" model) become constant-impedance shunts at the end buses
  (`shunt_kw`, `shunt_kvar`); a branch open at one end leaves its exact input admittance as a
  shunt at the other end;
- loads are summed per bus; static generators go to `GridData.generators`; shunts to the bus.
What the feeder cannot represent is refused with `GridModelError` naming the element:
off-nominal transformer ratios (an active tap changer off neutral, rated voltages that differ
from the buses'), voltage-dependent loads, switches with impedance, and element tables the
model has no place for (gen, trafo3w, impedance, ward, storage, ...).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from gridledger.network.feeder import Feeder
from gridledger.network.feeder_tables import BUS_COLUMNS
from gridledger.network.grid_data import GridData, hourly_profiles
from gridledger.network.pandapower_topology import (
    GridTopologyError,
    NetTopology,
    in_service,
    radial_topology,
)

__all__ = [
    "BUS_OFFSET",
    "CONVERTER_VERSION",
    "LV_BASE_MVA",
    "GridModelError",
    "GridTopologyError",
    "choose_base_mva",
    "feeder_to_pandapower",
    "grid_from_pandapower",
    "load_kind",
]

# bump when the conversion's output changes (it keys the SimBench cache)
CONVERTER_VERSION = 4
LV_BASE_MVA = 0.1
"""Per-unit power base of a converted net with LV (< 1 kV) buses. It is the OPF's scaling: on
1-MVLV-semiurb-all-0-sw Clarabel needs 24-28 iterations an hour at 1 MVA (the last ones ending
"almost solved"), 15-19 at 0.1 MVA, with DLMPs equal to 1e-4 $/MWh; much smaller bases put the
exactness check's 1e-6 p.u. gap tolerance below the solver's accuracy (docs/scale.md)."""
BUS_OFFSET = 1
"""Feeder bus = pandapower bus index + BUS_OFFSET: the markets number buses from 1
(contracts/market_base.vy `bus >= 1`) and pandapower from 0; a constant shift maps results back
(`net.res_bus.loc[feeder_bus - BUS_OFFSET]`). Errors about the net's topology name its own
(pandapower) bus numbers."""
# element tables the feeder has no model for (refused when they have in-service rows)
_UNSUPPORTED = (
    "gen",
    "trafo3w",
    "impedance",
    "ward",
    "xward",
    "dcline",
    "storage",
    "motor",
    "asymmetric_load",
    "asymmetric_sgen",
    "svc",
    "tcsc",
    "ssc",
    "vsc",
)
_ACTIVE_TAP_CHANGERS = ("Ratio", "Symmetrical", "Ideal")


class GridModelError(ValueError):
    """The net holds an element the feeder model cannot represent exactly."""


def load_kind(profile: str) -> str:
    """SimBench load profile -> agent kind: H* household, G* business, L* farm, else other."""
    p = str(profile)
    if len(p) > 1 and p[1].isdigit():
        return {"H": "household", "G": "business", "L": "farm"}.get(p[0], "other")
    return "other"


def _generator_kind(sgen_type: str, profile: str) -> str:
    t = f"{sgen_type} {profile}".lower()
    if "pv" in t or "solar" in t:
        return "pv"
    if "wind" in t or t.startswith("wp") or " wp" in t:
        return "wind"
    return "other"


# ======================================================================================
# element checks and per-unit values


def _check_model(net: Any, label: str, trafos: pd.DataFrame) -> None:
    for table in _UNSUPPORTED:
        df = net.get(table, None)
        if df is not None and len(df) and len(in_service(df)):
            raise GridModelError(
                f"{label}: {len(in_service(df))} in-service {table} element(s) (e.g. index "
                f"{in_service(df).index[0]}); the feeder model has no {table} — take them "
                "out of service or convert them to loads/sgens"
            )
    load = in_service(net.load)
    for col in ("const_z_p_percent", "const_i_p_percent", "const_z_q_percent", "const_i_q_percent"):
        if col in load.columns and (load[col].fillna(0) != 0).any():
            k = load.index[(load[col].fillna(0) != 0).to_numpy()][0]
            raise GridModelError(
                f"{label}: load {k} has {col} != 0; voltage-dependent loads are given per bus "
                "to run_power_flow(zip=...), not in the net"
            )
    sw = net.switch
    zsw = sw[(sw.et == "b") & sw.closed.astype(bool)]
    if "z_ohm" in zsw.columns and (zsw.z_ohm.fillna(0) != 0).any():
        k = zsw.index[(zsw.z_ohm.fillna(0) != 0).to_numpy()][0]
        raise GridModelError(f"{label}: bus-bus switch {k} has z_ohm != 0 (not modelled)")
    vn = net.bus.vn_kv
    for k, t in trafos.iterrows():
        ratio = (t.vn_hv_kv / t.vn_lv_kv) / (vn[t.hv_bus] / vn[t.lv_bus])
        if abs(ratio - 1) > 1e-12:
            raise GridModelError(
                f"{label}: trafo {k} ({t.get('name', '')}) has an off-nominal ratio {ratio:.6g} "
                "(rated voltages differ from its buses'); the feeder model has no taps"
            )
        changer = t.get("tap_changer_type", None)
        pos, neutral = t.get("tap_pos", np.nan), t.get("tap_neutral", np.nan)
        off = pd.notna(pos) and pd.notna(neutral) and pos != neutral
        if changer in _ACTIVE_TAP_CHANGERS and off:
            raise GridModelError(
                f"{label}: trafo {k} ({t.get('name', '')}) has its {changer} tap changer at "
                f"{pos} (neutral {neutral}); the feeder model has no taps"
            )
        if bool(t.get("tap_dependency_table", False) is True):
            raise GridModelError(f"{label}: trafo {k} has a tap dependency table (not modelled)")


def choose_base_mva(net: Any) -> float:
    """`LV_BASE_MVA` for a net with in-service buses below 1 kV (LV feeders carry kW, not MW),
    else the net's own `sn_mva`."""
    bus = in_service(net.bus)
    return LV_BASE_MVA if bool((bus.vn_kv < 1.0).any()) else float(net.sn_mva)


def _branch_values(net: Any, br: pd.DataFrame, sn: float) -> pd.DataFrame:
    """z (series, p.u.) and the pi shunts y_a, y_b (p.u.) of every branch on base `sn` MVA,
    with pandapower's formulas."""
    vn = net.bus.vn_kv
    z = np.zeros(len(br), dtype=complex)
    y = np.zeros(len(br), dtype=complex)  # total shunt, half at each end
    is_line = (br.kind == "line").to_numpy()
    if is_line.any():
        ln = net.line.loc[br.element[is_line]]
        zb = vn.loc[ln.from_bus].to_numpy() ** 2 / sn
        length, par = ln.length_km.to_numpy(), ln.parallel.to_numpy()
        z[is_line] = (ln.r_ohm_per_km + 1j * ln.x_ohm_per_km).to_numpy() * length / par / zb
        c = 2 * math.pi * float(net.f_hz) * ln.c_nf_per_km.to_numpy() * 1e-9
        g = ln.g_us_per_km.to_numpy() * 1e-6
        y[is_line] = (g + 1j * c) * zb * length * par
    is_tr = ~is_line
    if is_tr.any():
        tr = net.trafo.loc[br.element[is_tr]]
        vn_lv_bus = vn.loc[tr.lv_bus].to_numpy()
        vt_lv, sn_t, par = tr.vn_lv_kv.to_numpy(), tr.sn_mva.to_numpy(), tr.parallel.to_numpy()
        scale = (vt_lv / vn_lv_bus) ** 2 * sn
        z_sc = tr.vk_percent.to_numpy() / 100 / sn_t * scale
        r_sc = tr.vkr_percent.to_numpy() / 100 / sn_t * scale
        x_sc = np.sign(z_sc) * np.sqrt(z_sc**2 - r_sc**2)
        z[is_tr] = (r_sc + 1j * x_sc) / par
        base_z = vn_lv_bus**2 / sn
        pfe = tr.pfe_kw.to_numpy() * 1e-3
        ym = tr.i0_percent.to_numpy() / 100 * sn_t
        b_mva = -np.sqrt(np.maximum(ym**2 - pfe**2, 0.0))
        k = base_z * par / vt_lv**2
        y[is_tr] = (pfe + 1j * b_mva) * k
    out = br.copy()
    out["z"] = z
    out["y"] = y
    return out


def _feeder_tables(
    net: Any, topo: NetTopology, label: str, sn: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, np.ndarray, int]:
    """Bus table, line table (parallels merged), loads, MV/LV flag per line, the root bus."""
    rep, root_bus = topo.rep, topo.root_bus
    br = _branch_values(net, topo.branches, sn)
    nodes = topo.nodes
    sn_kva = sn * 1e3
    shunt = pd.Series(0.0 + 0.0j, index=nodes)
    # pi shunts (half of y) at each closed end; a branch open at one end leaves its input
    # admittance y/2 + 1/(z + 2/y) at the closed end
    both = ~br.a_open & ~br.b_open
    half = br.y.to_numpy() / 2
    zz = br.z.to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        far = np.where(half != 0, 1 / (zz + 1 / np.where(half != 0, half, 1)), 0)
    for end, own_open, other_open in (("ra", "a_open", "b_open"), ("rb", "b_open", "a_open")):
        closed = ~br[own_open].to_numpy()
        dangling = closed & br[other_open].to_numpy()
        y_in = np.where(dangling, half + far, half)[closed]
        shunt = shunt.add(pd.Series(y_in).groupby(br[end].to_numpy()[closed]).sum(), fill_value=0)
    series = br[both & (br.ra != br.rb)].copy()
    # merge parallel branches: admittances add
    series["lo"] = np.minimum(series.ra, series.rb)
    series["hi"] = np.maximum(series.ra, series.rb)
    key = series.groupby(["lo", "hi"], sort=False).ngroup().to_numpy()
    first = pd.Series(np.arange(len(key))).groupby(key).first().to_numpy()
    zm = _parallel(series.z.to_numpy(dtype=complex), key, first)
    mvlv = np.bincount(key, weights=_is_mvlv(net, series), minlength=len(first)) > 0
    lines = pd.DataFrame(
        {
            "from_bus": series.ra.to_numpy(dtype=np.int64)[first],
            "to_bus": series.rb.to_numpy(dtype=np.int64)[first],
            "r_pu": zm.real,
            "x_pu": zm.imag,
        }
    )
    # element shunts (pandapower: p_mw drawn, q_mvar absorbed at 1 p.u., times step)
    sh = in_service(net.shunt) if "shunt" in net else None
    if sh is not None and len(sh):
        sh = sh[sh.bus.isin(rep.index)]
        step = sh.step.to_numpy() if "step" in sh.columns else 1.0
        ysh = (sh.p_mw.to_numpy() - 1j * sh.q_mvar.to_numpy()) * step / sn
        shunt = shunt.add(pd.Series(ysh).groupby(rep.loc[sh.bus].to_numpy()).sum(), fill_value=0)
    idx = pd.Index(nodes, name="bus")
    buses = pd.DataFrame(0.0, index=idx, columns=list(BUS_COLUMNS))
    load = _loads(net, rep)
    buses["p_kw"] = load.p_kw.groupby(load.bus).sum().reindex(idx, fill_value=0.0)
    buses["q_kvar"] = load.q_kvar.groupby(load.bus).sum().reindex(idx, fill_value=0.0)
    y_bus = shunt.reindex(idx, fill_value=0).to_numpy()
    buses["shunt_kw"] = y_bus.real * sn_kva
    buses["shunt_kvar"] = y_bus.imag * sn_kva
    if (buses.shunt_kw < 0).any():
        raise GridModelError(f"{label}: negative shunt conductance (an active shunt)")
    return buses, lines, load, mvlv, root_bus


def _parallel(z: np.ndarray, key: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Impedance of each group of parallel branches (admittances add; a zero-impedance tie
    short-circuits its group)."""
    n = len(first)
    count = np.bincount(key, minlength=n)
    has_zero = np.bincount(key, weights=(z == 0), minlength=n) > 0
    adm = np.zeros(n, dtype=complex)
    np.add.at(adm, key, 1 / np.where(z == 0, 1, z))
    with np.errstate(divide="ignore", invalid="ignore"):
        merged = np.where(has_zero, 0j, 1 / np.where(adm == 0, 1, adm))
    return np.where(count == 1, z[first], merged)


def _is_mvlv(net: Any, series: pd.DataFrame) -> np.ndarray:
    """True for MV/LV transformers (rated HV side >= 1 kV, LV side < 1 kV)."""
    tr = net.trafo.reindex(series.element.where(series.kind == "trafo", -1).to_numpy())
    mvlv = ((tr.vn_hv_kv >= 1.0) & (tr.vn_lv_kv < 1.0)).fillna(False).to_numpy(dtype=bool)
    return mvlv & (series.kind == "trafo").to_numpy()


def _loads(net: Any, rep: pd.Series) -> pd.DataFrame:
    ld = in_service(net.load)
    ld = ld[ld.bus.isin(rep.index)]
    scale = ld.scaling.to_numpy() if "scaling" in ld.columns else 1.0
    profile = ld.profile.astype(str) if "profile" in ld.columns else pd.Series("", index=ld.index)
    out = pd.DataFrame(
        {
            "name": ld.name.astype(str).to_numpy() if "name" in ld.columns else "",
            "bus": rep.loc[ld.bus].to_numpy(dtype=np.int64),
            "p_kw": ld.p_mw.to_numpy() * scale * 1e3,
            "q_kvar": ld.q_mvar.to_numpy() * scale * 1e3,
            "profile": profile.to_numpy(),
            "kind": [load_kind(p) for p in profile],
        },
        index=pd.Index(ld.index.to_numpy(dtype=np.int64), name="load"),
    )
    return out


def _generators(net: Any, rep: pd.Series) -> pd.DataFrame:
    sg = in_service(net.sgen)
    sg = sg[sg.bus.isin(rep.index)]
    scale = sg.scaling.to_numpy() if "scaling" in sg.columns else 1.0
    profile = sg.profile.astype(str) if "profile" in sg.columns else pd.Series("", index=sg.index)
    typ = sg.type.astype(str) if "type" in sg.columns else pd.Series("", index=sg.index)
    if "voltLvl" in sg.columns and sg.voltLvl.notna().all():
        level = sg.voltLvl.to_numpy(dtype=np.int64)
    else:
        kv = net.bus.vn_kv.loc[sg.bus].to_numpy()
        level = np.where(kv < 1.0, 7, np.where(kv < 60.0, 5, 3))
    return pd.DataFrame(
        {
            "name": sg.name.astype(str).to_numpy() if "name" in sg.columns else "",
            "bus": rep.loc[sg.bus].to_numpy(dtype=np.int64),
            "p_kw": sg.p_mw.to_numpy() * scale * 1e3,
            "q_kvar": sg.q_mvar.to_numpy() * scale * 1e3,
            "kind": [_generator_kind(t, p) for t, p in zip(typ, profile, strict=True)],
            "profile": profile.to_numpy(),
            "voltage_level": level.astype(np.int64),
        },
        index=pd.Index(sg.index.to_numpy(dtype=np.int64), name="sgen"),
    )


def _lv_grids(feeder: Feeder, mvlv: np.ndarray) -> pd.Series:
    """LV grid id of every bus: the subtree below each MV/LV branch (in line order)."""
    t = feeder.topology
    label = np.full(feeder.n_buses, -1, dtype=np.int64)
    for gid, k in enumerate(np.flatnonzero(mvlv)):
        label[t.line_to[k]] = gid
    for i in t.order[1:]:  # breadth first: a parent is labelled before its children
        if label[i] < 0:
            label[i] = label[t.parent[i]]
    return pd.Series(label, index=feeder.buses.index, name="lv_grid")


def grid_from_pandapower(
    net: Any, *, name: str | None = None, base_mva: float | None = None
) -> GridData:
    """Convert a radial pandapower net (see the module docstring for what is modelled) on a
    per-unit base of `base_mva` (default `choose_base_mva(net)`).

    Raises GridTopologyError (meshed, islanded, not one ext_grid) before any other work,
    GridModelError for elements the feeder cannot represent exactly."""
    label = name or str(getattr(net, "name", "") or "pandapower net")
    topo = radial_topology(net, label)
    branches = topo.branches
    trafos = net.trafo.loc[branches.element[branches.kind == "trafo"]]
    _check_model(net, label, trafos)
    sn = choose_base_mva(net) if base_mva is None else float(base_mva)
    if not (math.isfinite(sn) and sn > 0):
        raise GridModelError(f"{label}: base_mva must be a positive number, got {base_mva!r}")
    buses, lines, loads, mvlv, root_bus = _feeder_tables(net, topo, label, sn)
    generators = _generators(net, topo.rep)
    eg = in_service(net.ext_grid)
    v0 = float(eg.vm_pu.iloc[0])
    base_kv = float(net.bus.vn_kv.loc[root_bus])
    # renumber: feeder bus = pandapower bus + BUS_OFFSET (the markets' buses start at 1)
    buses.index = pd.Index(buses.index.to_numpy(dtype=np.int64) + BUS_OFFSET, name="bus")
    lines[["from_bus", "to_bus"]] += BUS_OFFSET
    loads["bus"] += BUS_OFFSET
    generators["bus"] += BUS_OFFSET
    root = root_bus + BUS_OFFSET
    feeder = Feeder(buses, lines, base_kv, sn, root, label, v0)
    profiles = hourly_profiles(dict(net.profiles)) if "profiles" in net else pd.DataFrame()
    # lines of the Feeder keep the input order, so mvlv[k] belongs to feeder.lines row k
    return GridData(
        feeder=feeder,
        loads=loads,
        generators=generators,
        lv_grid_of_bus=_lv_grids(feeder, mvlv),
        profiles=profiles,
        name=label,
    )


def feeder_to_pandapower(
    feeder: Feeder, *, include_shunts: bool = True, include_pv: bool = False
) -> Any:
    """A single-voltage pandapower net with the feeder's per-unit model (Feeder.to_pandapower)."""
    import pandapower as pp

    net = pp.create_empty_network(name=feeder.name, sn_mva=feeder.base_mva)
    for b in feeder.buses.index:
        pp.create_bus(net, vn_kv=feeder.base_kv, index=int(b), name=str(b))
    pp.create_ext_grid(net, bus=feeder.substation_bus, vm_pu=feeder.v0_pu, va_degree=0.0)
    zb = feeder.zbase_ohm
    for row in feeder.lines.itertuples(index=False):
        pp.create_line_from_parameters(
            net,
            from_bus=int(row.from_bus),
            to_bus=int(row.to_bus),
            length_km=1.0,
            r_ohm_per_km=row.r_pu * zb,
            x_ohm_per_km=row.x_pu * zb,
            c_nf_per_km=0.0,
            max_i_ka=99.0,
        )
    for b, row in feeder.buses.iterrows():
        if row.p_kw != 0 or row.q_kvar != 0:
            pp.create_load(net, bus=int(b), p_mw=row.p_kw / 1e3, q_mvar=row.q_kvar / 1e3)
        if include_shunts and (row.shunt_kvar != 0 or row.shunt_kw != 0):
            pp.create_shunt(net, bus=int(b), q_mvar=-row.shunt_kvar / 1e3, p_mw=row.shunt_kw / 1e3)
        if include_pv and row.pv_kw != 0:
            pp.create_sgen(net, bus=int(b), p_mw=row.pv_kw / 1e3, q_mvar=0.0)
    return net
