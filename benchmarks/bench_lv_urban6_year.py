"""A year of measured time on 1-LV-urban6 (issue 16's acceptance): wall time and monthly trades.

Runs `gridledger run --scenario lv_urban6_year.toml` once (8,784 hours, every hourly invariant
checked, the default embedded engine) in a fresh process, then tabulates per calendar month the
LETB and RETB trades, local and renewable energy, PV and the users' cost saving, and whether every
month has LETB trades and every month with PV has RETB trades. One run (~35 min on 2 shared
cores): the JSON records the machine's load average so the wall time can be read against it.

Run: .venv/bin/python benchmarks/bench_lv_urban6_year.py [--from RESULTS_DIR] [--scenario FILE]
(writes benchmarks/results/lv_urban6_year.json; --from tabulates an existing run's folder).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from gridledger import Scenario

OUT = Path(__file__).resolve().parent / "results" / "lv_urban6_year.json"
SCENARIO = "lv_urban6_year.toml"


def months(folder: Path) -> pd.DataFrame:
    """Per calendar month of the run: trades per chain, energies, saving (%)."""
    sc = Scenario.from_toml(folder / "scenario.toml")
    start = pd.Timestamp(sc.start) + pd.Timedelta(hours=sc.start_hour)
    hourly = pd.read_parquet(folder / "hourly.parquet")
    trades = pd.read_parquet(folder / "trades.parquet")
    month_of = lambda t: (start + pd.to_timedelta(t, unit="h")).dt.month  # noqa: E731
    m = hourly.groupby(month_of(hourly["t"])).agg(
        local_kwh=("local_kwh", "sum"),
        renewable_kwh=("renewable_kwh", "sum"),
        rooftop_pv_kwh=("rooftop_pv_kwh", "sum"),
        rep_pv_kwh=("rep_pv_kwh", "sum"),
        demand_kwh=("demand_kwh", "sum"),
        cost_usd=("user_cost_usd", "sum"),
        cost_usd_baseline=("user_cost_usd_baseline", "sum"),
    )
    m["saving_pct"] = 100 * (1 - m["cost_usd"] / m["cost_usd_baseline"])
    per_chain = trades.groupby([month_of(trades["t"]), "chain"]).size().unstack(fill_value=0)
    m = m.join(per_chain.add_suffix("_trades")).fillna(0)
    m.index.name = "month"
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="folder", type=Path, help="tabulate this run's folder")
    ap.add_argument("--scenario", default=SCENARIO)
    args = ap.parse_args()
    run: dict[str, object] = {}
    folder = args.folder
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="lv_urban6_year_"))
        cmd = [sys.executable, "-m", "gridledger.cli", "run", "--scenario", args.scenario]
        cmd += ["--out", str(folder), "--force", "--no-progress"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        run = {"command": " ".join(cmd[1:]), "wall_s": round(time.perf_counter() - t0, 1)}
    summary = json.loads((folder / "summary.json").read_text())
    m = months(folder)
    with_pv = m["rep_pv_kwh"] > 0
    out = {
        **run,
        "scenario": args.scenario,
        "hours": summary["hours"],
        "complete": summary["complete"],
        "cost_saving_pct": summary["cost_saving_pct"],
        "timing_s": summary["timing_s"],
        "every_month_letb": bool((m["letb_trades"] > 0).all()),
        "every_month_with_pv_retb": bool((m.loc[with_pv, "retb_trades"] > 0).all()),
        "months": m.round(2).reset_index().to_dict(orient="records"),
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg": os.getloadavg(),
            "python": platform.python_version(),
        },
    }
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(m.round(1).to_string())
    print({k: out[k] for k in ("complete", "every_month_letb", "every_month_with_pv_retb")})


if __name__ == "__main__":
    main()
