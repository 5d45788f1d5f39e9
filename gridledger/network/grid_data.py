"""A real grid as the simulation sees it: the radial `Feeder` plus its loads, generators, LV grids
and a year of hourly profiles (`GridData`), and `grid_source`, which resolves a scenario's
`feeder` value ("simbench:<code>" or a pandapower net JSON file) to one.

Producers: gridledger/network/pandapower_grid.py (`grid_from_pandapower`, any pandapower net)
and gridledger/network/simbench_grid.py (`load_simbench`, cached SimBench grids).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from gridledger.network.feeder import Feeder

__all__ = [
    "GENERATOR_KINDS",
    "LOAD_KINDS",
    "SIMBENCH_PREFIX",
    "GridData",
    "GridSourceError",
    "SimbenchMissingError",
    "UnknownGridError",
    "check_grid_spec",
    "grid_source",
    "hourly_profiles",
    "is_grid_spec",
]

SIMBENCH_PREFIX = "simbench:"
LOAD_KINDS = ("household", "business", "farm", "other")
GENERATOR_KINDS = ("pv", "wind", "other")


class GridSourceError(ValueError):
    """A grid spec that cannot be resolved; the message names the spec."""


class UnknownGridError(GridSourceError):
    """A SimBench code that SimBench does not have."""


class SimbenchMissingError(GridSourceError):
    """The optional `simbench` package is not installed."""


@dataclass(frozen=True)
class GridData:
    """A converted grid: the feeder and what sits on it (see docs/real-grids.md).

    feeder: radial, per unit on one base MVA with each bus's own base kV folded into r_pu/x_pu;
        substation = the ext_grid bus; buses' p_kw/q_kvar = the nominal loads at that bus;
        pv_kw = 0 (generators are in `generators`).
    loads: one row per in-service load: name, bus, p_kw, q_kvar (nominal), profile, kind
        ("household" | "business" | "farm" | "other").
    generators: one row per in-service sgen: name, bus, p_kw (nameplate), q_kvar, kind
        ("pv" | "wind" | "other"), profile, voltage_level (SimBench voltLvl 1..7; 5 MV, 7 LV).
    lv_grid_of_bus: bus -> LV grid id (0..k-1) below each MV/LV transformer, -1 elsewhere.
    profiles: hourly multipliers of nominal power (2016, 8,784 rows; "<profile>_pload",
        "<profile>_qload" for loads, "<profile>" for generators); empty if the net has none.
    """

    feeder: Feeder
    loads: pd.DataFrame
    generators: pd.DataFrame
    lv_grid_of_bus: pd.Series
    profiles: pd.DataFrame
    name: str

    @property
    def n_lv_grids(self) -> int:
        return int(self.lv_grid_of_bus.max()) + 1 if len(self.lv_grid_of_bus) else 0

    def __repr__(self) -> str:
        return (
            f"GridData(name={self.name!r}, buses={self.feeder.n_buses}, loads={len(self.loads)}, "
            f"generators={len(self.generators)}, lv_grids={self.n_lv_grids}, "
            f"profile_hours={len(self.profiles)})"
        )


def hourly_profiles(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Hourly means of SimBench-style profile tables ('time' column "dd.mm.YYYY HH:MM" + values).

    The 15-min values of each hour are averaged; tables are joined by column (the first of
    duplicate column names wins). SimBench's labels are German clock time: 27 March has no
    02:00-02:45 (that clock hour is the mean of its neighbours, so 2016 has 8,784 hours without
    a gap) and 30 October has 02:00-02:45 twice (its 02:00 is the mean of the eight)."""
    parts = []
    for key in sorted(tables):
        df = tables[key]
        if df is None or len(df) == 0 or "time" not in df.columns or df.shape[1] < 2:
            continue
        t = pd.to_datetime(df["time"], format="%d.%m.%Y %H:%M")
        vals = df.drop(columns="time").apply(pd.to_numeric, errors="coerce").astype(float)
        vals.index = pd.DatetimeIndex(t)
        parts.append(vals.resample("h").mean().interpolate(limit_area="inside"))
    if not parts:
        return pd.DataFrame(index=pd.DatetimeIndex([], name="time"))
    out = pd.concat(parts, axis=1)
    out = out.loc[:, ~out.columns.duplicated()]
    out.index.name = "time"
    return out


def is_grid_spec(spec: Any) -> bool:
    """True for "simbench:<code>" or a path ending in .json (a pandapower net file)."""
    return isinstance(spec, str | Path) and (
        str(spec).startswith(SIMBENCH_PREFIX) or str(spec).lower().endswith(".json")
    )


def check_grid_spec(spec: str | Path) -> None:
    """Validate a grid spec without loading the grid (scenario checks, before any work).

    Raises UnknownGridError (code not in SimBench's list), SimbenchMissingError or
    GridSourceError (not a spec, missing file)."""
    text = str(spec)
    if text.startswith(SIMBENCH_PREFIX):
        from gridledger.network.simbench_grid import check_simbench_code

        check_simbench_code(text[len(SIMBENCH_PREFIX) :])
    elif text.lower().endswith(".json"):
        if not Path(text).is_file():
            raise GridSourceError(f"grid {text!r}: no such pandapower net file")
    else:
        raise GridSourceError(
            f"grid {text!r}: expected 'simbench:<code>' or a pandapower net .json file"
        )


def grid_source(spec: str | Path, *, cache_dir: Path | None = None) -> GridData:
    """The grid named by a scenario's `feeder` value: "simbench:<code>" (cached, see
    `load_simbench`) or a path to a pandapower net JSON file (pandapower.from_json)."""
    check_grid_spec(spec)
    text = str(spec)
    if text.startswith(SIMBENCH_PREFIX):
        from gridledger.network.simbench_grid import load_simbench

        return load_simbench(text[len(SIMBENCH_PREFIX) :], cache_dir=cache_dir)
    try:
        import pandapower as pp
    except ImportError as exc:  # pragma: no cover - pandapower comes with simbench
        raise SimbenchMissingError(
            f"grid {text!r}: reading a pandapower net needs pandapower; "
            "install the extra: pip install 'gridledger[simbench]'"
        ) from exc
    from gridledger.network.pandapower_grid import grid_from_pandapower

    try:
        net = pp.from_json(text)
    except Exception as exc:  # pandapower raises several types for a bad file
        raise GridSourceError(f"grid {text!r}: not a pandapower net JSON file ({exc})") from exc
    return grid_from_pandapower(net, name=Path(text).stem)
