"""OPF benchmarks: hourly re-solve on SCE-56, 24-hour horizon with storage, 1,000-bus feeder.

Targets (issue 2): SCE-56 hourly re-solve wall <= 2x solver time and <= 10 ms; 1,000-bus
hourly solve <= 150 ms. The machine is shared and noisy: every figure is a median over many
solves, and the load average at start is recorded next to them.

Run: .venv/bin/python benchmarks/bench_opf.py   (writes benchmarks/results/opf.json)
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

import clarabel
import cvxpy as cp
import numpy as np
import pandas as pd

from gridledger.network import (
    EVCharger,
    HourlyOPF,
    Storage,
    default_day,
    load_feeder,
    solve_opf,
)
from gridledger.network.feeder import synthetic_feeder

OUT = Path(__file__).resolve().parent / "results" / "opf.json"
REPEATS = 5  # passes over the 24 hours of the default day


def _ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1e3, 3)


def _day_frames(feeder, seed: int = 0):
    prof = default_day(seed)
    cols = feeder.buses.index
    p = pd.DataFrame(np.outer(prof.load, feeder.buses.p_kw), columns=cols)
    q = pd.DataFrame(np.outer(prof.load, feeder.buses.q_kvar), columns=cols)
    pv = pd.DataFrame(np.outer(prof.pv, feeder.buses.pv_kw), columns=cols)
    return p, q, pv, prof.wholesale_usd_per_mwh


def bench_hourly(feeder, backend: str, repeats: int = REPEATS) -> dict:
    """Per-hour re-solve of the compiled one-hour model over the default day."""
    p, q, pv, price = _day_frames(feeder)
    has_pv = bool(feeder.buses.pv_kw.any())
    t0 = time.perf_counter()
    opf = HourlyOPF(feeder, backend=backend)
    opf.solve(p.loc[0], q.loc[0], price[0], pv_kw=pv.loc[0] if has_pv else None)
    first = time.perf_counter() - t0
    wall, cpu, wall_check, solver, gaps, verr = [], [], [], [], [], []
    for _ in range(repeats):
        for t in range(24):
            args = (p.loc[t], q.loc[t], price[t])
            kw = {"pv_kw": pv.loc[t] if has_pv else None, "hour": t}
            s, c = time.perf_counter(), time.process_time()
            r = opf.solve(*args, check_exactness=False, **kw)
            wall.append(time.perf_counter() - s)
            cpu.append(time.process_time() - c)
            solver.append(r.solver_time_s)
            s = time.perf_counter()
            rc = opf.solve(*args, **kw)
            wall_check.append(time.perf_counter() - s)
            gaps.append(rc.exactness.max_relaxation_gap)
            verr.append(rc.exactness.max_v_error_pu)
    return {
        "feeder": feeder.name,
        "buses": feeder.n_buses,
        "backend": backend,
        "solves": len(wall),
        "first_solve_incl_compile_ms": round(first * 1e3, 3),
        "median_wall_ms": _ms(wall),
        "median_cpu_ms": _ms(cpu),
        "median_wall_with_ac_check_ms": _ms(wall_check),
        "median_solver_ms": _ms(solver),
        "wall_over_solver": round(statistics.median(wall) / statistics.median(solver), 3),
        "max_relaxation_gap": float(max(gaps)),
        "max_v_error_pu": float(max(verr)),
    }


def bench_horizon(feeder, repeats: int = 5) -> dict:
    """24-hour coupled problem with two batteries and one EV (cvxpy DPP, Clarabel)."""
    p, q, pv, price = _day_frames(feeder)
    devices = [
        Storage(bus=37, e_max_kwh=500.0, p_ch_max_kw=200.0, p_dis_max_kw=200.0),
        Storage(bus=54, e_max_kwh=300.0, p_ch_max_kw=100.0, p_dis_max_kw=100.0),
        EVCharger(bus=48, p_max_kw=7.2, e_demand_kwh=30.0, t_arrive=18, t_depart=24),
    ]
    kw = {"price_usd_per_mwh": price, "pv_kw": pv, "devices": devices}
    t0 = time.perf_counter()
    r = solve_opf(feeder, p, q, **kw)
    first = time.perf_counter() - t0
    wall, solver = [], []
    for _ in range(repeats):
        s = time.perf_counter()
        r = solve_opf(feeder, p, q, **kw)
        wall.append(time.perf_counter() - s)
        solver.append(r.solver_time_s)
    return {
        "feeder": feeder.name,
        "hours": 24,
        "devices": "2 storage + 1 EV",
        "solves": repeats,
        "first_solve_incl_compile_ms": round(first * 1e3, 3),
        "median_wall_ms": _ms(wall),
        "median_solver_ms": _ms(solver),
        "max_relaxation_gap": r.exactness.max_relaxation_gap,
        "max_v_error_pu": r.exactness.max_v_error_pu,
        "objective_usd": r.objective_usd,
    }


def main() -> dict:
    load_avg = os.getloadavg()
    sce56 = load_feeder("sce56").with_pv({45: 0.0, 53: 1000.0, 19: 800.0})
    big = synthetic_feeder(1000, seed=0, r_pu_range=(5e-5, 4e-4))
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in load_avg],
            "python": platform.python_version(),
            "cvxpy": cp.__version__,
            "clarabel": clarabel.__version__,
        },
        "targets": {
            "sce56_hourly_wall_ms": 10.0,
            "sce56_wall_over_solver": 2.0,
            "synthetic1000_hourly_wall_ms": 150.0,
        },
        "hourly": [
            bench_hourly(sce56, "clarabel"),
            bench_hourly(sce56, "cvxpy"),
            bench_hourly(big, "clarabel", repeats=1),
        ],
        "horizon": bench_horizon(sce56),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    _print(results)
    return results


def _print(res: dict) -> None:
    print(f"load average at start: {res['machine']['load_average_at_start']}")
    head = (
        f"{'case':<40}{'solves':>7}{'wall ms':>10}{'cpu ms':>9}{'+AC ms':>9}{'solver ms':>11}"
        f"{'ratio':>7}"
    )
    print(head)
    print("-" * len(head))
    for h in res["hourly"]:
        print(
            f"{h['feeder'] + ' hourly (' + h['backend'] + ')':<40}{h['solves']:>7}"
            f"{h['median_wall_ms']:>10.2f}{h['median_cpu_ms']:>9.2f}"
            f"{h['median_wall_with_ac_check_ms']:>9.2f}"
            f"{h['median_solver_ms']:>11.2f}{h['wall_over_solver']:>7.2f}"
        )
    z = res["horizon"]
    print(
        f"{z['feeder'] + ' 24 h + storage/EV':<40}{z['solves']:>7}{z['median_wall_ms']:>10.2f}"
        f"{'':>18}{z['median_solver_ms']:>11.2f}"
        f"{z['median_wall_ms'] / z['median_solver_ms']:>7.2f}"
    )
    print(f"results: {OUT}")


if __name__ == "__main__":
    main()
