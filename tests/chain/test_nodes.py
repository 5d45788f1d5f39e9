"""Any EVM node (issue 17): the first hours on anvil and Hardhat 3 with their defaults and on a
node limited to the build's fork equal the embedded run; every preflight refusal on a real node.

Nodes are real processes on 127.0.0.1: anvil (scripts/install-anvil) and Hardhat 3's node with
its own Node 22 (scripts/install-hardhat). The only setting changed from a client's defaults is
the chain id (the scenario's ids, 31401 and 31402), as README "Nodes and forks" tells users.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests

from gridledger.chain import (
    CALL_GAS,
    DEFAULT_CHAIN_IDS,
    OutOfGasError,
    ReceiptTimeoutError,
    RpcChain,
    TxRequest,
)
from gridledger.chain.nodes import AnvilNode, start_anvil, start_hardhat
from gridledger.chain.preflight import CallGasCapError, check_call_gas
from gridledger.cli import EXIT_NODE_REFUSED, main
from gridledger.contracts import EVM_VERSION
from gridledger.market.contracts import EnergyToken

HOURS = "4"
FRAMES = ("hourly", "trades", "agents", "gas")
DIFFERS = {"trades": ["tx_hash"], "gas": ["tx_hash", "block_hash", "sender"]}
"""Columns that name a node's own values: transaction hashes (fee caps follow each node's base
fee), block hashes, and the faucet (each client's own dev account) as sender of the funding."""


def anvil_defaults(cid: int, hardfork: str | None = None) -> AnvilNode:
    """anvil with its defaults (30M block gas, 10,000 coins, fee order, latest fork) but the id."""
    return start_anvil(cid, block_gas_limit=None, balance_eth=None, order=None, hardfork=hardfork)


NODES = {
    "anvil": pytest.param(lambda cid: anvil_defaults(cid), marks=pytest.mark.anvil, id="anvil"),
    "anvil-build-fork": pytest.param(
        lambda cid: anvil_defaults(cid, EVM_VERSION), marks=pytest.mark.anvil, id="anvil-fork"
    ),
    "hardhat": pytest.param(start_hardhat, marks=pytest.mark.hardhat, id="hardhat"),
}


@contextlib.contextmanager
def two_nodes(start, ids: tuple[int, int] | None = None) -> Iterator[str]:
    """Start one node per ledger (scenario chain ids unless `ids`), yield the --chain value."""
    nodes = []
    try:
        for cid in ids or (DEFAULT_CHAIN_IDS["letb"], DEFAULT_CHAIN_IDS["retb"]):
            nodes.append(start(cid))
        yield ",".join(n.url for n in nodes)
    finally:
        for n in nodes:
            n.stop()


def run(chain: str, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`gridledger run --hours 4 --chain URL,URL`: exit code, stdout, stderr."""
    rc = main(["run", "--hours", HOURS, "--chain", chain, "--out", str(out), "--no-progress"])
    printed = capsys.readouterr()
    return rc, printed.out, printed.err


@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("embedded")
    assert main(["run", "--hours", HOURS, "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.mark.slow
@pytest.mark.parametrize("start", NODES.values())
def test_first_hours_equal_embedded(start, embedded_run, tmp_path, capsys) -> None:
    """`gridledger run --hours 4 --chain URL,URL`: same hourly, trades, agents and gas used."""
    with two_nodes(start) as spec:
        rc, out, err = run(spec, tmp_path, capsys)
    assert rc == 0, err
    assert f"fork {EVM_VERSION} ok" in out and "the run needs" in out  # the preflight, printed
    for frame in FRAMES:
        want = pd.read_parquet(embedded_run / f"{frame}.parquet")
        got = pd.read_parquet(tmp_path / f"{frame}.parquet")
        cols = [c for c in want.columns if c not in DIFFERS.get(frame, [])]
        pd.testing.assert_frame_equal(got[cols], want[cols], obj=frame)
    assert pd.read_parquet(tmp_path / "gas.parquet")["gas_used"].sum() > 0


# --- preflight refusals on real nodes: exit 5, one line naming chain and URL, nothing written,
# nothing sent ---------------------------------------------------------------------------------


def refused(spec: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    out = tmp_path / "out"
    rc, _, err = run(spec, out, capsys)
    assert rc == EXIT_NODE_REFUSED, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert spec.split(",")[0] in lines[0] and "chain 'letb'" in lines[0]
    assert not out.exists()  # no checkpoint.json, no folder
    for url in spec.split(","):
        assert RpcChain(url, "probe").head() == 0  # no transaction was mined
    return lines[0]


@pytest.mark.anvil
def test_wrong_chain_id_refused(tmp_path, capsys) -> None:
    with two_nodes(anvil_defaults, ids=(31337, 31338)) as spec:
        line = refused(spec, tmp_path, capsys)
    assert "chain id 31337" in line and "anvil --chain-id 31401" in line


@pytest.mark.anvil
def test_small_faucet_refused_with_the_amount(tmp_path, capsys) -> None:
    with two_nodes(lambda cid: start_anvil(cid, balance_eth=1)) as spec:
        line = refused(spec, tmp_path, capsys)
    assert "the faucet" in line and "holds 1.000 coins" in line and "anvil --balance" in line


@pytest.mark.anvil
@pytest.mark.parametrize("fork", ["paris", "london"])
def test_fork_without_the_opcodes_refused(fork, tmp_path, capsys) -> None:
    with two_nodes(lambda cid: anvil_defaults(cid, fork)) as spec:
        line = refused(spec, tmp_path, capsys)
    assert f"{EVM_VERSION} fork's opcodes" in line and f"--hardfork {EVM_VERSION}" in line


@pytest.mark.anvil
def test_small_block_gas_limit_refused(tmp_path, capsys) -> None:
    with two_nodes(lambda cid: start_anvil(cid, block_gas_limit=8_000_000)) as spec:
        line = refused(spec, tmp_path, capsys)
    assert "block gas limit 8,000,000" in line and "10,000,000" in line


@pytest.mark.hardhat
def test_call_gas_cap_of_an_osaka_node() -> None:
    """Hardhat 3 (Osaka) refuses calls above 2^24 gas: the check names the cap; CALL_GAS passes
    (the project's former 50M call gas was refused there)."""
    with start_hardhat(DEFAULT_CHAIN_IDS["letb"]) as node:
        chain = RpcChain(node.url, "letb", DEFAULT_CHAIN_IDS["letb"])
        check_call_gas(chain)  # 2^24: served
        with pytest.raises(CallGasCapError, match=r"chain 'letb' .*16,777,217 gas.*rpc.gascap"):
            check_call_gas(chain, gas=CALL_GAS + 1)
        with pytest.raises(CallGasCapError, match="50,000,000 gas"):
            check_call_gas(chain, gas=50_000_000)


# --- failures classified from receipts, abilities probed --------------------------------------


@pytest.mark.anvil
def test_deploy_on_an_older_fork_is_an_invalid_opcode_not_an_empty_revert() -> None:
    """Without the preflight: the deploy burns its whole gas limit on an opcode the fork lacks,
    and the error says so (it used to read `reverted: ''`)."""
    with anvil_defaults(31401, "paris") as node:
        chain = RpcChain(node.url, "letb", 31401)
        signer = chain.faucet_signer()
        with pytest.raises(OutOfGasError, match=r"used its whole gas limit .*opcode") as info:
            signer.transact(EnergyToken.deploy_request(10**18))
        assert "reverted" not in str(info.value)


class NoDevMethodsProxy:
    """An HTTP JSON-RPC proxy in front of a real node that answers 'method not found' for the
    dev methods (evm_*, anvil_*), as a production client (geth, Besu) does."""

    def __init__(self, target: str) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                req = json.loads(body)
                if isinstance(req, dict) and req["method"].startswith(("evm_", "anvil_")):
                    err = {"code": -32601, "message": f"the method {req['method']} does not exist"}
                    data = json.dumps({"jsonrpc": "2.0", "id": req["id"], "error": err}).encode()
                else:
                    hdr = {"Content-Type": "application/json"}
                    data = requests.post(target, data=body, headers=hdr, timeout=10).content
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.anvil
@pytest.mark.parametrize("block_time_s", [1, None])
def test_node_without_dev_methods_is_driven_by_its_blocks(block_time_s, monkeypatch) -> None:
    """No evm_mine / evm_setAutomine: not a dev node, whatever its name; mine() waits for the
    node's own blocks, and a node that makes none ends in a named timeout."""
    from gridledger.chain import ANVIL_DEV_KEY

    monkeypatch.setenv("GRIDLEDGER_FAUCET_KEY", ANVIL_DEV_KEY)
    with start_anvil(31401, block_time_s=block_time_s) as node:
        proxy = NoDevMethodsProxy(node.url)
        try:
            chain = RpcChain(proxy.url, "letb", 31401, receipt_timeout_s=4)
            assert chain.client_version.startswith("anvil")  # the name says anvil ...
            assert not chain.can_mine and not chain.dev  # ... the probe says: no evm_mine
            signer = chain.faucet_signer()
            to = "0x" + "22" * 20
            if block_time_s:
                res = signer.transact(TxRequest(to, b"", gas=21_000, value=5, function="pay"))
                assert res.ok and chain.balance(to) == 5
            else:
                with pytest.raises(ReceiptTimeoutError, match=r"no receipt after 4 s.*'letb'"):
                    signer.transact(TxRequest(to, b"", gas=21_000, value=5, function="pay"))
        finally:
            proxy.close()


@pytest.mark.anvil
def test_failed_setup_leaves_no_checkpoint(tmp_path, capsys) -> None:
    """A set-up transaction that fails (here: a node whose contract size limit is too small for
    the token) ends the run with exit 6 and one line, and leaves no checkpoint.json behind."""
    from gridledger.cli import EXIT_CHAIN_FAILED

    small = ("--code-size-limit", "1000")
    with two_nodes(lambda cid: start_anvil(cid, extra_args=small)) as spec:
        out = tmp_path / "out"
        rc, _, err = run(spec, out, capsys)
    assert rc == EXIT_CHAIN_FAILED, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "chain 'letb' (http://127.0.0.1:" in lines[0] and "what to do:" in lines[0]
    assert not out.exists()


# --- one fork everywhere ------------------------------------------------------------------------


def test_artifacts_and_embedded_chain_share_the_fork() -> None:
    from gridledger.chain import EmbeddedChain, embedded_vm_class
    from gridledger.contracts import CONTRACT_NAMES, load_artifact

    assert {load_artifact(n)["evm_version"] for n in CONTRACT_NAMES} == {EVM_VERSION}
    chain = EmbeddedChain(31401, "letb")
    assert isinstance(chain._evm.get_vm(), embedded_vm_class(EVM_VERSION))
    assert not isinstance(chain._evm.get_vm(), embedded_vm_class("cancun"))
    with pytest.raises(ValueError, match="evm_version must be one of"):
        EmbeddedChain(31401, "letb", evm_version="frontier")


def test_embedded_invalid_opcode_is_reported_as_whole_gas_not_revert() -> None:
    """On the embedded Shanghai chain, creation code using Cancun's opcodes burns its whole gas
    limit: OutOfGasError naming the invalid opcode; Shanghai's probe runs."""
    from gridledger.chain import EmbeddedChain
    from gridledger.chain.preflight import FORK_PROBES

    chain = EmbeddedChain(31401, "letb", evm_version="shanghai")
    signer = chain.faucet_signer()
    assert signer.transact(TxRequest(None, FORK_PROBES["shanghai"], gas=100_000)).ok
    with pytest.raises(OutOfGasError, match=r"whole gas limit 100000: .*InvalidInstruction"):
        signer.transact(TxRequest(None, FORK_PROBES["cancun"], gas=100_000))
