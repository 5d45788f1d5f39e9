"""JSON-RPC specifics against real anvil processes, and `gridledger node` process management."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
from eth_utils import keccak

import gridledger.chain.rpc as rpc_module
from gridledger.chain import (
    ANVIL_DEV_KEY,
    DEFAULT_CHAIN_IDS,
    RPC_BATCH_MAX_BYTES,
    RPC_BATCH_MAX_CALLS,
    BlockOrderError,
    ChainConnectionError,
    ChainError,
    ChainIdMismatchError,
    ReceiptTimeoutError,
    RpcChain,
    TxRequest,
    make_chains,
    rpc_batches,
)
from gridledger.chain.accounts import derive_account
from gridledger.chain.jsonrpc import DEFAULT_RPC_TIMEOUT_S, RPC_TIMEOUT_ENV, rpc_timeout_s
from gridledger.chain.nodes import AnvilNotFoundError, find_anvil, free_port, main_node, start_anvil

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


def test_a_batch_larger_than_the_nodes_body_limit_is_sent_in_parts():
    """anvil refuses a request body over 2 MiB ('Invalid request'); a phase of thousands of
    signed transactions is larger, so RpcChain splits its batches (every answer in order)."""
    big = "0x" + "ab" * 1_500
    calls = [("web3_sha3", [big])] * 2_500  # ~7.7 MB as one batch
    with start_anvil(4711) as node:
        chain = RpcChain(node.url, "x", expected_chain_id=4711)
        whole = chain._post([{"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                             for i, (m, p) in enumerate(calls)])  # fmt: skip
        assert whole["error"]["message"] == "Invalid request"  # one answer for the whole batch
        answers = chain.request_batch(calls)
    assert [a.get("result") for a in answers] == ["0x" + keccak(hexstr=big).hex()] * len(calls)
    parts = list(rpc_batches([{"id": i, "params": [big]} for i in range(len(calls))]))
    assert [c["id"] for p in parts for c in p] == list(range(len(calls)))
    assert all(len(p) <= RPC_BATCH_MAX_CALLS for p in parts)
    assert all(len(json.dumps(p)) <= RPC_BATCH_MAX_BYTES for p in parts)


def _transfers_from_distinct_senders(chain: RpcChain, n: int) -> list:
    accounts = [derive_account(9, "user", i) for i in range(n)]
    chain.fund([a.address for a in accounts], 10**17)
    to = derive_account(9, "x", 0).address
    return [chain.signer(a).sign(TxRequest(to, b"", gas=21_000, value=1)) for a in accounts]


def test_a_block_holds_its_transactions_in_submission_order():
    """The LETB/RETB requests of an hour are first-come-first-served: anvil must execute them
    in the order revm does. 200 transfers from distinct senders, submitted as one batch."""
    with start_anvil(4711) as node:
        chain = RpcChain(node.url, "x", expected_chain_id=4711)
        ptxs = _transfers_from_distinct_senders(chain, 200)
        chain.submit_many(ptxs)
        assert all(r.ok for r in chain.mine())
        block = chain.request("eth_getBlockByNumber", ["latest", False])
    assert block["transactions"] == [p.tx_hash for p in ptxs]


def test_a_block_out_of_submission_order_is_an_error(monkeypatch):
    """anvil 1.7.1 pools a JSON-RPC batch of more than 64 transactions out of call order (why
    RPC_SUBMIT_MAX_CALLS is 32); a dev node's block in another order raises, never silently
    gives another market result."""
    monkeypatch.setattr(rpc_module, "RPC_SUBMIT_MAX_CALLS", 200)
    with start_anvil(4711) as node:
        chain = RpcChain(node.url, "x", expected_chain_id=4711)
        chain.submit_many(_transfers_from_distinct_senders(chain, 200))
        with pytest.raises(BlockOrderError, match=r"chain 'x' .* which was submitted first"):
            chain.mine()


def test_node_with_unexpected_chain_id_is_refused():
    with start_anvil(4711) as node, pytest.raises(ChainIdMismatchError, match="4712"):
        RpcChain(node.url, "x", expected_chain_id=4712)


def test_unreachable_node_is_a_connection_error():
    with pytest.raises(ChainConnectionError, match="no answer"):
        RpcChain(f"http://127.0.0.1:{free_port()}", "x", retries=0, timeout_s=1)


def test_request_timeout_comes_from_the_environment(monkeypatch):
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        monkeypatch.setenv(RPC_TIMEOUT_ENV, "0.5")
        t0 = time.monotonic()
        with pytest.raises(ChainConnectionError, match="no answer"):
            RpcChain(url, "x", retries=0)
        assert time.monotonic() - t0 < 5  # not the 30 s default
    monkeypatch.setenv(RPC_TIMEOUT_ENV, "-1")
    with pytest.raises(ValueError, match=r"GRIDLEDGER_RPC_TIMEOUT_S must be a positive .* '-1'"):
        RpcChain(url, "x")
    monkeypatch.setenv(RPC_TIMEOUT_ENV, "600")
    with start_anvil(4711) as node:
        assert RpcChain(node.url, "x").timeout_s == 600.0
        assert RpcChain(node.url, "x", timeout_s=7).timeout_s == 7.0  # the argument wins
    monkeypatch.delenv(RPC_TIMEOUT_ENV)
    assert rpc_timeout_s() == DEFAULT_RPC_TIMEOUT_S == 30.0


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
        with pytest.raises(ChainError, match=r"not a dev node: .*GRIDLEDGER_FAUCET_KEY"):
            _ = chain.faucet


def test_find_anvil_honours_env(monkeypatch, tmp_path):
    assert find_anvil().name == "anvil"
    monkeypatch.setenv("GRIDLEDGER_ANVIL", str(tmp_path / "nope"))
    with pytest.raises(AnvilNotFoundError, match="GRIDLEDGER_ANVIL"):
        find_anvil()


def test_gridledger_node_serves_both_chains_until_interrupted(line_waiter):
    port = free_port()
    code = (
        "import argparse, sys; from gridledger.chain.nodes import main_node; "
        f"sys.exit(main_node(argparse.Namespace(port={port}, letb_chain_id="
        f"{DEFAULT_CHAIN_IDS['letb']}, retb_chain_id={DEFAULT_CHAIN_IDS['retb']})))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        line = line_waiter(proc, "gridledger run --chain", 60)
        spec = line.split("--chain", 1)[1].strip()
        assert spec == f"http://127.0.0.1:{port},http://127.0.0.1:{port + 1}"
        chains = make_chains(spec)  # checks the chain ids
        assert {k: c.chain_id for k, c in chains.items()} == DEFAULT_CHAIN_IDS
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0  # stopping two anvils is slow on a loaded machine
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


class DroppingProxy:
    """HTTP proxy to a node that forwards a request but drops the answer for chosen methods
    (the first `drops[method]` times): the client sees a dropped connection although the node
    executed the call -- the case where a blind resend could spend twice."""

    def __init__(self, target: str, drops: dict[str, int]) -> None:
        import http.server
        import threading

        self.drops = dict(drops)
        self.forwarded: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                resp = requests.post(
                    target, data=body, headers={"Content-Type": "application/json"}
                )
                text = body.decode()
                for method, left in proxy.drops.items():
                    if f'"{method}"' in text:
                        proxy.forwarded.append(method)
                        if left > 0:
                            proxy.drops[method] = left - 1
                            self.close_connection = True
                            self.connection.shutdown(2)  # no answer at all
                            return
                self.send_response(resp.status_code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_dropped_connections_never_double_spend_or_double_mine():
    with start_anvil(4711) as node:
        proxy = DroppingProxy(node.url, {"eth_sendRawTransaction": 1, "evm_mine": 0})
        try:
            chain = RpcChain(proxy.url, "x", retries=2)  # probes evm_mine once (not dropped)
            proxy.drops["evm_mine"] = 1
            proxy.forwarded.clear()
            payer = chain.faucet_signer()
            to = derive_account(3, "user", 0).address
            head = chain.block_number()
            ptx = payer.send(TxRequest(to, b"", gas=21_000, value=999, function="pay"))
            (res,) = chain.mine()
            assert proxy.drops == {"eth_sendRawTransaction": 0, "evm_mine": 0}  # both dropped
            assert proxy.forwarded.count("eth_sendRawTransaction") == 1  # found, not resent
            assert proxy.forwarded.count("evm_mine") == 1  # mined, not mined again
            assert res.tx_hash == ptx.tx_hash and res.ok
            assert chain.block_number() == head + 1
            assert chain.balance(to) == 999
            payer.transact(TxRequest(to, b"", gas=21_000, value=1, function="pay"))
            assert chain.balance(to) == 1000
        finally:
            proxy.close()
