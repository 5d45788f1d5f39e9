"""Chain backends: everything between an agent's signed transaction and a mined block.

Backends behind one interface (`ChainBackend`); `make_chain` picks one by name or URL:

* `RevmChain(chain_id, name)` (gridledger/chain/revm.py) -- an in-process revm chain
  with node checks; the default embedded engine (`--chain embedded` / `revm`).
* `EmbeddedChain(chain_id, name)` -- an in-process py-evm chain (the eth-tester backend) with its
  own chain id (`--chain pyevm`). Transactions are executed when submitted (into the pending
  block) and mined as one block by `mine()`. eth-tester never checks a transaction's chain id;
  this class does, before the EVM sees the transaction (`ChainIdMismatchError`).
* `RpcChain(url, name, expected_chain_id=None)` -- any JSON-RPC node. On a node that mines on
  demand (`evm_mine`) and lets automine be switched off (`evm_setAutomine`) -- probed at connect,
  not guessed from the client's name -- `mine()` calls `evm_mine` until the batch is mined (one
  block when the block gas limit holds it); on other nodes `mine()` waits for the receipts with
  a timeout.

Model code is the same on all: sign and submit a batch (`Signer.send`, `send_many`), then
`chain.mine()` once. Every transaction is built here: local nonce per account and chain,
explicit gas limit and EIP-1559 fee caps, signed with libsecp256k1 through coincurve
(byte-identical to eth-account's signing, at a third of its cost).
Failed transactions raise specific errors carrying the agent, contract and function.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import coincurve
import rlp
from eth_utils import to_canonical_address, to_checksum_address

from gridledger.chain.codec import keccak, rlp_list

if TYPE_CHECKING:  # eth_account costs seconds to import; the CLI imports this module early
    from eth_account.signers.local import LocalAccount

    from gridledger.chain.replay import ReplayLog

__all__ = [
    "CHAIN_NAMES",
    "DEFAULT_CHAIN_IDS",
    "DEFAULT_EMBEDDED_ENGINE",
    "DEFAULT_GAS_LIMIT",
    "EMBEDDED_ENGINES",
    "IN_PROCESS_SPECS",
    "ChainBackend",
    "ChainConnectionError",
    "ChainError",
    "ChainIdMismatchError",
    "EmbeddedChain",
    "InsufficientFundsError",
    "InvalidSignatureError",
    "Log",
    "NodeDownError",
    "NonceError",
    "OutOfGasError",
    "PendingTx",
    "PreflightError",
    "ReceiptTimeoutError",
    "ResumeConflictError",
    "RpcChain",
    "RpcError",
    "Signer",
    "TransactionFailed",
    "TransactionRejected",
    "TransactionReverted",
    "TxRequest",
    "TxResult",
    "WrongChainIdError",
    "make_chain",
    "make_chains",
    "parse_chain_spec",
    "raw_tx_chain_id",
    "send_many",
    "sign_eip1559",
]

DEFAULT_GAS_LIMIT = 1_000_000
"""Gas limit of a transaction whose request names none (dev chains have room for many)."""
DEV_BLOCK_GAS_LIMIT = 1_000_000_000
"""Block gas limit of embedded and test-started anvil chains: a whole market hour fits one block."""
DEFAULT_PRIORITY_FEE_WEI = 1_000_000_000
DEFAULT_CHAIN_IDS: dict[str, int] = {"letb": 31401, "retb": 31402}
"""Chain ids of the two ledgers (LETB consortium chain, RETB chain); `gridledger node` uses them."""
CHAIN_NAMES = ("letb", "retb")
CALL_GAS = 2**24
"""Gas limit of every eth_call: EIP-7825's per-transaction cap (Osaka; Hardhat 3's default fork
refuses more), far above any view call's need."""
FUND_TXS_PER_BLOCK = 500
"""Most funding transfers per block: anvil's pool slows down superlinearly with one sender's
queue (5,000 transfers in one block: 7.0 s, in blocks of 500: see docs/scale.md)."""

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


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


__all__ += ["BlockOrderError", "CallReverted"]


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


def _account_from_key(key: bytes | str) -> LocalAccount:
    from eth_account import Account

    return Account.from_key(key)


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


# --------------------------------------------------------------------------------------------
# Requests, pending transactions, results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TxRequest:
    """What to send: target (None = contract creation), calldata, gas limit, and labels.

    `contract` / `function` label the transaction in errors and in the ledger's gas frame.
    """

    to: str | None
    data: bytes
    gas: int | None = None
    value: int = 0
    contract: str = ""
    function: str = ""


@dataclass(frozen=True)
class Log:
    """One event log of a mined transaction."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes
    log_index: int


@dataclass
class TxResult:
    """A mined transaction: receipt fields plus who sent it and what it called."""

    chain: str
    tx_hash: str
    sender: str
    agent: str
    contract: str
    function: str
    nonce: int
    gas_limit: int
    block_number: int
    block_hash: str
    gas_used: int
    status: int
    logs: tuple[Log, ...] = ()
    contract_address: str | None = None
    error: ChainError | None = None
    """TransactionFailed (reverted / out of gas), or NonceError for a tx a dev node dropped."""

    @property
    def ok(self) -> bool:
        return self.status == 1

    def raise_for_error(self) -> TxResult:
        """Raise the transaction's TransactionFailed (if any); return self otherwise."""
        if self.error is not None:
            raise self.error
        return self


@dataclass
class PendingTx:
    """A signed transaction accepted by a node, not yet mined (`result` is set by mine())."""

    chain: str
    tx_hash: str
    raw: bytes
    sender: str
    agent: str
    contract: str
    function: str
    nonce: int
    gas_limit: int
    signer: Signer | None = None
    result: TxResult | None = None
    replayed: bool = False
    """Already mined by an interrupted run (resume): `tx_hash` is then the mined one and the
    chain serves its receipt instead of sending (gridledger/chain/replay.py)."""
    # backend-private outcome known at submission (embedded backend)
    _local: Any = field(default=None, repr=False)


def raw_tx_chain_id(raw: bytes) -> int | None:
    """Chain id a raw signed transaction was signed for (None: pre-EIP-155 legacy tx)."""
    raw = bytes(raw)
    if not raw:
        raise TransactionRejected("empty raw transaction")
    if raw[0] <= 0x7F:  # typed envelope: type byte || rlp([chain_id, ...])
        fields = rlp.decode(raw[1:])
        return int.from_bytes(fields[0], "big")
    fields = rlp.decode(raw)
    v = int.from_bytes(fields[6], "big")
    return None if v in (27, 28) else (v - 35) // 2


# --------------------------------------------------------------------------------------------
# Backend interface
# --------------------------------------------------------------------------------------------


class ChainBackend(ABC):
    """One chain: submit signed transactions, mine them as a block, read state and receipts."""

    kind: str = ""

    def __init__(self, name: str, chain_id: int) -> None:
        if not name:
            raise ValueError("chain name must be a non-empty string")
        self.name = name
        self.chain_id = int(chain_id)
        self.priority_fee_wei = DEFAULT_PRIORITY_FEE_WEI
        self._pending: dict[str, PendingTx] = {}
        self._listeners: list[Callable[[list[TxResult]], None]] = []
        self._faucet_signer: Signer | None = None

    # ---- to implement ----
    @abstractmethod
    def _submit(self, ptx: PendingTx) -> None:
        """Hand one raw transaction to the node; raise TransactionRejected subclasses."""

    @abstractmethod
    def _mine_pending(self, pending: list[PendingTx]) -> list[TxResult]:
        """Mine (or wait for) the pending transactions; return their results in order."""

    @abstractmethod
    def call(
        self,
        to: str,
        data: bytes,
        *,
        sender: str | None = None,
        block: int | str = "latest",
        value: int = 0,
    ) -> bytes:
        """eth_call: the return data, or CallReverted."""

    @abstractmethod
    def nonce(self, address: str, block: int | str = "pending") -> int: ...

    @abstractmethod
    def balance(self, address: str, block: int | str = "latest") -> int: ...

    @abstractmethod
    def block_number(self) -> int:
        """Number of the latest mined block."""

    @abstractmethod
    def get_block(self, number: int | str = "latest") -> dict[str, Any]:
        """Block summary: number, hash, parent_hash, gas_used, gas_limit, timestamp, tx_count."""

    @abstractmethod
    def base_fee(self) -> int:
        """Base fee per gas of the next block."""

    @property
    @abstractmethod
    def faucet(self) -> LocalAccount:
        """A funded account that pays agents' gas at set-up."""

    # ---- shared behaviour ----
    def fee_caps(self) -> tuple[int, int]:
        """(max_fee_per_gas, max_priority_fee_per_gas) for new transactions."""
        return 2 * self.base_fee() + self.priority_fee_wei, self.priority_fee_wei

    def add_listener(self, callback: Callable[[list[TxResult]], None]) -> None:
        """Call `callback(results)` after every mine() (the ledger records through this)."""
        self._listeners.append(callback)

    @property
    def pending(self) -> list[PendingTx]:
        return list(self._pending.values())

    def _check_chain_id(self, ptx: PendingTx) -> None:
        """Refuse a transaction signed for another chain before it reaches the node/EVM."""
        cid = raw_tx_chain_id(ptx.raw)
        if cid != self.chain_id:
            raise ChainIdMismatchError(
                f"transaction {ptx.tx_hash} was signed for chain id {cid}, but chain "
                f"{self.name!r} has chain id {self.chain_id}",
                agent=ptx.agent,
                contract=ptx.contract,
                function=ptx.function,
            )

    def submit(self, ptx: PendingTx) -> PendingTx:
        """Check the chain id, hand the transaction to the node and track it until mined."""
        self._check_chain_id(ptx)
        self._submit(ptx)
        self._pending[ptx.tx_hash] = ptx
        return ptx

    def mine(self) -> list[TxResult]:
        """Mine all pending transactions in one block (dev chains) and return their results.

        Mines an (empty) block even with nothing pending, so one call = one market hour/phase.
        Results carry `error` for failed transactions; nothing raises here for them.
        """
        pending = list(self._pending.values())
        results = self._mine_pending(pending)
        self._pending.clear()
        for ptx, res in zip(pending, results, strict=True):
            ptx.result = res
            unmined = (NonceError, InsufficientFundsError)
            if res.error is not None and isinstance(res.error, unmined) and ptx.signer:
                ptx.signer.resync()
        for cb in self._listeners:
            cb(results)
        return results

    def signer(self, account: LocalAccount, agent: str = "") -> Signer:
        return Signer(account, self, agent=agent)

    def faucet_signer(self) -> Signer:
        if self._faucet_signer is None:
            self._faucet_signer = Signer(self.faucet, self, agent="faucet")
        return self._faucet_signer

    def fund(self, addresses: Sequence[str], wei: int | Sequence[int]) -> list[TxResult]:
        """Send native coin from the faucet to each address (`wei`: one amount for all, or one
        per address), in blocks of at most FUND_TXS_PER_BLOCK transfers."""
        amounts = [wei] * len(addresses) if isinstance(wei, int) else [int(w) for w in wei]
        if len(amounts) != len(addresses):
            raise ValueError(f"fund: {len(addresses)} addresses but {len(amounts)} amounts")
        if any(w < 0 for w in amounts):
            raise ValueError(f"fund: wei must be >= 0, got {min(amounts)}")
        fs = self.faucet_signer()
        items = [
            (
                fs,
                TxRequest(
                    to=to_checksum_address(a),
                    data=b"",
                    gas=21_000,
                    value=w,
                    contract="",
                    function="fund_gas",
                ),
            )
            for a, w in zip(addresses, amounts, strict=True)
        ]
        out: list[TxResult] = []
        for i in range(0, len(items), FUND_TXS_PER_BLOCK):
            out += send_many(items[i : i + FUND_TXS_PER_BLOCK], raise_on_error=True)
        return out

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (HTTP session); the embedded chain has none."""

    def __enter__(self) -> ChainBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, chain_id={self.chain_id})"


# --------------------------------------------------------------------------------------------
# Signer: an agent's key on one chain
# --------------------------------------------------------------------------------------------


class Signer:
    """An agent's account on one chain: builds, signs and submits its own transactions.

    Keeps the nonce locally (fetched once from the node, then incremented), sets the gas limit
    and EIP-1559 fee caps explicitly and never calls the node to fill fields in.
    """

    def __init__(self, account: LocalAccount, chain: ChainBackend, agent: str = "") -> None:
        self.account = account
        self.chain = chain
        self.address: str = account.address
        self.agent = agent or account.address
        self._nonce: int | None = None
        self._key = coincurve.PrivateKey(bytes(account.key))

    @property
    def next_nonce(self) -> int:
        if self._nonce is None:
            self._nonce = self.chain.nonce(self.address, "pending")
        return self._nonce

    def resync(self) -> None:
        """Forget the local nonce; the next transaction re-reads it from the node."""
        self._nonce = None

    def sign(self, req: TxRequest, *, nonce: int | None = None) -> PendingTx:
        """Sign `req` with the next nonce (or an explicit one) without submitting it."""
        n = self.next_nonce if nonce is None else nonce
        gas = DEFAULT_GAS_LIMIT if req.gas is None else int(req.gas)
        max_fee, tip = self.chain.fee_caps()
        to = b"" if req.to is None else to_canonical_address(req.to)
        raw, tx_hash = sign_eip1559(
            self._key, self.chain.chain_id, n, tip, max_fee, gas, to, int(req.value), req.data
        )
        return PendingTx(
            chain=self.chain.name,
            tx_hash="0x" + tx_hash.hex(),
            raw=raw,
            sender=self.address,
            agent=self.agent,
            contract=req.contract,
            function=req.function,
            nonce=n,
            gas_limit=gas,
            signer=self,
        )

    def send(self, req: TxRequest, *, nonce: int | None = None) -> PendingTx:
        """Sign and submit `req` (not mined yet). Rejections raise and keep the nonce unused."""
        ptx = self.sign(req, nonce=nonce)
        try:
            self.chain.submit(ptx)
        except NonceError:
            self.resync()
            raise
        if nonce is None:
            self._nonce = ptx.nonce + 1
        else:
            self.resync()
        return ptx

    def transact(self, req: TxRequest) -> TxResult:
        """Send `req`, mine the chain's pending block, return the result or raise its error."""
        ptx = self.send(req)
        self.chain.mine()
        assert ptx.result is not None
        return ptx.result.raise_for_error()

    def __repr__(self) -> str:
        return f"Signer({self.agent!r}, {self.address}, chain={self.chain.name!r})"


def sign_eip1559(
    key: coincurve.PrivateKey,
    chain_id: int,
    nonce: int,
    max_priority_fee_per_gas: int,
    max_fee_per_gas: int,
    gas: int,
    to: bytes,
    value: int,
    data: bytes,
) -> tuple[bytes, bytes]:
    """(raw, hash) of a signed EIP-1559 transaction with an empty access list.

    Byte-identical to eth-account's `sign_transaction` (both use libsecp256k1's deterministic
    RFC 6979 signatures with low s; tested) at a third of its cost: no field validation or
    dict normalisation, which the Signer does not need since it builds every field itself.
    """
    fields: list[Any] = [
        chain_id, nonce, max_priority_fee_per_gas, max_fee_per_gas, gas, to, value, bytes(data), [],
    ]  # fmt: skip
    sig = key.sign_recoverable(keccak(b"\x02" + rlp_list(fields)), hasher=None)
    fields += [sig[64], int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")]
    raw = b"\x02" + rlp_list(fields)
    return raw, keccak(raw)


def send_many(
    items: Sequence[tuple[Signer, TxRequest]], *, raise_on_error: bool = True
) -> list[TxResult]:
    """Sign and submit a batch, mine once per chain involved, return results in input order.

    All transactions are submitted before anything is mined, so the batch lands in one block per
    chain. A rejected submission (nonce, funds, chain id) still lets the others be mined, then
    raises. With `raise_on_error`, the first failed transaction's error is raised after mining
    (every result is already recorded by the chain's listeners); otherwise inspect
    `result.error`.
    """
    chains: dict[int, ChainBackend] = {}
    pending: list[PendingTx] = []
    rejection: TransactionRejected | None = None
    by_chain: dict[int, list[PendingTx]] = {}
    for signer, req in items:
        chains.setdefault(id(signer.chain), signer.chain)
        ptx = signer.sign(req)
        signer._nonce = ptx.nonce + 1
        by_chain.setdefault(id(signer.chain), []).append(ptx)
        pending.append(ptx)
    try:
        for key, ptxs in by_chain.items():
            chain = chains[key]
            if isinstance(chain, RpcChain):
                chain.submit_many(ptxs)
            else:
                for ptx in ptxs:
                    chain.submit(ptx)
    except TransactionRejected as exc:
        rejection = exc
        for ptx in pending:
            if ptx.signer is not None:
                ptx.signer.resync()
    for chain in chains.values():
        chain.mine()
    if rejection is not None:
        raise rejection
    results = [p.result for p in pending]
    missing = [p.tx_hash for p, r in zip(pending, results, strict=True) if r is None]
    if missing:
        raise ChainError(f"transactions were not mined: {missing}")
    out: list[TxResult] = [r for r in results if r is not None]
    if raise_on_error:
        for r in out:
            r.raise_for_error()
    return out


def _failure(chain: str, ptx: PendingTx, *, out_of_gas: bool, reason: str) -> TransactionFailed:
    kw = dict(
        agent=ptx.agent,
        contract=ptx.contract,
        function=ptx.function,
        tx_hash=ptx.tx_hash,
        chain=chain,
    )
    if out_of_gas:
        return OutOfGasError(ptx.gas_limit, reason, **kw)
    return TransactionReverted(reason, **kw)


# --------------------------------------------------------------------------------------------
# Embedded backend (py-evm through eth-tester)
# --------------------------------------------------------------------------------------------


@dataclass
class _LocalOutcome:
    receipt: Any
    computation: Any
    evm_tx: Any
    gas_used: int
    log_offset: int


EMBEDDED_VMS = {"shanghai": "ShanghaiVM", "cancun": "CancunVM", "prague": "PragueVM"}
"""py-evm VM class (in eth.vm.forks) of each fork the embedded chain can run."""


def embedded_vm_class(evm_version: str) -> type:
    """py-evm's VM class for `evm_version` (gridledger.contracts.EVM_VERSION by default)."""
    import eth.vm.forks

    if evm_version not in EMBEDDED_VMS:
        raise ValueError(f"evm_version must be one of {sorted(EMBEDDED_VMS)}, got {evm_version!r}")
    return getattr(eth.vm.forks, EMBEDDED_VMS[evm_version])


class EmbeddedChain(ChainBackend):
    """An in-process py-evm chain with its own chain id and 'batch then mine' blocks.

    It runs the fork `evm_version` (default: the contracts' build target,
    gridledger.contracts.EVM_VERSION), as anvil does with `--hardfork`.

    Submitted transactions execute at once in the pending block (each once: the block's tries
    are built when `mine()` seals it, not per transaction), so a revert is known immediately and
    reported on the result after `mine()`, as on a node.
    """

    kind = "embedded"

    def __init__(
        self,
        chain_id: int = 1337,
        name: str = "embedded",
        *,
        block_gas_limit: int = DEV_BLOCK_GAS_LIMIT,
        evm_version: str | None = None,
    ) -> None:
        from eth_tester import PyEVMBackend
        from eth_tester.backends.pyevm.main import get_default_genesis_params

        from gridledger.contracts import EVM_VERSION

        if not 0 < int(chain_id) < 2**64:
            raise ValueError(f"chain_id must be a positive integer below 2**64, got {chain_id}")
        super().__init__(name, chain_id)
        self.evm_version = evm_version or EVM_VERSION
        vm = embedded_vm_class(self.evm_version)
        params = get_default_genesis_params(overrides={"gas_limit": int(block_gas_limit)})
        self.backend = PyEVMBackend(genesis_parameters=params, vm_configuration=((0, vm),))
        # eth-tester hard-codes its chain id on the chain class; set ours on the instance
        # (py-evm builds each VM's ChainContext -- the CHAINID opcode -- from it).
        self.backend.chain.chain_id = self.chain_id
        self._evm = self.backend.chain
        self._builder = self._evm.get_vm().get_transaction_builder()
        self._vm: Any = None
        self._work_header: Any = None
        self._block_logs = 0  # logs in the pending block so far: the next receipt's log offset
        self._faucet = _account_from_key(self.backend.account_keys[0].to_bytes())
        self._w3: Any = None

    @property
    def faucet(self) -> LocalAccount:
        return self._faucet

    @property
    def w3(self) -> Any:
        """A web3.Web3 over this chain (reads only; eth_chainId answers this chain's id)."""
        if self._w3 is None:
            from eth_tester import EthereumTester
            from web3 import EthereumTesterProvider, Web3

            chain_id = self.chain_id

            class _Provider(EthereumTesterProvider):
                def make_request(self, method: Any, params: Any) -> Any:
                    if method == "eth_chainId":
                        return {"jsonrpc": "2.0", "id": 0, "result": hex(chain_id)}
                    return super().make_request(method, params)

            tester = EthereumTester(self.backend, auto_mine_transactions=True)
            self._w3 = Web3(_Provider(tester))
        return self._w3

    # ---- pending block ----
    def _working_vm(self) -> Any:
        if self._vm is None:
            self._vm = self._evm.get_vm(self._evm.header)
            self._work_header = self._evm.header
        return self._vm

    def _submit(self, ptx: PendingTx) -> None:
        from eth_keys.exceptions import BadSignature
        from eth_utils.exceptions import ValidationError as EthValidationError

        try:
            evm_tx = self._builder.decode(ptx.raw)
        except Exception as exc:
            raise TransactionRejected(f"undecodable raw transaction: {exc}") from exc
        if evm_tx.chain_id != self.chain_id:  # decode agrees with raw_tx_chain_id; belt+braces
            raise ChainIdMismatchError(
                f"signed for chain id {evm_tx.chain_id}, chain {self.name!r} is {self.chain_id}"
            )
        vm = self._working_vm()
        before = self._work_header
        try:
            receipt, computation = vm.apply_transaction(before, evm_tx)
        except BadSignature as exc:
            raise InvalidSignatureError(f"bad signature: {exc}", agent=ptx.agent) from exc
        except EthValidationError as exc:
            msg = str(exc)
            label = dict(agent=ptx.agent, contract=ptx.contract, function=ptx.function)
            if "nonce" in msg.lower():
                raise NonceError(msg, **label) from exc
            if "afford" in msg or "balance" in msg:
                raise InsufficientFundsError(msg, **label) from exc
            raise TransactionRejected(msg, **label) from exc
        after = vm.add_receipt_to_header(before, receipt)
        self._work_header = after
        ptx._local = _LocalOutcome(
            receipt, computation, evm_tx, after.gas_used - before.gas_used, self._block_logs
        )
        self._block_logs += len(receipt.logs)

    def _mine_pending(self, pending: list[PendingTx]) -> list[TxResult]:
        from eth.vm.forks import CancunVM

        vm = self._working_vm()
        vm.state.persist()
        header = self._work_header.copy(state_root=vm.state.state_root)
        txs = tuple(p._local.evm_tx for p in pending)
        receipts = tuple(p._local.receipt for p in pending)
        block = vm.set_block_transactions_and_withdrawals(vm.get_block(), header, txs, receipts)
        kwargs: dict[str, Any] = {"mix_hash": os.urandom(32)}
        if isinstance(vm, CancunVM):  # and later forks
            kwargs["blob_gas_used"] = 0
        mined = vm.mine_block(block, **kwargs).block
        self._evm.validate_block(mined)
        self._evm.chaindb.persist_block(mined)
        self._evm.header = self._evm.create_header_from_parent(mined.header)
        self._vm = None
        self._work_header = None
        self._block_logs = 0
        block_hash = "0x" + mined.hash.hex()
        results = []
        for p in pending:
            out: _LocalOutcome = p._local
            comp = out.computation
            logs = tuple(
                Log(
                    address=to_checksum_address(lg.address),
                    topics=tuple(t.to_bytes(32, "big") for t in lg.topics),
                    data=bytes(lg.data),
                    log_index=out.log_offset + i,
                )
                for i, lg in enumerate(out.receipt.logs)
            )
            created = None
            if not out.evm_tx.to and comp.is_success:
                created = to_checksum_address(comp.msg.storage_address)
            res = TxResult(
                chain=self.name,
                tx_hash=p.tx_hash,
                sender=p.sender,
                agent=p.agent,
                contract=p.contract,
                function=p.function,
                nonce=p.nonce,
                gas_limit=p.gas_limit,
                block_number=mined.number,
                block_hash=block_hash,
                gas_used=out.gas_used,
                status=0 if comp.is_error else 1,
                logs=logs,
                contract_address=created,
            )
            if comp.is_error:
                from eth.exceptions import OutOfGas, Revert

                err = comp.error
                if isinstance(err, Revert):
                    res.error = _failure(
                        self.name, p, out_of_gas=False, reason=decode_revert_reason(comp.output)
                    )
                else:  # out of gas, invalid opcode, stack errors: all burn the whole limit
                    cause = "out of gas" if isinstance(err, OutOfGas) else repr(err)
                    res.error = _failure(self.name, p, out_of_gas=True, reason=cause)
            p._local = None
            results.append(res)
        return results

    # ---- reads ----
    def _read_header(self, block: int | str) -> Any:
        if block == "pending":
            vm = self._working_vm()
            vm.state.persist()  # as MiningChain.apply_transaction does after every tx
            return self._work_header.copy(state_root=vm.state.state_root)
        n = self.block_number() if block == "latest" else int(block)
        if not 0 <= n <= self.block_number():
            raise ValueError(f"block {block!r} not mined on chain {self.name!r}")
        return self._evm.get_canonical_block_header_by_number(n)

    def _read_state(self, block: int | str) -> Any:
        if block == "pending":
            return self._working_vm().state
        return self._evm.get_vm(self._read_header(block)).state

    def call(
        self,
        to: str,
        data: bytes,
        *,
        sender: str | None = None,
        block: int | str = "latest",
        value: int = 0,
    ) -> bytes:
        from eth.exceptions import Revert
        from eth.vm.spoof import SpoofTransaction

        vm = self._evm.get_vm(self._read_header(block))
        frm = to_canonical_address(sender) if sender else b"\x00" * 20
        with vm.in_costless_state() as state:
            unsigned = vm.create_unsigned_transaction(
                nonce=state.get_nonce(frm),
                gas_price=0,
                gas=CALL_GAS,
                to=to_canonical_address(to),
                value=value,
                data=bytes(data),
            )
            comp = state.costless_execute_transaction(SpoofTransaction(unsigned, from_=frm))
        if comp.is_error:
            err = comp.error
            reason = decode_revert_reason(comp.output) if isinstance(err, Revert) else repr(err)
            raise CallReverted(reason)
        return bytes(comp.output)

    def nonce(self, address: str, block: int | str = "pending") -> int:
        return self._read_state(block).get_nonce(to_canonical_address(address))

    def balance(self, address: str, block: int | str = "latest") -> int:
        return self._read_state(block).get_balance(to_canonical_address(address))

    def block_number(self) -> int:
        return self._evm.header.block_number - 1

    def get_block(self, number: int | str = "latest") -> dict[str, Any]:
        n = self.block_number() if number == "latest" else int(number)
        if not 0 <= n <= self.block_number():
            raise ValueError(f"block {number!r} not mined on chain {self.name!r}")
        blk = self._evm.get_canonical_block_by_number(n)
        h = blk.header
        return {
            "number": h.block_number,
            "hash": "0x" + h.hash.hex(),
            "parent_hash": "0x" + h.parent_hash.hex(),
            "gas_used": h.gas_used,
            "gas_limit": h.gas_limit,
            "timestamp": h.timestamp,
            "tx_count": len(blk.transactions),
        }

    def base_fee(self) -> int:
        hdr = self._work_header if self._work_header is not None else self._evm.header
        return int(getattr(hdr, "base_fee_per_gas", 0) or 0)


# --------------------------------------------------------------------------------------------
# JSON-RPC backend
# --------------------------------------------------------------------------------------------

ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
"""Anvil's/hardhat's first well-known dev account (public test mnemonic): the dev faucet."""
DEV_MINE_MAX_BLOCKS = 1000
"""Most `evm_mine` calls one mine() makes on a dev node whose blocks hold part of a batch."""


RPC_BATCH_MAX_CALLS = 1_000
"""Calls per JSON-RPC batch request at most (geth's default BatchRequestLimit)."""
RPC_SUBMIT_MAX_CALLS = 32
"""eth_sendRawTransaction calls per batch request at most. anvil 1.7.1 answers a batch's calls
concurrently and pools a batch of more than 64 transactions out of call order (the 64th on
came last in reverse); up to 64 it keeps call order, and batches are sent one after the other,
so a block keeps the submission order (measured in tests/chain/test_rpc_and_node.py)."""
RPC_BATCH_MAX_BYTES = 1 << 20
"""Bytes of one batch request's body at most: anvil 1.7.1 refuses a body over 2 MiB with
'Invalid request' (a phase of ~3,400 signed requests is ~3.5 MB), geth's limit is 5 MB."""


def rpc_batches(
    payload: list[dict[str, Any]], max_calls: int = RPC_BATCH_MAX_CALLS
) -> Iterator[list[dict[str, Any]]]:
    """Split a JSON-RPC batch into requests of at most `max_calls` calls and
    RPC_BATCH_MAX_BYTES bytes (a single larger call goes alone), in order."""
    part: list[dict[str, Any]] = []
    size = 2  # the brackets
    for call in payload:
        n = len(json.dumps(call)) + 2  # ", " between calls
        if part and (len(part) == max_calls or size + n > RPC_BATCH_MAX_BYTES):
            yield part
            part, size = [], 2
        part.append(call)
        size += n
    if part:
        yield part


def _lost_reason(exc: Exception) -> str:
    """Short cause of a lost connection (requests nests the OS error deep in its message)."""
    text = str(exc)
    for key, label in (
        ("refused", "connection refused"),
        ("reset", "connection reset"),
        ("timed out", "timed out"),
        ("RemoteDisconnected", "connection closed by the node"),
        ("aborted", "connection aborted"),
    ):
        if key in text:
            return label
    return f"{type(exc).__name__}: {text[:200]}"


def _classify_rpc_error(message: str) -> type[TransactionRejected] | None:
    m = message.lower()
    if "chain id" in m or "chainid" in m or "chain_id" in m:
        return ChainIdMismatchError
    if "signature" in m or "recover the signer" in m:
        return InvalidSignatureError
    if "nonce" in m:
        return NonceError
    if "insufficient funds" in m or "lack of funds" in m or "insufficient balance" in m:
        return InsufficientFundsError
    return None


class RpcChain(ChainBackend):
    """Any JSON-RPC node. Dev nodes: automine off, `evm_mine` per mine() until the batch is in.

    `dev=None` probes the node's abilities (`can_mine`: evm_mine; `can_stop_automine`:
    evm_setAutomine) instead of trusting its client name; a node with both is driven by
    `evm_mine`, any other by waiting for its blocks (`receipt_timeout_s`, ReceiptTimeoutError).
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
        timeout_s: float = 30.0,
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
        self.timeout_s = timeout_s
        self.receipt_timeout_s = receipt_timeout_s
        self.retries = retries
        self._session = requests.Session()
        self._ids = itertools.count(1)
        chain_id = int(self._rpc("eth_chainId", []), 16)
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
            self.client_version = str(self._rpc("web3_clientVersion", []))
        except RpcError:
            self.client_version = "unknown"
        self.can_mine = self._has_method("evm_mine", ["not-a-timestamp"])
        self.can_stop_automine = self.can_mine and self._has_method("evm_setAutomine", [False])
        self.dev = (self.can_mine and self.can_stop_automine) if dev is None else dev
        self.ordered = self.dev if ordered is None else bool(ordered)
        if dev and not self.can_stop_automine:
            self._rpc("evm_setAutomine", [False])  # dev=True forced: fail loudly if it cannot
        key = faucet_key or os.environ.get("GRIDLEDGER_FAUCET_KEY")
        if key is None and self.dev:  # a dev node: the public test mnemonic's first account
            key = ANVIL_DEV_KEY
        self._faucet = _account_from_key(key) if key else None
        self._base_fee: int | None = None

    def _has_method(self, method: str, params: list[Any]) -> bool:
        """Does the node serve `method`? Any answer but 'method not found' counts as yes (the
        probe's `params` are either harmless or invalid on purpose)."""
        try:
            self._rpc(method, params)
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
            reason = _lost_reason(exc)
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

    def _rpc(self, method: str, params: list[Any]) -> Any:
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

    def _batch(
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
        cls = _classify_rpc_error(msg) or TransactionRejected
        err = cls(
            f"node at {self.url} refused tx {ptx.tx_hash}: {msg}",
            agent=ptx.agent,
            contract=ptx.contract,
            function=ptx.function,
        )
        err.chain, err.url = self.name, self.url  # named by the CLI's one-line error
        return err

    def _known(self, tx_hash: str) -> bool:
        return self._rpc("eth_getTransactionByHash", [tx_hash]) is not None

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
                answers = self._batch(calls, RPC_SUBMIT_MAX_CALLS)
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
        answers = self._batch([("eth_getTransactionReceipt", [h]) for h in hashes])
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
            out[id(p)] = self._result(p, r)
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
                    self._rpc("anvil_dropTransaction", [p.tx_hash])
                res = TxResult(
                    chain=self.name,
                    tx_hash=p.tx_hash,
                    sender=p.sender,
                    agent=p.agent,
                    contract=p.contract,
                    function=p.function,
                    nonce=p.nonce,
                    gas_limit=p.gas_limit,
                    block_number=-1,
                    block_hash="",
                    gas_used=0,
                    status=0,
                )
                res.error = self._unmined_error(p)
                results.append(res)
                continue
            results.append(self._result(p, r))
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

    def _unmined_error(self, p: PendingTx) -> TransactionRejected:
        """Why a dev node left a transaction out of its block: the sender could not pay for it
        (anvil accepts a transaction its sender can pay now, then skips it in a block where the
        sender's earlier transactions spent the balance) or a nonce gap."""
        label = dict(agent=p.agent, contract=p.contract, function=p.function)
        fields = rlp.decode(bytes(p.raw)[1:])
        max_fee, value = int.from_bytes(fields[3], "big"), int.from_bytes(fields[6], "big")
        cost = value + p.gas_limit * max_fee
        with contextlib.suppress(RpcError):
            if self.nonce(p.sender, "latest") == p.nonce:
                have = self.balance(p.sender, "latest")
                if have < cost:
                    return InsufficientFundsError(
                        f"tx {p.tx_hash} (nonce {p.nonce}) was not mined: its sender holds {have} "
                        f"wei, the transaction may cost {cost}; dropped",
                        **label,
                    )
        return NonceError(
            f"tx {p.tx_hash} with nonce {p.nonce} was not mined (nonce gap); dropped", **label
        )

    def _result(self, p: PendingTx, r: dict[str, Any]) -> TxResult:
        logs = tuple(
            Log(
                address=to_checksum_address(lg["address"]),
                topics=tuple(bytes.fromhex(t[2:]) for t in lg["topics"]),
                data=bytes.fromhex(lg["data"][2:]),
                log_index=int(lg["logIndex"], 16),
            )
            for lg in r.get("logs", [])
        )
        res = TxResult(
            chain=self.name,
            tx_hash=p.tx_hash,
            sender=p.sender,
            agent=p.agent,
            contract=p.contract,
            function=p.function,
            nonce=p.nonce,
            gas_limit=p.gas_limit,
            block_number=int(r["blockNumber"], 16),
            block_hash=r["blockHash"],
            gas_used=int(r["gasUsed"], 16),
            status=int(r.get("status", "0x1"), 16),
            logs=logs,
            contract_address=(
                to_checksum_address(r["contractAddress"]) if r.get("contractAddress") else None
            ),
        )
        if res.status == 0:
            oog, reason = self._failure_reason(p, res)
            res.error = _failure(self.name, p, out_of_gas=oog, reason=reason)
        return res

    def _failure_reason(self, p: PendingTx, res: TxResult) -> tuple[bool, str]:
        """(used_all_gas, reason) of a mined failed tx from its receipt and the node's trace: a
        tx that used its whole gas limit ran out of gas or hit an invalid opcode (never an empty
        revert); else the revert reason from the trace, or from replaying it with eth_call."""
        cause = ""
        with contextlib.suppress(RpcError, ChainConnectionError, AttributeError):
            tr = self._rpc("debug_traceTransaction", [p.tx_hash, {"tracer": "callTracer"}])
            cause = str(tr.get("error", ""))
            if res.gas_used < p.gas_limit and "revert" in cause.lower():
                out = tr.get("output") or "0x"
                return False, decode_revert_reason(bytes.fromhex(out[2:]))
        if res.gas_used >= p.gas_limit:
            low = cause.lower()
            if "opcode" in low or "notactivated" in low or "invalid" in low:
                cause = f"invalid opcode ({cause}): the node's fork lacks an opcode"
            elif "gas" in low:
                cause = "out of gas"
            return True, cause
        tx = {"from": p.sender, "data": "0x", "gas": hex(p.gas_limit)}
        try:
            raw_tx = self._rpc("eth_getTransactionByHash", [p.tx_hash])
            tx.update(to=raw_tx.get("to"), data=raw_tx.get("input", "0x"), value=raw_tx["value"])
            self._rpc("eth_call", [tx, hex(res.block_number - 1)])
        except RpcError as exc:
            e = exc.error if isinstance(exc.error, dict) else {}
            data = e.get("data")
            if isinstance(data, dict):
                data = data.get("data")
            if isinstance(data, str) and data.startswith("0x"):
                return False, decode_revert_reason(bytes.fromhex(data[2:]))
            return False, str(e.get("message", exc.error))
        return False, ""

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
            out = self._rpc("eth_call", [tx, self._tag(block)])
        except RpcError as exc:
            e = exc.error if isinstance(exc.error, dict) else {}
            data_hex = e.get("data")
            if isinstance(data_hex, dict):
                data_hex = data_hex.get("data")
            if isinstance(data_hex, str) and data_hex.startswith("0x"):
                raise CallReverted(decode_revert_reason(bytes.fromhex(data_hex[2:]))) from exc
            raise CallReverted(str(e.get("message", exc.error))) from exc
        return bytes.fromhex(out[2:])

    def nonce(self, address: str, block: int | str = "pending") -> int:
        return int(self._rpc("eth_getTransactionCount", [address, self._tag(block)]), 16)

    def balance(self, address: str, block: int | str = "latest") -> int:
        return int(self._rpc("eth_getBalance", [address, self._tag(block)]), 16)

    def block_number(self) -> int:
        """Latest block (during a resume's replay: the block the interrupted run had reached)."""
        if self.replaying:
            return self.replay.pin
        return self.head()

    def head(self) -> int:
        """The node's latest block number, replay or not."""
        return int(self._rpc("eth_blockNumber", []), 16)

    def get_block(self, number: int | str = "latest") -> dict[str, Any]:
        b = self._rpc("eth_getBlockByNumber", [self._tag(number), False])
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
            b = self._rpc("eth_getBlockByNumber", ["latest", False])
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


# --------------------------------------------------------------------------------------------
# Factory
# --------------------------------------------------------------------------------------------


EMBEDDED_ENGINES = ("pyevm", "revm")
"""In-process engines: py-evm through eth-tester (EmbeddedChain), revm (RevmChain)."""
DEFAULT_EMBEDDED_ENGINE = "revm"
"""The engine `--chain embedded` (the default) runs on."""
IN_PROCESS_SPECS = ("embedded", *EMBEDDED_ENGINES)


def make_chain(spec: str, name: str, chain_id: int) -> ChainBackend:
    """'revm' -> RevmChain, 'pyevm' -> EmbeddedChain, 'embedded' -> the default engine of the
    two (DEFAULT_EMBEDDED_ENGINE); an http(s) URL -> RpcChain checked for `chain_id`."""
    engine = DEFAULT_EMBEDDED_ENGINE if spec == "embedded" else spec
    if engine == "pyevm":
        return EmbeddedChain(chain_id, name)
    if engine == "revm":
        from gridledger.chain.revm import RevmChain  # imports this module

        return RevmChain(chain_id, name)
    if spec.startswith(("http://", "https://")):
        return RpcChain(spec, name, expected_chain_id=chain_id)
    raise ValueError(
        f"chain spec must be one of {IN_PROCESS_SPECS} or an http(s):// URL, got {spec!r}"
    )


def iter_results(ptxs: Sequence[PendingTx]) -> Iterator[TxResult]:
    """Results of mined pending transactions (raises if one is not mined yet)."""
    for p in ptxs:
        if p.result is None:
            raise ChainError(f"transaction {p.tx_hash} on {p.chain} is not mined yet")
        yield p.result


def parse_chain_spec(spec: str) -> dict[str, str]:
    """The `--chain` value -> {'letb': spec, 'retb': spec}.

    Accepted: 'embedded', 'revm' or 'pyevm' (two in-process chains; 'embedded' is the default
    engine, DEFAULT_EMBEDDED_ENGINE); 'URL_LETB,URL_RETB' (what `gridledger node`
    prints, e.g. 'http://127.0.0.1:8545,http://127.0.0.1:8546'); 'letb=URL,retb=URL'.
    """
    spec = spec.strip()
    if spec in IN_PROCESS_SPECS:
        return dict.fromkeys(CHAIN_NAMES, spec)
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if len(parts) != len(CHAIN_NAMES):
        raise ValueError(
            f"--chain must be 'embedded', 'revm', 'pyevm' or two URLs 'URL_LETB,URL_RETB' (one "
            f"node per chain, "
            f"e.g. from `gridledger node`), got {spec!r}"
        )
    if all("=" in p for p in parts):
        named = dict(p.split("=", 1) for p in parts)
        if set(named) != set(CHAIN_NAMES):
            raise ValueError(f"--chain names must be {CHAIN_NAMES}, got {sorted(named)}")
        out = {k: named[k].strip() for k in CHAIN_NAMES}
    else:
        out = dict(zip(CHAIN_NAMES, parts, strict=True))
    for k, url in out.items():
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"--chain: {k} URL must start with http:// or https://, got {url!r}")
    if out["letb"] == out["retb"]:
        raise ValueError(f"--chain: LETB and RETB need two different nodes, got {url!r} twice")
    return out


def make_chains(
    spec: str = "embedded", chain_ids: dict[str, int] | None = None
) -> dict[str, ChainBackend]:
    """Both ledgers from a `--chain` value: {'letb': ChainBackend, 'retb': ChainBackend}.

    RPC nodes must report the expected chain ids (default DEFAULT_CHAIN_IDS).
    """
    ids = dict(DEFAULT_CHAIN_IDS if chain_ids is None else chain_ids)
    if ids.get("letb") == ids.get("retb"):
        raise ValueError(f"chain ids of LETB and RETB must differ, got {ids}")
    return {k: make_chain(s, k, ids[k]) for k, s in parse_chain_spec(spec).items()}
