"""SimBench grids as `GridData`, converted once and cached as Parquet (`load_simbench`).

SimBench (optional extra `gridledger[simbench]`) ships German LV/MV benchmark grids in pandapower
format with a year (2016) of 15-minute profiles. `load_simbench(code)` converts the net with
`grid_from_pandapower` and averages the profiles to hours; the result is written to a user cache
folder (`$GRIDLEDGER_CACHE`, else `$XDG_CACHE_HOME/gridledger`, else ~/.cache/gridledger), one
folder per code, SimBench version and converter version, written to a temporary folder and
renamed into place (atomic: a reader sees a complete cache or none). A cached load reads the
Parquet files and rebuilds the Feeder without importing simbench or pandapower.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import shutil
import uuid
from importlib import metadata
from pathlib import Path

import pandas as pd

from gridledger.network.feeder import Feeder
from gridledger.network.grid_data import GridData, SimbenchMissingError, UnknownGridError
from gridledger.network.pandapower_grid import CONVERTER_VERSION, grid_from_pandapower

__all__ = ["cache_root", "check_simbench_code", "load_simbench", "simbench_cache_dir"]

_EXTRA = "pip install 'gridledger[simbench]'"
_TABLES = ("buses", "lines", "loads", "generators", "lv_grid", "profiles")
# how many times SimBench itself was asked for a grid in this process (tests check the cache)
STATS = {"simbench_loads": 0}


def cache_root() -> Path:
    """$GRIDLEDGER_CACHE, else $XDG_CACHE_HOME/gridledger, else ~/.cache/gridledger."""
    if os.environ.get("GRIDLEDGER_CACHE"):
        return Path(os.environ["GRIDLEDGER_CACHE"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "gridledger"
    return Path.home() / ".cache" / "gridledger"


def _simbench_version(code: str) -> str:
    """The installed simbench version, found without importing it (a cached load is fast)."""
    try:
        if importlib.util.find_spec("simbench") is None:
            raise metadata.PackageNotFoundError("simbench")
        return metadata.version("simbench")
    except metadata.PackageNotFoundError as exc:
        raise SimbenchMissingError(
            f"grid 'simbench:{code}' needs the optional package simbench: {_EXTRA}"
        ) from exc


def simbench_cache_dir(code: str, cache_dir: Path | None = None) -> Path:
    """The cache folder of one grid: <root>/simbench/<code>-sb<version>-c<converter>."""
    root = Path(cache_dir) if cache_dir is not None else cache_root()
    return root / "simbench" / f"{code}-sb{_simbench_version(code)}-c{CONVERTER_VERSION}"


def check_simbench_code(code: str, cache_dir: Path | None = None) -> None:
    """Raise UnknownGridError unless SimBench knows `code` (a cached grid counts as known);
    SimbenchMissingError without the package. Does not load the grid."""
    if (simbench_cache_dir(code, cache_dir) / "meta.json").is_file():
        return
    try:
        import simbench
    except ImportError as exc:
        raise SimbenchMissingError(
            f"grid 'simbench:{code}' needs the optional package simbench: {_EXTRA}"
        ) from exc
    codes = simbench.collect_all_simbench_codes()
    if code not in codes:
        near = difflib.get_close_matches(code, codes, n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise UnknownGridError(
            f"unknown SimBench code {code!r}{hint} (list the {len(codes)} valid codes with "
            "python -c 'import simbench; print(simbench.collect_all_simbench_codes())')"
        )


def load_simbench(code: str, *, cache_dir: Path | None = None) -> GridData:
    """The SimBench grid `code` (e.g. "1-LV-urban6--0-sw") as GridData, from the cache if there.

    Raises UnknownGridError (code), SimbenchMissingError (no simbench package) before any
    work; GridTopologyError / GridModelError if the net cannot be converted."""
    folder = simbench_cache_dir(code, cache_dir)
    if (folder / "meta.json").is_file():
        return _read(folder)
    check_simbench_code(code, cache_dir)
    import simbench

    STATS["simbench_loads"] += 1
    net = simbench.get_simbench_net(code)
    grid = grid_from_pandapower(net, name=code)
    _write(grid, folder)
    return grid


def _write(grid: GridData, folder: Path) -> None:
    """Write the cache into a temporary sibling folder, then rename it into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        f = grid.feeder
        f.buses.to_parquet(tmp / "buses.parquet")
        f.lines.to_parquet(tmp / "lines.parquet")
        grid.loads.to_parquet(tmp / "loads.parquet")
        grid.generators.to_parquet(tmp / "generators.parquet")
        grid.lv_grid_of_bus.to_frame().to_parquet(tmp / "lv_grid.parquet")
        grid.profiles.to_parquet(tmp / "profiles.parquet")
        meta = {
            "name": grid.name,
            "feeder_name": f.name,
            "base_kv": f.base_kv,
            "base_mva": f.base_mva,
            "substation_bus": f.substation_bus,
            "v0_pu": f.v0_pu,
            "converter_version": CONVERTER_VERSION,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        try:
            tmp.rename(folder)
        except OSError:  # another process wrote the same cache first: keep theirs
            if not (folder / "meta.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _read(folder: Path) -> GridData:
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    t = {name: pd.read_parquet(folder / f"{name}.parquet") for name in _TABLES}
    feeder = Feeder(
        t["buses"],
        t["lines"],
        meta["base_kv"],
        meta["base_mva"],
        int(meta["substation_bus"]),
        meta["feeder_name"],
        meta["v0_pu"],
    )
    return GridData(
        feeder=feeder,
        loads=t["loads"],
        generators=t["generators"],
        lv_grid_of_bus=t["lv_grid"]["lv_grid"],
        profiles=t["profiles"],
        name=meta["name"],
    )
