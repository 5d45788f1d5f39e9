"""DoubleAuction gas on the real EVM (revm): every operation of a small market hour within its
bound (gridledger/contracts/gas_bounds.py), and a book of hundreds of asks and bids in one area
posted with off-chain hints (posting gas independent of the book size) and cleared in chunks,
each call within its bound and far below a 30M-gas block."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from gridledger.contracts.gas_bounds import bound_of, item_bound_of
from gridledger.market.clearing import offer_rounds
from gridledger.markets import double_auction_ref as ref

from .auction_world import ASK, BID, Auction, deploy_auction, logs
from .conftest import PER_MWH, Chain

BLOCK_GAS = 30_000_000
BIG = 300  # asks and bids each in the big book


def _hour(a: Auction, t: int, rng: random.Random, chunk: int) -> list[tuple[str, int]]:
    """One hour: every seller asks, every buyer bids (hints from offer_rounds), the operator
    clears in calls of `chunk` bids, the TDNO settles (settle_many per 32), buyers rate;
    returns (operation, gas) of each transaction."""
    da, chain = a.da, a.chain
    gas: list[tuple[str, int]] = []
    buses = sorted(set(a.buses.values()))[:64]
    call = da.functions.open_hour(t, 20 * PER_MWH, buses, [200 * PER_MWH] * len(buses))
    receipt = chain.send(call, a.operator)
    gas.append((f"DoubleAuction.open_hour {len(buses)} buses", receipt.gasUsed))
    for side, who_list, lo, hi in ((ASK, a.sellers, 30, 90), (BID, a.buyers, 50, 150)):
        orders = {a.ids[w]: (w, rng.randrange(300, 3000), rng.randrange(lo, hi) * PER_MWH)
                  for w in who_list}  # fmt: skip
        keys = [ref.book_key(side, ref.Order(m, w, e, p)) for m, (w, e, p) in orders.items()]
        fn = da.functions.post_ask if side == ASK else da.functions.post_bid
        name = "DoubleAuction.post_ask" if side == ASK else "DoubleAuction.post_bid"
        for rnd in offer_rounds(keys, ref.ORDER_FANOUT):
            for mid, hint in rnd:
                w, e, p = orders[mid]
                gas.append((name, chain.send(fn(t, e, p, hint), w).gasUsed))
    receipts = []
    while not receipts or not logs(da, receipts[-1:], "Cleared"):
        r = chain.send(da.functions.clear(t, chunk), a.operator)
        receipts.append(r)
        n = len(logs(da, [r], "Matched"))
        gas.append((f"DoubleAuction.clear {n} items", r.gasUsed))
    fills: dict[str, list] = defaultdict(list)
    for ev in logs(da, receipts, "Trade"):
        fills[ev.buyer].append((ev.producer_id, ev.seller, ev.e_wh, ev.price))
    nonces = {m.buyer: m.nonce for m in logs(da, receipts, "Matched") if m.filled_wh}
    items = [(b, nonces[b], fs, [f[2] * rng.randrange(90, 101) // 100 for f in fs])
             for b, fs in fills.items()]  # fmt: skip
    for i in range(0, len(items), 32):
        part = items[i : i + 32]
        r = chain.send(da.functions.settle_many(t, part), a.tdno)
        gas.append((f"DoubleAuction.settle_many {len(part)} items", r.gasUsed))
    for b, nonce, fs, _d in items:
        r = chain.send(da.functions.feedback(b, nonce, t, fs, [5] * len(fs)), b)
        gas.append((f"DoubleAuction.feedback {len(fs)} fills", r.gasUsed))
    return gas


def _over(gas: list[tuple[str, int]]) -> dict[str, int]:
    over = {}
    for op, g in gas:
        n = int(op.split()[1]) if op.split()[-1] == "items" else 0
        if g > bound_of(op) or (n and g / n > item_bound_of(op)):
            over[op] = g
    return over


def test_every_operation_of_small_hours_within_bounds() -> None:
    a = deploy_auction(Chain.fresh(engine="revm"), n_sellers=8, n_buyers=8)
    rng = random.Random(3)
    gas = [g for t in range(3) for g in _hour(a, t, rng, chunk=32)]
    assert {op.split()[0] for op, _ in gas} >= {
        "DoubleAuction.post_ask", "DoubleAuction.post_bid", "DoubleAuction.clear",
        "DoubleAuction.settle_many", "DoubleAuction.feedback",
    }  # fmt: skip
    assert not _over(gas), f"operations above their gas bound: {_over(gas)}"
    assert not _over(a.chain.gas_log), "registration above its bound"


@pytest.mark.slow
def test_hundreds_of_bids_clear_in_chunks_under_the_block_limit() -> None:
    """300 asks and 300 bids, 3 fills per bid at most (the model's default fill cap). open_hour
    (market_base, LETB's) is bounded at the default area's size in test_gas.py: not here."""
    chain = Chain.fresh(2 * BIG + 8, engine="revm")
    a = deploy_auction(chain, n_sellers=BIG, n_buyers=BIG, caps=(3,))
    gas = [(op, g) for op, g in _hour(a, 0, random.Random(5), chunk=32) if "open_hour" not in op]
    assert not _over(gas), f"operations above their gas bound: {_over(gas)}"
    clears = [g for op, g in gas if op.startswith("DoubleAuction.clear")]
    assert len(clears) == -(-BIG // 32)
    assert max(clears) < BLOCK_GAS // 10
    posts = [g for op, g in gas if op.startswith("DoubleAuction.post")]
    print(f"post max {max(posts)}, clear calls {clears}, total clear {sum(clears)}")
