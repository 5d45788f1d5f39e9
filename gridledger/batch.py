"""Parameter sweeps: a sweep file → one model run per grid point and seed → Parquet, on Dask.

A sweep file (TOML: base scenario, hours, seeds, fixed overrides, a grid of Scenario fields;
format and validation in gridledger/sweep.py) gives the runs, each named by a content id.
Every finished run is written at once to ``OUT/runs/<run_id>.parquet`` (one row: run id,
seed, hours, grid values, the summary KPIs, wall time) and, with ``hourly = true``, to
``OUT/hourly/<run_id>.parquet``, each file moved into place atomically: a crash keeps the finished
runs and a rerun skips them. ``OUT/summary.parquet`` gathers the rows when the sweep is complete.

Runs go to a Dask cluster: a LocalCluster of worker processes by default, or an existing
scheduler (``--scheduler tcp://host:port``; its workers need gridledger installed). Results travel
back to this process, which alone writes files, so workers need no shared file system.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from gridledger.scenario import ScenarioError
from gridledger.sweep import RunSpec, Sweep, SweepError, run_id

RUNS_DIR = "runs"
HOURLY_DIR = "hourly"
SUMMARY_FILE = "summary.parquet"
SWEEP_FILE = "sweep.json"
ID_COLUMNS = ("run_id", "seed", "hours")
REPORT_KPIS = ("cost_saving_pct", "grid_energy_saved_pct", "total_gas")
"""KPIs `gridledger batch` prints (mean and std over seeds per grid point) after a sweep."""


class SweepRunError(RuntimeError):
    """Some runs of a sweep failed; the finished ones are saved, a rerun retries the others."""

    def __init__(self, failures: Mapping[str, str]) -> None:
        self.failures = dict(failures)
        lines = "\n".join(f"  run {rid}: {msg}" for rid, msg in self.failures.items())
        super().__init__(f"{len(self.failures)} run(s) failed (rerun to retry them):\n{lines}")


@dataclass(frozen=True)
class RunOutput:
    """What a worker sends back: the summary row and (optionally) the hourly frame."""

    run_id: str
    row: dict[str, Any]
    hourly: pd.DataFrame | None = None


# --- one run ---------------------------------------------------------------------------------


def run_one(spec: RunSpec, *, hourly: bool = False) -> RunOutput:
    """Run one scenario on the embedded chain and return its summary row (runs on a worker)."""
    from gridledger import run_scenario

    t0 = time.perf_counter()
    results = run_scenario(spec.scenario, progress=False)
    wall_s = time.perf_counter() - t0
    row: dict[str, Any] = {
        "run_id": spec.run_id,
        "seed": spec.seed,
        "hours": spec.scenario.hours,
        **{k: _cell(v) for k, v in spec.params.items()},
    }
    for key, value in _flatten(results.summary).items():
        if key in row and row[key] != value:  # e.g. the summary's own "hours" and "seed"
            raise SweepError(
                f"run {spec.run_id}: summary KPI {key!r} = {value!r} differs from the sweep's "
                f"column {key!r} = {row[key]!r}"
            )
        row[key] = value
    row["wall_s"] = wall_s
    frame = None
    if hourly:
        frame = results.hourly.reset_index(drop=results.hourly.index.name is None)
        frame.insert(0, "run_id", spec.run_id)
    return RunOutput(spec.run_id, row, frame)


def _cell(value: Any) -> Any:
    """A grid value as a Parquet cell (tables like tariffs as JSON text)."""
    if isinstance(value, list | tuple | dict):
        return json.dumps(value)
    return value


def _flatten(summary: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested KPI dicts → dotted columns; lists → JSON text; numbers and text stay."""
    out: dict[str, Any] = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out |= _flatten(value, f"{name}.")
        elif isinstance(value, list | tuple):
            out[name] = json.dumps(value, default=float)
        elif hasattr(value, "item") and callable(value.item):  # numpy scalar
            out[name] = value.item()
        else:
            out[name] = value
    return out


# --- storage ---------------------------------------------------------------------------------


def _atomic_parquet(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _atomic_text(text: str, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def finished_run_ids(out_dir: str | Path) -> set[str]:
    """Ids of the runs whose row is saved in ``out_dir``."""
    runs = Path(out_dir) / RUNS_DIR
    if not runs.is_dir():
        return set()
    return {p.stem for p in runs.glob("*.parquet")}


def save_output(output: RunOutput, out_dir: Path) -> None:
    """Write one finished run (hourly frame first; the row file marks the run as done)."""
    if output.hourly is not None:
        (out_dir / HOURLY_DIR).mkdir(parents=True, exist_ok=True)
        _atomic_parquet(output.hourly, out_dir / HOURLY_DIR / f"{output.run_id}.parquet")
    (out_dir / RUNS_DIR).mkdir(parents=True, exist_ok=True)
    _atomic_parquet(pd.DataFrame([output.row]), out_dir / RUNS_DIR / f"{output.run_id}.parquet")


def load_runs(out_dir: str | Path, sweep: Sweep | None = None) -> pd.DataFrame:
    """The saved rows, one per run (in the sweep's run order if ``sweep`` is given)."""
    runs = Path(out_dir) / RUNS_DIR
    files = sorted(runs.glob("*.parquet")) if runs.is_dir() else []
    if not files:
        raise SweepError(f"{runs}: no finished runs")
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    if sweep is not None:
        order = {s.run_id: i for i, s in enumerate(sweep.runs())}
        frame = frame[frame["run_id"].isin(order)]
        frame = frame.sort_values("run_id", key=lambda s: s.map(order)).reset_index(drop=True)
    return frame


def load_hourly(out_dir: str | Path) -> pd.DataFrame:
    """All saved hourly frames, stacked (column ``run_id`` tells the runs apart)."""
    folder = Path(out_dir) / HOURLY_DIR
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        raise SweepError(f"{folder}: no hourly frames (set hourly = true in the sweep file)")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


# --- running a sweep -------------------------------------------------------------------------


def run_sweep(
    sweep: Sweep,
    out_dir: str | Path,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    serial: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Run every run of ``sweep`` not yet saved in ``out_dir``; return all rows in run order.

    serial: run in this process, one after the other (no Dask).
    scheduler: address of a running Dask scheduler; else a LocalCluster of ``workers`` processes
    (default: the CPU count) is started and stopped around the sweep.
    Raises SweepRunError after the sweep if some runs failed (their ids and errors named).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _atomic_text(sweep.to_json(), out / SWEEP_FILE)
    specs = sweep.runs()
    done = finished_run_ids(out)
    pending = [s for s in specs if s.run_id not in done]
    failures: dict[str, str] = {}
    bar = _progress(len(specs), len(specs) - len(pending), enabled=progress, name=sweep.name)
    try:
        if serial:
            for spec in pending:
                try:
                    save_output(run_one(spec, hourly=sweep.hourly), out)
                except Exception as exc:
                    failures[spec.run_id] = f"{type(exc).__name__}: {exc}"
                bar(1)
        elif pending:
            _run_on_dask(pending, out, sweep.hourly, scheduler, workers, failures, bar)
    finally:
        bar(0, close=True)
    if failures:
        raise SweepRunError(failures)
    rows = load_runs(out, sweep)
    _atomic_parquet(rows, out / SUMMARY_FILE)
    return rows


def _run_on_dask(
    pending: list[RunSpec],
    out: Path,
    hourly: bool,
    scheduler: str | None,
    workers: int | None,
    failures: dict[str, str],
    bar: Callable[..., None],
) -> None:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        n = workers or os.cpu_count() or 1
        cluster = LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        futures = {
            client.submit(run_one, spec, hourly=hourly, key=f"gridledger-run-{spec.run_id}"): spec
            for spec in pending
        }
        for future in as_completed(futures):
            spec = futures[future]
            try:
                save_output(future.result(), out)
            except Exception as exc:
                failures[spec.run_id] = f"{type(exc).__name__}: {exc}"
            future.release()
            bar(1)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _progress(total: int, initial: int, *, enabled: bool, name: str) -> Callable[..., None]:
    """A progress bar over finished runs: call bar(n) to advance, bar(0, close=True) to end."""
    if not enabled:
        return lambda n, close=False: None
    from tqdm import tqdm

    pbar = tqdm(total=total, initial=initial, unit="run", desc=name, file=sys.stderr)

    def advance(n: int, close: bool = False) -> None:
        if n:
            pbar.update(n)
        if close:
            pbar.close()

    return advance


# --- command line ----------------------------------------------------------------------------


def batch_main(args: argparse.Namespace) -> int:
    """``gridledger batch``: run a sweep file."""
    try:
        sweep = Sweep.from_toml(args.sweep)
        out = args.out if args.out is not None else Path("results") / sweep.name
        rows = run_sweep(
            sweep,
            out,
            scheduler=args.scheduler,
            workers=args.workers,
            serial=args.serial,
            progress=not args.no_progress,
        )
    except (SweepError, ScenarioError) as exc:
        print(f"gridledger batch: {exc}", file=sys.stderr)
        return 2
    except SweepRunError as exc:
        print(f"gridledger batch: {exc}", file=sys.stderr)
        return 1
    print(f"{len(rows)} runs -> {Path(out) / SUMMARY_FILE}")
    kpis = [k for k in REPORT_KPIS if k in rows.columns]
    by = [k for k in sweep.grid if rows[k].map(lambda v: isinstance(v, int | float | str)).all()]
    if kpis:
        table = summarize(rows, by, kpis) if by else rows[kpis].agg(["mean", "std"])
        print(table.round(2).to_string())
    return 0


def add_batch_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``gridledger batch SWEEP.toml [--out DIR] [--scheduler URL] [--workers N]``."""
    parser = subparsers.add_parser(
        "batch",
        help="run a parameter sweep (grid × seeds) on Dask, results to Parquet",
        description=(
            "Run every grid point and seed of a sweep file; each finished run is saved at once "
            "to OUT/runs/<run_id>.parquet, and a rerun skips saved runs. "
            "Runs on a local Dask cluster unless --scheduler or --serial is given."
        ),
    )
    parser.add_argument("sweep", type=Path, help="sweep file (TOML: grid, seeds, hours)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (results/<name>)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, help="Dask scheduler address tcp://host:port")
    where.add_argument("--serial", action="store_true", help="run in this process, no Dask")
    parser.add_argument(
        "--workers", type=_positive_int, default=None, help="LocalCluster worker processes"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=batch_main)
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"--workers {text}: must be at least 1")
    return value


def summarize(rows: pd.DataFrame, by: Iterable[str], kpis: Iterable[str]) -> pd.DataFrame:
    """Mean and standard deviation of ``kpis`` over seeds for every value combination of ``by``."""
    by, kpis = list(by), list(kpis)
    missing = [c for c in by + kpis if c not in rows.columns]
    if missing:
        raise SweepError(f"columns {missing} not in the sweep results ({list(rows.columns)})")
    return rows.groupby(by)[kpis].agg(["mean", "std"])


__all__ = [
    "RunOutput",
    "RunSpec",
    "Sweep",
    "SweepError",
    "SweepRunError",
    "add_batch_parser",
    "finished_run_ids",
    "load_hourly",
    "load_runs",
    "run_id",
    "run_one",
    "run_sweep",
    "summarize",
]
