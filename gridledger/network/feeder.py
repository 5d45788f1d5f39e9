"""Radial distribution feeders: the `Feeder` data class, `load_feeder` and `synthetic_feeder`.

A `Feeder` holds the bus table (net load, constant-impedance shunts, PV nameplate per bus), the
branch table (series impedance in per unit) and the bases. Everything the power flow and the
OPF need about the tree (parent of each bus, sweep order, path/subtree incidence) is computed
once, when the feeder is built (gridledger/network/topology.py), and kept as numpy arrays so
that every later solve is vectorised.

Feeders ship as CSV inside the package (``gridledger/network/data/<name>/``):
``feeder.csv`` (name, base_kv, base_mva, substation_bus), ``buses.csv`` and ``lines.csv``.
Lines starting with ``#`` are comments. A bad file raises `FeederDataError` naming the file, the
line number in that file and the field (gridledger/network/feeder_tables.py). Real grids
(SimBench, pandapower nets) come through gridledger/network/pandapower_grid.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gridledger.network.feeder_tables import (
    BUS_COLUMNS,
    FeederDataError,
    check_ohms,
    check_tables,
    read_csv,
    read_meta,
)
from gridledger.network.topology import Topology

__all__ = ["BUNDLED_FEEDERS", "Feeder", "FeederDataError", "load_feeder", "synthetic_feeder"]

BUNDLED_FEEDERS = ("sce56", "sce47")


@dataclass(frozen=True, eq=False)
class Feeder:
    """A radial feeder. Construct with `load_feeder` or `grid_from_pandapower(net).feeder`.

    buses: DataFrame indexed by bus number with `p_kw`, `q_kvar` (spot load, consumption
        positive), `shunt_kvar` (shunt susceptance as kvar injected at 1 p.u.: capacitors
        positive, reactors and transformer magnetising negative), `pv_kw` (PV nameplate) and
        `shunt_kw` (shunt conductance as kW drawn at 1 p.u., >= 0; optional in files).
    lines: DataFrame with `from_bus`, `to_bus` (oriented away from the substation), `r_pu`,
        `x_pu` on the feeder's base MVA and each line's own base kV (per unit is the same on
        both sides of a transformer; `base_kv` is the substation bus's nominal voltage).
    v0_pu: the substation's voltage (the slack), default for the power flow and the OPF.
    """

    buses: pd.DataFrame
    lines: pd.DataFrame
    base_kv: float
    base_mva: float
    substation_bus: int
    name: str = "feeder"
    v0_pu: float = 1.0
    _source: tuple[str, str] = field(default=("buses", "lines"), repr=False)

    def __post_init__(self) -> None:
        buses, lines = check_tables(
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
        if not (math.isfinite(self.v0_pu) and 0.5 <= self.v0_pu <= 1.5):
            raise FeederDataError(
                f"must be in [0.5, 1.5], got {self.v0_pu}", file="feeder", field="v0_pu"
            )
        sub = self.substation_bus
        if sub not in buses.index:
            raise FeederDataError(
                f"substation bus {sub} is not in the bus table",
                file="feeder",
                field="substation_bus",
            )
        topo = Topology.build(buses, lines, int(sub), self._source[1], self._source[0])
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
        object.__setattr__(self, "v0_pu", float(self.v0_pu))
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
    def topology(self) -> Topology:
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
            buses,
            self.lines,
            self.base_kv,
            self.base_mva,
            self.substation_bus,
            self.name,
            self.v0_pu,
        )

    def with_pv(self, pv_kw: Mapping[int, float]) -> Feeder:
        """A copy with PV nameplates set at the given buses (0 switches a plant off)."""
        return self.with_buses(pv_kw=pv_kw)

    # ----- pandapower bridge (pandapower imported lazily) -----------------------------
    def to_pandapower(self, *, include_shunts: bool = True, include_pv: bool = False) -> Any:
        """A single-voltage pandapower net with the same per-unit model (for cross-checks).

        Lines of 1 km without charging, loads at `p_kw`/`q_kvar`, shunts, the substation as
        ext_grid at `v0_pu`, PV nameplates as static generators when `include_pv`. Bus indices
        are the feeder's bus numbers. The converse is `grid_from_pandapower`."""
        from gridledger.network.pandapower_grid import feeder_to_pandapower

        return feeder_to_pandapower(self, include_shunts=include_shunts, include_pv=include_pv)


def load_feeder(source: str | Path = "sce56") -> Feeder:
    """Load a bundled feeder ("sce56", "sce47"), a folder with feeder.csv, buses.csv, lines.csv,
    or a real grid ("simbench:<code>", a pandapower net .json; see `grid_source`).

    Raises FeederDataError naming file, row and field on any inconsistency.
    """
    from gridledger.network.grid_data import grid_source, is_grid_spec

    if is_grid_spec(source):
        return grid_source(source).feeder
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
    meta = read_meta(folder.joinpath("feeder.csv"), files["feeder"])
    buses_raw = read_csv(folder.joinpath("buses.csv"), files["buses"])
    lines_raw = read_csv(folder.joinpath("lines.csv"), files["lines"])
    if "bus" not in buses_raw.columns:
        raise FeederDataError("missing column", file=files["buses"], field="bus")
    rows = buses_raw.attrs["rows"]
    buses = buses_raw.set_index("bus")
    buses.attrs["rows"] = rows
    zbase = meta["base_kv"] ** 2 / meta["base_mva"]
    check_tables(buses, lines_raw, bus_file=files["buses"], line_file=files["lines"])
    check_ohms(lines_raw, zbase, files["lines"])
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
        {"p_kw": p, "q_kvar": q, "shunt_kvar": 0.0, "pv_kw": 0.0, "shunt_kw": 0.0},
        index=pd.Index(buses, name="bus"),
    )
    line_df = pd.DataFrame(
        {"from_bus": parents, "to_bus": buses[1:], "r_pu": r, "x_pu": r * x_over_r}
    )
    return Feeder(bus_df, line_df, base_kv, base_mva, 1, f"synthetic{n_buses}-seed{seed}")
