"""The chain layer's errors: one class per failure a caller may want to catch, and revert reasons.

Every error names the agent, contract, function and chain it concerns where known, so a failed
market hour says who sent what.
"""

from __future__ import annotations

import contextlib
from typing import Any


class ChainError(Exception):
    """Base class of every chain-layer error."""


class ChainConnectionError(ChainError):
    """The node at a URL could not be reached (after checking that nothing was half-sent).

    `chain` and `url` name the node ('' where unknown), `reason` says what failed."""

    def __init__(self, message: str, *, chain: str = "", url: str = "", reason: str = "") -> None:
        self.chain = chain
        self.url = url
        self.reason = reason or message
        super().__init__(message)


class NodeDownError(ChainConnectionError):
    """A chain's node stopped answering in the middle of a run.

    Names the chain, its URL, the market hour `t` that was interrupted (None: during set-up),
    the `phase` it was in, and `last_completed_hour` (-1: none). Every hour up to that one is
    saved if the run was checkpointing (`checkpoint_dir`); `gridledger run --resume DIR` then
    continues from the interrupted hour once the node is back with its chain.
    """

    def __init__(
        self,
        *,
        chain: str,
        url: str,
        t: int | None,
        phase: str,
        last_completed_hour: int,
        checkpoint_dir: str = "",
        cause: str = "",
    ) -> None:
        self.t = t
        self.phase = phase
        self.last_completed_hour = last_completed_hour
        self.checkpoint_dir = checkpoint_dir
        where = "during set-up" if t is None else f"in market hour {t}"
        done = (
            f"hours 0..{last_completed_hour} completed"
            if last_completed_hour >= 0
            else "no hour completed"
        )
        saved = (
            f"; saved in {checkpoint_dir}"
            if checkpoint_dir
            else "; nothing saved (no checkpoint folder)"
        )
        super().__init__(
            f"node of chain {chain!r} at {url or '?'} stopped answering {where} "
            f"(phase {phase}: {cause or 'no answer'}); {done}{saved}",
            chain=chain,
            url=url,
            reason=cause,
        )


class ResumeConflictError(ChainError):
    """Resuming a run found a chain that contradicts it: a different transaction at a nonce the
    run used, a chain that is not the one the run started on, or a re-execution that does not
    reproduce what the chain holds. The message names the chain, the account/nonce or block."""


class RpcError(ChainError):
    """A JSON-RPC call returned an error this layer has no more specific class for."""

    def __init__(self, method: str, error: Any, url: str = "") -> None:
        self.method = method
        self.error = error
        super().__init__(f"{method} failed on {url or 'node'}: {error}")

    def revert_reason(self) -> str:
        """The revert reason a node gave for a reverted call: decoded from the revert data
        (`error.data`, or `error.data.data` as some clients nest it), else the error message."""
        e = self.error if isinstance(self.error, dict) else {}
        data = e.get("data")
        if isinstance(data, dict):
            data = data.get("data")
        if isinstance(data, str) and data.startswith("0x"):
            return decode_revert_reason(bytes.fromhex(data[2:]))
        return str(e.get("message", self.error))


class TransactionRejected(ChainError):
    """The node refused a transaction before executing it (it is not in any block)."""

    def __init__(self, message: str, *, agent: str = "", contract: str = "", function: str = ""):
        self.agent = agent
        self.contract = contract
        self.function = function
        super().__init__(_describe(message, agent, contract, function))


class ChainIdMismatchError(TransactionRejected):
    """A raw transaction was signed for another chain (e.g. a LETB tx replayed on RETB)."""


class PreflightError(ChainError):
    """A node cannot run this simulation, found at connect before any transaction (the checks:
    gridledger/chain/preflight.py). One line naming the chain, URL, what failed, what to do."""

    def __init__(self, what: str, *, chain: str, url: str, advice: str) -> None:
        self.chain, self.url, self.what, self.advice = chain, url, what, advice
        where = f"chain {chain!r} ({url})" if url else f"chain {chain!r}"
        super().__init__(f"{where}: {what}; {advice}")


class WrongChainIdError(PreflightError, ChainIdMismatchError):
    """The node reports another chain id than the scenario expects for that ledger."""


class NonceError(TransactionRejected):
    """A transaction's nonce does not follow its sender's last one (too low, or a gap)."""


class InsufficientFundsError(TransactionRejected):
    """The sender cannot pay value + gas limit x max fee."""


class InvalidSignatureError(TransactionRejected):
    """The signature is out of range (r, s, y parity, high s) or recovers no key."""


class ReceiptTimeoutError(ChainError):
    """No receipt arrived within the timeout (real networks)."""


class TransactionFailed(ChainError):
    """A transaction was mined but failed (status 0): base of reverted and out-of-gas."""

    def __init__(
        self,
        message: str,
        *,
        agent: str = "",
        contract: str = "",
        function: str = "",
        tx_hash: str = "",
        chain: str = "",
    ) -> None:
        self.agent = agent
        self.contract = contract
        self.function = function
        self.tx_hash = tx_hash
        self.chain = chain
        super().__init__(_describe(message, agent, contract, function, chain, tx_hash))


class TransactionReverted(TransactionFailed):
    """The contract reverted; `reason` is the decoded revert string ('' if none was given)."""

    def __init__(self, reason: str, **kw: Any) -> None:
        self.reason = reason
        super().__init__(f"reverted: {reason!r}", **kw)


class OutOfGasError(TransactionFailed):
    """The transaction used its whole gas limit: out of gas, or an opcode the node's fork does not
    have (an invalid opcode also burns all the gas; `cause` says which, where the node tells)."""

    def __init__(self, gas_limit: int, cause: str = "", **kw: Any) -> None:
        self.gas_limit = gas_limit
        self.cause = cause
        what = cause or "out of gas or an invalid opcode (a fork older than the contracts')"
        super().__init__(f"used its whole gas limit {gas_limit}: {what}", **kw)


class BlockOrderError(ChainError):
    """A dev node executed a block's transactions in an order other than their submission
    order. The market is first-come-first-served (a request takes the cheapest offers left),
    so the results would silently differ from the in-process engines; see docs/block-order.md."""


class CallReverted(ChainError):
    """A read-only call (eth_call) reverted."""

    def __init__(self, reason: str, *, contract: str = "", function: str = "") -> None:
        self.reason = reason
        self.contract = contract
        self.function = function
        super().__init__(_describe(f"call reverted: {reason!r}", "", contract, function))


def _describe(
    message: str, agent: str, contract: str, function: str, chain: str = "", tx_hash: str = ""
) -> str:
    where = ".".join(x for x in (contract, function) if x)
    parts = [message]
    if where:
        parts.append(f"in {where}")
    if agent:
        parts.append(f"sent by {agent}")
    if chain:
        parts.append(f"on chain {chain}")
    if tx_hash:
        parts.append(f"(tx {tx_hash})")
    return " ".join(parts)


ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)


def decode_revert_reason(data: bytes) -> str:
    """Revert data -> readable reason: Error(string) text, 'Panic(0x..)', raw hex or ''."""
    from eth_abi import decode as abi_decode

    data = bytes(data or b"")
    if data[:4] == ERROR_SELECTOR:
        with contextlib.suppress(Exception):
            return str(abi_decode(["string"], data[4:])[0])
    if data[:4] == PANIC_SELECTOR:
        with contextlib.suppress(Exception):
            return f"Panic({abi_decode(['uint256'], data[4:])[0]:#x})"
    return "0x" + data.hex() if data else ""
