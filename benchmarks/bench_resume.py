"""Benchmark: cost of checkpointing every hour, and of resuming after a node went down.

1. The default 24-hour day on the embedded chains, with and without a checkpoint folder
   (`REPEATS` times each): median total wall time, and the median / max time of one hourly
   checkpoint (the hour's new rows appended as parts, summary.json, checkpoint.json fsync'd;
   gridledger/checkpoint.py ResultsJournal).
2. The same day on two anvil nodes persisting their chains (start_anvil(state_file=...)): the
   LETB node is killed (SIGKILL after a periodic dump) in hour `KILL_HOUR` (after its open_hour
   block), restarted from its state file, and the run resumed: time to rebuild (set-up replayed
   from the chain), time to replay the completed hours, and time to finish the day.
Writes benchmarks/results/bench_resume.json and prints the numbers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

from gridledger.chain import NodeDownError
from gridledger.chain.nodes import free_port, start_anvil
from gridledger.model import EnergyMarketModel
from gridledger.scenario import Scenario

REPEATS = int(os.environ.get("BENCH_RESUME_REPEATS", "3"))
KILL_HOUR = 12
OUT = Path(__file__).parent / "results" / "bench_resume.json"


def embedded_day(folder: Path | None) -> dict[str, float]:
    t0 = time.perf_counter()
    model = EnergyMarketModel(Scenario(), checkpoint_dir=folder)
    model.run()
    out = {"total_s": time.perf_counter() - t0}
    if folder is not None:
        times = model.checkpoint_times_s
        out |= {
            "checkpoint_median_s": statistics.median(times),
            "checkpoint_max_s": max(times),
            "checkpoint_total_s": sum(times),
        }
    return out


def crash_after_dump(node, state: Path) -> None:
    before = state.stat().st_mtime_ns if state.exists() else 0
    while (state.stat().st_mtime_ns if state.exists() else 0) == before:
        time.sleep(0.01)
    time.sleep(0.2)
    node.process.send_signal(signal.SIGKILL)
    node.process.wait(timeout=10)
    node.stop()


def anvil_resume(tmp: Path) -> dict[str, float]:
    sc = Scenario()
    ids = {"letb": sc.letb_chain_id, "retb": sc.retb_chain_id}
    ports = {k: free_port() for k in ids}
    nodes = {k: start_anvil(ids[k], ports[k], state_file=tmp / f"{k}.json") for k in ids}
    out_dir = tmp / "run"
    try:
        t0 = time.perf_counter()
        model = EnergyMarketModel(sc, chain=",".join(n.url for n in nodes.values()),
                                  checkpoint_dir=out_dir)  # fmt: skip
        crashed: list[bool] = []

        def kill(_results: object) -> None:
            if not crashed and model.t == KILL_HOUR and model.stage == "open_hour":
                crashed.append(True)
                crash_after_dump(nodes["letb"], tmp / "letb.json")

        model.chains["letb"].add_listener(kill)
        with contextlib.suppress(NodeDownError):
            model.run()
        assert crashed and model.t == KILL_HOUR, "the LETB node was not killed"
        first_s = time.perf_counter() - t0
        ckpt_times = list(model.checkpoint_times_s)
        nodes["letb"] = start_anvil(ids["letb"], ports["letb"], state_file=tmp / "letb.json")
        t1 = time.perf_counter()
        resumed = EnergyMarketModel.resume(out_dir)
        rebuild_s = time.perf_counter() - t1
        while resumed.t < KILL_HOUR:
            resumed.step()
        replay_s = time.perf_counter() - t1 - rebuild_s
        resumed.run()
        total_s = time.perf_counter() - t1
        return {
            "interrupted_run_s": first_s,
            "checkpoint_median_s": statistics.median(ckpt_times),
            "resume_rebuild_s": rebuild_s,
            "resume_replay_completed_hours_s": replay_s,
            "resume_total_s": total_s,
            "state_file_mb": (tmp / "letb.json").stat().st_size / 1e6,
        }
    finally:
        for n in nodes.values():
            n.stop()


def main() -> None:
    runs: dict[str, list[dict[str, float]]] = {"no_checkpoint": [], "checkpoint": []}
    for _ in range(REPEATS):
        runs["no_checkpoint"].append(embedded_day(None))
        with tempfile.TemporaryDirectory() as d:
            runs["checkpoint"].append(embedded_day(Path(d)))
    with tempfile.TemporaryDirectory() as d:
        anvil = anvil_resume(Path(d))
    medians = {k: {m: statistics.median(r[m] for r in rs) for m in rs[0]} for k, rs in runs.items()}
    report = {"repeats": REPEATS, "embedded_median": medians, "anvil": anvil, "runs": runs}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2))
    print(json.dumps({"embedded_median": medians, "anvil": anvil}, indent=2))


if __name__ == "__main__":
    main()
