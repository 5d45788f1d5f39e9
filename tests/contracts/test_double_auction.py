"""DoubleAuction on the real EVM (revm): one uniform price per hour, escrow and its refund
credit, LETB's settlement and feedback, and every refusal with its revert reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
    post,
)
from .conftest import (
    CAP,
    FLOOR,
    INITIAL_REP,
    PER_MWH,
    Chain,
    commitment,
    deploy_revert_reason,
    revert_reason,
)


@pytest.fixture(scope="module")
def auction_state() -> tuple[Auction, str]:
    a = deploy_auction(Chain.fresh(engine="revm"), n_sellers=4, n_buyers=4)
    return a, a.chain.snapshot()


@pytest.fixture
def a(auction_state: tuple[Auction, str]) -> Iterator[Auction]:
    """The deployed auction, reverted to its pristine state after the test."""
    world, snap = auction_state
    world.chain.revert(snap)
    yield world
    world.chain.revert(snap)


def bal(a: Auction, who: str) -> int:
    return a.token.functions.balanceOf(who).call()


def test_one_price_for_every_trade_midpoint_of_the_marginal_pair(a: Auction) -> None:
    """Asks 30, 40, 60; bids 100, 50, 45 $/MWh: bid 100 takes ask 30 and half of 40, bid 50 and
    bid 45 share the rest of 40, then bid 45 meets ask 60 and stops. The marginal pair is
    (bid 45, ask 40): price 42.5 $/MWh for every fill."""
    da, (s0, s1, s2, _), (b0, b1, b2, _) = a.da, a.sellers, a.buyers
    open_hour(a, 0)
    for who, e, usd in ((s0, 1000, 30), (s1, 1000, 40), (s2, 1000, 60)):
        post(a, da, ASK, who, 0, e, usd * PER_MWH)
    before = {b: bal(a, b) for b in (b0, b1, b2)}
    for who, e, usd in ((b0, 1500, 100), (b1, 400, 50), (b2, 800, 45)):
        post(a, da, BID, who, 0, e, usd * PER_MWH)
    assert bal(a, b0) == before[b0] - 1500 * 100 * PER_MWH  # escrow = e_wh * limit
    assert da.functions.book(ASK).call() == [a.ids[s] for s in (s0, s1, s2)]
    assert da.functions.book(BID).call() == [a.ids[b] for b in (b0, b1, b2)]
    receipts = clear_all(a, da, 0)
    price = (45 + 40) * PER_MWH // 2
    (priced,) = logs(da, receipts, "Priced")
    assert (priced.price, priced.traded_wh, priced.fills) == (price, 2000, 4)
    fills = fills_by_buyer(da, receipts)
    assert fills == {
        b0: [clearing.Fill(a.ids[s0], s0, 1000, price), clearing.Fill(a.ids[s1], s1, 500, price)],
        b1: [clearing.Fill(a.ids[s1], s1, 400, price)],
        b2: [clearing.Fill(a.ids[s1], s1, 100, price)],
    }
    matched = {m.buyer: (m.filled_wh, m.paid) for m in logs(da, receipts, "Matched")}
    assert matched == {b0: (1500, 1500 * price), b1: (400, 400 * price), b2: (100, 100 * price)}
    # each buyer's escrow beyond what it pays at the clearing price is its refund credit
    assert da.functions.credit_of(b0).call() == 1500 * (100 * PER_MWH - price)
    assert da.functions.credit_of(b2).call() == 800 * 45 * PER_MWH - 100 * price
    assert da.functions.clearing_state().call() == [0, 2, price]
    # the TDNO settles as on LETB: sellers paid delivered * price, the rest credited
    nonce = da.functions.account_state(b0).call()[1]
    call = da.functions.settle(b0, nonce, 0, [f.as_tuple() for f in fills[b0]], [1000, 250])
    s1_before = bal(a, s1)
    a.chain.send(call, a.tdno)
    assert bal(a, s1) == s1_before + 250 * price
    assert da.functions.credit_of(b0).call() == 1500 * (100 * PER_MWH - price) + 250 * price
    call = da.functions.feedback(b0, nonce, 0, [f.as_tuple() for f in fills[b0]], [5, 0])
    a.chain.send(call, b0)
    assert da.functions.reputations_of([s0, s1]).call() == [
        clearing.update_reputation(INITIAL_REP, 5),
        clearing.update_reputation(INITIAL_REP, 0),
    ]


def test_next_bid_spends_the_credit_first(a: Auction) -> None:
    da, s, b = a.da, a.sellers[0], a.buyers[0]
    open_hour(a, 0)
    post(a, da, BID, b, 0, 1000, 80 * PER_MWH)  # nothing to buy: the whole escrow returns
    clear_all(a, da, 0)
    credit = 1000 * 80 * PER_MWH
    assert da.functions.credit_of(b).call() == credit
    open_hour(a, 1)
    post(a, da, ASK, s, 1, 1000, 30 * PER_MWH)
    before = bal(a, b)
    receipt = post(a, da, BID, b, 1, 1500, 60 * PER_MWH)
    (used,) = logs(da, [receipt], "CreditUsed")
    assert (used.amount, used.credit) == (credit, 0)
    assert bal(a, b) == before - (1500 * 60 * PER_MWH - credit)


def test_an_hour_without_orders_clears_at_price_zero(a: Auction) -> None:
    open_hour(a, 0)
    receipts = clear_all(a, a.da, 0)
    assert [e.price for e in logs(a.da, receipts, "Cleared")] == [0]
    assert revert_reason(a.chain, a.da.functions.clear(0, 5), a.operator) == "already cleared"


def test_clearing_in_chunks_equals_clearing_at_once(auction_state) -> None:
    a, snap = auction_state
    outcomes = []
    for chunk in (1, 2, 256):
        a.chain.revert(snap)
        open_hour(a, 0)
        for i, s in enumerate(a.sellers):
            post(a, a.da, ASK, s, 0, 300 + 100 * i, (30 + 5 * i) * PER_MWH)
        for i, b in enumerate(a.buyers):
            post(a, a.da, BID, b, 0, 500, (70 - 5 * i) * PER_MWH)
        receipts = clear_all(a, a.da, 0, chunk)
        assert len(receipts) == -(-len(a.buyers) // chunk)
        outcomes.append(
            (fills_by_buyer(a.da, receipts), [tuple(m) for m in logs(a.da, receipts, "Matched")])
        )
    a.chain.revert(snap)
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert outcomes[0][0]  # something traded


def test_refusals(a: Auction) -> None:
    da, ch, s, b = a.da, a.chain, a.sellers[0], a.buyers[0]
    ask, bid, clear = da.functions.post_ask, da.functions.post_bid, da.functions.clear
    p = 50 * PER_MWH
    assert revert_reason(ch, bid(0, 100, p, 0), b) == "wrong hour"  # no hour open yet
    open_hour(a, 0)
    assert revert_reason(ch, bid(1, 100, p, 0), b) == "wrong hour"
    assert revert_reason(ch, ask(1, 100, p, 0), s) == "wrong hour"
    assert revert_reason(ch, bid(0, 100, CAP + 1, 0), b) == "price above DLMP cap"
    assert revert_reason(ch, bid(0, 100, FLOOR - 1, 0), b) == "price below feed-in floor"
    assert revert_reason(ch, ask(0, 100, FLOOR - 1, 0), s) == "price below feed-in floor"
    assert revert_reason(ch, ask(0, 100, CAP + 1, 0), s) == "price above DLMP cap"
    assert revert_reason(ch, ask(0, 0, p, 0), s) == "energy out of range"
    assert revert_reason(ch, bid(0, 10**12 + 1, p, 0), b) == "energy out of range"
    assert revert_reason(ch, ask(0, 100, p, 0), a.outsider) == "not a seller"
    assert revert_reason(ch, bid(0, 100, p, 0), a.outsider) == "not a buyer"
    assert revert_reason(ch, ask(0, 100, p, 0), b) == "not a seller"
    assert revert_reason(ch, bid(0, 100, p, 0), s) == "not a buyer"
    assert revert_reason(ch, clear(0, 5), a.outsider) == "unauthorised: operator only"
    assert revert_reason(ch, clear(3, 5), a.operator) == "wrong hour"
    # hints: an id without an order this hour, an order behind the new one, the other book
    assert revert_reason(ch, ask(0, 100, p, a.ids[a.sellers[1]]), s) == "stale hint"
    post(a, da, ASK, a.sellers[1], 0, 100, 60 * PER_MWH)
    assert revert_reason(ch, ask(0, 100, p, a.ids[a.sellers[1]]), s) == "bad hint"
    assert revert_reason(ch, bid(0, 100, p, a.ids[a.sellers[1]]), b) == "stale hint"
    post(a, da, ASK, s, 0, 100, p)
    assert revert_reason(ch, ask(0, 5, p, 0), s) == "order already posted this hour"
    post(a, da, BID, b, 0, 100, 70 * PER_MWH)
    assert revert_reason(ch, bid(0, 5, p, 0), b) == "order already posted this hour"
    # the prosumer (role 3) may ask or bid, not both in one hour
    post(a, da, BID, a.prosumer, 0, 100, 70 * PER_MWH)
    assert revert_reason(ch, ask(0, 5, p, 0), a.prosumer) == "order already posted this hour"
    # no new hour's orders while the last hour's bids are not cleared (their escrow waits)
    open_hour(a, 1)
    assert revert_reason(ch, ask(1, 100, p, 0), a.sellers[2]) == "previous hour not cleared"
    assert revert_reason(ch, clear(1, 5), a.operator) == "previous hour not cleared"
    receipts = clear_all(a, da, 0)  # a late hour can still be cleared
    assert revert_reason(ch, clear(0, 5), a.operator) == "already cleared"
    # a matched bid must be settled before its buyer bids again
    fills = fills_by_buyer(da, receipts)[b]
    post(a, da, ASK, a.sellers[2], 1, 100, p)
    assert revert_reason(ch, bid(1, 100, p, 0), b) == "previous request not settled"
    settle = da.functions.settle
    items = [f.as_tuple() for f in fills]
    assert revert_reason(ch, settle(b, 1, 0, items, [1] * len(fills)), b) == (
        "unauthorised: tdno only"
    )
    assert revert_reason(ch, settle(b, 2, 0, items, [1] * len(fills)), a.tdno) == "unknown request"
    assert revert_reason(ch, settle(b, 1, 0, items, [10**6] * len(fills)), a.tdno) == (
        "delivered above schedule"
    )
    call = da.functions.feedback(b, 1, 0, items, [5] * len(fills))
    assert revert_reason(ch, call, b) == "request not settled"
    ch.send(settle(b, 1, 0, items, [f.e_wh for f in fills]), a.tdno)
    assert revert_reason(ch, call, s) == "only the buyer may rate"
    ch.send(call, b)
    assert revert_reason(ch, call, b) == "already rated"
    post(a, da, BID, b, 1, 100, p)  # settled: the buyer bids again
    clear_all(a, da, 1)
    assert revert_reason(ch, ask(1, 100, p, 0), a.sellers[3]) == "hour cleared"


def test_constructor_checks_the_fill_cap(a: Auction) -> None:
    args = (a.token.address, 1, a.operator, a.tdno, INITIAL_REP, 0)
    for cap in (0, 17):
        assert deploy_revert_reason(a.chain, "DoubleAuction", *args, cap) == (
            "max_fills out of range"
        )


def test_register_takes_the_operators_member_id(a: Auction) -> None:
    da, who = a.da, a.outsider
    for w in (*a.sellers, *a.buyers, a.prosumer):
        assert da.functions.member_id(w).call() == a.ids[w]
    assert da.functions.account_state(a.prosumer).call()[2:] == [a.ids[a.prosumer], 1 | 2 | 4]
    reg = da.functions.register
    assert revert_reason(a.chain, reg(who, commitment(who), 5, 2, 1), a.operator) == (
        "member id taken"
    )
    for bad in (0, 2**24):
        assert revert_reason(a.chain, reg(who, commitment(who), 5, 2, bad), a.operator) == (
            "member id out of range"
        )
    assert revert_reason(a.chain, reg(who, commitment(who), 5, 2, 99), who) == (
        "unauthorised: operator only"
    )
    a.chain.send(reg(who, commitment(who), 5, 2, 99), a.operator)
    assert da.functions.member_id(who).call() == 99
    assert da.functions.order_of(99).call()[0] == who


def test_reference_agrees_on_the_worked_example() -> None:
    """The pure reference on the first test's book (the equivalence test draws many more)."""
    asks = [ref.Order(i + 1, f"s{i}", 1000, p) for i, p in enumerate((30, 40, 60))]
    bids = [
        ref.Order(i + 5, f"b{i}", e, p)
        for i, (e, p) in enumerate(((1500, 100), (400, 50), (800, 45)))
    ]
    out = ref.clear(asks, bids, 16)
    assert (out.price, out.traded_wh, out.n_fills) == (42, 2000, 4)  # (45 + 40) // 2
    assert [r.filled_wh for r in out.bids] == [1500, 400, 100]
    assert out.bids[2].refund == 800 * 45 - 100 * 42
