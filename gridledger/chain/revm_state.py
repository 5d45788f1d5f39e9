"""State of the revm chain: pyrevm's EVM with a journal that is empty between operations.

pyrevm 0.3.7 never finalises revm's journal between calls, so the warm/cold sets (EIP-2929)
and the "original" storage values (EIP-2200) would leak from one transaction into the next and
gas would come out too low. `RevmState` therefore runs every operation inside a journal
checkpoint: a transaction's changes are read from the journal (`changes`), the checkpoint is
reverted and the changes are written to the database underneath (`write`), so each
transaction starts cold, as on a node. Reads run in a checkpoint too and leave nothing behind.

Every block keeps the values its transactions replaced (undo) and wrote (redo): reads at a past
block put the older values into the journal (`rewind`), and `switch` moves the database from
one branch of blocks to another (the revm chain's snapshot revert). Used by
gridledger/chain/revm.py.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyrevm

__all__ = ["RevmBlock", "RevmState"]

_ACCOUNT = ": Account { info: "  # in pyrevm's journal_str, after each account's address
_SLOT = re.compile(r"(\d+): StorageSlot \{ previous_or_original_value: (\d+), present_value: (\d+)")
Slots = dict[tuple[str, int], int]


@dataclass
class RevmBlock:
    """A block of the revm chain and the state changes of its transactions."""

    number: int
    hash: bytes
    parent_hash: bytes
    timestamp: int
    base_fee: int
    gas_limit: int
    gas_used: int = 0
    tx_count: int = 0
    undo_accounts: dict[str, Any] = field(default_factory=dict)
    """Account infos before this block changed them (None: the account did not exist)."""
    undo_slots: Slots = field(default_factory=dict)
    redo_accounts: dict[str, Any] = field(default_factory=dict)
    """Account infos this block left."""
    redo_slots: Slots = field(default_factory=dict)
    mined: list[Any] = field(default_factory=list)
    """The chain's records of this block's transactions (RevmChain's MinedTx)."""


class RevmState:
    """A pyrevm EVM (spec `spec_id`) whose journal holds nothing between operations, plus
    the latest info of every account written (`info`, lower-case hex addresses)."""

    def __init__(self, chain_id: int, gas_limit: int, spec_id: str) -> None:
        env = pyrevm.Env(cfg=pyrevm.CfgEnv(chain_id=chain_id))
        self.evm = pyrevm.EVM(env=env, gas_limit=gas_limit, spec_id=spec_id)
        self.info: dict[str, Any] = {}

    def checkpointed(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` inside a journal checkpoint and revert it."""
        cp = self.evm.snapshot()
        try:
            return fn()
        finally:
            self.evm.revert(cp)

    def changes(self) -> tuple[dict[str, Any], list[tuple[str, int, int, int]]]:
        """Accounts and storage slots in the journal now: {addr: info} and [(addr, slot, old,
        new)] for the slots whose value changed."""
        state = self.evm.journal_str.split(", transient_storage: ", 1)[0]
        parts = state.split(_ACCOUNT)  # str methods: a regex over the code bytes costs 15x
        infos: dict[str, Any] = {}
        slots = []
        for before, part in itertools.pairwise(parts):
            addr = before[-42:]
            infos[addr] = self.evm.basic(addr)
            start = part.find(", storage: {") + 12
            for k, old, new in _SLOT.findall(part, start, part.find("}, status: ", start)):
                if old != new:
                    slots.append((addr, int(k), int(old), int(new)))
        return infos, slots

    def _store(self, addr: str, slot: int, value: int) -> None:
        self.evm.insert_account_storage(addr, slot, value)  # cold account: into the database

    def write(
        self, infos: dict[str, Any], slots: list[tuple[str, int, int, int]], blk: RevmBlock
    ) -> None:
        """Write changes to the database (journal empty), recording them in `blk`."""
        for addr, info in infos.items():
            old = self.info.get(addr)
            if old is not None and (old.balance, old.nonce, old.code_hash) == (
                info.balance, info.nonce, info.code_hash,
            ):  # fmt: skip
                continue
            blk.undo_accounts.setdefault(addr, old)
            blk.redo_accounts[addr] = info
            self.info[addr] = info
            self.evm.insert_account_info(addr, info)
        for addr, slot, old_value, new_value in slots:
            blk.undo_slots.setdefault((addr, slot), old_value)
            blk.redo_slots[(addr, slot)] = new_value
            self.checkpointed(lambda a=addr, s=slot, v=new_value: self._store(a, s, v))

    def _apply(self, accounts: dict[str, Any], slots: Slots) -> None:
        for addr, info in accounts.items():
            self.evm.insert_account_info(addr, info or pyrevm.AccountInfo())
            if info is None:
                self.info.pop(addr, None)
            else:
                self.info[addr] = info
        for (addr, slot), value in slots.items():
            self.checkpointed(lambda a=addr, s=slot, v=value: self._store(a, s, v))

    def switch(self, undo: Iterable[RevmBlock], redo: Iterable[RevmBlock]) -> None:
        """Undo blocks (newest first), then redo blocks (oldest first), in the database."""
        for blk in undo:
            self._apply(blk.undo_accounts, blk.undo_slots)
        for blk in redo:
            self._apply(blk.redo_accounts, blk.redo_slots)

    def info_at(self, addr: str, undo: Iterable[RevmBlock]) -> Any:
        """Info of `addr` (lower-case) before the `undo` blocks (newest first); None: none."""
        found = self.info.get(addr)
        for blk in undo:
            if addr in blk.undo_accounts:
                found = blk.undo_accounts[addr]
        return found

    def rewind(self, undo: Iterable[RevmBlock]) -> None:
        """Inside a checkpoint: put the state before the `undo` blocks into the journal."""
        accounts: dict[str, Any] = {}
        slots: Slots = {}
        for blk in undo:
            accounts.update(blk.undo_accounts)
            slots.update(blk.undo_slots)
        for addr, info in accounts.items():
            self.evm.basic(addr)  # load into the journal, so the insert below stays there
            self.evm.insert_account_info(addr, info or pyrevm.AccountInfo())
        for (addr, slot), value in slots.items():
            self.evm.basic(addr)
            self.evm.insert_account_storage(addr, slot, value)
