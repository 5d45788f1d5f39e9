"""Real-grid loading: cold (SimBench + conversion + cache write) and cached load times, and the
power flow's agreement with pandapower on each converted grid.

Target (issue 16): a cached load <= 2 s, also for 1-MVLV-semiurb-all-0-sw (9,099 buses).
Each load runs in a fresh Python process (nothing warm in memory) with its own empty cache
folder; `load_s` is the `load_simbench` call, `import_s` the `import gridledger.network` before
it. Cached figures are medians of REPEATS processes. `max_dv_pu` = max |V| difference at any
bus between run_power_flow on the converted grid and pandapower's runpp (trafo_model="pi") at
the nominal loads.

Run: .venv/bin/python benchmarks/bench_grid_load.py   (writes benchmarks/results/grid_load.json)
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "grid_load.json"
CODES = (
    "1-LV-urban6--0-sw",
    "1-MVLV-urban-6.305-0-sw",
    "1-MVLV-semiurb-all-0-sw",
    "1-MVLV-urban-all-0-sw",
)
REPEATS = 3

_LOAD = """
import json, sys, time
t0 = time.perf_counter()
from gridledger.network import load_simbench
t1 = time.perf_counter()
g = load_simbench(sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "buses": g.feeder.n_buses,
                  "loads": len(g.loads), "generators": len(g.generators),
                  "lv_grids": g.n_lv_grids, "profile_columns": g.profiles.shape[1]}))
"""

_CHECK = """
import json, sys
import numpy as np, pandapower as pp, simbench as sb
from gridledger.network import BUS_OFFSET, load_simbench, run_power_flow
g = load_simbench(sys.argv[1])
net = sb.get_simbench_net(sys.argv[1])
pp.runpp(net, trafo_model="pi", tolerance_mva=1e-11, max_iteration=50, numba=False)
gen = g.generators
res = run_power_flow(g.feeder, p_gen_kw=gen.p_kw.groupby(gen.bus).sum(),
                     q_gen_kvar=gen.q_kvar.groupby(gen.bus).sum())
vm = net.res_bus.vm_pu.loc[g.feeder.buses.index - BUS_OFFSET].to_numpy()
print(json.dumps({"max_dv_pu": float(np.max(np.abs(vm - res.v_pu.to_numpy()))),
                  "v_min_pu": float(res.v_pu.min())}))
"""


CRASHES: list[dict] = []  # a process that died is recorded (with its stderr) and re-run once


def _run(script: str, code: str, cache: str, retry: bool = True) -> dict:
    env = {**os.environ, "GRIDLEDGER_CACHE": cache}
    out = subprocess.run(
        [sys.executable, "-c", script, code], env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        CRASHES.append({"code": code, "returncode": out.returncode, "stderr": out.stderr[-2000:]})
        print(CRASHES[-1], flush=True)
        if retry:
            return _run(script, code, cache, retry=False)
        raise RuntimeError(f"{code}: process failed twice")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    rows = []
    for code in CODES:
        with tempfile.TemporaryDirectory() as cache:
            cold = _run(_LOAD, code, cache)
            warm = [_run(_LOAD, code, cache) for _ in range(REPEATS)]
            check = _run(_CHECK, code, cache)
            size = sum(p.stat().st_size for p in Path(cache).rglob("*") if p.is_file())
        row = {
            "code": code,
            **{k: cold[k] for k in ("buses", "loads", "generators", "lv_grids")},
            "cold_load_s": round(cold["load_s"], 2),
            "cached_load_s": round(statistics.median(w["load_s"] for w in warm), 3),
            "cached_import_s": round(statistics.median(w["import_s"] for w in warm), 2),
            "cache_mb": round(size / 1e6, 1),
            **check,
        }
        print(row, flush=True)
        rows.append(row)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "cpus": os.cpu_count(),
                "load_avg_at_start": os.getloadavg()[0],
                "repeats": REPEATS,
                "grids": rows,
                "crashes": CRASHES,
            },
            indent=1,
        )
        + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
