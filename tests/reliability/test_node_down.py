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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests

from gridledger import EnergyMarketModel, Results, Scenario
from gridledger.chain import NodeDownError, ResumeConflictError, make_chains
from gridledger.chain.nodes import free_port
from gridledger.chain.replay import HistoryUnavailableError
from gridledger.checkpoint import CHECKPOINT_FILE, load_checkpoint
from gridledger.cli import EXIT_NODE_DOWN, main

from .resume_world import (
    Nodes,
    assert_no_double_spend,
    assert_resumed_at,
    assert_same_run,
    kill_when,
    reference_run,
)

pytestmark = [pytest.mark.anvil, pytest.mark.slow]  # 3-5 s each: anvil nodes killed, restarted

SC = Scenario().replace(hours=5, start_hour=16, cheat_producers=1, registration_bond_usd=1.0)
"""Local trades in hours 1-4; the non-delivering producer makes LETB escrow (refund credits) and
balances change every hour, so replayed hours must read the state of their own blocks."""
KILL_HOUR = 3
"""Hour in which the LETB node is killed (after its last post_offer block, before letb_request)."""


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    """The same scenario run without interruption on two fresh anvil processes."""
    return reference_run(SC)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    with Nodes(tmp_path, SC) as n:
        yield n


def interrupted_run(nodes: Nodes, out: Path) -> NodeDownError:
    """Run SC with a checkpoint folder; the LETB node crashes in hour KILL_HOUR."""
    model = EnergyMarketModel(SC, chain=nodes.spec, checkpoint_dir=out)
    kill_when(model, KILL_HOUR, "post_offer", lambda: nodes.crash("letb"))
    with pytest.raises(NodeDownError) as info:
        model.run()
    return info.value


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
    assert_resumed_at(res, KILL_HOUR)
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
    nodes = Nodes(tmp_path, SC, keep_history=False)  # anvil --state without past states
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
