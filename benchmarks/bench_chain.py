"""Signed contract transactions per second, end to end, on each chain backend.

Backends in the same run: the in-process engines py-evm (EmbeddedChain) and revm (RevmChain),
and an anvil process over HTTP. End to end = what the model does per transaction: build
calldata, sign (coincurve; eth-account's signer shown for reference), submit (revm: decode,
recover the sender, check, execute), mine one block per batch, read the receipts and check
every status. Target (issue 14): >= 2,000 signed tx/s on revm. Wall-clock rates, and per CPU
second of this process (less sensitive to other jobs on a shared machine; for anvil it leaves
out the node's own process, so it is not comparable there). Workload:
EnergyToken transfers between `AGENTS` funded agents, each agent signing its own transaction,
`BATCH` transactions per block.
Next to it: the raw cost of signing alone. Writes benchmarks/results/chain.json, prints a table.

    .venv/bin/python benchmarks/bench_chain.py [--trials N] [--batches N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import coincurve  # noqa: F401 - must be importable: eth-keys then signs with it

from gridledger.chain import (
    ChainBackend,
    EmbeddedChain,
    RpcChain,
    Signer,
    TxRequest,
    make_chain,
    send_many,
)
from gridledger.chain.accounts import derive_account
from gridledger.chain.nodes import start_anvil
from gridledger.market.contracts import EnergyToken

AGENTS = 50
BATCH = 50
USD = 10**18
OUT = Path(__file__).resolve().parent / "results" / "chain.json"


def setup(chain: ChainBackend) -> tuple[EnergyToken, list[Signer]]:
    admin = chain.signer(derive_account(1, "admin", 0), "admin")
    agents = [chain.signer(derive_account(1, "user", i), f"user{i}") for i in range(AGENTS)]
    chain.fund([admin.address] + [a.address for a in agents], 10**20)
    token = EnergyToken.deploy(admin, 10**9 * USD)
    send_many([(admin, token.transfer(a.address, 1000 * USD)) for a in agents])
    return token, agents


def run_trial(token: EnergyToken, agents: list[Signer], batches: int) -> dict[str, float]:
    n = 0
    blocks = set()
    c0, t0 = time.process_time(), time.perf_counter()
    for b in range(batches):
        items = [
            (a, token.transfer(agents[(i + b + 1) % AGENTS].address, USD))
            for i, a in enumerate(agents[:BATCH])
        ]
        results = send_many(items)  # raises if any failed
        n += len(results)
        blocks.update(r.block_number for r in results)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert len(blocks) == batches, "one block per batch"
    return {"tx": n, "seconds": dt, "tx_per_s": n / dt, "tx_per_cpu_s": n / cpu}


def bench_backend(chain: ChainBackend, trials: int, batches: int) -> dict[str, object]:
    token, agents = setup(chain)
    run_trial(token, agents, 1)  # warm-up
    runs = [run_trial(token, agents, batches) for _ in range(trials)]
    rates = [r["tx_per_s"] for r in runs]
    return {
        "tx_per_s_median": statistics.median(rates),
        "tx_per_cpu_s_median": statistics.median(r["tx_per_cpu_s"] for r in runs),
        "tx_per_s_min": min(rates),
        "tx_per_s_max": max(rates),
        "tx_per_trial": runs[0]["tx"],
        "blocks_per_trial": batches,
        "tx_per_block": BATCH,
    }


def bench_signing(trials: int, n: int = 500) -> dict[str, object]:
    """Raw cost of building + signing a contract transaction (no node involved)."""
    chain = EmbeddedChain(1, "sign")
    signer = chain.signer(derive_account(1, "user", 0))
    req = TxRequest(to=derive_account(1, "user", 1).address, data=b"\xa9\x05\x9c\xbb" + bytes(64),
                    gas=100_000, contract="EnergyToken", function="transfer")  # fmt: skip
    rates, ref_rates = [], []
    tx = {"type": 2, "chainId": 1, "gas": 100_000, "maxFeePerGas": 3 * 10**9,
          "maxPriorityFeePerGas": 10**9, "to": req.to, "value": 0, "data": req.data}  # fmt: skip
    for _ in range(trials):
        t0 = time.perf_counter()
        for i in range(n):
            signer.sign(req, nonce=i)
        rates.append(n / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for i in range(n):
            signer.account.sign_transaction({**tx, "nonce": i})
        ref_rates.append(n / (time.perf_counter() - t0))
    med, ref = statistics.median(rates), statistics.median(ref_rates)
    return {
        "tx_per_s_median": med,
        "us_per_tx_median": 1e6 / med,
        "eth_account_tx_per_s_median": ref,
        "eth_account_us_per_tx_median": 1e6 / ref,
        "tx_per_trial": n,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--batches", type=int, default=6, help="blocks per trial")
    args = ap.parse_args(argv)

    load_start = os.getloadavg()  # a shared machine: other jobs' load, recorded with the rates
    results: dict[str, object] = {"signing": bench_signing(args.trials)}
    for engine in ("pyevm", "revm"):
        chain = make_chain(engine, "letb", 31401)
        results[engine] = bench_backend(chain, args.trials, args.batches)
    with start_anvil(31401) as node:
        chain = RpcChain(node.url, "letb", expected_chain_id=31401)
        results["anvil"] = bench_backend(chain, args.trials, args.batches)
        results["anvil"]["client"] = chain.client_version  # type: ignore[index]
        chain.close()
    results["config"] = {
        "agents": AGENTS,
        "batch": BATCH,
        "trials": args.trials,
        "workload": "EnergyToken.transfer, each agent signs its own tx, one block per batch",
        "python": sys.version.split()[0],
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_avg_at_start": load_start,
        "load_avg_at_end": os.getloadavg(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(OUT)

    print(f"{'what':<34}{'median tx/s':>12}{'min':>9}{'max':>9}{'per cpu s':>11}")
    s = results["signing"]
    print(f"{'sign only, Signer (coincurve)':<34}{s['tx_per_s_median']:>12.0f}"  # type: ignore[index]
          f"{'':>18}   ({s['us_per_tx_median']:.0f} us/tx)")  # type: ignore[index]  # fmt: skip
    print(f"{'sign only, eth-account (coincurve)':<34}{s['eth_account_tx_per_s_median']:>12.0f}"  # type: ignore[index]
          f"{'':>18}   ({s['eth_account_us_per_tx_median']:.0f} us/tx)")  # type: ignore[index]  # fmt: skip
    for name in ("pyevm", "revm", "anvil"):
        r = results[name]
        print(f"{name + ' end to end':<34}{r['tx_per_s_median']:>12.0f}"  # type: ignore[index]
              f"{r['tx_per_s_min']:>9.0f}{r['tx_per_s_max']:>9.0f}"  # type: ignore[index]
              f"{r['tx_per_cpu_s_median']:>11.0f}")  # type: ignore[index]  # fmt: skip
    ratio = results["revm"]["tx_per_s_median"] / results["pyevm"]["tx_per_s_median"]  # type: ignore[index]
    print(f"revm / py-evm: {ratio:.1f}x (target: >= 2,000 signed tx/s on revm)")
    print(f"-> {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
