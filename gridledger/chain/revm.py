"""An in-process chain on revm (the Rust EVM inside anvil and reth, through pyrevm).

`RevmChain(chain_id, name)` behaves as a node for the model: it accepts only signed raw
transactions (EIP-1559 and EIP-155 legacy, gridledger/chain/rawtx.py), recovers the sender from
the signature and refuses -- before anything executes, with the exceptions the other backends
raise -- a foreign chain id (ChainIdMismatchError), a nonce that is not the sender's next
(NonceError), a sender who cannot pay gas limit x max fee + value (InsufficientFundsError), a
gas limit below the intrinsic gas, a bad signature (InvalidSignatureError). It charges fees as
EIP-1559 does (base fee burnt, priority fee to the coinbase), executes the transaction in the
pending block at once (as EmbeddedChain does), and `mine()` seals one block: number, timestamp,
parent hash and a hash over the header and the transaction and receipt lists, so blocks are
hash-linked; the base fee follows EIP-1559 from the same genesis as eth-tester's.

Fork rules: the fork every backend runs and the contracts are compiled for,
`gridledger.contracts.EVM_VERSION` (Shanghai; README "Nodes and forks"). pyrevm 0.3.7 (revm 8)
knows rules up to Cancun: for a Prague target it would run spec "CANCUN" -- Prague adds no
opcode the contracts use -- and apply Prague's one transaction-level gas change itself (EIP-7623
calldata floor, `PRAGUE_CALLDATA_FLOOR`). Gas per transaction is identical to py-evm's (tested).

Each transaction starts from cold state, as on a node (EIP-2929 warm sets, EIP-2200 original
values): pyrevm keeps one journal across calls, which gridledger/chain/revm_state.py empties
around every operation.

Not computed: the state trie root, the receipts trie and logs bloom. revm keeps state in a flat
in-memory map; building Merkle-Patricia tries is most of what block sealing costs py-evm, and
nothing in gridledger reads them (checkpoints compare block hashes, which do cover every
transaction and receipt). History is kept in memory: every block records the values it
replaced and wrote, so `call`, `nonce`, `balance` and `code` work at any past block, and
`revert_to` moves the chain to any block it mined (a dev node's snapshot revert).
Inside calls, BASEFEE and GASPRICE read 0 (pyrevm sets both to 0 for its calls).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyrevm
import rlp
from eth_utils import to_checksum_address

from gridledger.chain.backend import CALL_GAS, DEV_BLOCK_GAS_LIMIT, ChainBackend
from gridledger.chain.codec import checksum_address, keccak
from gridledger.chain.errors import (
    CallReverted,
    ChainIdMismatchError,
    InsufficientFundsError,
    NonceError,
    TransactionRejected,
    decode_revert_reason,
)
from gridledger.chain.rawtx import (
    DecodedTx,
    calldata_floor_gas,
    decode_raw_tx,
    intrinsic_gas,
)
from gridledger.chain.revm_state import RevmBlock, RevmState
from gridledger.chain.tx import Log, PendingTx, TxResult, _account_from_key, _failure
from gridledger.contracts import EVM_VERSION

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

__all__ = ["REVM_SPEC", "RevmChain"]

REVM_SPECS = {"shanghai": "SHANGHAI", "cancun": "CANCUN", "prague": "CANCUN"}
"""revm spec per EVM_VERSION (pyrevm 0.3.7 has no Prague spec: Cancun plus the calldata floor)."""
REVM_SPEC = REVM_SPECS[EVM_VERSION]
PRAGUE_CALLDATA_FLOOR = EVM_VERSION == "prague"
"""Whether EIP-7623's calldata floor applies (Prague and later)."""
GENESIS_BASE_FEE_WEI = 1_000_000_000  # eth-tester's genesis, so fees match EmbeddedChain's
FAUCET_KEY = (1).to_bytes(32, "big")  # eth-tester's first dev key: the same faucet address
FAUCET_WEI = 10**24
COINBASE = "0x" + "00" * 20  # eth-tester's coinbase: warm (EIP-3651) on both, same gas
ZERO_HASH = b"\x00" * 32
EMPTY_CODE_HASH = keccak(b"")
ELASTICITY = 2
BASE_FEE_CHANGE_DENOMINATOR = 8

_REVERT_OUTPUT = re.compile(r"output: 0x([0-9a-fA-F]*)")


def next_base_fee(base_fee: int, gas_used: int, gas_limit: int) -> int:
    """EIP-1559 base fee of the block after one with `base_fee`, `gas_used`, `gas_limit`."""
    target = gas_limit // ELASTICITY
    if gas_used == target:
        return base_fee
    if gas_used > target:
        delta = base_fee * (gas_used - target) // target // BASE_FEE_CHANGE_DENOMINATOR
        return base_fee + max(delta, 1)
    return max(
        base_fee - base_fee * (target - gas_used) // target // BASE_FEE_CHANGE_DENOMINATOR, 0
    )


@dataclass
class _Outcome:
    tx: DecodedTx
    price: int
    gas_used: int
    success: bool
    out_of_gas: bool
    reason: str
    logs: tuple[tuple[str, tuple[bytes, ...], bytes], ...]
    created: str | None


@dataclass(frozen=True)
class MinedTx:
    """A mined transaction: its result, decoded fields, index in its block, price per gas."""

    result: TxResult
    tx: DecodedTx
    index: int
    price: int


def _floor_gas(tx: DecodedTx) -> int:
    """The least gas `tx` is charged under the fork's rules (EIP-7623 from Prague, else 0)."""
    return calldata_floor_gas(tx) if PRAGUE_CALLDATA_FLOOR else 0


class RevmChain(ChainBackend):
    """An in-process revm chain with node checks, EIP-1559 fees and hash-linked blocks."""

    kind = "revm"

    def __init__(
        self,
        chain_id: int = 1337,
        name: str = "revm",
        *,
        block_gas_limit: int = DEV_BLOCK_GAS_LIMIT,
    ) -> None:
        super().__init__(name, chain_id)
        self.block_gas_limit = int(block_gas_limit)
        self._state = RevmState(self.chain_id, self.block_gas_limit, REVM_SPEC)
        self._faucet = _account_from_key(FAUCET_KEY)
        self._pending_block = RevmBlock(0, b"", ZERO_HASH, 0, 0, self.block_gas_limit)
        faucet = {self._faucet.address.lower(): pyrevm.AccountInfo(balance=FAUCET_WEI)}
        self._state.write(faucet, [], self._pending_block)
        self._blocks: list[RevmBlock] = []
        self._by_hash: dict[str, RevmBlock] = {}
        self.mined: dict[str, MinedTx] = {}
        """Every transaction on the canonical chain by hash (receipts for `w3`)."""
        self._seal(GENESIS_BASE_FEE_WEI, keccak(b""))
        self._w3: Any = None

    @property
    def faucet(self) -> LocalAccount:
        return self._faucet

    @property
    def w3(self) -> Any:
        """A web3.Web3 over this chain (reads, receipts; gridledger/chain/revm_web3.py)."""
        if self._w3 is None:
            from gridledger.chain.revm_web3 import revm_web3

            self._w3 = revm_web3(self)
        return self._w3

    def revert_to(self, block: int | str) -> None:
        """Make `block` the head (a number on the canonical chain, or the hash of any block
        this chain mined, also one a revert dropped): a dev node's snapshot revert.
        Pending transactions must be mined first."""
        if self._pending:
            raise ValueError(f"revert_to: chain {self.name!r} has pending transactions")
        if isinstance(block, str):
            if block.removeprefix("0x") and block.removeprefix("0x") in self._by_hash:
                target = self._by_hash[block.removeprefix("0x")]
            else:
                raise ValueError(f"revert_to: no block {block!r} on chain {self.name!r}")
        else:
            self._undos(block)  # a mined number, or ValueError
            target = self._blocks[int(block)]
        branch = [target]  # from the target back to the canonical chain
        while not self._canonical(branch[-1]):
            branch.append(self._by_hash[branch[-1].parent_hash.hex()])
        fork = branch.pop()
        undo = [self._pending_block, *reversed(self._blocks[fork.number + 1 :])]
        self._state.switch(undo, reversed(branch))
        for blk in undo:
            for m in blk.mined:
                self.mined.pop(m.result.tx_hash, None)
        for blk in branch:
            self.mined.update((m.result.tx_hash, m) for m in blk.mined)
        self._blocks[fork.number + 1 :] = reversed(branch)
        self._open_after(self._blocks[-1])

    # ---- state ----
    def _undos(self, block: int | str) -> list[RevmBlock]:
        """Blocks whose changes to undo to read at `block`, newest first."""
        if block == "pending":
            return []
        n = self.block_number() if block == "latest" else int(block)
        if not 0 <= n <= self.block_number():
            raise ValueError(f"block {block!r} not mined on chain {self.name!r}")
        return [self._pending_block, *reversed(self._blocks[n + 1 :])]

    def _canonical(self, blk: RevmBlock) -> bool:
        return blk.number < len(self._blocks) and self._blocks[blk.number] is blk

    def _info_at(self, address: str, block: int | str) -> Any:
        return self._state.info_at(address.lower(), self._undos(block))

    # ---- transactions ----
    def _refuse(self, cls: type[TransactionRejected], ptx: PendingTx, msg: str) -> None:
        raise cls(msg, agent=ptx.agent, contract=ptx.contract, function=ptx.function)

    def _check_chain_id(self, ptx: PendingTx) -> None:
        """Decode (named errors for malformed bytes and bad signatures), then check the chain
        id as every backend does; the decoded transaction waits on `ptx._local`."""
        tx = decode_raw_tx(ptx.raw)
        if tx.chain_id != self.chain_id:
            self._refuse(
                ChainIdMismatchError,
                ptx,
                f"transaction {ptx.tx_hash} was signed for chain id {tx.chain_id}, but chain "
                f"{self.name!r} has chain id {self.chain_id}",
            )
        ptx._local = tx

    def _submit(self, ptx: PendingTx) -> None:
        if not isinstance(ptx._local, DecodedTx):  # called directly: check again
            self._check_chain_id(ptx)
        tx: DecodedTx = ptx._local
        ptx._local = None
        blk = self._pending_block
        info = self._state.info.get(tx.sender)
        nonce, balance = (info.nonce, info.balance) if info else (0, 0)
        if tx.nonce != nonce:
            self._refuse(NonceError, ptx, f"nonce {tx.nonce} of {tx.sender}, expected {nonce}")
        if info is not None and info.code_hash != EMPTY_CODE_HASH:
            self._refuse(TransactionRejected, ptx, f"sender {tx.sender} is a contract (EIP-3607)")
        if tx.max_fee_per_gas < blk.base_fee:
            msg = f"max fee per gas {tx.max_fee_per_gas} below the base fee {blk.base_fee}"
            self._refuse(TransactionRejected, ptx, msg)
        need = max(intrinsic_gas(tx), _floor_gas(tx))
        if tx.gas < need:
            self._refuse(TransactionRejected, ptx, f"gas limit {tx.gas} below intrinsic {need}")
        if blk.gas_used + tx.gas > blk.gas_limit:
            msg = f"gas limit {tx.gas} exceeds the block's remaining {blk.gas_limit - blk.gas_used}"
            self._refuse(TransactionRejected, ptx, msg)
        cost = tx.gas * tx.max_fee_per_gas + tx.value
        if balance < cost:
            msg = f"{tx.sender} has {balance} wei, needs gas x max fee + value = {cost}"
            self._refuse(InsufficientFundsError, ptx, msg)
        ptx._local = self._execute(tx, info or pyrevm.AccountInfo(), ptx)
        blk.gas_used += ptx._local.gas_used
        blk.tx_count += 1

    def _execute(self, tx: DecodedTx, info: Any, ptx: PendingTx) -> _Outcome:
        evm, blk = self._state.evm, self._pending_block
        price = tx.effective_gas_price(blk.base_fee)
        create = tx.to is None
        cp = evm.snapshot()
        try:
            evm.basic(tx.sender)  # into the journal: the upfront charge stays in this checkpoint
            evm.insert_account_info(
                tx.sender,
                pyrevm.AccountInfo(
                    balance=info.balance - tx.gas * price, nonce=info.nonce + (not create)
                ),
            )  # revm bumps a creator's nonce itself
            if tx.access_list:
                evm.set_tx_env(pyrevm.TxEnv(access_list=[(a, list(k)) for a, k in tx.access_list]))
            error, created = "", None
            try:
                if create:
                    created = evm.deploy(tx.sender, tx.data, value=tx.value, gas=tx.gas)
                else:
                    evm.message_call(tx.sender, tx.to, tx.data, value=tx.value, gas=tx.gas)
            except RuntimeError as exc:
                error = str(exc)
            finally:
                if tx.access_list:
                    evm.set_tx_env(pyrevm.TxEnv())
            res = evm.result
            if res is None:  # revm's own validation refused it: nothing executed
                self._refuse(TransactionRejected, ptx, f"refused by revm: {error}")
            infos, slots = self._state.changes()
        finally:
            evm.revert(cp)
        gas_used = max(res.gas_used, _floor_gas(tx))
        sender = infos[tx.sender]
        infos[tx.sender] = pyrevm.AccountInfo(
            balance=sender.balance + (tx.gas - gas_used) * price, nonce=sender.nonce
        )
        tip = gas_used * (price - blk.base_fee)
        if tip:
            cb = infos.get(COINBASE) or self._state.info.get(COINBASE) or pyrevm.AccountInfo()
            infos[COINBASE] = pyrevm.AccountInfo(
                balance=cb.balance + tip, nonce=cb.nonce, code_hash=cb.code_hash, code=cb.code
            )
        self._state.write(infos, slots, blk)
        logs = tuple((lg.address, tuple(lg.data[0]), bytes(lg.data[1])) for lg in res.logs or ())
        if res.is_success:
            reason = ""
        elif res.is_halt:
            reason = res.reason
        else:
            m = _REVERT_OUTPUT.search(error)
            reason = decode_revert_reason(bytes.fromhex(m.group(1)) if m else b"")
        return _Outcome(
            tx=tx,
            price=price,
            gas_used=gas_used,
            success=bool(res.is_success),
            out_of_gas=bool(res.is_halt) and res.reason.startswith("OutOfGas"),
            reason=reason,
            logs=logs if res.is_success else (),
            created=to_checksum_address(created) if created and res.is_success else None,
        )

    # ---- blocks ----
    def _seal(self, base_fee: int, receipts_hash: bytes) -> RevmBlock:
        """Seal the pending block (its hash covers the header and `receipts_hash`, a digest
        of the transactions and receipts) and open the next one with the EIP-1559 base fee."""
        blk = self._pending_block
        parent = self._blocks[-1] if self._blocks else None
        blk.number = len(self._blocks)
        blk.parent_hash = parent.hash if parent else ZERO_HASH
        blk.timestamp = max(parent.timestamp + 1 if parent else 0, int(time.time()))
        blk.base_fee = base_fee if parent is None else blk.base_fee
        header = [
            blk.parent_hash, bytes.fromhex(COINBASE[2:]), blk.number, blk.gas_limit,
            blk.gas_used, blk.timestamp, blk.base_fee, receipts_hash,
        ]  # fmt: skip
        blk.hash = keccak(rlp.encode(header))
        self._blocks.append(blk)
        self._by_hash[blk.hash.hex()] = blk
        self._open_after(blk)
        return blk

    def _open_after(self, blk: RevmBlock) -> None:
        """Open the pending block on top of `blk` (EIP-1559 base fee, revm's block env)."""
        fee = next_base_fee(blk.base_fee, blk.gas_used, blk.gas_limit)
        self._pending_block = RevmBlock(0, b"", blk.hash, 0, fee, self.block_gas_limit)
        ts = max(blk.timestamp + 1, int(time.time()))
        self._state.evm.set_block_env(
            pyrevm.BlockEnv(
                number=blk.number + 1,
                coinbase=COINBASE,
                timestamp=ts,
                prevrandao=keccak(blk.hash),
                basefee=fee,
                gas_limit=self.block_gas_limit,
                excess_blob_gas=0,
            )
        )

    def _mine_pending(self, pending: list[PendingTx]) -> list[TxResult]:
        outcomes: list[_Outcome] = [p._local for p in pending]
        parts, cumulative = [], 0  # tx hash, status, cumulative gas, logs: length-prefixed
        for p, out in zip(pending, outcomes, strict=True):
            cumulative += out.gas_used
            parts += [bytes.fromhex(p.tx_hash[2:]), bytes([out.success]), cumulative.to_bytes(8)]
            for address, topics, data in out.logs:
                parts += [bytes.fromhex(address[2:]), bytes([len(topics)]), *topics]
                parts += [len(data).to_bytes(4), data]
        blk = self._seal(0, keccak(b"".join(parts)))
        block_hash = "0x" + blk.hash.hex()
        results, log_index = [], 0
        for p, out in zip(pending, outcomes, strict=True):
            logs = []
            for address, topics, data in out.logs:
                logs.append(Log(checksum_address(address), topics, data, log_index))
                log_index += 1
            res = p.to_result(
                self.name,
                block_number=blk.number,
                block_hash=block_hash,
                gas_used=out.gas_used,
                status=int(out.success),
                logs=tuple(logs),
                contract_address=out.created,
            )
            if not out.success:
                res.error = _failure(self.name, p, out_of_gas=out.out_of_gas, reason=out.reason)
            blk.mined.append(MinedTx(res, out.tx, len(results), out.price))
            self.mined[p.tx_hash] = blk.mined[-1]
            p._local = None
            results.append(res)
        return results

    # ---- reads ----
    def call(
        self,
        to: str,
        data: bytes,
        *,
        sender: str | None = None,
        block: int | str = "latest",
        value: int = 0,
    ) -> bytes:
        frm = sender or COINBASE

        def run() -> bytes:
            self._state.rewind(self._undos(block))
            try:
                return bytes(self._state.evm.message_call(frm, to, bytes(data), value, CALL_GAS))
            except RuntimeError as exc:
                raise self._call_error(exc) from None

        return self._state.checkpointed(run)

    def call_create(self, data: bytes, *, sender: str | None = None, value: int = 0) -> bytes:
        """eth_call of creation code at the latest block: the code it would deploy."""

        def run() -> bytes:
            self._state.rewind(self._undos("latest"))
            try:
                addr = self._state.evm.deploy(sender or COINBASE, bytes(data), value, CALL_GAS)
            except RuntimeError as exc:
                raise self._call_error(exc) from None
            return bytes(self._state.evm.get_code(addr) or b"")

        return self._state.checkpointed(run)

    def _call_error(self, exc: RuntimeError) -> CallReverted:
        res = self._state.evm.result
        if res is not None and res.is_halt:
            return CallReverted(res.reason)
        m = _REVERT_OUTPUT.search(str(exc))
        return CallReverted(decode_revert_reason(bytes.fromhex(m.group(1))) if m else str(exc))

    def nonce(self, address: str, block: int | str = "pending") -> int:
        info = self._info_at(address, block)
        return info.nonce if info is not None else 0

    def balance(self, address: str, block: int | str = "latest") -> int:
        info = self._info_at(address, block)
        return info.balance if info is not None else 0

    def code(self, address: str, block: int | str = "latest") -> bytes:
        """Deployed code of `address` at `block` (b'' for an account without code)."""
        info = self._info_at(address, block)
        return bytes(info.code or b"") if info is not None else b""

    def block_number(self) -> int:
        return len(self._blocks) - 1

    def get_block(self, number: int | str = "latest") -> dict[str, Any]:
        n = self.block_number() if number == "latest" else int(number)
        if not 0 <= n <= self.block_number():
            raise ValueError(f"block {number!r} not mined on chain {self.name!r}")
        b = self._blocks[n]
        return {
            "number": b.number,
            "hash": "0x" + b.hash.hex(),
            "parent_hash": "0x" + b.parent_hash.hex(),
            "gas_used": b.gas_used,
            "gas_limit": b.gas_limit,
            "timestamp": b.timestamp,
            "tx_count": b.tx_count,
        }

    def base_fee(self) -> int:
        return self._pending_block.base_fee
