"""Benchmark: real SimBench grids (issue 16): load times, a day on three grids, a year of LV.

Every run is its own process (nothing warm in memory, its own peak RSS):

* load: cold (an empty cache folder: SimBench, conversion, Parquet write) and cached (the
  same folder again, median of `--repeats`) `load_simbench` of the four grids of issue 16,
  each in a fresh process by bench_grid_load.py's loader (that benchmark also checks the
  converted grids against pandapower).
* day: 24 market hours from 2016-06-01 on the default embedded engine of
  1-LV-urban6--0-sw (the packaged scenario lv_urban6_year.toml) and 1-MVLV-urban-6.305-0-sw
  (Scenario defaults); the day of 1-MVLV-semiurb-all-0-sw is the `semiurb` part: wall,
  set-up, chain_s, opf_s and its share of wall, transactions, agents, users, LETB areas,
  trades, peak RSS.
* opf: the operator's OPF alone for the 24 hours of 2016-06-01 on 1-MVLV-semiurb-all (its
  loads and generators at their profiles) and on `synthetic_feeder(9000)`: hour by hour on one
  thread (CPU, Clarabel iterations per hour, problem size, peak RSS), then as the model's
  day-ahead pricing does it (`solve_opf` on `opf_workers` threads: wall).
* semiurb: the packaged scenario mvlv_semiurb_day.toml (a day of 1-MVLV-semiurb-all-0-sw from
  2016-06-01, 8,772 user agents each signing its own transactions, 111 LETB areas) on the
  embedded engine and on two anvil processes (`--chains`): the `day` row's fields plus the
  chain it ran on; results under the key `semiurb_day` (by chain; a run on one chain keeps
  the other's row).
* year: 1-LV-urban6 over the whole year (`--year-days 0`) or over windows of `--year-days`
  days starting at each of `--year-starts`: per-day wall and CPU, and, for windows, the year
  extrapolated as set-up + 366 x the median day (stated as an extrapolation in the JSON).

`summary` is computed from the rows present: each target, the measured value and whether it
is met. The machine is shared: each run records `os.getloadavg()` at its start and end, and CPU time
beside wall time. Targets: a year of 1-LV-urban6 <= 15 min, a day of 1-MVLV-semiurb-all
<= 5 min, OPF < 5 % of wall.

    python benchmarks/bench_grids.py                      # everything (long)
    python benchmarks/bench_grids.py --parts day --grids 1-LV-urban6--0-sw
    python benchmarks/bench_grids.py --parts semiurb --chains embedded,anvil

Writes benchmarks/results/grids.json (or --out) and prints one line per run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "results" / "grids.json"
LV = "1-LV-urban6--0-sw"
LOAD_GRIDS = (LV, "1-MVLV-urban-6.305-0-sw", "1-MVLV-semiurb-all-0-sw", "1-MVLV-urban-all-0-sw")
DAY_GRIDS = LOAD_GRIDS[:2]  # the semiurb day is its own part (and on anvil too)
OPF_GRIDS = ("synthetic9000", "1-MVLV-semiurb-all-0-sw")
DAY_START = "2016-06-01"
YEAR_DAYS = 366  # 2016: the profiles' (leap) year, 8,784 hours
TARGETS = {"year_lv_s": 900.0, "day_semiurb_s": 300.0, "opf_share": 0.05}


SEMIURB = "1-MVLV-semiurb-all-0-sw"
PACKAGED = {LV: "lv_urban6_year.toml", SEMIURB: "mvlv_semiurb_day.toml"}


def _scenario(code: str, start: str, hours: int) -> Any:
    """LV: the packaged year scenario (its RETB plants, tokens for a year); semiurb: its packaged
    day (Scenario defaults but start); other MV/LV grids: defaults."""
    from importlib import resources

    from gridledger.scenario import Scenario

    if code in PACKAGED:
        path = resources.files("gridledger.scenarios").joinpath(PACKAGED[code])
        return Scenario.from_toml(path).replace(start=start, hours=hours)
    return Scenario(feeder=f"simbench:{code}", start=start, hours=hours)


def _per_day(values: list[float]) -> list[float]:
    return [round(sum(values[i : i + 24]), 4) for i in range(0, len(values) - 23, 24)]


def run_hours(code: str, start: str, hours: int, chain: str = "embedded") -> dict[str, Any]:
    """`hours` market hours of grid `code` from `start`, hour by hour, on the embedded engine
    or (chain = "anvil") on two anvil processes started here (their set-up is not timed)."""
    from gridledger.chain import DEFAULT_CHAIN_IDS, RpcChain
    from gridledger.chain.nodes import start_anvil

    if chain != "anvil":
        return _run_hours(code, start, hours, "embedded")
    nodes = [start_anvil(cid) for cid in DEFAULT_CHAIN_IDS.values()]
    try:  # 600 s per request: set-up blocks of ~9,000 registrations on shared cores
        ids = DEFAULT_CHAIN_IDS.items()
        chains = {k: RpcChain(n.url, k, expected_chain_id=cid, timeout_s=600.0)
                  for (k, cid), n in zip(ids, nodes, strict=True)}  # fmt: skip
        return _run_hours(code, start, hours, chains)
    finally:
        for n in nodes:
            n.stop()


def _run_hours(code: str, start: str, hours: int, chain: Any) -> dict[str, Any]:
    from gridledger.model import EnergyMarketModel
    from gridledger.timeline import hour_label

    row: dict[str, Any] = {"grid": code, "start": start, "hours": hours,
                           "chain": "embedded" if chain == "embedded" else "anvil",
                           "load_avg_at_start": os.getloadavg()}  # fmt: skip
    c0, t0 = time.process_time(), time.perf_counter()
    model = EnergyMarketModel(_scenario(code, start, hours), chain=chain)
    row["setup_s"], row["setup_cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
    print(f"set-up: {row['setup_s']:.1f} s wall", file=sys.stderr, flush=True)
    wall, cpu = [], []
    while model.running:
        c, w = time.process_time(), time.perf_counter()
        model.step()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
        label = hour_label(model.params, len(wall) - 1)
        print(f"{label}: {wall[-1]:.1f} s wall", file=sys.stderr, flush=True)
    t1 = time.perf_counter()
    results = model.results()
    row["results_s"] = time.perf_counter() - t1
    row["wall_s"] = time.perf_counter() - t0
    row["cpu_s"] = time.process_time() - c0
    timing = model.timing
    row.update({k: timing.get(k, 0.0) for k in ("chain_s", "opf_s", "power_flow_s",
                                                 "invariants_s")})  # fmt: skip
    row["opf_share"] = row["opf_s"] / row["wall_s"]
    row["tx"] = len(model.gas_rows)
    row["tx_market_hours"] = int(results.summary["tx_count"])
    row["trades"] = len(results.trades)
    row["agents"] = len(model.agents)
    row["users"] = len(model.users)
    row["letb_areas"] = model.n_areas
    row["day_wall_s"], row["day_cpu_s"] = _per_day(wall), _per_day(cpu)
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row["load_avg_at_end"] = os.getloadavg()
    return row


def run_opf(code: str, start: str) -> dict[str, Any]:
    """The operator's OPF alone on grid `code` (or "synthetic9000"), the 24 hours from
    `start`: loads and generators at their measured profiles as net loads, 100 $/MWh at the
    substation; the day-ahead path of `solve_opf` (one compiled hour re-solved per hour)."""
    import numpy as np
    import pandas as pd

    from gridledger.network import HourlyOPF

    row: dict[str, Any] = {"grid": code, "start": start, "load_avg_at_start": os.getloadavg()}
    if code == "synthetic9000":
        from gridledger.network import default_day
        from gridledger.network.feeder import synthetic_feeder

        feeder = synthetic_feeder(9000, load_kw=0.5, branching=300)
        shape = default_day(0).load
        p = np.outer(shape, feeder.buses.p_kw)
        q = np.outer(shape, feeder.buses.q_kvar)
    else:
        from gridledger.network import load_simbench

        grid = load_simbench(code)
        feeder = grid.feeder
        prof = grid.profiles.loc[pd.date_range(start, periods=24, freq="h")]
        p = np.zeros((24, feeder.n_buses))
        q = np.zeros((24, feeder.n_buses))
        loads, gens = grid.loads, grid.generators
        at = feeder.topology.positions(loads["bus"])
        for col, out, kind in (("p_kw", p, "_pload"), ("q_kvar", q, "_qload")):
            kw = prof[[f"{x}{kind}" for x in loads["profile"]]].to_numpy() * loads[col].to_numpy()
            np.add.at(out.T, at, kw.T)
        gen_kw = prof[list(gens["profile"])].to_numpy() * gens["p_kw"].to_numpy()
        np.add.at(p.T, feeder.topology.positions(gens["bus"]), -gen_kw.T)
    c0, t0 = time.process_time(), time.perf_counter()
    opf = HourlyOPF(feeder, include_pv=False)
    cpu, its, statuses = [], [], []
    for t in range(24):
        c = time.process_time()
        res = opf.solve(p[t], q[t], 100.0, hour=t)
        cpu.append(time.process_time() - c)
        its.append(int(opf.engine.sol.iterations))
        statuses.append(res.status)
    row.update(buses=feeder.n_buses, constraints=int(opf.engine.A.shape[0]),
               variables=int(opf.engine.A.shape[1]), nnz_a=int(opf.engine.A.nnz),
               day_wall_s=time.perf_counter() - t0, day_cpu_s=time.process_time() - c0,
               hour_cpu_s_median=statistics.median(cpu), iterations=its,
               statuses={s: statuses.count(s) for s in set(statuses)},
               peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # fmt: skip
    # the model's day-ahead path: `solve_opf` over the 24 hours, on `opf_workers` threads
    from gridledger.network import solve_opf
    from gridledger.network.opf.horizon import opf_workers

    cols = feeder.buses.index
    w = time.perf_counter()
    solve_opf(feeder, pd.DataFrame(p, columns=cols), pd.DataFrame(q, columns=cols),
              price_usd_per_mwh=100.0, include_pv=False)  # fmt: skip
    row["day_ahead_wall_s"] = time.perf_counter() - w
    row["day_ahead_workers"] = opf_workers(feeder, 24)
    return row


def child(args: list[str], timeout_s: float) -> dict[str, Any]:
    """Run `--one ARGS` in a fresh interpreter; its JSON row, or the error it died with."""
    cmd = [sys.executable, __file__, "--one", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return {"args": args, "error": f"timeout {timeout_s} s"}
    sys.stderr.write(proc.stderr[-2000:] if proc.returncode else "")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"args": args, "error": tail[0][:300]}
    return json.loads(lines[-1])


def bench_load(grids: list[str], repeats: int) -> list[dict[str, Any]]:
    """Cold and cached loads, each in a fresh process (bench_grid_load.py's loader)."""
    from bench_grid_load import _LOAD, _run  # the grid converter's own benchmark, same folder

    rows = []
    for code in grids:
        with tempfile.TemporaryDirectory() as cache:
            load_avg = os.getloadavg()
            cold = _run(_LOAD, code, cache)
            cached = [_run(_LOAD, code, cache)["load_s"] for _ in range(repeats)]
        row = {"grid": code, "buses": cold["buses"], "loads": cold["loads"],
               "cold_load_s": cold["load_s"], "cached_load_s": cached,
               "cached_load_s_median": statistics.median(cached),
               "load_avg_at_start": load_avg}  # fmt: skip
        rows.append(row)
        print(f"load {code}: cold {row['cold_load_s']:.1f} s, cached "
              f"{row['cached_load_s_median']:.3f} s", flush=True)  # fmt: skip
    return rows


def bench_days(grids: list[str], timeout_s: float) -> list[dict[str, Any]]:
    rows = []
    for code in grids:
        row = child([code, DAY_START, "24"], timeout_s)
        rows.append(row)
        print(_line(row), flush=True)
    return rows


def bench_semiurb(chains: list[str], timeout_s: float) -> dict[str, Any]:
    """A day of the packaged mvlv_semiurb_day.toml on each chain, each in its own process."""
    out = {}
    for chain in chains:
        out[chain] = child([SEMIURB, DAY_START, "24", chain], timeout_s)
        print(_line(out[chain]), flush=True)
    return out


def bench_year(days: int, starts: list[str], timeout_s: float) -> dict[str, Any]:
    """The whole year (days = 0), or windows whose median day is extrapolated to the year."""
    if days == 0:
        row = child([LV, "2016-01-01", str(24 * YEAR_DAYS)], timeout_s)
        print(_line(row), flush=True)
        return {"measured": "whole year", "run": row, "year_wall_s": row.get("wall_s")}
    runs = [child([LV, s, str(24 * days)], timeout_s) for s in starts]
    for r in runs:
        print(_line(r), flush=True)
    ok = [r for r in runs if "error" not in r]
    day_wall = [d for r in ok for d in r["day_wall_s"]]
    day_cpu = [d for r in ok for d in r["day_cpu_s"]]
    if not day_wall:
        return {"measured": "windows", "runs": runs, "error": "no window finished"}
    setup = statistics.median(r["setup_s"] for r in ok)
    median_day = statistics.median(day_wall)
    return {
        "measured": f"windows of {days} days from {starts}, not the whole year",
        "runs": runs,
        "median_day_wall_s": median_day,
        "median_day_cpu_s": statistics.median(day_cpu),
        "year_wall_s_extrapolated": setup + YEAR_DAYS * median_day,
        "year_cpu_s_extrapolated": statistics.median(r["setup_cpu_s"] for r in ok)
        + YEAR_DAYS * statistics.median(day_cpu),
        "extrapolation": f"set-up (median of the windows') + {YEAR_DAYS} x the median day "
        "(wall; cpu likewise); the year's own set-up prices 8,784 hours, not a window's",
    }


def summary(out: dict[str, Any]) -> dict[str, Any]:
    """Each target of issue 16 with the value measured in `out` and whether it is met."""
    rows: dict[str, Any] = {}

    def target(name: str, value: float | None, limit: float, what: str) -> None:
        if value is not None:
            rows[name] = {"value": round(value, 4), "target": limit, "met": value <= limit,
                          "what": what}  # fmt: skip

    year = (out.get("year") or {}).get("run") or {}
    target("year_lv_wall_s", year.get("wall_s"), TARGETS["year_lv_s"],
           "a year of 1-LV-urban6 (8,784 h), wall")  # fmt: skip
    for chain, r in (out.get("semiurb_day") or {}).items():
        if "error" in r:
            rows[f"day_semiurb_{chain}"] = {"error": r["error"]}
            continue
        what = f"a day of 1-MVLV-semiurb-all on {chain}, wall (set-up included)"
        if chain == "embedded":  # issue 16's 5 minutes are for the default embedded engine
            target(f"day_semiurb_{chain}_wall_s", r["wall_s"], TARGETS["day_semiurb_s"], what)
        else:
            rows[f"day_semiurb_{chain}_wall_s"] = {"value": round(r["wall_s"], 4), "what": what}
        target(f"day_semiurb_{chain}_opf_share", r["opf_share"], TARGETS["opf_share"],
               f"OPF wall / day wall, 1-MVLV-semiurb-all on {chain}")  # fmt: skip
    if year:
        target("year_lv_opf_share", year["opf_share"], TARGETS["opf_share"],
               "OPF wall / year wall, 1-LV-urban6")  # fmt: skip
    loads = [r["cached_load_s_median"] for r in out.get("load", []) if "error" not in r]
    if loads:
        target("cached_load_s_max", max(loads), 2.0, "slowest cached grid load (median)")
    return rows


def _line(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"{r.get('args')}: FAILED {r['error']}"
    return (
        f"{r['grid']} {r['start']} {r['hours']} h on {r.get('chain', 'embedded')}: "
        f"wall {r['wall_s']:.1f} s (cpu {r['cpu_s']:.1f}, "
        f"set-up {r['setup_s']:.1f}, chain {r['chain_s']:.1f}, OPF {r['opf_s']:.2f} = "
        f"{100 * r['opf_share']:.1f} %), {r['tx']:,} tx, {r['agents']:,} agents, "
        f"{r['letb_areas']} LETB areas, peak RSS {r['peak_rss_mb']:.0f} MB, "
        f"load {r['load_avg_at_start'][0]:.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default="load,day,opf,semiurb,year",
                   help="load,day,opf,semiurb,year (default all)")  # fmt: skip
    p.add_argument("--grids", default=None, help="comma-separated SimBench codes (load, day)")
    p.add_argument("--repeats", type=int, default=3, help="cached loads per grid")
    p.add_argument("--year-days", type=int, default=0, help="0: the whole year; N: windows")
    p.add_argument("--year-starts", default="2016-01-11,2016-06-06",
                   help="first days of the windows (--year-days N)")  # fmt: skip
    p.add_argument("--timeout", type=float, default=7200.0, help="seconds per run")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--code", default="", help="what code ran (branch, commit), kept per part")
    p.add_argument("--chains", default="embedded,anvil", help="semiurb: embedded,anvil")
    p.add_argument("--one", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        code, start, hours, *chain = args.one
        row = run_opf(code, start) if hours == "opf" else run_hours(code, start, int(hours), *chain)
        print(json.dumps(row))
        return 0
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    if bad := set(parts) - {"load", "day", "year", "opf", "semiurb"}:
        p.error(f"--parts: unknown {sorted(bad)}")
    pick = args.grids.split(",") if args.grids else None
    out: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {}
    out["targets"] = TARGETS
    t0 = time.perf_counter()
    out.setdefault("code", {}).update(dict.fromkeys(parts, args.code))
    if "load" in parts:
        out["load"] = bench_load(pick or list(LOAD_GRIDS), args.repeats)
    if "day" in parts:
        out["day"] = bench_days(pick or list(DAY_GRIDS), args.timeout)
    if "opf" in parts:
        out["opf"] = [child([g, DAY_START, "opf"], args.timeout) for g in OPF_GRIDS]
        for r in out["opf"]:
            print(f"OPF {r.get('grid')}: {r.get('day_cpu_s', 0):.1f} s CPU a day, iterations "
                  f"{r.get('iterations')}; day-ahead on {r.get('day_ahead_workers')} threads "
                  f"{r.get('day_ahead_wall_s', 0):.1f} s wall {r.get('error', '')}",
                  flush=True)  # fmt: skip
    if "semiurb" in parts:
        runs = bench_semiurb(args.chains.split(","), args.timeout)
        out.setdefault("semiurb_day", {}).update(runs)
    if "year" in parts:
        starts = [s.strip() for s in args.year_starts.split(",") if s.strip()]
        out["year"] = bench_year(args.year_days, starts, args.timeout)
    out["summary"] = summary(out)
    out["config"] = {
        "parts_run_last": parts,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()}",
        "python": platform.python_version(),
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "bench_s": time.perf_counter() - t0,
        "note": "one run per grid and part, each in its own process, embedded engine (revm), "
        "no checkpoints (gridledger run's default for an in-process chain); a shared machine: "
        "see each run's load averages and cpu_s beside wall_s",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
