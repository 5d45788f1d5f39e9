"""Benchmark: does a long run slow down day by day? A 14-day default run, timed per simulated day.

Runs `Scenario(hours=336)` on the embedded chains, once as `gridledger run` makes it (no
checkpoint) and once checkpointing every hour (as on node chains), each in its own subprocess.
For each: set-up and total wall time, the wall time of every simulated day and its split
(chain_s, invariants_s, checkpoint_s, ...), and the same-run ratio of the last two days to the
first two (medians): about 1 when nothing in the per-hour path grows with the hours already run.
The users' token grant is raised (`user_initial_usd`): with the default 1,000 tokens a user runs
out of tokens on day 8 (README "What a run writes").

    python benchmarks/bench_long_run.py                  # 336 h, both modes
    python benchmarks/bench_long_run.py --hours 72 --modes plain

Writes benchmarks/results/long_run.json (or --out) and prints one line per mode.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

OUT = Path(__file__).parent / "results" / "long_run.json"
MODES = ("plain", "checkpoint")
USER_INITIAL_USD = 1_000_000.0


def one_run(hours: int, mode: str) -> dict[str, Any]:
    """One run in this process (the child): the row of long_run.json."""
    from gridledger.model import EnergyMarketModel
    from gridledger.scenario import Scenario

    row: dict[str, Any] = {"mode": mode, "hours": hours, "load_avg_1m_at_start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        model = EnergyMarketModel(
            Scenario(hours=hours, user_initial_usd=USER_INITIAL_USD),
            checkpoint_dir=tmp if mode == "checkpoint" else None,
        )
        row["setup_s"] = time.perf_counter() - t0
        stamps = [time.perf_counter()]
        splits = [dict(model.timing)]

        def tick(_row: dict[str, Any]) -> None:
            stamps.append(time.perf_counter())
            splits.append(dict(model.timing))

        model.run(tick)
        row["wall_s"] = time.perf_counter() - t0
    days = hours // 24

    def per_day(values: list[float]) -> list[float]:
        return [round(values[24 * (d + 1)] - values[24 * d], 3) for d in range(days)]

    row["day_s"] = per_day(stamps)
    keys = sorted({k for s in splits for k in s} - {"wall_s"})
    row["day_split_s"] = {k: per_day([s.get(k, 0.0) for s in splits]) for k in keys}
    if days >= 4:
        row["last_two_over_first_two"] = median(row["day_s"][-2:]) / median(row["day_s"][:2])
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=int, default=336)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--child", nargs=2, metavar=("HOURS", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one_run(int(args.child[0]), args.child[1])))
        return
    rows = []
    for mode in args.modes.split(","):
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(args.hours), mode],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        ratio = row.get("last_two_over_first_two", float("nan"))
        print(
            f"{mode:>10}: {args.hours} h in {row['wall_s']:.1f} s (set-up {row['setup_s']:.1f} s);"
            f" day 1 {row['day_s'][0]:.2f} s, day {len(row['day_s'])} {row['day_s'][-1]:.2f} s;"
            f" last two / first two days {ratio:.2f}"
        )
    result = {
        "benchmark": "long_run",
        "when_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "scenario": f"Scenario(hours={args.hours}, user_initial_usd={USER_INITIAL_USD})",
        "runs": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
