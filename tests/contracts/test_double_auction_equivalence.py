"""DoubleAuction on the real EVM (revm) and its pure reference (gridledger/markets/
double_auction_ref.py) agree fill for fill.

Hypothesis draws two hours of random books (who orders, sizes, prices with ties, the prosumer
asking or bidding), the auction's fill cap (one auction per cap on the same chain), the chunk
size of the clearing calls, deliveries and feedback scores. Each example runs from one snapshot
on the chain and through the reference and demands the same price, fills, matched bids, refund
credits (the second hour's bids spend the first hour's), token balances and reputations, and
after settlement an escrow of exactly seed + credits (the model's conservation invariant).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from gridledger.market import clearing
from gridledger.markets import double_auction_ref as ref

from .auction_world import (
    ASK,
    BID,
    Auction,
    clear_all,
    deploy_auction,
    fills_by_buyer,
    logs,
    open_hour,
    post_rounds,
)
from .conftest import INITIAL_REP, PER_MWH, Chain

CAPS = (1, 2, 3, 16)
SETTINGS = settings(
    max_examples=int(__import__("os").environ.get("EQ_N", "200")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass
class World:
    auction: Auction
    snap: str
    balances: dict[str, int]


@pytest.fixture(scope="module")
def world() -> World:
    a = deploy_auction(Chain.fresh(engine="revm"), n_sellers=8, n_buyers=8, caps=CAPS)
    accounts = [*a.sellers, *a.buyers, a.prosumer, *(d.address for d in a.auctions.values())]
    balances = dict(zip(accounts, a.token.functions.balances_of(accounts).call(), strict=True))
    return World(a, a.chain.snapshot(), balances)


@st.composite
def hour_case(draw):
    """One hour's orders: (seller index, e_wh, price step) asks, (buyer index, e_wh, limit
    step) bids; index 8 is the prosumer, on one side only; steps of 5 $/MWh."""
    prosumer_side = draw(st.sampled_from([None, ASK, BID]))
    sellers = draw(st.lists(st.integers(0, 7), max_size=8, unique=True))
    buyers = draw(st.lists(st.integers(0, 7), max_size=8, unique=True))
    if prosumer_side == ASK:
        sellers.append(8)
    elif prosumer_side == BID:
        buyers.append(8)
    size = st.one_of(st.integers(1, 50), st.integers(100, 5000))
    asks = [(i, draw(size), draw(st.integers(4, 16))) for i in sellers]
    bids = [(i, draw(size), draw(st.integers(8, 24))) for i in buyers]
    delivered_pct = draw(st.lists(st.integers(0, 100), min_size=8, max_size=8))
    scores = draw(st.lists(st.integers(0, 5), min_size=8, max_size=8))
    return asks, bids, delivered_pct, scores


@pytest.mark.slow
@pytest.mark.timeout(900)
@SETTINGS
@given(
    cap=st.sampled_from(CAPS),
    chunk=st.sampled_from([1, 2, 3, 256]),
    hours=st.lists(hour_case(), min_size=2, max_size=2),
)
def test_auction_matches_reference(world: World, cap: int, chunk: int, hours) -> None:
    a = world.auction
    da, chain = a.auctions[cap], a.chain
    chain.revert(world.snap)
    sellers = [*a.sellers, a.prosumer]
    buyers = [*a.buyers, a.prosumer]
    expected = dict(world.balances)
    credit = dict.fromkeys(buyers, 0)
    reputation = dict.fromkeys(a.ids.values(), INITIAL_REP)
    escrow = da.address
    for t, (asks, bids, delivered_pct, scores) in enumerate(hours):
        open_hour(a, t, da)
        ask_orders = [(sellers[i], e, step * 5 * PER_MWH) for i, e, step in asks]
        bid_orders = [(buyers[i], e, step * 5 * PER_MWH) for i, e, step in bids]
        post_rounds(a, da, ASK, t, ask_orders)
        post_rounds(a, da, BID, t, bid_orders)
        for who, e, limit in bid_orders:  # escrow e_wh * limit, the refund credit first
            used, pulled = clearing.spend_credit(credit[who], e * limit)
            credit[who] -= used
            expected[who] -= pulled
            expected[escrow] += pulled
        want = ref.clear(
            [ref.Order(a.ids[w], w, e, p) for w, e, p in ask_orders],
            [ref.Order(a.ids[w], w, e, p) for w, e, p in bid_orders],
            cap,
        )
        if ask_orders:  # else the view shows the last hour with orders
            assert da.functions.book(ASK).call() == [o.member_id for o in ref.sorted_book(ASK, [
                ref.Order(a.ids[w], w, e, p) for w, e, p in ask_orders])]  # fmt: skip
        receipts = clear_all(a, da, t, chunk)
        (priced,) = logs(da, receipts, "Priced")
        assert (priced.price, priced.traded_wh, priced.fills) == (
            want.price, want.traded_wh, want.n_fills,
        )  # fmt: skip
        assert [e.price for e in logs(da, receipts, "Cleared")] == [want.price]
        got_fills = fills_by_buyer(da, receipts)
        assert got_fills == {r.bid.account: list(r.fills) for r in want.bids if r.fills}
        matched = [(m.buyer, m.filled_wh, m.paid) for m in logs(da, receipts, "Matched")]
        assert matched == [(r.bid.account, r.filled_wh, r.paid) for r in want.bids]
        event(f"cap {cap}: {'trades' if want.n_fills else 'no trade'}")
        capped = any(len(r.fills) == cap and r.filled_wh < r.bid.e_wh for r in want.bids)
        event("a bid stopped by the fill cap" if capped else "no bid stopped by the cap")
        for r in want.bids:
            credit[r.bid.account], moved = clearing.credit_refund(credit[r.bid.account], r.refund)
            expected[r.bid.account] += moved
            expected[escrow] -= moved
        # settlement: one settle_many for every matched bid, then each buyer rates
        nonces = {m.buyer: m.nonce for m in logs(da, receipts, "Matched") if m.filled_wh}
        items = []
        for j, r in enumerate(r for r in want.bids if r.fills):
            delivered = [f.e_wh * delivered_pct[(j + n) % 8] // 100 for n, f in enumerate(r.fills)]
            items.append((r.bid.account, r.fills, delivered))
        if items:
            chain.send_quiet(da.functions.settle_many(t, [
                (b, nonces[b], [f.as_tuple() for f in fs], d) for b, fs, d in items
            ]), a.tdno)  # fmt: skip
        for (buyer, fills, _d), s in zip(items, clearing.settle_many(items), strict=True):
            for f, pay in zip(fills, s.payouts, strict=True):
                expected[f.seller] += pay
            credit[buyer], moved = clearing.credit_refund(credit[buyer], s.refunded)
            expected[buyer] += moved
            expected[escrow] -= s.paid + moved
            sc = [scores[(len(buyer) + n) % 8] for n in range(len(fills))]
            call = da.functions.feedback(buyer, nonces[buyer], t, [f.as_tuple() for f in fills], sc)
            chain.send_quiet(call, buyer)
            for f, score in zip(fills, sc, strict=True):
                reputation[f.producer_id] = clearing.update_reputation(
                    reputation[f.producer_id], score
                )
        accounts = list(expected)
        got = dict(zip(accounts, a.token.functions.balances_of(accounts).call(), strict=True))
        assert got == expected
        assert {b: da.functions.credit_of(b).call() for b in buyers} == credit
        assert got[escrow] == 1 + sum(credit.values())  # seed + refund credits
    assert da.functions.reputations_of(sellers).call() == [reputation[a.ids[s]] for s in sellers]
