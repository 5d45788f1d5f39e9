"""Benchmark: wall time of the default market day, embedded chains vs anvil, split by part.

Runs the default Scenario() end to end (EnergyMarketModel.run) on the embedded py-evm chains and
on two anvil nodes (started here, one per chain), `REPEATS` times each, and reports the median
total wall time (set-up included) and its split over the whole run: OPF, chain (signing, sending,
mining, view calls), AC power flow and the rest (Python: agents, bookkeeping, mesa); set-up
(world, day-ahead OPF, deployments, funding, registration) is also shown on its own.
`cpu_s` is the CPU time of this process (less sensitive than wall time to other jobs on a shared
machine). Targets (issue 5): <= 30 s embedded, <= 10 s anvil.
Writes benchmarks/results/bench_day.json and prints a table.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from gridledger.market.chain import DEFAULT_CHAIN_IDS
from gridledger.market.node import start_anvil
from gridledger.model import EnergyMarketModel
from gridledger.scenario import Scenario

REPEATS = int(__import__("os").environ.get("BENCH_DAY_REPEATS", "3"))
OUT = Path(__file__).parent / "results" / "bench_day.json"


def one_day(chain: str) -> dict[str, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    model = EnergyMarketModel(Scenario(), chain=chain)
    setup = time.perf_counter() - t0
    model.run()
    total = time.perf_counter() - t0
    cpu = time.process_time() - c0  # this process only (anvil nodes run in their own)
    parts = {k: model.timing.get(k, 0.0) for k in ("opf_s", "chain_s", "power_flow_s")}
    python = total - sum(parts.values())
    return {"total_s": total, "cpu_s": cpu, "setup_s": setup, **parts, "python_s": python}


def main() -> None:
    runs: dict[str, list[dict[str, float]]] = {"embedded": [], "anvil": []}
    for _ in range(REPEATS):
        runs["embedded"].append(one_day("embedded"))
    nodes = [start_anvil(DEFAULT_CHAIN_IDS[c]) for c in ("letb", "retb")]
    try:
        spec = ",".join(n.url for n in nodes)
        for _ in range(REPEATS):
            runs["anvil"].append(one_day(spec))
    finally:
        for n in nodes:
            n.stop()
    medians = {
        backend: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        for backend, rs in runs.items()
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"repeats": REPEATS, "median": medians, "runs": runs}, indent=2))
    keys = list(medians["embedded"])
    print(f"{'median (s)':<22}" + "".join(f"{b:>12}" for b in medians))
    for k in keys:
        print(f"{k:<22}" + "".join(f"{medians[b].get(k, float('nan')):>12.2f}" for b in medians))
    print("targets: embedded <= 30 s, anvil <= 10 s (total_s)")


if __name__ == "__main__":
    main()
