"""Transactions: requests, pending and mined transactions, signing, and batch sending.

Every transaction is built here: local nonce per account and chain, explicit gas limit and
EIP-1559 fee caps, signed with libsecp256k1 through coincurve (byte-identical to eth-account's
signing, at a third of its cost). `send_many` submits a batch to every chain involved, then mines
each chain once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import coincurve
import rlp
from eth_utils import to_canonical_address

from gridledger.chain.codec import keccak, rlp_list
from gridledger.chain.errors import (
    ChainError,
    NonceError,
    OutOfGasError,
    TransactionFailed,
    TransactionRejected,
    TransactionReverted,
)

if TYPE_CHECKING:  # eth_account costs seconds to import; the CLI imports this module early
    from eth_account.signers.local import LocalAccount

    from gridledger.chain.backend import ChainBackend

DEFAULT_GAS_LIMIT = 1_000_000
"""Gas limit of a transaction whose request names none (dev chains have room for many)."""
DEFAULT_PRIORITY_FEE_WEI = 1_000_000_000


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

    def to_result(
        self,
        chain: str,
        *,
        block_number: int,
        block_hash: str,
        gas_used: int,
        status: int,
        logs: tuple[Log, ...] = (),
        contract_address: str | None = None,
        error: ChainError | None = None,
    ) -> TxResult:
        """This transaction's TxResult on `chain` from its receipt fields (every backend)."""
        return TxResult(
            chain=chain,
            tx_hash=self.tx_hash,
            sender=self.sender,
            agent=self.agent,
            contract=self.contract,
            function=self.function,
            nonce=self.nonce,
            gas_limit=self.gas_limit,
            block_number=block_number,
            block_hash=block_hash,
            gas_used=gas_used,
            status=status,
            logs=logs,
            contract_address=contract_address,
            error=error,
        )


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


def _account_from_key(key: bytes | str) -> LocalAccount:
    from eth_account import Account

    return Account.from_key(key)


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
            chains[key].submit_many(ptxs)
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


def iter_results(ptxs: Sequence[PendingTx]) -> Iterator[TxResult]:
    """Results of mined pending transactions (raises if one is not mined yet)."""
    for p in ptxs:
        if p.result is None:
            raise ChainError(f"transaction {p.tx_hash} on {p.chain} is not mined yet")
        yield p.result
