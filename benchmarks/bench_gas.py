"""Gas per contract operation at the default scenario's size, on the real EVM (eth-tester).

Deploys EnergyToken, one LETB area (6 producers incl. a prosumer, 5 consumers) and one RETB zone
(2 REPs), runs a market day, opens hours with the caps of the default scenario's largest LETB
area (9 seller buses) on a fresh deployment, and writes a table per operation (count, mean,
median, max gas) to benchmarks/results/gas.json; prints it.
Run: `python benchmarks/bench_gas.py [--hours N]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridledger.contracts.gas_bounds import bound_of as target_of  # noqa: E402
from tests.contracts.conftest import (  # noqa: E402
    DEFAULT_AREA_SELLER_BUSES,
    Chain,
    default_area_open_hours,
    deploy_market,
    gas_day,
)


def table(log: list[tuple[str, int]]) -> list[dict[str, object]]:
    by_op: dict[str, list[int]] = defaultdict(list)
    for op, gas in log:
        by_op[op].append(gas)
    rows = []
    for op in sorted(by_op):
        g = by_op[op]
        rows.append(
            {
                "operation": op,
                "count": len(g),
                "mean": round(statistics.fmean(g)),
                "median": round(statistics.median(g)),
                "max": max(g),
                "target": target_of(op),
                "within_target": max(g) <= target_of(op),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=6)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    chain = Chain.fresh()
    market = deploy_market(chain)
    setup = list(chain.gas_log)
    day = gas_day(market, args.hours)
    probe = deploy_market(Chain.fresh())  # open_hour with the default scenario's largest area
    n = len(DEFAULT_AREA_SELLER_BUSES)
    first, *later = default_area_open_hours(probe, args.hours)
    area = [(f"LETB.open_hour {n} buses (default area, first hour)", first)]
    area += [(f"LETB.open_hour {n} buses (default area)", g) for g in later]
    rows = table(setup + day + area)
    out = {
        "benchmark": "gas",
        "hours": args.hours,
        "producers": len(market.producers) + 1,
        "consumers": len(market.consumers),
        "reps": len(market.reps),
        "wall_s": round(time.perf_counter() - t0, 1),
        "rows": rows,
    }
    path = ROOT / "benchmarks" / "results" / "gas.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    width = max(len(r["operation"]) for r in rows)
    print(f"{'operation':<{width}} {'count':>5} {'mean':>8} {'median':>8} {'max':>8} {'target':>8}")
    for r in rows:
        flag = "" if r["within_target"] else "  > target"
        print(
            f"{r['operation']:<{width}} {r['count']:>5} {r['mean']:>8} {r['median']:>8} "
            f"{r['max']:>8} {r['target']:>8}{flag}"
        )
    print(f"wrote {path.relative_to(ROOT)} ({out['wall_s']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
