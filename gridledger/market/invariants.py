"""Invariants of the market's token, energy and reputation bookkeeping, as pure checks.

Each `check_*` function takes plain values or the ledger's frames (`Ledger.events("Transfer")`,
`Ledger.trades()`, `Ledger.settlements()`, `Ledger.feedback()`, `Ledger.gas()`...) and returns a
list of `Violation`s (empty = the invariant holds); `raise_violations` turns a non-empty list into
`InvariantError`. Only `read_token_state` touches a chain (one `balances_of` view and one
`totalSupply` call), so the model can run the same checks every hour and the reliability tests
after every step (issue 7). The books the checks compare (`request_book`, `kept_by_rule`,
`credit_totals`, `minted_between`) are read from the ledger's events in
gridledger/market/request_book.py and re-exported here.

Invariants (all exact integers: token base units, Wh):
* supply:      token supply change = incentives minted (Σ IncentiveMinted.incentive), per chain;
* escrow:      each market's token balance = what it keeps by rule (escrow seed + registration
               bonds) + the value Σ e_wh·price of its matched requests not yet settled
               + the buyers' refund credits (LETB credits refunds, pull payment);
* settlement:  per request delivered_wh <= scheduled_wh, paid + refunded = value,
               scheduled = delivered + undelivered (no Wh unaccounted);
* fill cap:    no LETB request has more fills than its contract's `max_fills`;
* balances:    every balance change is explained by Transfer events, and every debit of an account
               is a transaction it signed, a spender it approved, or the registration-bond rule;
               a market pays out only while settling; tokens are minted only with an incentive;
* reputation:  within [0, REP_MAX]; at most one rating per (market, buyer, nonce, seller), and
               only for a settled request;
* energy:      demand = local + renewable + grid per user and hour.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
from eth_utils import to_checksum_address

from gridledger.market.request_book import (
    REQUEST_KEY,
    credit_totals,
    in_blocks,
    kept_by_rule,
    ledger_rows,
    minted_between,
    request_book,
    request_key,
)

if TYPE_CHECKING:
    from gridledger.market.contracts import EnergyToken

__all__ = [
    "REP_MAX",
    "ZERO_ADDRESS",
    "InvariantError",
    "TokenState",
    "Violation",
    "check_balance_changes",
    "check_energy_balance",
    "check_escrow",
    "check_feedback",
    "check_fill_counts",
    "check_reputations",
    "check_settlements",
    "check_supply",
    "credit_totals",
    "kept_by_rule",
    "minted_between",
    "raise_violations",
    "read_token_state",
    "request_book",
]

REP_MAX = 1000
"""Upper bound of a reputation (contracts/README.md: 0..1000 = 100.0 %)."""
ZERO_ADDRESS = "0x" + "00" * 20
PAYOUT_OPERATIONS = frozenset({"settle", "settle_many", "withdraw"})
"""Operations in which a market contract may send tokens (payments to sellers, refunds that do
not fit the credit field, a buyer withdrawing its refund credit)."""
BOND_OPERATIONS = frozenset({"register"})
"""Operations in which a market may pull tokens from an account that did not sign (the bond)."""
MINT_OPERATIONS = frozenset({"feedback"})
"""Operations in which tokens may be minted (RETB incentives)."""


@dataclass(frozen=True)
class Violation:
    """One broken invariant: which one, the party or request at fault, and the numbers."""

    invariant: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.subject}: {self.detail}"


class InvariantError(RuntimeError):
    """One or more invariants do not hold; `violations` lists them, the message names each."""

    def __init__(self, violations: Sequence[Violation], where: str = "") -> None:
        self.violations = list(violations)
        head = f"{len(self.violations)} invariant violation(s)" + (f" {where}" if where else "")
        super().__init__(head + ":\n" + "\n".join(f"  - {v}" for v in self.violations))


def raise_violations(violations: Iterable[Violation], where: str = "") -> None:
    """Raise InvariantError if there is any violation (`where` names the hour/step)."""
    found = list(violations)
    if found:
        raise InvariantError(found, where)


@dataclass(frozen=True)
class TokenState:
    """Token supply and balances of some accounts on one chain at one block (base units)."""

    chain: str
    block: int
    supply: int
    balances: Mapping[str, int] = field(default_factory=dict)


def read_token_state(token: EnergyToken, accounts: Sequence[str]) -> TokenState:
    """Supply and balances of `accounts` (addresses) at the chain's latest block."""
    chain = token.chain
    block = chain.block_number()
    addrs = [to_checksum_address(a) for a in dict.fromkeys(accounts)]
    balances = [int(b) for b in token.call("balances_of", addrs, block=block)] if addrs else []
    supply = int(token.call("totalSupply", block=block))
    return TokenState(chain.name, block, supply, dict(zip(addrs, balances, strict=True)))


# --------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------


def check_supply(before: TokenState, after: TokenState, minted_units: int) -> list[Violation]:
    """Supply change on a chain equals the incentives minted there between the two states."""
    d = after.supply - before.supply
    if d != minted_units:
        return [
            Violation(
                "supply",
                f"token on chain {after.chain!r}",
                f"supply changed by {d} base units between blocks {before.block} and "
                f"{after.block}, but {minted_units} were minted as incentives",
            )
        ]
    return []


def check_escrow(
    escrow_units: Mapping[tuple[str, str], int],
    requests: pd.DataFrame,
    kept_units: Mapping[tuple[str, str], int],
    credit_units: Mapping[tuple[str, str], int] | None = None,
) -> list[Violation]:
    """Each market's balance = kept by rule + Σ value of its open (matched, unsettled) requests
    + Σ refund credits of its buyers.

    `escrow_units`, `kept_units` and `credit_units` (`credit_totals(...)`; None = no credits) are
    keyed by (chain, market address); `requests` is `request_book(...)`.
    """
    credits = credit_units or {}
    open_value: dict[tuple[str, str], int] = {}
    n_open: dict[tuple[str, str], int] = {}
    for r in ledger_rows(requests, "chain", "address", "value", "settled"):
        if not r["settled"]:
            m = (r["chain"], r["address"])
            open_value[m] = open_value.get(m, 0) + int(r["value"])
            n_open[m] = n_open.get(m, 0) + 1
    out = []
    for m, held in escrow_units.items():
        expected = int(kept_units.get(m, 0)) + open_value.get(m, 0) + int(credits.get(m, 0))
        if int(held) != expected:
            out.append(
                Violation(
                    "escrow",
                    f"market {m[1]} on chain {m[0]!r}",
                    f"holds {held} base units, expected {expected} = kept by rule "
                    f"{kept_units.get(m, 0)} + {n_open.get(m, 0)} open request(s) worth "
                    f"{open_value.get(m, 0)} + credits {credits.get(m, 0)}",
                )
            )
    return out


def check_settlements(requests: pd.DataFrame) -> list[Violation]:
    """Per settled request: delivered <= scheduled, paid + refunded = value, paid <= value,
    settled once (no Wh or token unaccounted)."""
    out = []
    for r in ledger_rows(requests, *REQUEST_KEY, "settled", "scheduled_wh", "value"):
        if not r["settled"]:
            continue
        subject = f"request {r['buyer']}#{r['nonce']} on {r['chain']!r} {r['address']}"
        if r.get("settled_twice"):
            out.append(Violation("settlement", subject, "settled more than once"))
        if r["n_fills"] == 0:
            out.append(Violation("settlement", subject, "settled without any Trade event"))
            continue
        delivered, scheduled = int(r["delivered_wh"]), int(r["scheduled_wh"])
        if not 0 <= delivered <= scheduled:
            out.append(
                Violation(
                    "delivered_le_scheduled",
                    subject,
                    f"delivered {delivered} Wh, scheduled {scheduled} Wh",
                )
            )
        paid, refunded, value = int(r["paid"]), int(r["refunded"]), int(r["value"])
        if paid + refunded != value or paid < 0 or refunded < 0:
            out.append(
                Violation(
                    "settlement_value",
                    subject,
                    f"paid {paid} + refunded {refunded} != value {value} base units",
                )
            )
        if r["n_fills"] == 1 and value and paid * scheduled != value * delivered:
            out.append(
                Violation(
                    "settlement_value",
                    subject,
                    f"one fill: paid {paid} != delivered {delivered} Wh x price "
                    f"{value // scheduled}",
                )
            )
    return out


def check_fill_counts(
    requests: pd.DataFrame, max_fills: Mapping[tuple[str, str], int]
) -> list[Violation]:
    """No request has more fills (Trade events) than the cap of its market.

    `max_fills` maps (chain, market address) to the market's cap (LETB's deployment parameter);
    requests of markets not listed are not checked. `requests` is `request_book(...)`."""
    out = []
    for r in ledger_rows(requests, *REQUEST_KEY, "n_fills"):
        cap = max_fills.get((r["chain"], r["address"]))
        if cap is not None and int(r["n_fills"]) > cap:
            out.append(
                Violation(
                    "fill_cap",
                    f"request {r['buyer']}#{r['nonce']} on {r['chain']!r} {r['address']}",
                    f"{int(r['n_fills'])} fills, the market allows at most {cap}",
                )
            )
    return out


def check_balance_changes(
    before: TokenState,
    after: TokenState,
    transfers: pd.DataFrame,
    txs: pd.DataFrame,
    *,
    markets: Iterable[str],
    approvals: pd.DataFrame | None = None,
    incentives: pd.DataFrame | None = None,
    token_address: str | None = None,
) -> list[Violation]:
    """No balance changes without a transaction its owner signed or a contract rule paying it.

    Between blocks before.block (excluded) and after.block: (1) each listed account's balance
    change equals its Transfer events' credits minus debits; (2) each debit of an account other
    than a market is in a transaction the account signed, or signed by a spender it approved
    earlier (Approval events), or is a registration bond pulled into a market; (3) a market pays
    out only in 'settle' / 'settle_many' / 'withdraw' transactions; (4) tokens are minted
    (Transfer from the zero address) only in a 'feedback' transaction that emitted
    IncentiveMinted for the same receiver and amount.
    `transfers` = `Ledger.events("Transfer")`, `txs` = `Ledger.gas()`, both for all chains;
    `token_address` selects one token when several share the chain.
    """
    chain = after.chain
    first, last = before.block + 1, after.block
    tr = in_blocks(transfers, chain, first, last)
    if token_address is not None and not tr.empty:
        tr = tr[tr["address"] == token_address]
    markets = {to_checksum_address(m) for m in markets}
    tx_rows = {r["tx_hash"]: r for r in ledger_rows(in_blocks(txs, chain, first, last), "tx_hash")}
    approved: set[tuple[str, str]] = set()
    appr_rows = ledger_rows(
        in_blocks(approvals, chain, 0, last) if approvals is not None else None,
        "owner", "spender", "value", "block",
    )  # fmt: skip
    minted: dict[str, list[tuple[str, int]]] = {}
    minted_rows = in_blocks(incentives, chain, first, last)
    for r in ledger_rows(minted_rows, "tx_hash", "seller", "incentive"):
        minted.setdefault(r["tx_hash"], []).append((r["seller"], int(r["incentive"])))

    out: list[Violation] = []
    delta: dict[str, int] = {}
    for r in sorted(ledger_rows(tr, "sender", "receiver", "value", "tx_hash"),
                    key=lambda r: (r["block"], r["log_index"])):  # fmt: skip
        src, dst, value = r["sender"], r["receiver"], int(r["value"])
        delta[src] = delta.get(src, 0) - value
        delta[dst] = delta.get(dst, 0) + value
        tx = tx_rows.get(r["tx_hash"])
        if tx is None:
            out.append(Violation("unsigned_debit", src, f"Transfer in unknown tx {r['tx_hash']}"))
            continue
        signer, op = tx["sender"], tx["operation"]
        approved.update(
            (a["owner"], a["spender"])
            for a in appr_rows
            if int(a["value"]) > 0 and a["block"] <= r["block"]
        )
        if src == ZERO_ADDRESS:
            if op not in MINT_OPERATIONS or (dst, value) not in minted.get(r["tx_hash"], []):
                out.append(
                    Violation(
                        "mint_without_incentive",
                        dst,
                        f"{value} base units minted in {op!r} tx {r['tx_hash']} without a "
                        "matching IncentiveMinted event",
                    )
                )
        elif src in markets:
            if op not in PAYOUT_OPERATIONS:
                out.append(
                    Violation(
                        "escrow_paid_outside_settlement",
                        src,
                        f"market paid {value} base units to {dst} in {op!r} tx {r['tx_hash']}",
                    )
                )
        elif (
            value > 0  # a zero-value Transfer moves nothing (ERC-20 allows it to anyone)
            and signer != src
            and (src, signer) not in approved
            and not (op in BOND_OPERATIONS and dst in markets)
        ):
            out.append(
                Violation(
                    "unsigned_debit",
                    src,
                    f"{value} base units moved to {dst} in {op!r} tx {r['tx_hash']} signed "
                    f"by {signer}, who holds no allowance of it",
                )
            )
    for a in set(before.balances) | set(after.balances):
        change = int(after.balances.get(a, 0)) - int(before.balances.get(a, 0))
        if change != delta.get(a, 0):
            out.append(
                Violation(
                    "unexplained_balance_change",
                    a,
                    f"balance changed by {change} base units between blocks {before.block} and "
                    f"{after.block}, Transfer events explain {delta.get(a, 0)}",
                )
            )
    return out


def check_reputations(reputations: Mapping[str, int], rep_max: int = REP_MAX) -> list[Violation]:
    """Every reputation lies in [0, rep_max]."""
    return [
        Violation("reputation_bounds", str(a), f"reputation {r} outside [0, {rep_max}]")
        for a, r in reputations.items()
        if not 0 <= int(r) <= rep_max
    ]


def check_feedback(feedback: pd.DataFrame, requests: pd.DataFrame) -> list[Violation]:
    """At most one rating per (market, buyer, nonce, seller), only for a settled request, and
    the reputation the event reports within bounds."""
    book = ledger_rows(requests, *REQUEST_KEY, "settled")
    settled = {request_key(r) for r in book if r["settled"]}
    out: list[Violation] = []
    seen: set[tuple[Any, ...]] = set()
    for r in ledger_rows(feedback, *REQUEST_KEY, "seller", "reputation"):
        req = request_key(r)
        key = (*req, r["seller"])
        subject = f"rating of {r['seller']} by {r['buyer']}#{r['nonce']} on {r['chain']!r}"
        if key in seen:
            out.append(Violation("one_feedback_per_trade", subject, "rated more than once"))
        seen.add(key)
        if req not in settled:
            out.append(Violation("feedback_after_settlement", subject, "request not settled"))
        if not 0 <= int(r["reputation"]) <= REP_MAX:
            out.append(
                Violation("reputation_bounds", subject, f"reputation {r['reputation']} reported")
            )
    return out


def check_energy_balance(
    demand_wh: Mapping[str, int],
    local_wh: Mapping[str, int],
    renewable_wh: Mapping[str, int],
    grid_wh: Mapping[str, int],
) -> list[Violation]:
    """Per user: demand = local + renewable + grid (integer Wh; missing entries count 0)."""
    out = []
    for u, m in demand_wh.items():
        parts = (local_wh.get(u, 0), renewable_wh.get(u, 0), grid_wh.get(u, 0))
        if int(m) != sum(int(p) for p in parts) or min(parts) < 0:
            out.append(
                Violation(
                    "energy_balance",
                    str(u),
                    f"demand {m} Wh != local {parts[0]} + renewable {parts[1]} + grid "
                    f"{parts[2]} Wh",
                )
            )
    return out
