"""Gas per contract operation at the default scenario's size, on the real EVM (eth-tester).

Two tables, both written to benchmarks/results/gas.json and printed:
1. contract level: deploys EnergyToken, one LETB area (6 producers incl. a prosumer, 5 consumers;
   the LETB capped at `Scenario().letb_max_fills_per_request` fills per request, as the model
   deploys it) and one RETB zone (2 REPs), runs a market day, opens hours with the caps of the
   default scenario's largest LETB area (9 seller buses) on a fresh deployment; count, mean,
   median, max gas per operation, LETB operations split by fills;
2. model default day (unless --no-model-day): the model's own gas frame of `Scenario()` (24
   hours, 3 LETB areas, 56 buses; set-up registrations, approvals and token grants included,
   deployments and native gas funding left out); count, mean, median, max per operation, the
   max of its set-up rows and the max in the first hour the operation ran (where a first
   payment shows); settle_many rows add items per call and gas per item (a call's gas / its
   Settled events).
Every row carries its bound from gridledger/contracts/gas_bounds.py (half the paper's figures).
Gas is deterministic; only `wall_s` depends on the machine.
Run: `python benchmarks/bench_gas.py [--hours N] [--no-model-day]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridledger import EnergyMarketModel, Scenario  # noqa: E402
from gridledger.contracts.gas_bounds import BATCHED, bound_of, item_bound_of  # noqa: E402
from tests.contracts.conftest import (  # noqa: E402
    DEFAULT_AREA_SELLER_BUSES,
    Chain,
    default_area_open_hours,
    deploy_market,
    gas_day,
)


def table(log: list[tuple[str, int]]) -> list[dict[str, object]]:
    """Contract-level table: one row per operation label."""
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
                "target": bound_of(op),
                "within_target": max(g) <= bound_of(op),
            }
        )
    return rows


def model_day_table(scenario: Scenario) -> dict[str, Any]:
    """Run the model's day and tabulate its gas frame per contract operation."""
    t0 = time.perf_counter()
    model = EnergyMarketModel(scenario)
    results = model.run()
    wall = time.perf_counter() - t0
    items_of_tx = model.ledger.events("Settled").groupby("tx_hash").size()  # per settle_many
    g = results.gas
    g = g[(g["operation"] != "deploy") & (g["contract"] != "native")]
    g = g.assign(op=g["contract"] + "." + g["operation"])
    rows = []
    for op, rows_op in sorted(g.groupby("op"), key=lambda kv: kv[0]):
        gas = rows_op["gas_used"]
        setup = rows_op.loc[rows_op["t"] < 0, "gas_used"]
        hours = rows_op[rows_op["t"] >= 0]
        first = hours.loc[hours["t"] == hours["t"].min(), "gas_used"] if len(hours) else hours
        rows.append(
            {
                "operation": op,
                "count": len(gas),
                "mean": round(float(gas.mean())),
                "median": round(float(gas.median())),
                "max": int(gas.max()),
                "max_setup": int(setup.max()) if len(setup) else None,
                # the hour this operation first ran (a first payment would show here)
                "first_hour": int(hours["t"].min()) if len(hours) else None,
                "max_first_hour": int(first.max()) if len(first) else None,
                "target": bound_of(op),
                "within_target": int(gas.max()) <= bound_of(op),
            }
        )
        if op in BATCHED:  # gas per item (a call's gas / its Settled events)
            n = items_of_tx[rows_op["tx_hash"]].to_numpy()
            per_item = rows_op["gas_used"].to_numpy() / n
            rows[-1].update(
                items_min=int(n.min()),
                items_max=int(n.max()),
                per_item_median=round(float(statistics.median(per_item))),
                per_item_max=round(float(per_item.max())),
                per_item_target=item_bound_of(op),
            )
    letb = results.trades[results.trades["chain"] == "letb"]
    fills = letb.groupby(["area", "buyer", "nonce"]).size()
    return {
        "scenario": "Scenario() (gridledger/scenarios/default.toml)",
        "letb_max_fills_per_request": scenario.letb_max_fills_per_request,
        "requests_by_fills": {int(k): int(v) for k, v in fills.value_counts().sort_index().items()},
        "local_kwh": results.summary["local_kwh"],
        "grid_import_kwh": results.summary["grid_import_kwh"],
        "user_cost_usd": results.summary["user_cost_usd"],
        "wall_s": round(wall, 1),
        "rows": rows,
    }


def print_rows(rows: list[dict[str, Any]], cols: list[str]) -> None:
    width = max(len(r["operation"]) for r in rows)
    print(f"{'operation':<{width}} " + " ".join(f"{c:>10}" for c in cols))
    for r in rows:
        cells = " ".join(f"{'-' if r[c] is None else r[c]:>10}" for c in cols)
        flag = "" if r["within_target"] else "  > target"
        print(f"{r['operation']:<{width}} {cells}{flag}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=6)
    parser.add_argument("--no-model-day", action="store_true", help="skip the model's day")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    cap = Scenario().letb_max_fills_per_request
    chain = Chain.fresh()
    market = deploy_market(chain, letb_max_fills=cap)
    setup = list(chain.gas_log)
    day = gas_day(market, args.hours)
    probe = deploy_market(Chain.fresh(), letb_max_fills=cap)  # the default scenario's largest area
    n = len(DEFAULT_AREA_SELLER_BUSES)
    first, *later = default_area_open_hours(probe, args.hours)
    area = [(f"LETB.open_hour {n} buses (default area, first hour)", first)]
    area += [(f"LETB.open_hour {n} buses (default area)", g) for g in later]
    rows = table(setup + day + area)
    out: dict[str, Any] = {
        "benchmark": "gas",
        "hours": args.hours,
        "producers": len(market.producers) + 1,
        "consumers": len(market.consumers),
        "reps": len(market.reps),
        "letb_max_fills_per_request": cap,
        "wall_s": round(time.perf_counter() - t0, 1),
        "rows": rows,
    }
    print("contract level (one LETB area, one RETB zone)")
    print_rows(rows, ["count", "mean", "median", "max", "target"])
    if not args.no_model_day:
        model = model_day_table(Scenario())
        out["model_default_day"] = model
        print(
            f"\nmodel default day (Scenario(), cap {model['letb_max_fills_per_request']} fills; "
            f"LETB requests by fills {model['requests_by_fills']}; set-up rows have t = -1)"
        )
        print_rows(
            model["rows"],
            ["count", "median", "max", "max_setup", "first_hour", "max_first_hour", "target"],
        )
    path = ROOT / "benchmarks" / "results" / "gas.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path.relative_to(ROOT)} ({out['wall_s']} s contract level)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
