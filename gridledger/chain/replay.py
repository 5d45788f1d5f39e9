"""Resume without double-spending: serve the transactions a chain already holds.

A resumed run re-executes the interrupted one from its start (same scenario and seed: same keys,
same decisions, same nonces). `ReplayLog(chain, start_block)` indexes, once, every transaction
the chain mined after the block the run started on, by (sender, nonce). While the replay is
active, every transaction the model is about to send is first looked up by its (sender, nonce):

* found, same `to`, `value` and `input` data -> it is not sent again; the chain serves the mined
  transaction's receipt (its hash, block and logs) instead. Its hash may differ from the
  re-signed one: the fee caps follow the base fee, so only the call itself is compared;
* found with another call -> `ResumeConflictError` (the chain used that nonce for something
  else: another run, another scenario, changed code);
* not found -> the replay ends on that chain (`finish`): every indexed transaction must have
  been reproduced by then, else `ResumeConflictError`; from then on transactions are sent
  normally. A node restarted from an older state dump lacks some of the run's blocks: their
  transactions are not found and are sent again with the same nonces (nothing is spent twice:
  the chain never saw them).

While active, reads of 'latest'/'pending' (`eth_call`, nonces, balances, block number) are
pinned to `pin`, the block of the last served transaction: the state the interrupted run saw at
that point, not later state. That needs the node's historical state (anvil keeps it across a
restart only with `--preserve-historical-states`, which `start_anvil(state_file=...)` and
`gridledger node --state-dir` set); without it the pinned reads fail with a named error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import rlp
from eth_utils import to_checksum_address

from gridledger.chain.errors import ResumeConflictError
from gridledger.chain.tx import PendingTx

if TYPE_CHECKING:
    from gridledger.chain.rpc import RpcChain

__all__ = ["HistoryUnavailableError", "MinedTx", "ReplayLog", "check_history", "raw_call"]

SCAN_BATCH = 50
"""Blocks fetched per JSON-RPC batch while indexing."""


@dataclass(frozen=True)
class MinedTx:
    """A transaction the chain holds: where it is and what it calls."""

    tx_hash: str
    block: int
    sender: str
    nonce: int
    to: str | None
    value: int
    data: bytes


def raw_call(raw: bytes) -> tuple[str | None, int, bytes]:
    """(to, value, data) of a signed EIP-1559 transaction (to None: contract creation)."""
    raw = bytes(raw)
    if not raw or raw[0] != 2:
        raise ValueError("replay compares EIP-1559 (type 2) transactions only")
    fields = rlp.decode(raw[1:])
    to = bytes(fields[5])
    return (
        to_checksum_address(to) if to else None,
        int.from_bytes(fields[6], "big"),
        bytes(fields[7]),
    )


class ReplayLog:
    """The transactions `chain` mined after `start_block`, served by (sender, nonce) on resume."""

    def __init__(self, chain: RpcChain, start_block: int) -> None:
        self.chain = chain
        self.start_block = int(start_block)
        self.head = chain.head()
        self.pin = self.start_block
        self.active = True
        self.served = 0
        self._txs: dict[tuple[str, int], MinedTx] = {}
        for lo in range(self.start_block + 1, self.head + 1, SCAN_BATCH):
            numbers = range(lo, min(lo + SCAN_BATCH, self.head + 1))
            answers = chain.request_batch(
                [("eth_getBlockByNumber", [hex(n), True]) for n in numbers]
            )
            for n, ans in zip(numbers, answers, strict=True):
                block = ans.get("result")
                if block is None:
                    raise ResumeConflictError(
                        f"chain {chain.name!r} ({chain.url}) reports head {self.head} but has no "
                        f"block {n}: {ans.get('error', 'missing')}"
                    )
                for tx in block["transactions"]:
                    mined = MinedTx(
                        tx_hash=tx["hash"],
                        block=n,
                        sender=to_checksum_address(tx["from"]),
                        nonce=int(tx["nonce"], 16),
                        to=to_checksum_address(tx["to"]) if tx.get("to") else None,
                        value=int(tx.get("value", "0x0"), 16),
                        data=bytes.fromhex(tx.get("input", "0x")[2:]),
                    )
                    self._txs[(mined.sender, mined.nonce)] = mined

    @property
    def mined(self) -> int:
        """Transactions indexed at the start (served + still to serve)."""
        return self.served + len(self._txs)

    def take(self, ptx: PendingTx) -> bool:
        """True (and `ptx` marked replayed, with the mined hash) if the chain holds the same
        call at ptx's (sender, nonce); False if it holds nothing there; raises on a conflict."""
        mined = self._txs.get((to_checksum_address(ptx.sender), ptx.nonce))
        if mined is None:
            return False
        to, value, data = raw_call(ptx.raw)
        if (to, value, data) != (mined.to, mined.value, mined.data):
            what = f"{ptx.contract}.{ptx.function}".strip(".") or "a call"
            raise ResumeConflictError(
                f"chain {self.chain.name!r} ({self.chain.url}): nonce {ptx.nonce} of "
                f"{ptx.agent} ({ptx.sender}) is already used by tx {mined.tx_hash} in block "
                f"{mined.block}, which calls {mined.to or 'contract creation'} with other data "
                f"than the resumed run's {what} to {to or 'contract creation'}: the chain holds "
                "another run's transaction (different scenario, seed or code?)"
            )
        del self._txs[(mined.sender, mined.nonce)]
        ptx.tx_hash = mined.tx_hash
        ptx.replayed = True
        self.pin = max(self.pin, mined.block)
        self.served += 1
        return True

    def finish(self, first_new: PendingTx | None) -> None:
        """The model sends something the chain does not hold: from here on it runs live.

        Every indexed transaction must have been served by now; a leftover one means the
        re-executed run diverged from the interrupted one (or someone else used the chain)."""
        if self._txs:
            left = sorted(self._txs.values(), key=lambda m: (m.block, m.sender, m.nonce))
            m = left[0]
            nxt = (
                f"; the resumed run instead sends nonce {first_new.nonce} of {first_new.agent} "
                f"({first_new.contract}.{first_new.function})"
                if first_new is not None
                else ""
            )
            raise ResumeConflictError(
                f"chain {self.chain.name!r} ({self.chain.url}) holds {len(left)} transaction(s) "
                f"after block {self.start_block} that the resumed run did not reproduce, first "
                f"{m.tx_hash} (nonce {m.nonce} of {m.sender}, block {m.block}){nxt}: the "
                "re-execution diverged from the interrupted run (different scenario, seed or "
                "code?) or another client used the chain"
            )
        self.active = False


class HistoryUnavailableError(ResumeConflictError):
    """The node cannot serve the state of an earlier block, which a resume reads while it
    replays the mined hours (anvil: restart it with `--preserve-historical-states`)."""


def check_history(chain: RpcChain, block: int) -> None:
    """Raise HistoryUnavailableError if `chain` cannot answer a state read at `block`."""
    from gridledger.chain.errors import RpcError

    try:
        chain.request("eth_getBalance", ["0x" + "00" * 20, hex(block)])
    except RpcError as exc:
        raise HistoryUnavailableError(
            f"node of chain {chain.name!r} at {chain.url} cannot serve the state at block "
            f"{block} ({exc.error}); resuming re-reads the state the interrupted run saw there: "
            "restart anvil from its state file with --preserve-historical-states "
            "(`gridledger node --state-dir DIR` and start_anvil(state_file=...) set it)"
        ) from exc
