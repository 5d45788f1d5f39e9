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

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from eth_utils import to_checksum_address

from gridledger.chain.errors import ChainIdMismatchError, InsufficientFundsError, NonceError
from gridledger.chain.tx import (
    DEFAULT_PRIORITY_FEE_WEI,
    PendingTx,
    Signer,
    TxRequest,
    TxResult,
    raw_tx_chain_id,
    send_many,
)

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

DEV_BLOCK_GAS_LIMIT = 1_000_000_000
"""Block gas limit of embedded and test-started anvil chains: a whole market hour fits one block."""
DEFAULT_CHAIN_IDS: dict[str, int] = {"letb": 31401, "retb": 31402}
"""Chain ids of the two ledgers (LETB consortium chain, RETB chain); `gridledger node` uses them."""
CHAIN_NAMES = ("letb", "retb")
CALL_GAS = 2**24
"""Gas limit of every eth_call: EIP-7825's per-transaction cap (Osaka; Hardhat 3's default fork
refuses more), far above any view call's need."""
FUND_TXS_PER_BLOCK = 500
"""Most funding transfers per block: anvil's pool slows down superlinearly with one sender's
queue (5,000 transfers in one block: 7.0 s, in blocks of 500: see docs/scale.md)."""


class ChainBackend(ABC):
    """One chain: submit signed transactions, mine them as a block, read state and receipts."""

    kind: str = ""

    def __init__(self, name: str, chain_id: int) -> None:
        if not 0 < int(chain_id) < 2**64:
            raise ValueError(f"chain_id must be a positive integer below 2**64, got {chain_id}")
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

    def submit_many(self, ptxs: Sequence[PendingTx]) -> None:
        """Submit several transactions in order (RpcChain sends them in batch requests)."""
        for ptx in ptxs:
            self.submit(ptx)

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
