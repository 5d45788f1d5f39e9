"""Pure-Python reference of the on-chain double auction (gridledger/contracts/DoubleAuction.vy).

A uniform-price (pay-as-clear) double auction per area and hour, integer for integer as the
contract computes it; tests/contracts/test_double_auction_equivalence.py clears random books on
the real EVM and through these functions and demands identical fills, prices and balances.

The rule (units as on chain: Wh, token base units per Wh, token base units):
- books: asks by ascending price, bids by descending limit; equal prices by ascending member id
  (so the books do not depend on the order a node executes the orders of a block in);
- walk: the first bid against the first ask; while the bid's limit >= the ask's price, fill
  q = min(bid left, ask left); an exhausted ask gives way to the next ask; a bid moves on when
  it is filled or has taken `max_fills` fills (its rest stays unfilled); at most
  MAX_HOUR_FILLS fills an hour;
- price: (limit of the last filled bid + price of the last filled ask) // 2, a k = 0.5 double
  auction on the marginal pair; every filled bid's limit is >= it and every filled ask's price
  is <= it; 0 when nothing crosses;
- money: a bid escrows e_wh * limit when posted; at clearing it pays filled_wh * price and the
  rest is credited back (LETB's refund credit); settlement, refunds and feedback are LETB's
  (gridledger.market.clearing.settle, credit_refund, update_reputation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gridledger.market.clearing import MAX_E_WH, MAX_FILLS, ClearingError, Fill

MAX_HOUR_FILLS = 1024
"""Fills one hour's clearing makes at most (the contract's bound on its price walk)."""
ASK = 1
BID = 2
ORDER_FANOUT = 4
"""Orders of one `clearing.offer_rounds` round between two neighbours of the book (LETB uses 6):
an order then walks past at most 3 orders from its hint, which keeps a seller's first ask (it
also pays its order slot's first write, 20k) within 75k gas (tests/contracts/
test_double_auction_gas.py). n orders take ceil(log5(n + 1)) rounds: 24 in 2, 124 in 3."""


@dataclass(frozen=True)
class Order:
    """An ask (`price` = lowest price accepted) or a bid (`price` = its limit) of one member."""

    member_id: int
    account: str
    e_wh: int
    price: int


@dataclass(frozen=True)
class BidResult:
    """One bid after clearing: its fills (all at the clearing price), Wh filled, base units
    paid, and the escrow credited back (e_wh * limit - paid)."""

    bid: Order
    fills: tuple[Fill, ...]
    filled_wh: int
    paid: int
    refund: int


@dataclass(frozen=True)
class Clearing:
    """The hour's outcome: one price, every bid in book order, Wh traded, fills made."""

    price: int
    bids: tuple[BidResult, ...]
    traded_wh: int
    n_fills: int


def book_key(side: int, order: Order) -> tuple[int, int]:
    """Sort key of an order in its book (asks ascending price, bids descending limit; ties by
    member id): also the key to give `clearing.offer_rounds` for insertion hints."""
    if side not in (ASK, BID):
        raise ClearingError(f"side={side}: 1 (ask) or 2 (bid)")
    return (order.price if side == ASK else -order.price), order.member_id


def sorted_book(side: int, orders: Sequence[Order]) -> tuple[Order, ...]:
    """`orders` in book order; one order per member."""
    ids = [o.member_id for o in orders]
    if len(set(ids)) != len(ids):
        raise ClearingError("sorted_book: a member id appears twice (one order per hour)")
    for o in orders:
        if not 1 <= o.e_wh <= MAX_E_WH:
            raise ClearingError(
                f"order of member {o.member_id}: e_wh={o.e_wh} outside 1..{MAX_E_WH}"
            )
    return tuple(sorted(orders, key=lambda o: book_key(side, o)))


def clear(asks: Sequence[Order], bids: Sequence[Order], max_fills: int) -> Clearing:
    """Clear one hour's books (see the module docstring for the rule)."""
    if not 1 <= max_fills <= MAX_FILLS:
        raise ClearingError(f"max_fills={max_fills} outside 1..{MAX_FILLS}")
    ask_book, bid_book = sorted_book(ASK, asks), sorted_book(BID, bids)
    # the walk: (bid index, ask index, Wh) per fill
    walk: list[tuple[int, int, int]] = []
    a, b = 0, 0
    a_left = ask_book[0].e_wh if ask_book else 0
    b_left = bid_book[0].e_wh if bid_book else 0
    b_fills = 0
    while len(walk) < MAX_HOUR_FILLS and a < len(ask_book) and b < len(bid_book):
        if bid_book[b].price < ask_book[a].price:
            break
        q = min(a_left, b_left)
        walk.append((b, a, q))
        a_left, b_left, b_fills = a_left - q, b_left - q, b_fills + 1
        if a_left == 0:
            a += 1
            a_left = ask_book[a].e_wh if a < len(ask_book) else 0
        if b_left == 0 or b_fills == max_fills:
            b, b_fills = b + 1, 0
            b_left = bid_book[b].e_wh if b < len(bid_book) else 0
    if walk:
        last_b, last_a, _ = walk[-1]
        price = (bid_book[last_b].price + ask_book[last_a].price) // 2
    else:
        price = 0
    fills: list[list[Fill]] = [[] for _ in bid_book]
    for bi, ai, q in walk:
        ask = ask_book[ai]
        fills[bi].append(Fill(ask.member_id, ask.account, q, price))
    results = []
    for bid, fs in zip(bid_book, fills, strict=True):
        filled = sum(f.e_wh for f in fs)
        paid = filled * price
        results.append(BidResult(bid, tuple(fs), filled, paid, bid.e_wh * bid.price - paid))
    return Clearing(price, tuple(results), sum(q for _, _, q in walk), len(walk))


__all__ = [
    "ASK",
    "BID",
    "MAX_HOUR_FILLS",
    "ORDER_FANOUT",
    "BidResult",
    "Clearing",
    "Order",
    "book_key",
    "clear",
    "sorted_book",
]
