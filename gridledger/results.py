"""Results of one run: tidy DataFrames (hourly, trades, gas, agents) and a summary, saved safely.

`Results.save(folder)` writes `hourly.parquet`, `trades.parquet`, `gas.parquet`, `agents.parquet`,
`attacks.parquet`, the period tables `daily.parquet` (one row per simulated day) and, when the run
has dates, `monthly.parquet` and `monthly.csv` (gridledger/periods.py), `scenario.toml` and
`summary.json` (`export_csv` adds `<frame>.csv` and `daily.csv`). The period tables are derived
from the hourly and trades frames: `Results.load` recomputes them rather than reading them. Each
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
import shutil
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
from gridledger.periods import daily_of, monthly_frame
from gridledger.scenario import Scenario

FRAMES = ("hourly", "trades", "gas", "agents", "attacks")
OPTIONAL_FRAMES = ("attacks",)
APPENDED_FRAMES = ("hourly", "trades", "gas", "agents")
"""Frames a checkpoint appends per hour as parts (PARTS_DIR/<frame>/<n>.parquet) instead of
rewriting them (gridledger/checkpoint.py); summary.json's `parts` says how many are valid."""
PARTS_DIR = "parts"
PERIOD_TABLES = ("daily", "monthly")
"""Tables derived from the frames, written beside them by `save` (monthly only with dates)."""
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

    @property
    def daily(self) -> pd.DataFrame:
        """One row per simulated day (gridledger/periods.py `daily_frame`)."""
        return daily_of(self)

    @property
    def monthly(self) -> pd.DataFrame | None:
        """One row per calendar month, or None when the run has no dates (no `start`)."""
        return monthly_frame(self.daily)

    def period_tables(self) -> dict[str, pd.DataFrame | None]:
        """PERIOD_TABLES by name (monthly None without dates)."""
        daily = self.daily
        return {"daily": daily, "monthly": monthly_frame(daily)}

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
        for name, table in self.period_tables().items():
            path = folder / f"{name}.parquet"
            if table is None:  # no months without dates: no stale table of an earlier run either
                path.unlink(missing_ok=True)
                path.with_suffix(".csv").unlink(missing_ok=True)
                continue
            _atomic_write(path, lambda p, f=table: _write_parquet(f, p, run_id))
            if name == "monthly":  # the months as a small table for a spreadsheet
                _atomic_write(path.with_suffix(".csv"), lambda p, f=table: f.to_csv(p, index=False))
        if self.scenario is not None:
            text = f"# run_id = {run_id}\n" + self.scenario.to_toml()
            _atomic_write(folder / SCENARIO_FILE, lambda p: p.write_text(text))
        summary = {"run_id": run_id, **_jsonable(self.summary)}
        # summary.json is moved last: its presence with a matching run id marks a complete save
        _atomic_write(
            folder / SUMMARY_FILE,
            lambda p: p.write_text(json.dumps(summary, indent=2, sort_keys=True, allow_nan=False)),
        )
        shutil.rmtree(folder / PARTS_DIR, ignore_errors=True)  # a checkpoint's, now superseded
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
        parts = summary.pop("parts", None)  # a checkpoint's partial results
        frames: dict[str, pd.DataFrame] = {}
        for name in FRAMES:
            if parts is not None and name in (*APPENDED_FRAMES, *OPTIONAL_FRAMES):
                if name in APPENDED_FRAMES:
                    frames[name] = _read_parts(folder, name, int(parts), run_id)
                continue
            path = folder / f"{name}.parquet"
            if not path.is_file() and name in OPTIONAL_FRAMES:
                continue  # saved before this frame existed: rebuilt from the summary
            if not path.is_file():
                raise ResultsError(f"{path}: missing")
            frames[name] = _read_parquet(path, run_id).to_pandas()
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


def hourly_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The hourly frame of hour rows: indexed by the market hour t (also a column)."""
    hourly = pd.DataFrame(rows)
    if not hourly.empty:
        hourly = hourly.set_index("t", drop=False)
        hourly.index.name = None
    return hourly


def part_path(folder: Path, frame: str, index: int) -> Path:
    """Where a checkpoint writes part `index` (0: set-up, t + 1: hour t) of an appended frame."""
    return folder / PARTS_DIR / frame / f"{index:05d}.parquet"


def _read_parts(folder: Path, name: str, n: int, run_id: str | None) -> pd.DataFrame:
    """The first `n` parts of an appended frame, concatenated in order."""
    frames = [_read_parquet(part_path(folder, name, i), run_id).to_pandas() for i in range(n)]
    filled = [f for f in frames if len(f)] or frames[:1]  # an hour may add no rows
    if not filled:
        return pd.DataFrame()
    # hourly keeps its index (t); the other frames number their rows anew
    return pd.concat(filled, ignore_index=name != "hourly")


def _read_parquet(path: Path, run_id: str | None) -> pa.Table:
    """A Parquet file of run `run_id` (ResultsError naming it if missing, bad or another run's)."""
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
    return table


def write_parquet(frame: pd.DataFrame, path: Path, run_id: str) -> None:
    """`frame` to `path`, tagged with `run_id`, in place (a checkpoint's part: valid only once
    summary.json counts it, so a torn or stale one is never read)."""
    _write_parquet(frame, path, run_id)


def _write_parquet(frame: pd.DataFrame, path: Path, run_id: str) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=True)
    meta = dict(table.schema.metadata or {})
    meta[_RUN_ID_KEY] = run_id.encode()
    pq.write_table(table.replace_schema_metadata(meta), path)


def _atomic_write(path: Path, write: Callable[[Path], None], *, durable: bool = True) -> None:
    """Write via a temporary file in the same folder, fsync (if `durable`: survives a power
    loss, not only a crashed process), then os.replace into place.

    The temporary file is created with mode 0666 minus the umask (like any file the user
    writes, e.g. the figures), not mkstemp's 0600, so results are as readable as the figures."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        if durable:
            with tmp.open("rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def export_csv(results: Results, folder: str | Path) -> list[Path]:
    """Write each frame and the daily table as `<name>.csv` beside its Parquet file (for
    spreadsheets and R).

    The Parquet files stay the source `Results.load` reads; CSV is an export. Returns the paths.
    """
    folder = Path(folder)
    paths = []
    for name, frame in {**results.frames(), "daily": results.daily}.items():
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
