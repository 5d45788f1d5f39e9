"""`gridledger compare DIR1 DIR2 ...`: the KPIs of several runs side by side and overlaid figures.

`kpi_table(runs)` is one row per run (the KPIs of KPI_COLUMNS from each summary.json, and the
scenario fields in which the run differs from the first); `compare_figures(runs)` overlays the
runs' hourly grid demand and users' price on one clock-hour axis (each run in its own colour,
its no-trading baseline dashed). The command prints the table and writes `kpis.csv` and the
figures into `--out`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from gridledger.results import Results

DEFAULT_COMPARE_OUT = Path("results/compare")
KPI_COLUMNS: dict[str, str] = {
    "hours": "hours",
    "cost_saving_pct": "cost saving %",
    "user_cost_usd": "users' cost $",
    "user_cost_usd_baseline": "baseline cost $",
    "grid_energy_saved_kwh": "grid saved kWh",
    "grid_energy_saved_pct": "grid saved %",
    "local_kwh": "LETB kWh",
    "renewable_kwh": "RETB kWh",
    "incentives_usd": "incentives $",
    "tx_count": "transactions",
    "total_gas": "gas",
}
"""summary.json key -> column heading of the printed table (kpis.csv keeps the keys)."""


def run_labels(folders: list[Path]) -> list[str]:
    """A short unique label per folder: its name, or its path when two names clash."""
    names = [f.name or str(f) for f in folders]
    return [str(f) if names.count(n) > 1 else n for f, n in zip(folders, names, strict=True)]


def kpi_table(runs: Mapping[str, Results]) -> pd.DataFrame:
    """One row per run: the KPIs and `differs` (scenario fields unlike the first run's)."""
    from gridledger.outdir import scenario_differences

    first = next(iter(runs.values())).scenario
    rows = []
    for label, res in runs.items():
        row = {"run": label, **{k: res.summary.get(k) for k in KPI_COLUMNS}}
        if first is not None and res.scenario is not None:
            diff = scenario_differences(first, res.scenario)
            row["differs"] = "; ".join(diff)
        rows.append(row)
    return pd.DataFrame(rows).set_index("run")


def _cell(value: object) -> str:
    if isinstance(value, bool | str):
        return str(value) or "-"
    if isinstance(value, int | np.integer):
        return f"{value:,d}"
    if isinstance(value, float | np.floating) and np.isfinite(value):
        return f"{value:,.1f}"
    return "-"


def format_kpi_table(table: pd.DataFrame) -> str:
    """The KPI table as aligned text, one column per run (numbers rounded for reading; kpis.csv
    keeps them all)."""
    shown = table.rename(columns=KPI_COLUMNS).T.astype(object)
    return shown.map(_cell).to_string()


def _clock_x(res: Results) -> np.ndarray:
    """Hours since midnight of the first day at each market hour's start."""
    h = res.hourly
    return h["clock_hour"].iloc[0] + (h["t"] - h["t"].iloc[0]).to_numpy(float)


def _overlay(
    runs: Mapping[str, Results], column: str, ylabel: str, title: str, *, steps: bool
) -> Figure:
    fig = Figure(figsize=(9, 4.8), layout="constrained")
    ax = fig.subplots()
    all_x: list[float] = []
    for i, (label, res) in enumerate(runs.items()):
        x = _clock_x(res)
        all_x += [float(x.min()), float(x.max()) + 1.0]
        for col, style, suffix in ((column, "-", ""), (f"{column}_baseline", "--", " baseline")):
            if col not in res.hourly.columns:
                continue
            y = res.hourly[col].to_numpy(float)
            lw = 2.0 if not suffix else 1.0
            if steps:
                ax.stairs(y, np.append(x, x[-1] + 1), baseline=None, color=f"C{i}", ls=style,
                          lw=lw, label=label + suffix)  # fmt: skip
            else:
                ax.plot(x, y, color=f"C{i}", ls=style, lw=lw, marker="o", ms=3,
                        label=label + suffix)  # fmt: skip
    lo, hi = int(min(all_x)), int(np.ceil(max(all_x)))
    ticks = np.arange(lo, hi + 1, max(1, (hi - lo) // 12))
    ax.set_xticks(ticks, [f"{int(t) % 24:02d}:00" for t in ticks], rotation=45, ha="right")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("hour of day (start of market hour)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    ax.set_title(title)
    return fig


COMPARE_FIGURES: dict[str, Callable[[Mapping[str, Results]], Figure]] = {
    "compare_grid_demand": lambda runs: _overlay(
        runs, "grid_import_kwh", "users' grid demand (kWh per market hour)",
        "Grid demand of each run (dashed: its no-trading baseline)", steps=False,
    ),
    "compare_user_price": lambda runs: _overlay(
        runs, "user_price_usd_per_mwh", "average price paid by users ($/MWh)",
        "Users' price of each run (dashed: its no-trading baseline)", steps=True,
    ),
}  # fmt: skip


def write_comparison(
    runs: Mapping[str, Results], out: Path, formats: tuple[str, ...] = ("png",)
) -> list[Path]:
    """kpis.csv and the overlaid figures into `out`; the paths."""
    from gridledger.report import save_figure
    from gridledger.results import _atomic_write

    out.mkdir(parents=True, exist_ok=True)
    table = kpi_table(runs)
    _atomic_write(out / "kpis.csv", lambda p: table.to_csv(p))
    paths = [out / "kpis.csv"]
    for name, draw in COMPARE_FIGURES.items():
        paths += save_figure(draw(runs), out, name, formats, dpi=120)
    return paths


def cmd_compare(args: argparse.Namespace) -> int:
    """`gridledger compare`: load every folder first (a bad one fails before anything is drawn)."""
    from gridledger.outdir import check_writable

    check_writable(args.out)
    runs = {
        label: Results.load(folder)
        for label, folder in zip(run_labels(args.dirs), args.dirs, strict=True)
    }
    print(format_kpi_table(kpi_table(runs)))
    for path in write_comparison(runs, args.out, args.figure_format):
        print(f"wrote {path}")
    return 0


def add_compare_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `gridledger compare DIR DIR ... [--out DIR] [--figure-format png,pdf,svg]`."""
    from gridledger.cli import add_figure_format_argument

    p = sub.add_parser("compare", help="KPI table and overlaid figures of several runs")
    p.add_argument("dirs", type=Path, nargs="+", metavar="DIR", help="folders of `gridledger run`")
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_COMPARE_OUT,
        help=f"folder for kpis.csv and the figures (default {DEFAULT_COMPARE_OUT})",
    )
    add_figure_format_argument(p)
    p.set_defaults(func=cmd_compare)
    return p
