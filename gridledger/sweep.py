"""A sweep file: base scenario x grid of Scenario fields x seeds, validated into runs.

Format (TOML; gridledger/batch.py runs it)::

    name = "what-matters"
    scenario = "default.toml"   # optional: a Scenario TOML, relative to this file
    hours = 3
    seeds = [1, 2]
    hourly = false              # also keep each run's hourly frame
    [fixed]                     # optional: fields set in every run
    households_per_bus = 1
    [grid]                      # every combination of these values is run for every seed
    prosumer_share = [0.25, 0.5]
    reliability_threshold = [400, 700]

Each run has a content id (a hash of its full scenario), so a run is identified by what it
computes. Every bad key or value raises `SweepError` (or `ScenarioError`) before anything runs.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridledger.scenario import SCENARIO_FIELDS, Scenario, ScenarioError

__all__ = ["SWEEP_KEYS", "RunSpec", "Sweep", "SweepError", "run_id"]

SWEEP_KEYS = ("name", "scenario", "hours", "seeds", "hourly", "fixed", "grid")


class SweepError(ValueError):
    """A sweep file or sweep result is invalid; the message names the key, value or run."""


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: the grid point, the seed and the full scenario it runs."""

    run_id: str
    params: dict[str, Any]
    scenario: Scenario

    @property
    def seed(self) -> int:
        return self.scenario.seed


@dataclass(frozen=True)
class Sweep:
    """A validated sweep: base scenario × grid × seeds."""

    name: str
    base: Scenario
    seeds: tuple[int, ...]
    grid: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    hourly: bool = False

    @classmethod
    def from_toml(cls, path: str | Path) -> Sweep:
        """Load a sweep file; scenario paths in it are relative to the file."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError as exc:
            raise SweepError(f"sweep file {path} not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SweepError(f"sweep file {path}: not valid TOML ({exc})") from exc
        return cls.from_dict(data, base_dir=path.parent, default_name=path.stem)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, base_dir: Path = Path("."), default_name: str = "sweep"
    ) -> Sweep:
        """Build and validate a sweep; every run's scenario is built here, so bad values fail
        before anything runs (ScenarioError names the field)."""
        unknown = sorted(set(data) - set(SWEEP_KEYS))
        if unknown:
            raise SweepError(f"unknown sweep key(s) {unknown}; known: {list(SWEEP_KEYS)}")
        base = Scenario()
        if "scenario" in data:
            scen = data["scenario"]
            if not isinstance(scen, str):
                raise SweepError(f"sweep key 'scenario' = {scen!r}: expected a file path")
            scen_path = Path(scen) if Path(scen).is_absolute() else base_dir / scen
            base = Scenario.from_toml(scen_path)
        fixed = data.get("fixed", {})
        if not isinstance(fixed, dict):
            raise SweepError(f"sweep key 'fixed' = {fixed!r}: expected a table of scenario fields")
        if "hours" in data:
            fixed = {**fixed, "hours": data["hours"]}
        _check_fields("fixed", fixed)
        if "seed" in fixed:
            raise SweepError("sweep key 'fixed.seed': give seeds in the top-level 'seeds' list")
        base = base.replace(**fixed)

        seeds = data.get("seeds", [base.seed])
        if (
            not isinstance(seeds, list)
            or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
        ):
            raise SweepError(f"sweep key 'seeds' = {seeds!r}: expected a non-empty list of ints")
        if len(set(seeds)) != len(seeds):
            raise SweepError(f"sweep key 'seeds' = {seeds!r}: seeds repeat")

        grid_raw = data.get("grid", {})
        if not isinstance(grid_raw, dict):
            raise SweepError(f"sweep key 'grid' = {grid_raw!r}: expected a table field = [values]")
        _check_fields("grid", grid_raw)
        grid: dict[str, tuple[Any, ...]] = {}
        for key, values in grid_raw.items():
            if key in ("seed", "hours"):
                raise SweepError(f"sweep key 'grid.{key}': use the top-level '{key}s'/'{key}' key")
            if not isinstance(values, list) or not values:
                raise SweepError(f"sweep key 'grid.{key}' = {values!r}: expected a non-empty list")
            grid[key] = tuple(values)

        hourly = data.get("hourly", False)
        if not isinstance(hourly, bool):
            raise SweepError(f"sweep key 'hourly' = {hourly!r}: expected true or false")
        name = data.get("name", default_name)
        if not isinstance(name, str) or not name:
            raise SweepError(f"sweep key 'name' = {name!r}: expected a non-empty string")
        sweep = cls(name=name, base=base, seeds=tuple(seeds), grid=grid, hourly=hourly)
        sweep.runs()  # validate every grid point now
        return sweep

    def runs(self) -> list[RunSpec]:
        """Every run, grid points in file order (last key fastest), seeds innermost."""
        keys = list(self.grid)
        specs: list[RunSpec] = []
        for combo in itertools.product(*(self.grid[k] for k in keys)):
            params = dict(zip(keys, combo, strict=True))
            for seed in self.seeds:
                try:
                    scenario = self.base.replace(**params, seed=seed)
                except ScenarioError as exc:
                    raise SweepError(f"grid point {params} with seed {seed}: {exc}") from exc
                specs.append(RunSpec(run_id(scenario), params, scenario))
        ids = [s.run_id for s in specs]
        if len(set(ids)) != len(ids):
            raise SweepError("the grid repeats a run (two grid points give the same scenario)")
        return specs

    def to_json(self) -> str:
        """The sweep's definition (base scenario included) for the output folder."""
        return json.dumps(
            {
                "name": self.name,
                "seeds": list(self.seeds),
                "grid": {k: list(vs) for k, vs in self.grid.items()},
                "hourly": self.hourly,
                "base_scenario": self.base.to_dict(),
            },
            indent=2,
        )


def _check_fields(where: str, table: Mapping[str, Any]) -> None:
    bad = sorted(k for k in table if k not in SCENARIO_FIELDS)
    if bad:
        raise SweepError(f"sweep key(s) {[f'{where}.{k}' for k in bad]}: not Scenario fields")


def run_id(scenario: Scenario) -> str:
    """Content id of a run: the first 16 hex digits of the SHA-256 of its scenario TOML."""
    return hashlib.sha256(scenario.to_toml().encode()).hexdigest()[:16]
