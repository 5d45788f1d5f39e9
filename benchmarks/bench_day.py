"""Benchmark: wall time of the default market day on each chain backend, split by part.

Runs the default Scenario() end to end (EnergyMarketModel.run) on the in-process revm and
py-evm chains and on two anvil nodes (started here, one per chain), `REPEATS` times each, in
the same run, and reports the median
total wall time (set-up included) and its split over the whole run: OPF, chain (signing, sending,
mining, view calls), AC power flow and the rest (Python: agents, bookkeeping, mesa); set-up
(world, day-ahead OPF, deployments, funding, registration) is also shown on its own.
`cpu_s` is the CPU time of this process (less sensitive than wall time to other jobs on a shared
machine). `tx_per_chain_s` is the day's transactions over chain_s: signed transactions per
second of chain time inside the model. Targets (issue 14): revm day <= 5 s wall, chain_s(py-evm)
/ chain_s(revm) >= 10. Writes benchmarks/results/day.json and prints a table.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

from gridledger.chain import DEFAULT_CHAIN_IDS
from gridledger.chain.nodes import start_anvil
from gridledger.model import EnergyMarketModel
from gridledger.scenario import Scenario

REPEATS = int(os.environ.get("BENCH_DAY_REPEATS", "3"))
OUT = Path(__file__).parent / "results" / "day.json"


def one_day(chain: str) -> dict[str, float]:
    load = os.getloadavg()[0]  # a shared machine: other jobs' load
    c0, t0 = time.process_time(), time.perf_counter()
    model = EnergyMarketModel(Scenario(), chain=chain)
    setup = time.perf_counter() - t0
    results = model.run()
    total = time.perf_counter() - t0
    cpu = time.process_time() - c0  # this process only (anvil nodes run in their own)
    parts = {k: model.timing.get(k, 0.0) for k in ("opf_s", "chain_s", "power_flow_s")}
    python = total - sum(parts.values())
    n_tx = len(results.gas)
    return {"load_avg_1m_at_start": load, "total_s": total, "cpu_s": cpu, "setup_s": setup,
            **parts, "python_s": python, "tx": n_tx,
            "tx_per_chain_s": n_tx / parts["chain_s"]}  # fmt: skip


def main() -> None:
    runs: dict[str, list[dict[str, float]]] = {"revm": [], "pyevm": [], "anvil": []}
    for _ in range(REPEATS):
        for engine in ("revm", "pyevm"):
            runs[engine].append(one_day(engine))
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
    ratio = medians["pyevm"]["chain_s"] / medians["revm"]["chain_s"]
    out = {"repeats": REPEATS, "median": medians, "chain_s_pyevm_over_revm": ratio, "runs": runs}
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    keys = list(medians["revm"])
    print(f"{'median (s)':<22}" + "".join(f"{b:>12}" for b in medians))
    for k in keys:
        print(f"{k:<22}" + "".join(f"{medians[b].get(k, float('nan')):>12.2f}" for b in medians))
    print(f"chain_s(py-evm) / chain_s(revm) = {ratio:.1f} (target >= 10); revm total_s target <= 5")


if __name__ == "__main__":
    main()
