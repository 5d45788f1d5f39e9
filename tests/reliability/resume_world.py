"""Anvil nodes that crash and come back, and what a resumed run is compared with, for the resume
tests (test_node_down.py: the paper's mechanism; test_resume_double_auction.py: the double
auction).

`Nodes` runs the two ledgers as anvil processes whose chains persist in a folder; `crash` kills
one right after a periodic state dump. `reference_run` is a scenario run without interruption on
two fresh anvil processes; `assert_same_run` and `assert_no_double_spend` compare a resumed run
with it: the frames (hashes aside), the summary, no nonce or settlement twice, every token
balance and the supply.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import requests

from gridledger import EnergyMarketModel, Results, Scenario
from gridledger.chain.nodes import AnvilNode, free_port, start_anvil
from gridledger.results import _jsonable

SUMMARY_KEYS = (
    "hours", "hours_planned", "complete", "demand_kwh", "local_kwh", "renewable_kwh",
    "grid_import_kwh", "user_cost_usd", "cost_saving_pct", "incentives_usd", "letb_credits_usd",
    "trades", "tx_count", "total_gas", "gas_by_operation", "attacks",
)  # fmt: skip
HASH_COLUMNS = ["tx_hash", "block_hash"]
"""Block hashes differ on re-mined blocks (timestamps); transaction hashes follow fee caps."""


class Nodes:
    """The two ledgers of `sc` as anvil processes whose chains persist in
    `folder`/{letb,retb}.json."""

    def __init__(self, folder: Path, sc: Scenario, *, keep_history: bool = True) -> None:
        self.folder = folder
        self.keep_history = keep_history
        self.ids = {"letb": sc.letb_chain_id, "retb": sc.retb_chain_id}
        self.ports = {k: free_port() for k in self.ids}
        self.nodes: dict[str, AnvilNode] = {}
        for k in self.ids:
            self.start(k, keep_history=keep_history)

    def state(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def start(self, name: str, state: Path | None = None, *, keep_history: bool = True) -> None:
        """(Re)start a node on its port from `state` (default: its own state file)."""
        self.nodes[name] = start_anvil(
            self.ids[name],
            self.ports[name],
            state_file=state or self.state(name),
            keep_history=keep_history,
        )

    @property
    def spec(self) -> str:
        return ",".join(self.nodes[k].url for k in self.ids)

    def rpc(self, name: str, method: str) -> Any:
        r = requests.post(
            self.nodes[name].url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": []},
            timeout=5,
        )
        return r.json()["result"]

    def head(self, name: str) -> int:
        return int(self.rpc(name, "eth_blockNumber"), 16)

    def crash(self, name: str) -> None:
        """SIGKILL the node right after a periodic dump, so its file holds every mined block."""
        head = self.head(name)
        path = self.state(name)
        before = path.stat().st_mtime_ns if path.exists() else 0
        deadline = time.monotonic() + 10
        while not (path.exists() and path.stat().st_mtime_ns != before and dumped(path, head)):
            assert time.monotonic() < deadline, "anvil wrote no periodic state dump"
            time.sleep(0.01)
        proc = self.nodes[name].process
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        self.nodes[name].stop()
        assert dumped(path, head)

    def stop(self) -> None:
        for n in self.nodes.values():
            n.stop()

    def __enter__(self) -> Nodes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def dumped(path: Path, head: int) -> bool:
    """The state file is complete and holds the chain up to block `head`."""
    try:
        best = json.loads(path.read_bytes())["best_block_number"]
    except (ValueError, KeyError):
        return False
    return int(best, 16) == head if isinstance(best, str) else best == head


def final_state(model: EnergyMarketModel) -> dict[str, Any]:
    """Per chain: token supply and the balance of every agent and market contract."""
    out: dict[str, Any] = {}
    for c, tok in model.tokens.items():
        addrs = sorted({s.address for (_, ch), s in model.signers.items() if ch == c})
        addrs += [m.address for m in (model.local_contracts if c == "letb" else [model.retb])]
        balances = [int(b) for b in tok.call("balances_of", addrs)]
        out[c] = {"supply": tok.total_supply(), "balances": dict(zip(addrs, balances, strict=True))}
    return out


def minted_units(model: EnergyMarketModel) -> int:
    inc = model.ledger.incentives()
    return sum(int(x) for x in inc["incentive"]) if not inc.empty else 0


def reference_run(sc: Scenario) -> dict[str, Any]:
    """`sc` run without interruption on two fresh anvil processes: its Results, final token
    state, supply after set-up and incentives minted."""
    nodes = [start_anvil(sc.letb_chain_id), start_anvil(sc.retb_chain_id)]
    try:
        model = EnergyMarketModel(sc, chain=",".join(n.url for n in nodes))
        results = model.run()
        supply0 = {c: int(t.call("totalSupply", block=model.chain_setup[c].number))
                   for c, t in model.tokens.items()}  # fmt: skip
        return {
            "results": results,
            "final": final_state(model),
            "supply_after_setup": supply0,
            "minted": minted_units(model),
        }
    finally:
        for n in nodes:
            n.stop()


def kill_when(model: EnergyMarketModel, hour: int, stage: str, action: Callable[[], None]) -> None:
    """Run `action` once, right after the LETB chain mines its (last) block of (hour, stage):
    an hour's offers may take several blocks (`model.offer_blocks`: offer rounds)."""
    done: list[bool] = []
    seen: list[bool] = []

    def listener(results: object) -> None:
        if not done and model.t == hour and model.stage == stage:
            seen.append(True)
            if stage == "post_offer" and len(seen) < model.offer_blocks:
                return
            done.append(True)
            action()

    model.chains["letb"].add_listener(listener)


def assert_same_run(res: Results, ref: Results) -> None:
    pd.testing.assert_frame_equal(res.hourly, ref.hourly)
    pd.testing.assert_frame_equal(res.trades.drop(columns=["tx_hash"]),
                                  ref.trades.drop(columns=["tx_hash"]))  # fmt: skip
    pd.testing.assert_frame_equal(res.agents, ref.agents)
    pd.testing.assert_frame_equal(res.gas.drop(columns=HASH_COLUMNS),
                                  ref.gas.drop(columns=HASH_COLUMNS))  # fmt: skip
    for k in SUMMARY_KEYS:  # as saved in summary.json (JSON keys are strings)
        assert _jsonable(res.summary[k]) == _jsonable(ref.summary[k]), k


def assert_resumed_at(res: Results, hour: int) -> None:
    """The run resumed at `hour`, re-mined no block, and every transaction the chains held for
    the hours before was served from them, not sent again (one per mined (sender, nonce))."""
    resumed = res.summary["resumed"]
    assert resumed["from_hour"] == hour and resumed["remined_hours"] == {}
    mined_before = res.gas[res.gas["t"] < hour]
    for c in ("letb", "retb"):
        assert resumed["tx_served_from_chain"][c] >= (mined_before["chain"] == c).sum()


def assert_no_double_spend(model: EnergyMarketModel, res: Results, ref: dict[str, Any]) -> None:
    """No nonce or transaction twice, every trade settled once, every token balance and the
    supply as in the reference run `ref` (`reference_run`)."""
    gas = res.gas
    assert not gas.duplicated(["chain", "sender", "nonce"]).any()
    assert not gas.duplicated(["chain", "tx_hash"]).any()
    settled = model.ledger.settlements()
    assert not settled.duplicated(["chain", "address", "buyer", "nonce"]).any()
    assert len(settled) == len(res.trades.drop_duplicates(["chain", "buyer", "nonce"]))
    final = final_state(model)
    assert final == ref["final"]  # every account's token balance, escrows, supply
    for c, tok in model.tokens.items():
        supply0 = int(tok.call("totalSupply", block=model.chain_setup[c].number))
        assert supply0 == ref["supply_after_setup"][c]
        minted = minted_units(model) if c == "retb" else 0
        assert final[c]["supply"] == supply0 + minted
