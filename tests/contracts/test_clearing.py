"""The pure-Python reference (gridledger.market.clearing): rules, bounds and named errors; its
commitment hash is the one the LETB contract stores."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.market import clearing
from gridledger.market.clearing import ClearingError, Fill, Offer

from .conftest import PER_MWH, Market, fills_of, open_hour, post

A, B, C = "0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "cc" * 20


def test_price_conversion_follows_the_agreed_unit() -> None:
    assert clearing.price_to_chain(1.0) == 10**12
    assert clearing.price_to_chain(52.345678) == 52_345_678_000_000
    assert clearing.price_from_chain(clearing.price_to_chain(80.5)) == 80.5
    with pytest.raises(ClearingError, match="price_usd_per_mwh=-1"):
        clearing.price_to_chain(-1)


def test_insert_keeps_price_order_and_producer_id_order_for_ties() -> None:
    book: tuple[Offer, ...] = ()
    for pid, price in [(3, 50), (2, 40), (1, 50), (4, 30), (5, 40)]:
        book = clearing.insert_offer(book, Offer(pid, A, 10, price))
    assert [o.producer_id for o in book] == [4, 2, 5, 1, 3]  # ties by id, not posting order
    assert clearing.hint_for(book, 45) == 5
    assert clearing.hint_for(book, 10) == 0
    assert clearing.hint_for(book, 50) == 5  # any producer: the last lower price
    assert clearing.hint_for(book, 50, producer_id=2) == 1  # exact predecessor of (50, 2)
    with pytest.raises(ClearingError, match="producer_id=1 already"):
        clearing.insert_offer(book, Offer(1, A, 10, 60))
    with pytest.raises(ClearingError, match="e_wh=0"):
        clearing.insert_offer(book, Offer(9, A, 0, 60))


def test_match_skips_low_reputation_and_own_offer_and_partially_fills() -> None:
    book = (Offer(1, A, 100, 10), Offer(2, B, 100, 20), Offer(3, C, 100, 30))
    rep = {1: 300, 2: 600, 3: 600}
    r = clearing.match_request(book, rep, 150, 500, own_producer_id=2)
    assert r.fills == (Fill(3, C, 100, 30),)
    assert r.filled_wh == 100 and r.paid == 3000
    assert r.book == (Offer(1, A, 100, 10), Offer(2, B, 100, 20))
    r = clearing.match_request(book, rep, 150, 0)
    assert r.fills == (Fill(1, A, 100, 10), Fill(2, B, 50, 20))
    assert r.book == (Offer(2, B, 50, 20), Offer(3, C, 100, 30))
    with pytest.raises(ClearingError, match="demand_wh=0"):
        clearing.match_request(book, rep, 0, 0)
    with pytest.raises(ClearingError, match="rt=1001"):
        clearing.match_request(book, rep, 1, 1001)


def test_match_stops_after_max_fills() -> None:
    book = tuple(Offer(i, A, 1, i) for i in range(1, 30))
    r = clearing.match_request(book, dict.fromkeys(range(1, 30), 500), 100, 0)
    assert len(r.fills) == clearing.MAX_FILLS
    assert len(r.book) == 29 - clearing.MAX_FILLS


def test_settle_is_exact_and_refuses_over_delivery() -> None:
    fills = (Fill(1, A, 100, 7), Fill(2, B, 50, 9))
    s = clearing.settle(fills, [60, 50])
    assert s.payouts == (420, 450) and s.paid == 870 and s.refunded == 280
    assert s.paid + s.refunded == sum(f.value for f in fills)
    with pytest.raises(ClearingError, match=r"delivered_wh\[1\]=51"):
        clearing.settle(fills, [0, 51])
    with pytest.raises(ClearingError, match="1 delivered amounts for 2 fills"):
        clearing.settle(fills, [0])


@settings(max_examples=300, deadline=None)
@given(r=st.integers(0, 1000), scores=st.lists(st.integers(0, 5), max_size=40))
def test_reputation_rule_stays_in_bounds(r: int, scores: list[int]) -> None:
    for s in scores:
        new = clearing.update_reputation(r, s)
        assert 0 <= new <= 1000
        assert min(r, 200 * s) <= new <= max(r, 200 * s)  # moves towards 200·score
        r = new


def test_reputation_rule_rejects_bad_input() -> None:
    with pytest.raises(ClearingError, match="score=6"):
        clearing.update_reputation(500, 6)
    with pytest.raises(ClearingError, match="reputation=1001"):
        clearing.update_reputation(1001, 0)


def test_rep_eligibility_reasons_and_operator_choice() -> None:
    far = clearing.RepOffer(A, 0, 4, 10_000, 5, 700, 10)
    near = clearing.RepOffer(B, 2, 3, 500, 4, 300, 10)
    assert clearing.ineligibility(near, C, 100, 2, 3, 500) == "REP reputation below threshold"
    assert clearing.ineligibility(near, C, 600, 2, 3, 0) == "REP capacity below shortage"
    assert clearing.ineligibility(near, C, 100, 1, 3, 0) == (
        "REP window does not cover demand window"
    )
    assert clearing.ineligibility(near, B, 100, 2, 3, 0) == "cannot buy from yourself"
    assert clearing.choose_rep([near, far], C, 100, 2, 3, 500) == far
    assert clearing.choose_rep([near, far], C, 100, 2, 3, 0) == near
    assert clearing.choose_rep([near, far], C, 20_000, 2, 3, 0) is None


def test_fixed_point_log_and_incentive() -> None:
    assert clearing.log2_fp(10**18) == 0
    assert clearing.log2_fp(8 * 10**18) == 3 * 10**18
    for x in (1e-6, 0.37, 5.0, 1e6):
        got = clearing.log2_fp(10**18 + int(x * 1e18)) / 1e18
        assert got == pytest.approx(math.log2(1 + x), rel=1e-8)
    with pytest.raises(ClearingError, match="below 1e18"):
        clearing.log2_fp(10**18 - 1)
    params = clearing.IncentiveParams(log_base_k=10, scale_wh=10**6, stable_ref_hours=24)
    x = clearing.incentive_x_fp(500_000, 1_000_000, 48, params)
    assert x == 10**18 * 500_000 * 500_000 * 48 // (10**6 * 1_000_000 * 24)  # 0.5·0.5·2 = 0.5
    i = clearing.incentive(10**20, x, params)
    assert i == pytest.approx(10**20 * math.log10(1.5), rel=1e-9)
    trade = clearing.RetbTrade(A, 1, 0, 0, 1, B, 1_000_000, 7, 48)
    assert clearing.trade_incentive(trade, 500_000, 2, params) == 0
    assert clearing.trade_incentive(trade, 0, 5, params) == 0
    assert clearing.trade_incentive(trade, 500_000, 3, params) == clearing.incentive(
        500_000 * 7, x, params
    )
    assert clearing.incentive_x_fp(10**12, 10**12, 65535, params) == clearing.X_MAX_FP
    with pytest.raises(ClearingError, match=r"delivered_wh=2 outside 0\.\.scheduled 1"):
        clearing.incentive_x_fp(2, 1, 1, params)


def test_request_commitment_is_what_letb_stores(market: Market) -> None:
    m = market
    open_hour(m, 0, m.letb)
    post(m, m.producers[0], 0, 400, 40 * PER_MWH)
    post(m, m.producers[1], 0, 400, 50 * PER_MWH)
    u = m.consumers[0]
    fills = [Fill(*f) for f in fills_of(m, m.chain.send(m.letb.functions.request(0, 600, 0), u))]
    commit, nonce, _pid, _flags = m.letb.functions.account_state(u).call()
    h = int.from_bytes(clearing.request_commitment(u, nonce, 0, fills), "big")
    assert commit == h & ~(2**136 - 1)  # the top 120 bits (below them: the refund credit)


def test_credit_refund_and_spend_credit() -> None:
    assert clearing.credit_refund(5, 7) == (12, 0)
    assert clearing.credit_refund(clearing.MAX_CREDIT - 1, 1) == (clearing.MAX_CREDIT, 0)
    assert clearing.credit_refund(clearing.MAX_CREDIT, 1) == (clearing.MAX_CREDIT, 1)
    assert clearing.spend_credit(10, 4) == (4, 0)
    assert clearing.spend_credit(3, 4) == (3, 1)
    with pytest.raises(ClearingError, match="credit=-1"):
        clearing.credit_refund(-1, 0)
    with pytest.raises(ClearingError, match="refunded=-2"):
        clearing.credit_refund(0, -2)
