"""The double auction against the paper's book, and its clearing at scale.

Two tables, written to benchmarks/results/double_auction.json and printed:
1. the default day (`Scenario()`, 24 hours, embedded revm chain) under `market_mechanism`
   "paper" and "double_auction", `--repeats` runs each, interleaved: median wall time, users'
   cost and saving, local / renewable / grid energy, transactions, gas (both chains, the local
   chain), buyer-seller pairs of the local market; the auction / paper ratio of each (same run
   set). Everything but wall time is deterministic.
2. clearing at scale on the real EVM (revm): one area with n asks and n bids (n = 32, 128, 300;
   3 fills per bid at most, the model's default cap), posted in `offer_rounds` with hints, cleared
   in calls of 32 bids: gas of the first call (it walks the books for the price), the largest
   later call, the total, gas per bid, the largest post_ask and post_bid.
Run: `python benchmarks/bench_double_auction.py [--repeats N] [--no-scale]`.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gridledger import EnergyMarketModel, Scenario  # noqa: E402
from tests.contracts.auction_world import deploy_auction  # noqa: E402
from tests.contracts.conftest import Chain  # noqa: E402
from tests.contracts.test_double_auction_gas import _hour  # noqa: E402

MECHANISMS = ("paper", "double_auction")
KPIS = ("user_cost_usd", "cost_saving_pct", "local_kwh", "renewable_kwh", "grid_import_kwh",
        "tx_count", "total_gas")  # fmt: skip


def day_row(mechanism: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    r = EnergyMarketModel(Scenario(market_mechanism=mechanism)).run()
    wall = time.perf_counter() - t0
    local = r.trades[r.trades["chain"] == "letb"]
    gas = r.gas[r.gas["t"] >= 0]
    return {
        "wall_s": wall,
        **{k: r.summary[k] for k in KPIS},
        "gas_local_chain": int(gas.loc[gas["chain"] == "letb", "gas_used"].sum()),
        "buyer_seller_pairs": int(local.groupby(["buyer", "seller"]).ngroups),
        "users_buying_locally": int(local["buyer_id"].nunique()),
    }


def default_day(repeats: int) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MECHANISMS}
    for _ in range(repeats):
        for m in MECHANISMS:
            runs[m].append(day_row(m))
    out: dict[str, Any] = {}
    for m, rows in runs.items():
        out[m] = {k: rows[0][k] for k in rows[0] if k != "wall_s"}
        out[m]["wall_s_median"] = statistics.median(r["wall_s"] for r in rows)
    out["ratio_auction_to_paper"] = {
        k: out["double_auction"][k] / out["paper"][k] for k in out["paper"] if out["paper"][k]
    }
    return out


def clearing_at_scale(sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        a = deploy_auction(Chain.fresh(2 * n + 8, engine="revm"), n_sellers=n, n_buyers=n,
                           caps=(3,))  # fmt: skip
        gas = _hour(a, 0, random.Random(5), chunk=32)
        clears = [g for op, g in gas if op.startswith("DoubleAuction.clear")]
        rows.append(
            {
                "asks": n,
                "bids": n,
                "clear_calls": len(clears),
                "first_clear_gas": clears[0],
                "max_later_clear_gas": max(clears[1:], default=0),
                "total_clear_gas": sum(clears),
                "clear_gas_per_bid": sum(clears) / n,
                "max_post_ask_gas": max(g for op, g in gas if op == "DoubleAuction.post_ask"),
                "max_post_bid_gas": max(g for op, g in gas if op == "DoubleAuction.post_bid"),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-scale", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"default_day": default_day(args.repeats), "repeats": args.repeats}
    if not args.no_scale:
        result["clearing_at_scale"] = clearing_at_scale((32, 128, 300))
    out = ROOT / "benchmarks" / "results" / "double_auction.json"
    out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(json.dumps(result, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
