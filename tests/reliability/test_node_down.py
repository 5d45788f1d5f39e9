"""Issue 7, scenario 8: an RPC node goes down mid-run (a real anvil process is killed).

The run stops with NodeDownError naming the chain, its URL, the interrupted hour and phase; the
checkpoint of every completed hour is on disk; once the node is back with its persisted chain,
the run resumes and ends with exactly the results of an uninterrupted run of the same scenario,
with no nonce used twice, every trade settled once and the same token balances. A node that
lost blocks (restarted from an older dump) gets them re-sent with the same nonces; a node that
is not the run's chain, or a chain holding another transaction at a used nonce, is refused.

Measured with anvil 1.7.1 (`start_anvil(state_file=...)`: --state, --state-interval 1,
--preserve-historical-states): SIGTERM dumps the whole chain on exit; SIGKILL keeps what the
last periodic dump held. The scenario: 5 hours from 16:00 (renewable trades in hour 0, local
trades in hours 1-4) with a non-delivering producer.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests

from gridledger import EnergyMarketModel, Results, Scenario
from gridledger.chain import NodeDownError, ResumeConflictError, make_chains
from gridledger.chain.nodes import AnvilNode, free_port, start_anvil
from gridledger.chain.replay import HistoryUnavailableError
from gridledger.checkpoint import CHECKPOINT_FILE, load_checkpoint
from gridledger.cli import EXIT_NODE_DOWN, main
from gridledger.results import _jsonable

pytestmark = [pytest.mark.anvil, pytest.mark.slow]  # 3-5 s each: anvil nodes killed, restarted

SC = Scenario().replace(hours=5, start_hour=16, cheat_producers=1, registration_bond_usd=1.0)
"""Local trades in hours 1-4; the non-delivering producer makes LETB escrow (refund credits) and
balances change every hour, so replayed hours must read the state of their own blocks."""
KILL_HOUR = 3
"""Hour in which the LETB node is killed (after its last post_offer block, before letb_request)."""
SUMMARY_KEYS = (
    "hours", "hours_planned", "complete", "demand_kwh", "local_kwh", "renewable_kwh",
    "grid_import_kwh", "user_cost_usd", "cost_saving_pct", "incentives_usd", "letb_credits_usd",
    "trades", "tx_count", "total_gas", "gas_by_operation", "attacks",
)  # fmt: skip
HASH_COLUMNS = ["tx_hash", "block_hash"]
"""Block hashes differ on re-mined blocks (timestamps); transaction hashes follow fee caps."""


class Nodes:
    """The two ledgers as anvil processes whose chains persist in `folder`/{letb,retb}.json."""

    def __init__(self, folder: Path, *, keep_history: bool = True) -> None:
        self.folder = folder
        self.keep_history = keep_history
        self.ids = {"letb": SC.letb_chain_id, "retb": SC.retb_chain_id}
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
        addrs += [m.address for m in (model.letb if c == "letb" else [model.retb])]
        balances = [int(b) for b in tok.call("balances_of", addrs)]
        out[c] = {"supply": tok.total_supply(), "balances": dict(zip(addrs, balances, strict=True))}
    return out


def minted_units(model: EnergyMarketModel) -> int:
    inc = model.ledger.incentives()
    return sum(int(x) for x in inc["incentive"]) if not inc.empty else 0


@pytest.fixture(scope="module")
def reference() -> Iterator[dict[str, Any]]:
    """The same scenario run without interruption on two fresh anvil processes."""
    nodes = [start_anvil(SC.letb_chain_id), start_anvil(SC.retb_chain_id)]
    try:
        model = EnergyMarketModel(SC, chain=",".join(n.url for n in nodes))
        results = model.run()
        supply0 = {c: int(t.call("totalSupply", block=model.chain_setup[c].number))
                   for c, t in model.tokens.items()}  # fmt: skip
        yield {
            "results": results,
            "final": final_state(model),
            "supply_after_setup": supply0,
            "minted": minted_units(model),
        }
    finally:
        for n in nodes:
            n.stop()


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    n = Nodes(tmp_path)
    try:
        yield n
    finally:
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


def interrupted_run(nodes: Nodes, out: Path) -> NodeDownError:
    """Run SC with a checkpoint folder; the LETB node crashes in hour KILL_HOUR."""
    model = EnergyMarketModel(SC, chain=nodes.spec, checkpoint_dir=out)
    kill_when(model, KILL_HOUR, "post_offer", lambda: nodes.crash("letb"))
    with pytest.raises(NodeDownError) as info:
        model.run()
    return info.value


def assert_same_run(res: Results, ref: Results) -> None:
    pd.testing.assert_frame_equal(res.hourly, ref.hourly)
    pd.testing.assert_frame_equal(res.trades.drop(columns=["tx_hash"]),
                                  ref.trades.drop(columns=["tx_hash"]))  # fmt: skip
    pd.testing.assert_frame_equal(res.agents, ref.agents)
    pd.testing.assert_frame_equal(res.gas.drop(columns=HASH_COLUMNS),
                                  ref.gas.drop(columns=HASH_COLUMNS))  # fmt: skip
    for k in SUMMARY_KEYS:  # as saved in summary.json (JSON keys are strings)
        assert _jsonable(res.summary[k]) == _jsonable(ref.summary[k]), k


def assert_no_double_spend(model: EnergyMarketModel, res: Results, ref: dict[str, Any]) -> None:
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


# --------------------------------------------------------------------------------------------


def test_node_killed_mid_hour_names_it_keeps_hours_and_resumes(nodes, tmp_path, reference):
    out = tmp_path / "run"
    err = interrupted_run(nodes, out)
    assert (err.chain, err.url, err.t, err.phase) == ("letb", nodes.nodes["letb"].url,
                                                      KILL_HOUR, "letb_request")  # fmt: skip
    assert err.last_completed_hour == KILL_HOUR - 1
    assert err.checkpoint_dir == str(out)
    assert f"market hour {KILL_HOUR}" in str(err) and nodes.nodes["letb"].url in str(err)
    # what was written: the completed hours, loadable, marked partial
    saved = Results.load(out)
    assert saved.summary["hours"] == KILL_HOUR and saved.summary["hours_planned"] == SC.hours
    assert saved.summary["complete"] is False
    ref = reference["results"]
    pd.testing.assert_frame_equal(saved.hourly, ref.hourly.iloc[:KILL_HOUR])
    ckpt = load_checkpoint(out)
    assert ckpt.last_completed_hour == KILL_HOUR - 1 and ckpt.scenario == SC
    # the node comes back from its persisted chain; the run resumes where it stopped
    nodes.start("letb")
    model = EnergyMarketModel.resume(out)
    res = model.run()
    assert_same_run(res, ref)
    assert_no_double_spend(model, res, reference)
    resumed = res.summary["resumed"]
    assert resumed["from_hour"] == KILL_HOUR and resumed["remined_hours"] == {}
    # every transaction the chains held was served, not sent: one per mined (sender, nonce)
    mined_before = res.gas[res.gas["t"] < KILL_HOUR]
    for c in ("letb", "retb"):
        assert resumed["tx_served_from_chain"][c] >= (mined_before["chain"] == c).sum()
    # the last checkpoint holds the whole day
    assert load_checkpoint(out).complete
    final = Results.load(out)
    assert final.summary["complete"] is True
    pd.testing.assert_frame_equal(final.hourly, ref.hourly)


def test_node_restarted_from_an_older_dump_gets_lost_blocks_resent(nodes, tmp_path, reference):
    out, backup = tmp_path / "run", tmp_path / "letb-hour1.json"
    model = EnergyMarketModel(SC, chain=nodes.spec, checkpoint_dir=out)

    def snapshot(row: dict[str, Any]) -> None:
        if row["t"] == 1:  # the operator's backup: stop (full dump on SIGTERM), copy, restart
            nodes.nodes["letb"].stop()
            shutil.copy(nodes.state("letb"), backup)
            nodes.start("letb")

    kill_when(model, KILL_HOUR, "post_offer", lambda: nodes.crash("letb"))
    with pytest.raises(NodeDownError):
        model.run(snapshot)
    nodes.start("letb", state=backup)  # the node lost hours 2..3 of the LETB chain
    model = EnergyMarketModel.resume(out)
    res = model.run()
    assert_same_run(res, reference["results"])
    assert_no_double_spend(model, res, reference)
    assert res.summary["resumed"]["remined_hours"] == {"letb": [2]}


def test_node_down_during_setup_resumes_from_the_start(nodes, tmp_path, reference):
    out = tmp_path / "run"
    chains = make_chains(nodes.spec, nodes.ids)
    mined: list[int] = []

    def crash_after_deployments(results: object) -> None:
        mined.append(1)
        if len(mined) == 3:  # funding, token, markets mined; grants and registrations not yet
            nodes.crash("letb")

    chains["letb"].add_listener(crash_after_deployments)
    with pytest.raises(NodeDownError) as info:
        EnergyMarketModel(SC, chain=chains, checkpoint_dir=out)
    err = info.value
    assert (err.chain, err.t, err.phase, err.last_completed_hour) == ("letb", None, "setup", -1)
    assert "during set-up" in str(err)
    assert load_checkpoint(out).setup_blocks == {}  # written before the first transaction
    nodes.start("letb")
    model = EnergyMarketModel.resume(out)
    res = model.run()
    assert_same_run(res, reference["results"])
    assert_no_double_spend(model, res, reference)


def test_transactions_left_unmined_on_the_surviving_node_are_not_doubled(
    nodes, tmp_path, reference
):
    out = tmp_path / "run"
    model = EnergyMarketModel(SC, chain=nodes.spec, checkpoint_dir=out)

    def crash_retb(row: dict[str, Any]) -> None:
        if row["t"] == 2:
            # RETB dies after the next phase has read its base fee (cached until its next
            # block) and before it submits: LETB gets hour 3's open_hour, RETB fails
            model.chains["retb"].base_fee()
            nodes.crash("retb")

    with pytest.raises(NodeDownError) as info:
        model.run(crash_retb)
    assert (info.value.chain, info.value.t, info.value.phase) == ("retb", 3, "open_hour")
    pool = nodes.rpc("letb", "txpool_status")
    assert int(pool["pending"], 16) > 0  # LETB holds hour 3's open_hour, never mined
    nodes.start("retb")
    model = EnergyMarketModel.resume(out)
    res = model.run()
    assert_same_run(res, reference["results"])
    assert_no_double_spend(model, res, reference)


def test_a_killed_run_process_resumes_against_live_nodes(nodes, tmp_path, reference):
    """Not the node but the run's own process stops (Ctrl-C, OOM): the same resume applies."""
    out = tmp_path / "run"
    model = EnergyMarketModel(SC, chain=nodes.spec, checkpoint_dir=out)

    def interrupt() -> None:
        raise KeyboardInterrupt

    kill_when(model, KILL_HOUR, "settle", interrupt)
    with pytest.raises(KeyboardInterrupt):
        model.run()
    model = EnergyMarketModel.resume(out)
    res = model.run()
    assert_same_run(res, reference["results"])
    assert_no_double_spend(model, res, reference)


def test_resume_needs_the_nodes_historical_state(tmp_path):
    nodes = Nodes(tmp_path, keep_history=False)  # anvil --state without past states
    try:
        out = tmp_path / "run"
        interrupted_run(nodes, out)
        nodes.start("letb", keep_history=False)
        with pytest.raises(HistoryUnavailableError, match=r"'letb'.*preserve-historical-states"):
            EnergyMarketModel.resume(out)
    finally:
        nodes.stop()


def test_resume_against_a_fresh_node_is_refused(nodes, tmp_path):
    out = tmp_path / "run"
    interrupted_run(nodes, out)
    nodes.state("letb").unlink()
    nodes.start("letb")  # a new, empty chain on the same port
    with pytest.raises(ResumeConflictError, match=r"'letb'.*not the chain the run started on"):
        EnergyMarketModel.resume(out)


def test_resume_refuses_another_transaction_at_a_used_nonce(nodes, tmp_path):
    out = tmp_path / "run"
    interrupted_run(nodes, out)
    nodes.start("letb")
    path = out / CHECKPOINT_FILE  # same chains, but the checkpoint now says other prices
    data = json.loads(path.read_text())
    data["scenario"]["producer_price_fraction"] = 0.3
    path.write_text(json.dumps(data))
    with pytest.raises(ResumeConflictError, match=r"already used by tx .* other data"):
        EnergyMarketModel.resume(out).run()


def test_resume_while_the_node_is_still_down_names_it(nodes, tmp_path):
    out = tmp_path / "run"
    interrupted_run(nodes, out)
    with pytest.raises(NodeDownError, match="'letb'") as info:
        EnergyMarketModel.resume(out)
    assert info.value.phase == "resume: connect" and info.value.last_completed_hour == 2


# --------------------------------------------------------------------------------------------


def test_cli_names_the_down_node_and_resumes(nodes, tmp_path, capsys, reference):
    out, scen = tmp_path / "run", tmp_path / "sc.toml"
    scen.write_text(SC.to_toml())
    ref = reference["results"]
    # stop the LETB node (`kill PID`: SIGTERM, it dumps its chain) once hour 2 is on chain
    first_block = int(ref.gas[(ref.gas["t"] == 2) & (ref.gas["chain"] == "letb")]["block"].min())
    stop = threading.Event()

    def killer() -> None:
        while not stop.is_set():
            try:
                if nodes.head("letb") >= first_block:
                    nodes.nodes["letb"].stop()
                    return
            except requests.RequestException:
                pass
            time.sleep(0.005)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        code = main(["run", "--scenario", str(scen), "--chain", nodes.spec, "--out", str(out),
                     "--no-progress"])  # fmt: skip
    finally:
        stop.set()
        thread.join()
    err = capsys.readouterr().err
    assert code == EXIT_NODE_DOWN
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 2, err  # one line what happened, one what to do; no traceback
    url = nodes.nodes["letb"].url
    head = f"gridledger run: node down: node of chain 'letb' at {url} stopped answering in "
    assert lines[0].startswith(head + "market hour"), lines[0]
    assert f"gridledger run --resume {out}" in lines[1]
    done = load_checkpoint(out).last_completed_hour
    assert Results.load(out).summary["hours"] == done + 1 < SC.hours
    # --resume refuses a new scenario; resumes once the node is back
    assert main(["run", "--resume", str(out), "--hours", "3"]) == 2
    nodes.start("letb")
    assert main(["run", "--resume", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"resumed from hour {done + 1}" in printed
    assert_same_run(Results.load(out), ref)
    assert main(["run", "--resume", str(out)]) == 0
    assert "nothing to resume" in capsys.readouterr().out


def test_gridledger_node_state_dir_keeps_the_chains_across_a_restart(tmp_path, line_waiter):
    """The operator's way: `gridledger node --state-dir DIR`, stopped and started again."""
    port = free_port()
    cmd = [sys.executable, "-m", "gridledger.cli", "node", "--port", str(port),
           "--state-dir", str(tmp_path)]  # fmt: skip

    def serve() -> subprocess.Popen[str]:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        try:
            line_waiter(proc, "gridledger run --chain", 60)
        except AssertionError:
            proc.kill()
            proc.wait()
            raise
        return proc

    proc = serve()
    try:
        chains = make_chains(f"http://127.0.0.1:{port},http://127.0.0.1:{port + 1}")
        funded = chains["letb"].fund(["0x" + "11" * 20], 10**18)[0]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert {p.name for p in tmp_path.iterdir()} == {"letb.json", "retb.json"}
        proc = serve()
        again = make_chains(f"http://127.0.0.1:{port},http://127.0.0.1:{port + 1}")["letb"]
        assert again.head() == funded.block_number
        assert again.balance("0x" + "11" * 20) == 10**18
        assert again.get_block(funded.block_number)["hash"] == funded.block_hash
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
