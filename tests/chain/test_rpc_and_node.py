"""JSON-RPC specifics against real anvil processes, and `gridledger node` process management."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from gridledger.market.accounts import derive_account
from gridledger.market.chain import (
    ANVIL_DEV_KEY,
    DEFAULT_CHAIN_IDS,
    ChainConnectionError,
    ChainIdMismatchError,
    ReceiptTimeoutError,
    RpcChain,
    TxRequest,
    make_chains,
)
from gridledger.market.node import AnvilNotFoundError, find_anvil, free_port, main_node, start_anvil

pytestmark = pytest.mark.anvil


def test_anvil_binds_localhost_and_stops():
    node = start_anvil(4711)
    with node:
        assert node.url.startswith("http://127.0.0.1:") and node.alive()
        chain = RpcChain(node.url, "x", expected_chain_id=4711)
        assert chain.dev and chain.client_version.lower().startswith("anvil")
        assert chain.block_number() == 0
    assert not node.alive()
    with pytest.raises(requests.ConnectionError):
        requests.post(
            node.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=1
        )


def test_node_with_unexpected_chain_id_is_refused():
    with start_anvil(4711) as node, pytest.raises(ChainIdMismatchError, match="4712"):
        RpcChain(node.url, "x", expected_chain_id=4712)


def test_unreachable_node_is_a_connection_error():
    with pytest.raises(ChainConnectionError, match="no answer"):
        RpcChain(f"http://127.0.0.1:{free_port()}", "x", retries=0, timeout_s=1)


def test_resending_the_same_signed_tx_never_spends_twice():
    with start_anvil(4711) as node:
        chain = RpcChain(node.url, "x")
        payer = chain.faucet_signer()
        to = derive_account(3, "user", 0).address
        ptx = payer.send(TxRequest(to, b"", gas=21_000, value=777, function="pay"))
        chain._submit_many([ptx])  # as after a dropped connection: same bytes, same nonce
        results = chain.mine()
        assert [r.tx_hash for r in results] == [ptx.tx_hash] and results[0].ok
        assert chain.balance(to) == 777
        assert chain.get_block(results[0].block_number)["tx_count"] == 1


def test_real_network_mode_waits_for_receipts_or_times_out():
    with start_anvil(4711, block_time_s=1) as node:  # mines by itself, like a real network
        chain = RpcChain(node.url, "x", dev=False, faucet_key=ANVIL_DEV_KEY, receipt_timeout_s=10)
        assert not chain.dev
        (res,) = chain.fund([derive_account(3, "user", 0).address], 5)
        assert res.ok and res.block_number >= 1
    with start_anvil(4711) as node:  # never mines: no receipt can come
        chain = RpcChain(node.url, "x", dev=False, faucet_key=ANVIL_DEV_KEY, receipt_timeout_s=0.5)
        chain.faucet_signer().send(TxRequest(derive_account(3, "user", 0).address, b"", 21_000, 5))
        with pytest.raises(ReceiptTimeoutError, match="no receipt after"):
            chain.mine()


def test_real_network_needs_a_faucet_key(monkeypatch):
    monkeypatch.delenv("GRIDLEDGER_FAUCET_KEY", raising=False)
    with start_anvil(4711) as node:
        chain = RpcChain(node.url, "x", dev=False)
        with pytest.raises(Exception, match="GRIDLEDGER_FAUCET_KEY"):
            _ = chain.faucet


def test_find_anvil_honours_env(monkeypatch, tmp_path):
    assert find_anvil().name == "anvil"
    monkeypatch.setenv("GRIDLEDGER_ANVIL", str(tmp_path / "nope"))
    with pytest.raises(AnvilNotFoundError, match="GRIDLEDGER_ANVIL"):
        find_anvil()


def test_gridledger_node_serves_both_chains_until_interrupted():
    port = free_port()
    code = (
        "import argparse, sys; from gridledger.market.node import main_node; "
        f"sys.exit(main_node(argparse.Namespace(port={port}, letb_chain_id="
        f"{DEFAULT_CHAIN_IDS['letb']}, retb_chain_id={DEFAULT_CHAIN_IDS['retb']})))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        spec = None
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        while spec is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if "gridledger run --chain" in line:
                spec = line.split("--chain", 1)[1].strip()
        assert spec == f"http://127.0.0.1:{port},http://127.0.0.1:{port + 1}"
        chains = make_chains(spec)  # checks the chain ids
        assert {k: c.chain_id for k, c in chains.items()} == DEFAULT_CHAIN_IDS
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        with pytest.raises(ChainConnectionError):
            RpcChain(f"http://127.0.0.1:{port}", "x", retries=0, timeout_s=1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_main_node_refuses_equal_chain_ids(capsys):
    args = argparse.Namespace(port=free_port(), letb_chain_id=5, retb_chain_id=5)
    assert main_node(args) == 2
    assert "distinct chain ids" in capsys.readouterr().err
