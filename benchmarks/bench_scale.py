"""Benchmark: one 24-h market day as households grow, on the embedded chains and on anvil.

For each backend and `households_per_bus` (default 1, 5, 20, 80: about 63 ... 5,000
households) one day runs in its own subprocess, so its peak RSS is its own: households, agents,
transactions (set-up included), gas, wall, set-up, chain_s, checkpoint_s, peak RSS of the run's
process (and of the anvil nodes), tx/s. Each run is as `gridledger run` makes it: embedded
without a checkpoint folder, anvil with one (checkpointed every hour). A run that fails is kept
with its error (e.g. anvil's 'stale hint' at households_per_bus >= 5 before the offer-order
fix of issue 13). Targets (issue 13): 5,000 households in a day <= 5 min on anvil, growth linear
in households, peak RSS <= 2 GB at 5,000.

    python benchmarks/bench_scale.py                         # the whole curve (long)
    python benchmarks/bench_scale.py --sizes 1,5 --backends embedded --hours 24

Writes benchmarks/results/scale.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "results" / "scale.json"
SIZES = (1, 5, 20, 80)
BACKENDS = ("embedded", "anvil")


def _peak_rss_mb(pid: int) -> float | None:
    """Peak resident set (VmHWM) of a live process, MB (None if unreadable)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def one_run(backend: str, hpb: int, hours: int) -> dict[str, Any]:
    """One day in this process (the child): the row of scale.json."""
    from gridledger.chain import DEFAULT_CHAIN_IDS
    from gridledger.chain.nodes import start_anvil
    from gridledger.model import EnergyMarketModel
    from gridledger.scenario import Scenario

    sc = Scenario().replace(households_per_bus=hpb, hours=hours)
    row: dict[str, Any] = {"backend": backend, "households_per_bus": hpb, "hours": hours}
    row["load_avg_1m_at_start"] = os.getloadavg()[0]  # a shared machine: other jobs' load
    nodes = []
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if backend == "anvil":
                nodes = [start_anvil(DEFAULT_CHAIN_IDS[c]) for c in ("letb", "retb")]
                chain, ckpt = ",".join(n.url for n in nodes), Path(tmp)
            else:
                chain, ckpt = "embedded", None
            t0 = time.perf_counter()  # the day from here: model, set-up, hours (not node start)
            model = EnergyMarketModel(sc, chain=chain, checkpoint_dir=ckpt)
            row["setup_s"] = time.perf_counter() - t0
            row["households"] = len(model.users) + len(model.producers)
            row["agents"] = len(model.users) + len(model.producers) + len(model.reps) + 2
            try:
                res = model.run()
            except Exception as exc:  # kept in the curve, named
                row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                row["failed_in_hour"] = model.t
                res = None
            gas = model.gas_rows
            row["transactions"] = len(gas)
            row["gas"] = int(gas["gas_used"].sum())
            row["trades"] = len(model.trade_rows)
            if res is not None:
                row["transactions_market_hours"] = int(res.summary["tx_count"])
    except Exception as exc:
        row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        model = None
    finally:
        row["anvil_peak_rss_mb"] = [_peak_rss_mb(n.process.pid) for n in nodes] or None
        row["wall_s"] = time.perf_counter() - t0
        for n in nodes:
            n.stop()
    if model is not None:
        row["chain_s"] = model.timing.get("chain_s", 0.0)
        row["checkpoint_s"] = model.timing.get("checkpoint_s", 0.0)
        row["checkpoint"] = model.checkpoint_dir is not None
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if row.get("transactions"):
        row["tx_per_s"] = row["transactions"] / row["wall_s"]
    return row


def run_child(backend: str, hpb: int, hours: int, timeout_s: float) -> dict[str, Any]:
    """One day in a fresh interpreter (its own peak RSS)."""
    cmd = [sys.executable, __file__, "--one", backend, str(hpb), str(hours)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return {"backend": backend, "households_per_bus": hpb, "error": f"timeout {timeout_s} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"backend": backend, "households_per_bus": hpb, "error": tail[0][:300]}
    return json.loads(lines[-1])


def _csv(kind: type, text: str) -> list[Any]:
    return [kind(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=lambda s: _csv(int, s), default=list(SIZES),
                   help="households_per_bus values, e.g. 1,5 (default 1,5,20,80)")  # fmt: skip
    p.add_argument("--backends", type=lambda s: _csv(str, s), default=list(BACKENDS),
                   help="embedded,anvil (default both)")  # fmt: skip
    p.add_argument("--hours", type=int, default=24)
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per run")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--one", nargs=3, metavar=("BACKEND", "HPB", "HOURS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(one_run(args.one[0], int(args.one[1]), int(args.one[2]))))
        return 0
    bad = [b for b in args.backends if b not in BACKENDS]
    if bad or any(not 1 <= s <= 1000 for s in args.sizes):
        p.error(f"--backends must be from {BACKENDS} and --sizes within 1..1000")
    rows = []
    for backend in args.backends:
        for hpb in args.sizes:
            row = run_child(backend, hpb, args.hours, args.timeout)
            rows.append(row)
            print(_line(row), flush=True)
    out = {
        "runs": rows,
        "config": {
            "hours": args.hours,
            "sizes": args.sizes,
            "backends": args.backends,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()}",
            "python": platform.python_version(),
            "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "note": "one run per size (a day at 5,000 households is long); each run in its own "
            "process; embedded without, anvil with hourly checkpoints (gridledger run defaults)",
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def _line(r: dict[str, Any]) -> str:
    head = f"{r['backend']:<8} hpb {r['households_per_bus']:>3}"
    if "households" not in r:
        return f"{head}: {r.get('error')}"
    text = (
        f"{head}: {r['households']:>5} households, {r.get('transactions', 0):>7,} tx, "
        f"gas {r.get('gas', 0):,}, wall {r['wall_s']:.1f} s (set-up {r.get('setup_s', 0):.1f}, "
        f"chain {r.get('chain_s', 0):.1f}, checkpoint {r.get('checkpoint_s', 0):.2f}), "
        f"peak RSS {r['peak_rss_mb']:.0f} MB, {r.get('tx_per_s', 0):.0f} tx/s"
    )
    return text + (f"  FAILED: {r['error']}" if "error" in r else "")


if __name__ == "__main__":
    sys.exit(main())
