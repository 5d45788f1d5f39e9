"""Radial distribution feeders: data, validation and tree topology.

A `Feeder` holds the bus table (net load, capacitors, PV nameplate per bus), the branch table
(series impedance in per unit) and the bases. Everything the power flow and the OPF need about
the tree (parent of each bus, sweep order, path/subtree incidence) is computed once, when the
feeder is built, and kept as numpy arrays so that every later solve is vectorised.

Feeders ship as CSV inside the package (``gridledger/network/data/<name>/``):
``feeder.csv`` (name, base_kv, base_mva, substation_bus), ``buses.csv`` and ``lines.csv``.
Lines starting with ``#`` are comments. A bad file raises `FeederDataError` naming the file, the
line number in that file and the field.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["BUNDLED_FEEDERS", "Feeder", "FeederDataError", "load_feeder"]

BUNDLED_FEEDERS = ("sce56", "sce47")
BUS_COLUMNS = ("p_kw", "q_kvar", "shunt_kvar", "pv_kw")
LINE_COLUMNS = ("from_bus", "to_bus", "r_pu", "x_pu")
# r_pu given next to r_ohm must agree with r_ohm / Zbase to this relative tolerance
# (the bundled tables carry 10 significant digits).
_PU_REL_TOL = 1e-6
_PU_ABS_TOL = 1e-9


class FeederDataError(ValueError):
    """A feeder table is malformed; the message names the file, the row and the field."""

    def __init__(
        self, message: str, *, file: str, row: int | None = None, field: str | None = None
    ) -> None:
        self.file = file
        self.row = row
        self.field = field
        where = file
        if row is not None:
            where += f", row {row}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, eq=False)
class Feeder:
    """A radial feeder. Construct with `load_feeder` or `Feeder.from_pandapower`.

    buses: DataFrame indexed by bus number with `p_kw`, `q_kvar` (spot load, consumption
        positive), `shunt_kvar` (capacitor nameplate at 1 p.u., injection positive) and
        `pv_kw` (PV nameplate).
    lines: DataFrame with `from_bus`, `to_bus` (oriented away from the substation), `r_pu`,
        `x_pu` on the feeder's bases.
    """

    buses: pd.DataFrame
    lines: pd.DataFrame
    base_kv: float
    base_mva: float
    substation_bus: int
    name: str = "feeder"
    _source: tuple[str, str] = field(default=("buses", "lines"), repr=False)

    def __post_init__(self) -> None:
        buses, lines = _check_tables(
            self.buses, self.lines, bus_file=self._source[0], line_file=self._source[1]
        )
        if not (math.isfinite(self.base_kv) and self.base_kv > 0):
            raise FeederDataError(
                f"must be > 0, got {self.base_kv}", file="feeder", field="base_kv"
            )
        if not (math.isfinite(self.base_mva) and self.base_mva > 0):
            raise FeederDataError(
                f"must be > 0, got {self.base_mva}", file="feeder", field="base_mva"
            )
        sub = self.substation_bus
        if sub not in buses.index:
            raise FeederDataError(
                f"substation bus {sub} is not in the bus table",
                file="feeder",
                field="substation_bus",
            )
        topo = _Topology.build(buses, lines, int(sub), self._source[1], self._source[0])
        # orient lines away from the root, ordered like the input
        lines = lines.copy()
        lines["from_bus"] = topo.bus_ids[topo.line_from]
        lines["to_bus"] = topo.bus_ids[topo.line_to]
        buses.attrs.clear()  # file row numbers only matter while validating
        lines.attrs.clear()
        object.__setattr__(self, "buses", buses)
        object.__setattr__(self, "lines", lines)
        object.__setattr__(self, "substation_bus", int(sub))
        object.__setattr__(self, "base_kv", float(self.base_kv))
        object.__setattr__(self, "base_mva", float(self.base_mva))
        object.__setattr__(self, "_topo", topo)

    def __repr__(self) -> str:
        return (
            f"Feeder(name={self.name!r}, buses={self.n_buses}, lines={self.n_lines}, "
            f"base_kv={self.base_kv}, base_mva={self.base_mva}, "
            f"substation_bus={self.substation_bus})"
        )

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the data, not the per-process caches (compiled OPF models, solvers)."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith(("_opf", "_sweep"))}

    # ----- sizes and bases -------------------------------------------------------------
    @property
    def n_buses(self) -> int:
        return len(self.buses)

    @property
    def n_lines(self) -> int:
        return len(self.lines)

    @property
    def zbase_ohm(self) -> float:
        """Impedance base (ohm) = base_kv² / base_mva."""
        return self.base_kv**2 / self.base_mva

    @property
    def bus_ids(self) -> np.ndarray:
        """Bus numbers in table order (position i of every internal array is bus_ids[i])."""
        return self.topology.bus_ids

    @property
    def topology(self) -> _Topology:
        return self._topo  # type: ignore[attr-defined]

    # ----- tree helpers ---------------------------------------------------------------
    @cached_property
    def parent(self) -> pd.Series:
        """Parent bus of every bus (<NA> at the substation)."""
        t = self.topology
        values = pd.array([None if p < 0 else int(t.bus_ids[p]) for p in t.parent], dtype="Int64")
        return pd.Series(values, index=self.buses.index, name="parent")

    @cached_property
    def children(self) -> dict[int, tuple[int, ...]]:
        """Children of every bus (empty tuple at leaves)."""
        out: dict[int, list[int]] = {int(b): [] for b in self.buses.index}
        for child, par in self.parent.items():
            if par is not pd.NA:
                out[int(par)].append(int(child))
        return {b: tuple(c) for b, c in out.items()}

    @cached_property
    def depth(self) -> pd.Series:
        """Number of lines between each bus and the substation."""
        return pd.Series(self.topology.depth, index=self.buses.index, name="depth")

    @property
    def leaves(self) -> list[int]:
        return [b for b, c in self.children.items() if not c]

    def path_to_root(self, bus: int) -> list[int]:
        """Buses from `bus` up to and including the substation."""
        t = self.topology
        if bus not in t.pos:
            raise KeyError(f"bus {bus} is not in feeder {self.name!r}")
        i = t.pos[bus]
        path = [int(t.bus_ids[i])]
        while t.parent[i] >= 0:
            i = t.parent[i]
            path.append(int(t.bus_ids[i]))
        return path

    def line_into(self, bus: int) -> int:
        """Row position in `lines` of the line feeding `bus` (KeyError at the substation)."""
        t = self.topology
        k = t.line_of_bus[t.pos[bus]]
        if k < 0:
            raise KeyError(f"bus {bus} is the substation; no line feeds it")
        return int(k)

    # ----- derived feeders ------------------------------------------------------------
    def with_buses(self, **columns: Mapping[int, float]) -> Feeder:
        """A copy with some bus values replaced, e.g. ``with_buses(pv_kw={45: 0, 53: 1000})``."""
        buses = self.buses.copy()
        for col, values in columns.items():
            if col not in BUS_COLUMNS:
                raise ValueError(f"unknown bus column {col!r}; expected one of {BUS_COLUMNS}")
            for bus, value in values.items():
                if bus not in buses.index:
                    raise KeyError(f"bus {bus} is not in feeder {self.name!r}")
                buses.loc[bus, col] = float(value)
        return Feeder(
            buses, self.lines, self.base_kv, self.base_mva, self.substation_bus, self.name
        )

    def with_pv(self, pv_kw: Mapping[int, float]) -> Feeder:
        """A copy with PV nameplates set at the given buses (0 switches a plant off)."""
        return self.with_buses(pv_kw=pv_kw)

    # ----- pandapower bridge (test-time cross-check; pandapower imported lazily) --------
    def to_pandapower(self, *, include_shunts: bool = True, include_pv: bool = False) -> Any:
        """A pandapower net with impedance-equivalent lines (1 km, no charging).

        Loads at `p_kw`/`q_kvar`, capacitors as shunts (q_mvar = -shunt_kvar/1000),
        the substation as ext_grid at 1.0 p.u.; PV nameplates as static generators when
        `include_pv`. Bus indices of the net are the feeder's bus numbers.
        """
        import pandapower as pp

        net = pp.create_empty_network(name=self.name, sn_mva=self.base_mva)
        for b in self.buses.index:
            pp.create_bus(net, vn_kv=self.base_kv, index=int(b), name=str(b))
        pp.create_ext_grid(net, bus=self.substation_bus, vm_pu=1.0, va_degree=0.0)
        zb = self.zbase_ohm
        for row in self.lines.itertuples(index=False):
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
        for b, row in self.buses.iterrows():
            if row.p_kw != 0 or row.q_kvar != 0:
                pp.create_load(net, bus=int(b), p_mw=row.p_kw / 1e3, q_mvar=row.q_kvar / 1e3)
            if include_shunts and row.shunt_kvar != 0:
                pp.create_shunt(net, bus=int(b), q_mvar=-row.shunt_kvar / 1e3, p_mw=0.0)
            if include_pv and row.pv_kw != 0:
                pp.create_sgen(net, bus=int(b), p_mw=row.pv_kw / 1e3, q_mvar=0.0)
        return net

    @classmethod
    def from_pandapower(cls, net: Any, *, name: str | None = None) -> Feeder:
        """A feeder from a radial pandapower net (in-service lines only, one ext_grid).

        Loads and static generators are summed per bus (sgen -> `pv_kw`), shunts become
        `shunt_kvar` (capacitive positive). Lines need no charging; transformers are refused.
        """
        if len(net.trafo) and net.trafo.in_service.any():
            raise FeederDataError("transformers are not supported", file="pandapower net")
        eg = net.ext_grid[net.ext_grid.in_service]
        if len(eg) != 1:
            raise FeederDataError(
                f"need exactly one in-service ext_grid, found {len(eg)}", file="pandapower net"
            )
        sub = int(eg.bus.iloc[0])
        base_kv = float(net.bus.vn_kv.loc[sub])
        base_mva = float(net.sn_mva)
        zb = base_kv**2 / base_mva
        lines = net.line[net.line.in_service]
        if (lines[["c_nf_per_km", "g_us_per_km"]].to_numpy() != 0).any():
            raise FeederDataError("line charging is not supported", file="pandapower net")
        ln = pd.DataFrame(
            {
                "from_bus": lines.from_bus.astype(int).to_numpy(),
                "to_bus": lines.to_bus.astype(int).to_numpy(),
                "r_pu": (lines.r_ohm_per_km * lines.length_km / lines.parallel / zb).to_numpy(),
                "x_pu": (lines.x_ohm_per_km * lines.length_km / lines.parallel / zb).to_numpy(),
            }
        )
        idx = pd.Index(net.bus.index[net.bus.in_service].astype(int), name="bus")
        bus = pd.DataFrame(0.0, index=idx, columns=list(BUS_COLUMNS))
        load = net.load[net.load.in_service]
        scale = load.scaling
        bus["p_kw"] = (load.p_mw * scale * 1e3).groupby(load.bus).sum().reindex(idx, fill_value=0)
        bus["q_kvar"] = (
            (load.q_mvar * scale * 1e3).groupby(load.bus).sum().reindex(idx, fill_value=0)
        )
        sh = net.shunt[net.shunt.in_service]
        if len(sh):
            bus["shunt_kvar"] = (
                (-sh.q_mvar * sh.step * 1e3).groupby(sh.bus).sum().reindex(idx, fill_value=0)
            )
        sg = net.sgen[net.sgen.in_service]
        if len(sg):
            bus["pv_kw"] = (
                (sg.p_mw * sg.scaling * 1e3).groupby(sg.bus).sum().reindex(idx, fill_value=0)
            )
        return cls(bus, ln, base_kv, base_mva, sub, name or str(net.name or "pandapower"))


# ======================================================================================
# topology


@dataclass(frozen=True, eq=False)
class _Topology:
    """Index arrays of a radial feeder; position i refers to `bus_ids[i]`."""

    bus_ids: np.ndarray  # (n,) bus numbers in table order
    pos: dict[int, int]  # bus number -> position
    root: int  # position of the substation
    parent: np.ndarray  # (n,) parent position, -1 at the root
    line_of_bus: np.ndarray  # (n,) row of the line feeding the bus, -1 at the root
    line_from: np.ndarray  # (m,) parent-side bus position of each line
    line_to: np.ndarray  # (m,) child-side bus position of each line
    order: np.ndarray  # (n,) positions in breadth-first order from the root
    depth: np.ndarray  # (n,) hops to the root

    @classmethod
    def build(
        cls, buses: pd.DataFrame, lines: pd.DataFrame, root_bus: int, line_file: str, bus_file: str
    ) -> _Topology:
        bus_ids = buses.index.to_numpy(dtype=np.int64)
        n = len(bus_ids)
        pos = {int(b): i for i, b in enumerate(bus_ids)}
        rows = lines.attrs.get("rows", np.arange(1, len(lines) + 1))
        a = np.array([pos[int(b)] for b in lines.from_bus], dtype=np.int64)
        b = np.array([pos[int(b)] for b in lines.to_bus], dtype=np.int64)
        adj: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        for k, (i, j) in enumerate(zip(a, b, strict=True)):
            adj[i].append((j, k))
            adj[j].append((i, k))
        root = pos[root_bus]
        parent = np.full(n, -1, dtype=np.int64)
        line_of_bus = np.full(n, -1, dtype=np.int64)
        depth = np.full(n, -1, dtype=np.int64)
        depth[root] = 0
        order = [root]
        used = np.zeros(len(lines), dtype=bool)
        head = 0
        while head < len(order):
            i = order[head]
            head += 1
            for j, k in adj[i]:
                if used[k]:
                    continue
                used[k] = True
                if depth[j] >= 0:
                    raise FeederDataError(
                        f"line {bus_ids[a[k]]}-{bus_ids[b[k]]} closes a loop; the feeder must "
                        "be radial (one tree rooted at the substation)",
                        file=line_file,
                        row=int(rows[k]),
                        field="to_bus",
                    )
                depth[j] = depth[i] + 1
                parent[j] = i
                line_of_bus[j] = k
                order.append(j)
        unreached = np.flatnonzero(depth < 0)
        if len(unreached):
            brows = buses.attrs.get("rows", np.arange(1, n + 1))
            first = int(unreached[0])
            raise FeederDataError(
                f"bus {bus_ids[first]} is not connected to the substation bus {root_bus} "
                f"({len(unreached)} disconnected bus(es): {bus_ids[unreached][:10].tolist()})",
                file=bus_file,
                row=int(brows[first]),
                field="bus",
            )
        # orient every line parent -> child
        flipped = parent[b] != a
        line_from = np.where(flipped, b, a)
        line_to = np.where(flipped, a, b)
        return cls(
            bus_ids=bus_ids,
            pos=pos,
            root=root,
            parent=parent,
            line_of_bus=line_of_bus,
            line_from=line_from,
            line_to=line_to,
            order=np.array(order, dtype=np.int64),
            depth=depth,
        )

    @cached_property
    def ancestor(self) -> sp.csr_matrix:
        """A[i, k] = 1 if bus i lies on the path from bus k to the root (i == k included).

        A @ x sums x over each subtree (backward sweep); A.T @ y sums y along each path to
        the root (forward sweep)."""
        n = len(self.bus_ids)
        rows, cols = [], []
        for k in range(n):
            i = k
            while i >= 0:
                rows.append(i)
                cols.append(k)
                i = self.parent[i]
        return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))

    @cached_property
    def incidence(self) -> sp.csr_matrix:
        """C[i, k] = +1 if line k ends at bus i, -1 if it starts at bus i (n × m)."""
        n, m = len(self.bus_ids), len(self.line_from)
        rows = np.concatenate([self.line_to, self.line_from])
        cols = np.concatenate([np.arange(m), np.arange(m)])
        vals = np.concatenate([np.ones(m), -np.ones(m)])
        return sp.csr_matrix((vals, (rows, cols)), shape=(n, m))

    def positions(self, buses: Any) -> np.ndarray:
        return np.array([self.pos[int(b)] for b in buses], dtype=np.int64)


# ======================================================================================
# table checks


def _num(df: pd.DataFrame, col: str, file: str, rows: np.ndarray) -> np.ndarray:
    values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        k = int(bad[0])
        raise FeederDataError(
            f"not a finite number: {df[col].iloc[k]!r}", file=file, row=int(rows[k]), field=col
        )
    return values


def _check_tables(
    buses: pd.DataFrame, lines: pd.DataFrame, *, bus_file: str, line_file: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Normalised copies of the tables; raises FeederDataError on the first problem."""
    brows = np.asarray(buses.attrs.get("rows", np.arange(1, len(buses) + 1)))
    lrows = np.asarray(lines.attrs.get("rows", np.arange(1, len(lines) + 1)))
    if len(buses) == 0:
        raise FeederDataError("no buses", file=bus_file)
    for col in BUS_COLUMNS:
        if col not in buses.columns:
            raise FeederDataError("missing column", file=bus_file, field=col)
    for col in LINE_COLUMNS:
        if col not in lines.columns:
            raise FeederDataError("missing column", file=line_file, field=col)
    idx = pd.to_numeric(pd.Series(buses.index), errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(idx) | (idx != np.round(idx)))
    if len(bad):
        k = int(bad[0])
        raise FeederDataError(
            f"bus number must be an integer, got {buses.index[k]!r}",
            file=bus_file,
            row=int(brows[k]),
            field="bus",
        )
    idx = idx.astype(np.int64)
    seen: dict[int, int] = {}
    for k, b in enumerate(idx):
        if b in seen:
            raise FeederDataError(
                f"duplicate bus {b} (first at row {brows[seen[b]]})",
                file=bus_file,
                row=int(brows[k]),
                field="bus",
            )
        seen[int(b)] = k
    out_b = pd.DataFrame(
        {col: _num(buses, col, bus_file, brows) for col in BUS_COLUMNS},
        index=pd.Index(idx, name="bus"),
    )
    for col in ("shunt_kvar", "pv_kw"):
        neg = np.flatnonzero(out_b[col].to_numpy() < 0)
        if len(neg):
            k = int(neg[0])
            raise FeederDataError(
                f"must be >= 0, got {out_b[col].iloc[k]}",
                file=bus_file,
                row=int(brows[k]),
                field=col,
            )
    out_b.attrs["rows"] = brows

    if len(lines) != len(out_b) - 1:
        raise FeederDataError(
            f"a radial feeder with {len(out_b)} buses has {len(out_b) - 1} lines, "
            f"found {len(lines)}",
            file=line_file,
        )
    cols = {}
    for col in LINE_COLUMNS:
        cols[col] = _num(lines, col, line_file, lrows)
    for col in ("from_bus", "to_bus"):
        for k, b in enumerate(cols[col]):
            if b != round(b) or int(b) not in seen:
                raise FeederDataError(
                    f"unknown bus {lines[col].iloc[k]!r} (not in {bus_file})",
                    file=line_file,
                    row=int(lrows[k]),
                    field=col,
                )
    self_loop = np.flatnonzero(cols["from_bus"] == cols["to_bus"])
    if len(self_loop):
        k = int(self_loop[0])
        raise FeederDataError(
            "line starts and ends at the same bus",
            file=line_file,
            row=int(lrows[k]),
            field="to_bus",
        )
    for col in ("r_pu", "x_pu"):
        neg = np.flatnonzero(cols[col] < 0)
        if len(neg):
            k = int(neg[0])
            raise FeederDataError(
                f"impedance must be >= 0, got {cols[col][k]}",
                file=line_file,
                row=int(lrows[k]),
                field=col,
            )
    out_l = pd.DataFrame(
        {
            "from_bus": cols["from_bus"].astype(np.int64),
            "to_bus": cols["to_bus"].astype(np.int64),
            "r_pu": cols["r_pu"],
            "x_pu": cols["x_pu"],
        }
    )
    out_l.attrs["rows"] = lrows
    return out_b, out_l


# ======================================================================================
# loading


def _read_csv(source: Any, file: str) -> pd.DataFrame:
    """Read a CSV with `#` comment lines; attrs['rows'] holds each record's line number."""
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise FeederDataError("file not found", file=file) from exc
    lines = text.splitlines()
    keep = [
        (n, s) for n, s in enumerate(lines, start=1) if s.strip() and not s.lstrip().startswith("#")
    ]
    if not keep:
        raise FeederDataError("no header row", file=file)
    body = "\n".join(s for _, s in keep)
    try:
        records = list(csv.reader(io.StringIO(body)))
    except csv.Error as exc:
        raise FeederDataError(f"unreadable CSV: {exc}", file=file) from exc
    header = [h.strip() for h in records[0]]
    data = records[1:]
    row_numbers = np.array([n for n, _ in keep[1:]], dtype=np.int64)
    if len(data) != len(row_numbers):  # quoted newlines: fall back to record numbers
        row_numbers = np.arange(2, len(data) + 2)
    for k, rec in enumerate(data):
        if len(rec) != len(header):
            raise FeederDataError(
                f"{len(rec)} fields, header has {len(header)}", file=file, row=int(row_numbers[k])
            )
    df = pd.DataFrame(data, columns=header)
    df.attrs["rows"] = row_numbers
    return df


def _read_meta(source: Any, file: str) -> dict[str, Any]:
    df = _read_csv(source, file)
    rows = df.attrs["rows"]
    if len(df) != 1:
        raise FeederDataError(f"expected one data row, found {len(df)}", file=file)
    meta: dict[str, Any] = {}
    for col in ("base_kv", "base_mva", "substation_bus"):
        if col not in df.columns:
            raise FeederDataError("missing column", file=file, field=col)
        value = pd.to_numeric(df[col], errors="coerce").iloc[0]
        if not (np.isfinite(value) and value > 0):
            raise FeederDataError(
                f"must be a positive number, got {df[col].iloc[0]!r}",
                file=file,
                row=int(rows[0]),
                field=col,
            )
        meta[col] = float(value)
    meta["substation_bus"] = int(meta["substation_bus"])
    meta["name"] = str(df["name"].iloc[0]) if "name" in df.columns else None
    return meta


def _check_ohms(lines_raw: pd.DataFrame, zbase: float, file: str) -> None:
    """r_pu/x_pu must equal r_ohm/x_ohm divided by Zbase when both are given."""
    rows = lines_raw.attrs["rows"]
    for pu, ohm in (("r_pu", "r_ohm"), ("x_pu", "x_ohm")):
        if ohm not in lines_raw.columns or pu not in lines_raw.columns:
            continue
        v_ohm = _num(lines_raw, ohm, file, rows)
        v_pu = _num(lines_raw, pu, file, rows)
        expect = v_ohm / zbase
        bad = np.flatnonzero(np.abs(v_pu - expect) > _PU_REL_TOL * np.abs(expect) + _PU_ABS_TOL)
        if len(bad):
            k = int(bad[0])
            raise FeederDataError(
                f"{pu} = {v_pu[k]} is inconsistent with {ohm} / Zbase = {v_ohm[k]} / "
                f"{zbase:g} = {expect[k]:.10g}",
                file=file,
                row=int(rows[k]),
                field=pu,
            )


def load_feeder(source: str | Path = "sce56") -> Feeder:
    """Load a bundled feeder ("sce56", "sce47") or a folder with feeder.csv, buses.csv, lines.csv.

    Raises FeederDataError naming file, row and field on any inconsistency.
    """
    if isinstance(source, str) and source in BUNDLED_FEEDERS:
        folder: Any = resources.files("gridledger.network").joinpath("data", source)
        label = f"gridledger/network/data/{source}"
    else:
        folder = Path(source)
        label = str(folder)
        if not folder.is_dir():
            raise FeederDataError(
                f"not a bundled feeder {BUNDLED_FEEDERS} nor an existing folder", file=label
            )
    files = {k: f"{label}/{k}.csv" for k in ("feeder", "buses", "lines")}
    meta = _read_meta(folder.joinpath("feeder.csv"), files["feeder"])
    buses_raw = _read_csv(folder.joinpath("buses.csv"), files["buses"])
    lines_raw = _read_csv(folder.joinpath("lines.csv"), files["lines"])
    if "bus" not in buses_raw.columns:
        raise FeederDataError("missing column", file=files["buses"], field="bus")
    rows = buses_raw.attrs["rows"]
    buses = buses_raw.set_index("bus")
    buses.attrs["rows"] = rows
    zbase = meta["base_kv"] ** 2 / meta["base_mva"]
    _check_tables(buses, lines_raw, bus_file=files["buses"], line_file=files["lines"])
    _check_ohms(lines_raw, zbase, files["lines"])
    return Feeder(
        buses=buses,
        lines=lines_raw,
        base_kv=meta["base_kv"],
        base_mva=meta["base_mva"],
        substation_bus=meta["substation_bus"],
        name=meta["name"] or folder.name,
        _source=(files["buses"], files["lines"]),
    )


def synthetic_feeder(
    n_buses: int = 1000,
    *,
    seed: int = 0,
    load_kw: float = 4.0,
    power_factor: float = 0.9,
    r_pu_range: tuple[float, float] = (2e-4, 1.2e-3),
    x_over_r: float = 0.8,
    branching: int = 30,
    base_kv: float = 12.0,
    base_mva: float = 1.0,
) -> Feeder:
    """A seeded random radial feeder for scale tests and benchmarks.

    Bus 1 is the substation; bus k > 1 hangs off one of the `branching` most recent buses
    (long laterals, depth grows like n / branching); every bus but the root carries a load of
    about `load_kw` (uniform in [0.5, 1.5]·load_kw) at `power_factor`."""
    if n_buses < 2:
        raise ValueError(f"n_buses must be >= 2, got {n_buses}")
    rng = np.random.default_rng(seed)
    buses = np.arange(1, n_buses + 1)
    parents = np.array(
        [rng.integers(max(1, k - branching), k) for k in range(2, n_buses + 1)], dtype=np.int64
    )
    r = rng.uniform(*r_pu_range, size=n_buses - 1)
    p = np.concatenate([[0.0], load_kw * rng.uniform(0.5, 1.5, size=n_buses - 1)])
    q = p * np.tan(np.arccos(power_factor))
    bus_df = pd.DataFrame(
        {"p_kw": p, "q_kvar": q, "shunt_kvar": 0.0, "pv_kw": 0.0},
        index=pd.Index(buses, name="bus"),
    )
    line_df = pd.DataFrame(
        {"from_bus": parents, "to_bus": buses[1:], "r_pu": r, "x_pu": r * x_over_r}
    )
    return Feeder(bus_df, line_df, base_kv, base_mva, 1, f"synthetic{n_buses}-seed{seed}")
