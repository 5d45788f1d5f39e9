"""Results of one run: tidy DataFrames (hourly, trades, gas, agents) and a summary, saved safely.

`Results.save(folder)` writes `hourly.parquet`, `trades.parquet`, `gas.parquet`, `agents.parquet`,
`attacks.parquet`, `scenario.toml` and `summary.json` (`export_csv` adds `<frame>.csv`). Each
file is first written to a temporary name in the same folder (mode 0666 minus the umask) and then
moved into place with `os.replace` (atomic on POSIX), so a crash
never leaves a half-written file under a final name. Every file carries the same run id (Parquet
schema metadata, a TOML comment, the JSON field `run_id`); `Results.load` refuses a folder whose
files come from different saves, so a crash between two moves cannot produce a silently mixed
result either. A folder saved before `attacks.parquet` existed still loads (the frame is rebuilt
from its summary).
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gridledger.day.attack_table import attacks_frame
from gridledger.scenario import Scenario

FRAMES = ("hourly", "trades", "gas", "agents", "attacks")
OPTIONAL_FRAMES = ("attacks",)
"""Frames a folder saved by an older version may lack (rebuilt from its summary on load)."""
SUMMARY_FILE = "summary.json"
SCENARIO_FILE = "scenario.toml"
_RUN_ID_KEY = b"gridledger_run_id"


class ResultsError(RuntimeError):
    """A results folder is missing, incomplete or inconsistent; the message names the file."""


@dataclass
class Results:
    """Tidy outputs of a run (see DESIGN.md "Public API").

    hourly: one row per market hour t (scheme metrics beside `*_baseline` ones).
    trades: one row per trade (chain, area, buyer, seller, e_wh, price, delivered_wh, feedback).
    gas:    one row per transaction (chain, contract, operation, gas_used, block, ...).
    agents: one row per agent per hour (soc, reputation, cost_usd, bus, ...).
    summary: KPIs (cost_saving_pct, grid_energy_saved_kwh, total_gas, ...).
    attacks: one row per attack tried (scenario, tried, outcome, refused, tokens and Wh
             unaccounted, measured effects); built from `summary["attacks"]` when not given
             (columns: `gridledger.day.attack_table.ATTACK_COLUMNS`).
    """

    hourly: pd.DataFrame
    trades: pd.DataFrame
    gas: pd.DataFrame
    agents: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)
    scenario: Scenario | None = None
    attacks: pd.DataFrame = None  # type: ignore[assignment]  # set in __post_init__

    def __post_init__(self) -> None:
        if self.attacks is None:
            self.attacks = attacks_frame(self.summary.get("attacks", []))

    def frames(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in FRAMES}

    # --- save -----------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write every frame, the scenario and the summary into `folder` (created if needed)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        run_id = uuid.uuid4().hex
        for name, frame in self.frames().items():
            _atomic_write(
                folder / f"{name}.parquet", lambda p, f=frame: _write_parquet(f, p, run_id)
            )
        if self.scenario is not None:
            text = f"# run_id = {run_id}\n" + self.scenario.to_toml()
            _atomic_write(folder / SCENARIO_FILE, lambda p: p.write_text(text))
        summary = {"run_id": run_id, **_jsonable(self.summary)}
        # summary.json is moved last: its presence with a matching run id marks a complete save
        _atomic_write(
            folder / SUMMARY_FILE,
            lambda p: p.write_text(json.dumps(summary, indent=2, sort_keys=True, allow_nan=False)),
        )
        return folder

    # --- load -----------------------------------------------------------------------------
    @classmethod
    def load(cls, folder: str | Path) -> Results:
        """Read a folder written by `save`; raises ResultsError naming a missing/mixed file."""
        folder = Path(folder)
        summary_path = folder / SUMMARY_FILE
        if not summary_path.is_file():
            raise ResultsError(
                f"{summary_path}: missing (not a complete gridledger results folder)"
            )
        try:
            summary = json.loads(summary_path.read_text())
        except json.JSONDecodeError as exc:
            raise ResultsError(f"{summary_path}: not valid JSON ({exc})") from exc
        run_id = summary.pop("run_id", None)
        frames: dict[str, pd.DataFrame] = {}
        for name in FRAMES:
            path = folder / f"{name}.parquet"
            if not path.is_file() and name in OPTIONAL_FRAMES:
                continue  # saved before this frame existed: rebuilt from the summary
            if not path.is_file():
                raise ResultsError(f"{path}: missing")
            try:
                table = pq.read_table(path)
            except (pa.ArrowInvalid, OSError) as exc:
                raise ResultsError(f"{path}: unreadable Parquet ({exc})") from exc
            file_id = (table.schema.metadata or {}).get(_RUN_ID_KEY, b"").decode()
            if file_id != run_id:
                raise ResultsError(
                    f"{path}: belongs to run {file_id or '?'} but summary.json to run {run_id} "
                    "(an interrupted save?)"
                )
            frames[name] = table.to_pandas()
        scenario = None
        scen_path = folder / SCENARIO_FILE
        if scen_path.is_file():
            first = scen_path.read_text().split("\n", 1)[0]
            if first != f"# run_id = {run_id}":
                raise ResultsError(f"{scen_path}: belongs to another run than summary.json")
            scenario = Scenario.from_toml(scen_path)
        return cls(summary=summary, scenario=scenario, **frames)

    def equals(self, other: Results) -> bool:
        """Frame-by-frame and summary equality (exact, bit for bit)."""
        return all(getattr(self, n).equals(getattr(other, n)) for n in FRAMES) and _jsonable(
            self.summary
        ) == _jsonable(other.summary)


def _write_parquet(frame: pd.DataFrame, path: Path, run_id: str) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=True)
    meta = dict(table.schema.metadata or {})
    meta[_RUN_ID_KEY] = run_id.encode()
    pq.write_table(table.replace_schema_metadata(meta), path)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write via a temporary file in the same folder, fsync, then os.replace into place.

    The temporary file is created with mode 0666 minus the umask (like any file the user
    writes, e.g. the figures), not mkstemp's 0600, so results are as readable as the figures."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def export_csv(results: Results, folder: str | Path) -> list[Path]:
    """Write each frame as `<frame>.csv` beside its Parquet file (for spreadsheets and R).

    The Parquet files stay the source `Results.load` reads; CSV is an export. Returns the paths.
    """
    folder = Path(folder)
    paths = []
    for name, frame in results.frames().items():
        path = folder / f"{name}.csv"
        _atomic_write(path, lambda p, f=frame: f.to_csv(p, index=True))
        paths.append(path)
    return paths


def _jsonable(value: Any) -> Any:
    """Plain JSON types (numpy scalars -> Python; NaN/inf -> None)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
