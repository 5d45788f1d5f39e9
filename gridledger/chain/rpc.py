"""The JSON-RPC backend: any node over HTTP, with batched requests and dev-node mining."""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gridledger.chain.backend import CALL_GAS, ChainBackend
from gridledger.chain.errors import (
    BlockOrderError,
    CallReverted,
    ChainConnectionError,
    ChainError,
    ReceiptTimeoutError,
    ResumeConflictError,
    RpcError,
    TransactionRejected,
    WrongChainIdError,
)
from gridledger.chain.jsonrpc import (
    RPC_BATCH_MAX_CALLS,
    lost_reason,
    rejection_class,
    rpc_batches,
    rpc_timeout_s,
)
from gridledger.chain.rpc_receipts import receipt_result, unmined_error
from gridledger.chain.tx import PendingTx, TxResult, _account_from_key

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from gridledger.chain.replay import ReplayLog


ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
"""Anvil's/hardhat's first well-known dev account (public test mnemonic): the dev faucet."""
DEV_MINE_MAX_BLOCKS = 1000
"""Most `evm_mine` calls one mine() makes on a dev node whose blocks hold part of a batch."""


RPC_SUBMIT_MAX_CALLS = 32
"""eth_sendRawTransaction calls per batch request at most. anvil 1.7.1 answers a batch's calls
concurrently and pools a batch of more than 64 transactions out of call order (the 64th on
came last in reverse); up to 64 it keeps call order, and batches are sent one after the other,
so a block keeps the submission order (measured in tests/chain/test_rpc_and_node.py)."""


class RpcChain(ChainBackend):
    """Any JSON-RPC node. Dev nodes: automine off, `evm_mine` per mine() until the batch is in.

    `dev=None` probes the node's abilities (`can_mine`: evm_mine; `can_stop_automine`:
    evm_setAutomine) instead of trusting its client name; a node with both is driven by
    `evm_mine`, any other by waiting for its blocks (`receipt_timeout_s`, ReceiptTimeoutError).
    A request waits `timeout_s` for its answer (default `rpc_timeout_s()`: env
    GRIDLEDGER_RPC_TIMEOUT_S, else 30 s); no answer is a ChainConnectionError (node down).
    The faucet is `faucet_key`, else env GRIDLEDGER_FAUCET_KEY, else (dev nodes only) the
    public dev account ANVIL_DEV_KEY (the preflight checks it holds enough).
    `ordered=None` (= `dev`): a block out of submission order raises BlockOrderError; False
    accepts the node's order (a fee-ordered node in tests, a real network).
    A dropped connection never causes a blind resend: the transaction hash is looked up first,
    and a resend is the same signed bytes (same nonce), which cannot spend twice.
    """

    kind = "rpc"

    def __init__(
        self,
        url: str,
        name: str = "rpc",
        expected_chain_id: int | None = None,
        *,
        dev: bool | None = None,
        faucet_key: str | None = None,
        timeout_s: float | None = None,
        receipt_timeout_s: float = 120.0,
        retries: int = 3,
        ordered: bool | None = None,
    ) -> None:
        import requests

        if not url.startswith(("http://", "https://")):
            raise ValueError(f"RPC url must start with http:// or https://, got {url!r}")
        self.url = url
        self.name = name  # named in connection errors raised before ChainBackend.__init__
        self.replay: ReplayLog | None = None
        self.timeout_s = rpc_timeout_s() if timeout_s is None else float(timeout_s)
        self.receipt_timeout_s = receipt_timeout_s
        self.retries = retries
        self._session = requests.Session()
        self._ids = itertools.count(1)
        chain_id = int(self.request("eth_chainId", []), 16)
        if expected_chain_id is not None and chain_id != int(expected_chain_id):
            raise WrongChainIdError(
                f"the node reports chain id {chain_id}, the scenario expects {expected_chain_id}",
                chain=name,
                url=url,
                advice=f"start the node with chain id {expected_chain_id} (anvil --chain-id "
                f"{expected_chain_id}; hardhat node --chain-id {expected_chain_id}) or set "
                f"{name}_chain_id = {chain_id} in the scenario TOML",
            )
        super().__init__(name, chain_id)
        try:
            self.client_version = str(self.request("web3_clientVersion", []))
        except RpcError:
            self.client_version = "unknown"
        self.can_mine = self._has_method("evm_mine", ["not-a-timestamp"])
        self.can_stop_automine = self.can_mine and self._has_method("evm_setAutomine", [False])
        self.dev = (self.can_mine and self.can_stop_automine) if dev is None else dev
        self.ordered = self.dev if ordered is None else bool(ordered)
        if dev and not self.can_stop_automine:
            self.request("evm_setAutomine", [False])  # dev=True forced: fail loudly if it cannot
        key = faucet_key or os.environ.get("GRIDLEDGER_FAUCET_KEY")
        if key is None and self.dev:  # a dev node: the public test mnemonic's first account
            key = ANVIL_DEV_KEY
        self._faucet = _account_from_key(key) if key else None
        self._base_fee: int | None = None

    def _has_method(self, method: str, params: list[Any]) -> bool:
        """Does the node serve `method`? Any answer but 'method not found' counts as yes (the
        probe's `params` are either harmless or invalid on purpose)."""
        try:
            self.request(method, params)
        except RpcError as exc:
            e = exc.error if isinstance(exc.error, dict) else {}
            text = str(e.get("message", exc.error)).lower()
            absent = ("not found", "does not exist", "not supported", "not available")
            return not (e.get("code") in (-32601, -32004) or any(a in text for a in absent))
        return True

    # ---- transport ----
    def _post(self, payload: Any) -> Any:
        import requests

        lost = (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        )
        try:
            resp = self._session.post(self.url, json=payload, timeout=self.timeout_s)
        except lost as exc:
            reason = lost_reason(exc)
            raise ChainConnectionError(
                f"no answer from {self.url} (chain {self.name!r}): {reason}",
                chain=self.name,
                url=self.url,
                reason=reason,
            ) from exc
        if resp.status_code != 200:
            raise RpcError(str(payload)[:80], f"HTTP {resp.status_code}: {resp.text}", self.url)
        try:
            return resp.json()
        except ValueError as exc:  # the node died in the middle of its answer
            raise ChainConnectionError(
                f"truncated answer from {self.url} (chain {self.name!r}): {exc}",
                chain=self.name,
                url=self.url,
                reason="truncated answer",
            ) from exc

    def request(self, method: str, params: list[Any]) -> Any:
        """One read-type call; connection errors are retried (reads are idempotent)."""
        payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        for attempt in range(self.retries + 1):
            try:
                out = self._post(payload)
                break
            except ChainConnectionError:
                if attempt == self.retries:
                    raise
                time.sleep(0.2 * 2**attempt)
        if "error" in out:
            raise RpcError(method, out["error"], self.url)
        return out["result"]

    def request_batch(
        self, calls: list[tuple[str, list[Any]]], max_calls: int = RPC_BATCH_MAX_CALLS
    ) -> list[dict[str, Any]]:
        """JSON-RPC batch (requests of at most `max_calls` calls, sent one after the other);
        returns the raw answers (result or error) in call order."""
        if not calls:
            return []
        start = next(self._ids)
        payload = [
            {"jsonrpc": "2.0", "id": start + i, "method": m, "params": p}
            for i, (m, p) in enumerate(calls)
        ]
        self._ids = itertools.count(start + len(calls))
        by_id: dict[Any, dict[str, Any]] = {}
        for part in rpc_batches(payload, max_calls):
            out = self._post(part)
            if isinstance(out, dict):  # some nodes answer a whole-batch error with one object
                raise RpcError("batch", out.get("error", out), self.url)
            by_id.update((a.get("id"), a) for a in out)
        return [by_id.get(start + i, {"error": "no answer"}) for i in range(len(calls))]

    # ---- submission ----
    def _rejection(self, ptx: PendingTx, error: Any) -> TransactionRejected:
        msg = error.get("message", str(error)) if isinstance(error, dict) else str(error)
        cls = rejection_class(msg) or TransactionRejected
        err = cls(
            f"node at {self.url} refused tx {ptx.tx_hash}: {msg}",
            agent=ptx.agent,
            contract=ptx.contract,
            function=ptx.function,
        )
        err.chain, err.url = self.name, self.url  # named by the CLI's one-line error
        return err

    def _known(self, tx_hash: str) -> bool:
        return self.request("eth_getTransactionByHash", [tx_hash]) is not None

    def _submit(self, ptx: PendingTx) -> None:
        self._submit_many([ptx])

    def submit_many(self, ptxs: Sequence[PendingTx]) -> None:
        """Submit several signed transactions in one HTTP request (JSON-RPC batch)."""
        for ptx in ptxs:
            self._check_chain_id(ptx)
        self._submit_many(ptxs)

    @property
    def replaying(self) -> bool:
        """A resume is serving this chain's mined transactions (gridledger/chain/replay.py)."""
        return self.replay is not None and self.replay.active

    def _submit_many(self, ptxs: Sequence[PendingTx]) -> None:
        if self.replaying:
            ptxs = self._take_replayed(ptxs)
            if not ptxs:
                return
        calls = [("eth_sendRawTransaction", ["0x" + p.raw.hex()]) for p in ptxs]
        for attempt in range(self.retries + 1):
            try:
                answers = self.request_batch(calls, RPC_SUBMIT_MAX_CALLS)
                break
            except ChainConnectionError:
                # Never resend blindly: keep only those the node does not know yet. Resending
                # the same signed bytes (same nonce) cannot spend twice.
                if attempt == self.retries:
                    raise
                time.sleep(0.2 * 2**attempt)
                known = {p.tx_hash for p in ptxs if self._known(p.tx_hash)}
                for p in ptxs:
                    if p.tx_hash in known:
                        self._pending[p.tx_hash] = p
                keep = [(c, p) for c, p in zip(calls, ptxs, strict=True) if p.tx_hash not in known]
                calls = [c for c, _ in keep]
                ptxs = [p for _, p in keep]
                if not calls:
                    return
        first_error: TransactionRejected | None = None
        for ptx, ans in zip(ptxs, answers, strict=True):
            err = ans.get("error")
            if err is not None:
                msg = str(err.get("message", err) if isinstance(err, dict) else err).lower()
                if "already known" in msg or "already imported" in msg:
                    self._pending[ptx.tx_hash] = ptx
                    continue
                if first_error is None:
                    first_error = self._rejection(ptx, err)
                continue
            self._pending[ptx.tx_hash] = ptx
        if first_error is not None:
            raise first_error

    def _take_replayed(self, ptxs: Sequence[PendingTx]) -> list[PendingTx]:
        """Resume: track the transactions the chain already holds (served at mine() from their
        receipts, never sent again); return the others. The first one the chain does not hold
        ends the replay (which checks that every mined transaction was reproduced)."""
        assert self.replay is not None
        fresh = []
        for p in ptxs:
            if self.replay.take(p):
                self._pending[p.tx_hash] = p
            else:
                fresh.append(p)
        if fresh:
            self.replay.finish(fresh[0])
        return fresh

    # ---- mining and receipts ----
    def _receipts(self, hashes: list[str]) -> list[dict[str, Any] | None]:
        answers = self.request_batch([("eth_getTransactionReceipt", [h]) for h in hashes])
        return [a.get("result") for a in answers]

    def _evm_mine_once(self) -> None:
        """evm_mine exactly once: after a dropped connection, look at the head before retrying."""
        before = self.head()
        payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": "evm_mine", "params": []}
        for attempt in range(self.retries + 1):
            try:
                out = self._post(payload)
            except ChainConnectionError:
                if attempt == self.retries:
                    raise
                time.sleep(0.2 * 2**attempt)
                if self.head() > before:
                    return
                continue
            if "error" in out:
                raise RpcError("evm_mine", out["error"], self.url)
            return

    def _mine_dev(self, hashes: list[str]) -> list[dict[str, Any] | None]:
        """evm_mine until every transaction has a receipt or a block adds none (a node packs a
        block up to its gas limit by the transactions' gas limits; what never fits -- nonce gap,
        unaffordable -- stays out and is reported by the caller)."""
        self._evm_mine_once()
        receipts = self._receipts(hashes)
        missing = sum(r is None for r in receipts)
        for _ in range(DEV_MINE_MAX_BLOCKS):
            if not missing:
                break
            self._evm_mine_once()
            receipts = self._receipts(hashes)
            before, missing = missing, sum(r is None for r in receipts)
            if missing == before:
                break
        return receipts

    def _mine_pending(self, pending: list[PendingTx]) -> list[TxResult]:
        served = [p for p in pending if p.replayed]
        if not served:
            if self.replaying:
                self.replay.finish(None)  # an empty block the interrupted run never mined
            return self._mine_fresh(pending)
        receipts = self._receipts([p.tx_hash for p in served])
        out: dict[int, TxResult] = {}
        for p, r in zip(served, receipts, strict=True):
            if r is None:
                raise ResumeConflictError(
                    f"chain {self.name!r} ({self.url}) holds tx {p.tx_hash} (nonce {p.nonce} of "
                    f"{p.agent}) but no receipt for it"
                )
            out[id(p)] = receipt_result(self, p, r)
        fresh = [p for p in pending if not p.replayed]
        if fresh:
            out.update(zip(map(id, fresh), self._mine_fresh(fresh), strict=True))
        return [out[id(p)] for p in pending]

    def _mine_fresh(self, pending: list[PendingTx]) -> list[TxResult]:
        hashes = [p.tx_hash for p in pending]
        if self.dev:
            receipts = self._mine_dev(hashes)
            if self.ordered:
                self._check_block_order(pending, receipts)
        else:
            deadline = time.monotonic() + self.receipt_timeout_s
            receipts = self._receipts(hashes)
            while any(r is None for r in receipts):
                if time.monotonic() > deadline:
                    missing = [h for h, r in zip(hashes, receipts, strict=True) if r is None]
                    raise ReceiptTimeoutError(
                        f"no receipt after {self.receipt_timeout_s:.0f} s on chain {self.name!r} "
                        f"({self.url}) for {len(missing)} tx, e.g. {missing[0]}"
                    )
                time.sleep(0.25)
                receipts = self._receipts(hashes)
        self._base_fee = None
        results = []
        for p, r in zip(pending, receipts, strict=True):
            if r is None:  # dev node: stuck behind a nonce gap -> drop it, report it
                with contextlib.suppress(RpcError):
                    self.request("anvil_dropTransaction", [p.tx_hash])
                res = p.to_result(
                    self.name,
                    block_number=-1,
                    block_hash="",
                    gas_used=0,
                    status=0,
                )
                res.error = unmined_error(self, p)
                results.append(res)
                continue
            results.append(receipt_result(self, p, r))
        return results

    def _check_block_order(
        self, pending: list[PendingTx], receipts: list[dict[str, Any] | None]
    ) -> None:
        """A dev node's block must hold the mined transactions in submission order, as the
        in-process engines execute them; raise BlockOrderError rather than go on with a
        different (first-come-first-served) market result."""
        last: tuple[int, int, str] | None = None
        for p, r in zip(pending, receipts, strict=True):
            if r is None:
                continue
            pos = (int(r["blockNumber"], 16), int(r["transactionIndex"], 16), p.tx_hash)
            if last is not None and pos[:2] < last[:2]:
                raise BlockOrderError(
                    f"chain {self.name!r} ({self.url}) executed tx {pos[2]} (block {pos[0]}, "
                    f"index {pos[1]}) before tx {last[2]} (block {last[0]}, index {last[1]}), "
                    "which was submitted first"
                )
            last = pos

    # ---- reads ----
    def _tag(self, block: int | str) -> str:
        """Block parameter; while a resume replays mined hours, 'latest'/'pending' mean the
        block the interrupted run had reached at this point (its state, not later state)."""
        if isinstance(block, int):
            return hex(block)
        if block in ("latest", "pending") and self.replaying:
            return hex(self.replay.pin)
        return block

    def call(
        self,
        to: str,
        data: bytes,
        *,
        sender: str | None = None,
        block: int | str = "latest",
        value: int = 0,
    ) -> bytes:
        tx: dict[str, Any] = {"to": to, "data": "0x" + bytes(data).hex(), "gas": hex(CALL_GAS)}
        if sender:
            tx["from"] = sender
        if value:
            tx["value"] = hex(value)
        try:
            out = self.request("eth_call", [tx, self._tag(block)])
        except RpcError as exc:
            raise CallReverted(exc.revert_reason()) from exc
        return bytes.fromhex(out[2:])

    def nonce(self, address: str, block: int | str = "pending") -> int:
        return int(self.request("eth_getTransactionCount", [address, self._tag(block)]), 16)

    def balance(self, address: str, block: int | str = "latest") -> int:
        return int(self.request("eth_getBalance", [address, self._tag(block)]), 16)

    def block_number(self) -> int:
        """Latest block (during a resume's replay: the block the interrupted run had reached)."""
        if self.replaying:
            return self.replay.pin
        return self.head()

    def head(self) -> int:
        """The node's latest block number, replay or not."""
        return int(self.request("eth_blockNumber", []), 16)

    def get_block(self, number: int | str = "latest") -> dict[str, Any]:
        b = self.request("eth_getBlockByNumber", [self._tag(number), False])
        if b is None:
            raise ValueError(f"block {number!r} not found on chain {self.name!r}")
        return {
            "number": int(b["number"], 16),
            "hash": b["hash"],
            "parent_hash": b["parentHash"],
            "gas_used": int(b["gasUsed"], 16),
            "gas_limit": int(b["gasLimit"], 16),
            "timestamp": int(b["timestamp"], 16),
            "tx_count": len(b["transactions"]),
        }

    def base_fee(self) -> int:
        if self._base_fee is None:
            b = self.request("eth_getBlockByNumber", ["latest", False])
            self._base_fee = int(b.get("baseFeePerGas", "0x0"), 16)
        return self._base_fee

    @property
    def faucet(self) -> LocalAccount:
        if self._faucet is None:
            raise ChainError(
                f"chain {self.name!r} ({self.url}) is not a dev node: pass faucet_key= or set "
                "GRIDLEDGER_FAUCET_KEY to the private key of a funded account"
            )
        return self._faucet

    def close(self) -> None:
        self._session.close()
