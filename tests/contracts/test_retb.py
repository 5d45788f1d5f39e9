"""RETB on the real EVM: REP offers, eligibility of the operator's choice, escrow, settlement,
feedback, the incentive with its on-chain fixed-point logarithm — every rule and revert."""

from __future__ import annotations

import math

import pytest
from web3.logs import DISCARD

from gridledger.market import clearing

from .conftest import (
    CAP,
    FLOOR,
    INITIAL_REP,
    PER_MWH,
    RETB_PARAMS,
    Market,
    balance,
    commitment,
    deploy_revert_reason,
    open_hour,
    revert_reason,
)

PARAMS = clearing.IncentiveParams(**RETB_PARAMS)
PRICE = 80 * PER_MWH


def offer(m: Market, rep: str, t: int = 0, start: int = 0, end: int = 12, cap: int = 10**6,
          price: int = PRICE, stable: int = 100) -> None:  # fmt: skip
    m.chain.send(m.retb.functions.post_offer(t, start, end, cap, price, stable), rep)


def buy(m: Market, user: str, rep: str, shortage: int = 5000, t: int = 0, start: int = 0,
        end: int = 1, rt: int = 0) -> clearing.RetbTrade:  # fmt: skip
    receipt = m.chain.send(m.retb.functions.request(t, shortage, start, end, rt, rep), user)
    ev = m.retb.events.Trade().process_receipt(receipt, errors=DISCARD)[0].args
    return clearing.RetbTrade(
        ev.buyer, ev.nonce, ev.t, ev.start, ev.end, ev.rep, ev.e_wh, ev.price, ev.stable_hours
    )


@pytest.fixture
def hour0(market: Market) -> Market:
    open_hour(market, 0, market.retb)
    return market


def test_rep_registration_and_offer(hour0: Market) -> None:
    m = hour0
    rep = m.reps[0]
    assert m.retb.functions.rep_offer(rep).call() == [0, 0, 0, 0, INITIAL_REP, m.buses[rep], 0]
    receipt = m.chain.send(m.retb.functions.post_offer(0, 2, 9, 10**6, PRICE, 37), rep)
    ev = m.retb.events.OfferPosted().process_receipt(receipt, errors=DISCARD)[0].args
    assert (ev.rep, ev.t, ev.start, ev.end, ev.capacity_wh, ev.price, ev.stable_hours) == (
        rep,
        0,
        2,
        9,
        10**6,
        PRICE,
        37,
    )
    assert m.retb.functions.rep_offer(rep).call() == [
        PRICE,
        10**6,
        2,
        9,
        INITIAL_REP,
        m.buses[rep],
        37,
    ]
    offer(m, rep, start=0, end=3, cap=5, price=PRICE + 1, stable=1)  # replaces
    assert m.retb.functions.rep_offer(rep).call()[:4] == [PRICE + 1, 5, 0, 3]
    assert revert_reason(m.chain, m.retb.functions.rep_offer(m.consumers[0]), rep) == "not a REP"


def test_post_offer_reverts(market: Market) -> None:
    m = market
    po = m.retb.functions.post_offer
    rep = m.reps[0]
    assert revert_reason(m.chain, po(0, 0, 1, 100, PRICE, 1), rep) == "wrong hour"
    open_hour(m, 3, m.retb)
    assert revert_reason(m.chain, po(0, 3, 4, 100, PRICE, 1), rep) == "wrong hour"
    assert revert_reason(m.chain, po(3, 3, 4, 100, PRICE, 1), m.consumers[0]) == "not a REP"
    assert revert_reason(m.chain, po(3, 2, 4, 100, PRICE, 1), rep) == "bad window"
    assert revert_reason(m.chain, po(3, 4, 4, 100, PRICE, 1), rep) == "bad window"
    assert revert_reason(m.chain, po(3, 4, 65536, 100, PRICE, 1), rep) == "bad window"
    assert revert_reason(m.chain, po(3, 3, 4, 0, PRICE, 1), rep) == "energy out of range"
    assert revert_reason(m.chain, po(3, 3, 4, 10**12 + 1, PRICE, 1), rep) == "energy out of range"
    assert revert_reason(m.chain, po(3, 3, 4, 100, PRICE, 65536), rep) == (
        "stable hours out of range"
    )
    assert revert_reason(m.chain, po(3, 3, 4, 100, 0, 1), rep) == "price out of range"
    assert revert_reason(m.chain, po(3, 3, 4, 100, CAP + 1, 1), rep) == "price above DLMP cap"
    assert revert_reason(m.chain, po(3, 3, 4, 100, FLOOR - 1, 1), rep) == (
        "price below feed-in floor"
    )
    m.chain.send(m.retb.functions.open_hour(4, FLOOR, [], []), m.operator)
    assert revert_reason(m.chain, po(4, 4, 5, 100, PRICE, 1), rep) == (
        "no DLMP cap for bus this hour"
    )


def test_request_matches_the_hinted_rep_and_escrows(hour0: Market) -> None:
    m = hour0
    rep, user = m.reps[0], m.consumers[0]
    offer(m, rep, stable=100)
    before = balance(m, user)
    trade = buy(m, user, rep, shortage=5000)
    assert trade == clearing.RetbTrade(user, 1, 0, 0, 1, rep, 5000, PRICE, 100)
    assert balance(m, user) == before - 5000 * PRICE
    assert balance(m, m.retb.address) == 5000 * PRICE + 1
    assert m.retb.functions.rep_offer(rep).call()[1] == 10**6 - 5000


def test_request_eligibility_reverts(hour0: Market) -> None:
    m = hour0
    rq = m.retb.functions.request
    rep, user = m.reps[0], m.consumers[0]
    offer(m, rep, start=2, end=6, cap=1000)
    assert revert_reason(m.chain, rq(0, 100, 1, 3, 0, rep), user) == (
        "REP window does not cover demand window"
    )
    assert revert_reason(m.chain, rq(0, 100, 5, 7, 0, rep), user) == (
        "REP window does not cover demand window"
    )
    assert revert_reason(m.chain, rq(0, 1001, 2, 3, 0, rep), user) == (
        "REP capacity below shortage"
    )
    assert revert_reason(m.chain, rq(0, 100, 2, 3, INITIAL_REP + 1, rep), user) == (
        "REP reputation below threshold"
    )
    assert revert_reason(m.chain, rq(0, 100, 2, 3, 0, m.consumers[1]), user) == "not a REP"
    assert revert_reason(m.chain, rq(0, 100, 2, 3, 0, m.reps[1]), user) == (
        "REP window does not cover demand window"  # never posted an offer
    )
    m.chain.send(rq(0, 1000, 2, 3, INITIAL_REP, rep), user)  # exactly eligible
    assert m.retb.functions.rep_offer(rep).call()[1] == 0


def test_request_input_reverts(hour0: Market) -> None:
    m = hour0
    rq = m.retb.functions.request
    rep, user = m.reps[0], m.consumers[0]
    offer(m, rep)
    assert revert_reason(m.chain, rq(1, 100, 1, 2, 0, rep), user) == "wrong hour"
    assert revert_reason(m.chain, rq(0, 100, 0, 1, 0, rep), m.reps[1]) == "not a consumer"
    assert revert_reason(m.chain, rq(0, 100, 1, 1, 0, rep), user) == "bad window"
    assert revert_reason(m.chain, rq(0, 0, 0, 1, 0, rep), user) == "energy out of range"
    assert revert_reason(m.chain, rq(0, 100, 0, 1, 1001, rep), user) == "threshold out of range"
    both = m.outsider
    m.chain.send(m.retb.functions.register(both, commitment(both), m.buses[both], 3), m.operator)
    offer(m, both)
    assert revert_reason(m.chain, rq(0, 100, 0, 1, 0, both), both) == "cannot buy from yourself"
    m.chain.send(rq(0, 100, 0, 1, 0, rep), user)
    assert revert_reason(m.chain, rq(0, 100, 0, 1, 0, rep), user) == "previous request not settled"


def test_settle_pays_rep_refunds_buyer_once(hour0: Market) -> None:
    m = hour0
    rep, user = m.reps[0], m.consumers[0]
    offer(m, rep)
    trade = buy(m, user, rep, shortage=5000)
    b_rep, b_user = balance(m, rep), balance(m, user)
    receipt = m.chain.send(m.retb.functions.settle(trade.as_tuple(), 4000), m.tdno)
    ev = m.retb.events.Settled().process_receipt(receipt, errors=DISCARD)[0].args
    assert (ev.delivered_wh, ev.paid, ev.refunded) == (4000, 4000 * PRICE, 1000 * PRICE)
    assert balance(m, rep) - b_rep == 4000 * PRICE
    assert balance(m, user) - b_user == 1000 * PRICE
    assert balance(m, m.retb.address) == 1
    st = m.retb.functions.settle
    assert revert_reason(m.chain, st(trade.as_tuple(), 4000), m.tdno) == "already settled"


def test_settle_reverts(hour0: Market) -> None:
    m = hour0
    rep, user = m.reps[0], m.consumers[0]
    offer(m, rep)
    trade = buy(m, user, rep, shortage=5000)
    st = m.retb.functions.settle
    assert revert_reason(m.chain, st(trade.as_tuple(), 1), user) == "unauthorised: tdno only"
    forged = clearing.RetbTrade(**{**trade.__dict__, "price": PRICE + 1})
    assert revert_reason(m.chain, st(forged.as_tuple(), 1), m.tdno) == "unknown request"
    assert revert_reason(m.chain, st(trade.as_tuple(), 5001), m.tdno) == (
        "delivered above schedule"
    )


def test_feedback_reputation_and_incentive(hour0: Market) -> None:
    m = hour0
    rep, user = m.reps[0], m.consumers[0]
    offer(m, rep, stable=100)
    trade = buy(m, user, rep, shortage=200_000)
    m.chain.send(m.retb.functions.settle(trade.as_tuple(), 180_000), m.tdno)
    supply, b_rep = m.token.functions.totalSupply().call(), balance(m, rep)
    receipt = m.chain.send(m.retb.functions.feedback(trade.as_tuple(), 180_000, 5), user)
    rated = m.retb.events.Rated().process_receipt(receipt, errors=DISCARD)[0].args
    assert rated.reputation == clearing.update_reputation(INITIAL_REP, 5)
    assert m.retb.functions.reputation_of(rep).call() == rated.reputation
    minted = m.retb.events.IncentiveMinted().process_receipt(receipt, errors=DISCARD)[0].args
    want = clearing.trade_incentive(trade, 180_000, 5, PARAMS)
    assert want > 0
    assert minted.incentive == want
    assert minted.x_fp == clearing.incentive_x_fp(180_000, 200_000, 100, PARAMS)
    assert m.token.functions.totalSupply().call() - supply == want
    assert balance(m, rep) - b_rep == want
    # the paper's formula: C_d = C_REG (1 + log_k(x + 1)), I = C_d - C_REG
    x = (180_000 / 1e6) * (180_000 / 200_000) * (100 / 24)
    c_reg = 180_000 * PRICE
    assert want == pytest.approx(c_reg * math.log(1 + x, 10), rel=1e-9)


def test_no_incentive_without_positive_feedback_or_delivery(hour0: Market) -> None:
    m = hour0
    rep, user = m.reps[0], m.consumers[0]
    offer(m, rep)
    supply = m.token.functions.totalSupply().call()
    trade = buy(m, user, rep)
    m.chain.send(m.retb.functions.settle(trade.as_tuple(), 5000), m.tdno)
    receipt = m.chain.send(m.retb.functions.feedback(trade.as_tuple(), 5000, 2), user)
    assert m.retb.events.IncentiveMinted().process_receipt(receipt, errors=DISCARD) == ()
    trade = buy(m, user, rep)
    m.chain.send(m.retb.functions.settle(trade.as_tuple(), 0), m.tdno)
    receipt = m.chain.send(m.retb.functions.feedback(trade.as_tuple(), 0, 5), user)
    assert m.retb.events.IncentiveMinted().process_receipt(receipt, errors=DISCARD) == ()
    assert m.token.functions.totalSupply().call() == supply
    want = clearing.update_reputation(clearing.update_reputation(INITIAL_REP, 2), 5)
    assert m.retb.functions.reputation_of(rep).call() == want


def test_feedback_reverts(hour0: Market) -> None:
    m = hour0
    rep, user = m.reps[0], m.consumers[0]
    offer(m, rep)
    trade = buy(m, user, rep)
    fb = m.retb.functions.feedback
    assert revert_reason(m.chain, fb(trade.as_tuple(), 5000, 5), m.consumers[1]) == (
        "only the buyer may rate"
    )
    assert revert_reason(m.chain, fb(trade.as_tuple(), 5000, 5), user) == "request not settled"
    m.chain.send(m.retb.functions.settle(trade.as_tuple(), 4000), m.tdno)
    assert revert_reason(m.chain, fb(trade.as_tuple(), 5000, 5), user) == "unknown request"
    assert revert_reason(m.chain, fb(trade.as_tuple(), 4000, 6), user) == "score out of range"
    m.chain.send(fb(trade.as_tuple(), 4000, 4), user)
    assert revert_reason(m.chain, fb(trade.as_tuple(), 4000, 4), user) == "already rated"


def test_unauthorised_role_calls(market: Market) -> None:
    m = market
    who = m.outsider
    assert revert_reason(m.chain, m.retb.functions.set_tdno(who), who) == (
        "unauthorised: admin only"
    )
    assert revert_reason(m.chain, m.retb.functions.open_hour(0, FLOOR, [], []), m.tdno) == (
        "unauthorised: operator only"
    )
    call = m.retb.functions.register(who, commitment(who), 3, 1)
    assert revert_reason(m.chain, call, who) == "unauthorised: operator only"


def test_constructor_validates_incentive_parameters(market: Market) -> None:
    m = market
    base = (m.token.address, 1, m.operator, m.tdno, 400, 0)
    for params, reason in [
        ((1, 10**6, 24), "log base out of range"),
        ((10, 0, 24), "scale out of range"),
        ((10, 10**6, 0), "stable reference out of range"),
    ]:
        assert deploy_revert_reason(m.chain, "RETB", *base, *params) == reason


# ----- the fixed-point logarithm ------------------------------------------------------------------

X_SAMPLES = [1e-6, 3.7e-5, 1e-3, 0.0133, 0.1, 0.5, 1.0, 2.5, 9.0, 42.0, 1e3, 7.7e4, 1e6]


def test_on_chain_log_matches_reference_and_math_log(market: Market) -> None:
    m = market
    log2_k = m.retb.functions.log2_k_fp().call()
    assert log2_k == clearing.log2_fp(10 * 10**18)
    worst = 0.0
    for x in X_SAMPLES:
        x_fp = int(x * 10**18)
        on_chain = m.retb.functions.log2_fp(10**18 + x_fp).call()
        assert on_chain == clearing.log2_fp(10**18 + x_fp)
        exact = math.log1p(x_fp / 1e18) / math.log(10)
        got = on_chain / log2_k
        worst = max(worst, abs(got - exact) / exact)
        assert m.retb.functions.incentive_of(10**24, x_fp).call() == clearing.incentive(
            10**24, x_fp, PARAMS
        )
    assert worst < 1e-6
    assert revert_reason(m.chain, m.retb.functions.log2_fp(10**18 - 1), m.admin) == (
        "log2 argument below 1"
    )
