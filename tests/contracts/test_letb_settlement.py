"""LETB on the real EVM, after the match: settlement (pro-rata payment, the refund credit and
its use, withdrawal, transfers above the credit field) and feedback (the reputation rule) —
every rule and every revert reason. Registry, hours, the book and matching: test_letb.py."""

from __future__ import annotations

from web3.logs import DISCARD

from gridledger.market.clearing import MAX_CREDIT

from .conftest import (
    INITIAL_REP,
    PER_MWH,
    Market,
    balance,
    fills_of,
    open_hour,
    post,
    revert_reason,
)

# ----- settlement ------------------------------------------------------------------------------


def _matched(m: Market, demand: int = 1500) -> tuple[str, int, list]:
    open_hour(m, 0, m.letb)
    post(m, m.producers[0], 0, 1000, 40 * PER_MWH)
    post(m, m.producers[1], 0, 1000, 50 * PER_MWH)
    u = m.consumers[0]
    receipt = m.chain.send(m.letb.functions.request(0, demand, 0), u)
    return u, 1, fills_of(m, receipt)


def test_settle_pays_pro_rata_and_credits_the_refund_once(market: Market) -> None:
    m = market
    u, nonce, fills = _matched(m)
    p0, p1 = m.producers[0], m.producers[1]
    before = {w: balance(m, w) for w in (u, p0, p1, m.letb.address)}
    receipt = m.chain.send(m.letb.functions.settle(u, nonce, 0, fills, [900, 500]), m.tdno)
    assert balance(m, p0) - before[p0] == 900 * 40 * PER_MWH
    assert balance(m, p1) - before[p1] == 500 * 50 * PER_MWH
    refund = 100 * 40 * PER_MWH
    assert balance(m, u) == before[u]  # the refund is credited inside the LETB, not sent
    assert m.letb.functions.credit_of(u).call() == refund
    assert balance(m, m.letb.address) == 1 + refund  # escrow seed + the buyer's credit
    ev = m.letb.events.Settled().process_receipt(receipt, errors=DISCARD)[0].args
    assert ev.delivered_wh == 1400
    assert ev.paid == 900 * 40 * PER_MWH + 500 * 50 * PER_MWH
    assert ev.refunded == refund
    (cr,) = m.letb.events.Credited().process_receipt(receipt, errors=DISCARD)
    assert (cr.args.buyer, cr.args.nonce, cr.args.amount, cr.args.credit) == (
        u,
        nonce,
        refund,
        refund,
    )
    call = m.letb.functions.settle(u, nonce, 0, fills, [900, 500])
    assert revert_reason(m.chain, call, m.tdno) == "already settled"


def test_next_request_spends_the_credit_first(market: Market) -> None:
    m = market
    u, nonce, fills = _matched(m)
    m.chain.send(m.letb.functions.settle(u, nonce, 0, fills, [900, 500]), m.tdno)
    credit = 100 * 40 * PER_MWH
    # 50 Wh at 50 $/MWh cost less than the credit: nothing is pulled
    before = balance(m, u)
    receipt = m.chain.send(m.letb.functions.request(0, 50, 0), u)
    assert balance(m, u) == before
    cost = 50 * 50 * PER_MWH
    assert m.letb.functions.credit_of(u).call() == credit - cost
    (ev,) = m.letb.events.CreditUsed().process_receipt(receipt, errors=DISCARD)
    assert (ev.args.buyer, ev.args.nonce, ev.args.amount, ev.args.credit) == (
        u,
        nonce + 1,
        cost,
        credit - cost,
    )
    fills2 = fills_of(m, receipt)
    m.chain.send(m.letb.functions.settle(u, nonce + 1, 0, fills2, [50]), m.tdno)
    # 200 Wh cost more than the rest of the credit: it is used up, the difference is pulled
    receipt = m.chain.send(m.letb.functions.request(0, 200, 0), u)
    assert m.letb.functions.credit_of(u).call() == 0
    assert before - balance(m, u) == 200 * 50 * PER_MWH - (credit - cost)
    assert balance(m, m.letb.address) == 1 + 200 * 50 * PER_MWH


def test_withdraw_pays_the_credit_to_its_buyer_only(market: Market) -> None:
    m = market
    u, nonce, fills = _matched(m)
    assert revert_reason(m.chain, m.letb.functions.withdraw(), u) == "no credit"
    m.chain.send(m.letb.functions.settle(u, nonce, 0, fills, [0, 0]), m.tdno)
    credit = 1000 * 40 * PER_MWH + 500 * 50 * PER_MWH
    assert m.letb.functions.credit_of(u).call() == credit
    other = m.consumers[1]
    assert revert_reason(m.chain, m.letb.functions.withdraw(), other) == "no credit"
    before = balance(m, u)
    receipt = m.chain.send(m.letb.functions.withdraw(), u)
    assert balance(m, u) - before == credit
    assert m.letb.functions.credit_of(u).call() == 0
    assert balance(m, m.letb.address) == 1
    (ev,) = m.letb.events.Withdrawn().process_receipt(receipt, errors=DISCARD)
    assert (ev.args.account, ev.args.amount) == (u, credit)
    assert revert_reason(m.chain, m.letb.functions.withdraw(), u) == "no credit"
    # the account slot keeps its nonce and flags: the settled request can still be rated
    assert m.letb.functions.account_state(u).call()[1:] == [nonce, 0, 1 | 4 | 16]


def test_settle_reverts(market: Market) -> None:
    m = market
    u, nonce, fills = _matched(m)
    st = m.letb.functions.settle
    assert revert_reason(m.chain, st(u, nonce, 0, fills, [1, 1]), m.operator) == (
        "unauthorised: tdno only"
    )
    assert revert_reason(m.chain, st(u, nonce, 0, fills, [1]), m.tdno) == "length mismatch"
    forged = [(*fills[0][:2], fills[0][2] + 1, fills[0][3]), fills[1]]
    assert revert_reason(m.chain, st(u, nonce, 0, forged, [1, 1]), m.tdno) == "unknown request"
    assert revert_reason(m.chain, st(u, nonce + 1, 0, fills, [1, 1]), m.tdno) == "unknown request"
    assert revert_reason(m.chain, st(m.consumers[1], nonce, 0, fills, [1, 1]), m.tdno) == (
        "already settled"  # consumer 1 has no open request
    )
    over = [fills[0][2], fills[1][2] + 1]
    assert revert_reason(m.chain, st(u, nonce, 0, fills, over), m.tdno) == (
        "delivered above schedule"
    )


def test_zero_delivery_refunds_everything_and_new_request_allowed(market: Market) -> None:
    m = market
    u, nonce, fills = _matched(m, demand=300)
    before = balance(m, u)
    m.chain.send(m.letb.functions.settle(u, nonce, 0, fills, [0]), m.tdno)
    assert balance(m, u) == before
    assert m.letb.functions.credit_of(u).call() == 300 * 40 * PER_MWH  # all of it credited
    receipt = m.chain.send(m.letb.functions.request(0, 100, 0), u)
    assert m.letb.events.Requested().process_receipt(receipt, errors=DISCARD)[0].args.nonce == 2


def test_refund_above_the_credit_field_is_transferred(market: Market) -> None:
    m = market
    open_hour(m, 0, m.letb)
    e_wh, price = 40_000_000, 150 * PER_MWH  # 6e21 base units > 2**72 - 1
    assert e_wh * price > MAX_CREDIT
    post(m, m.producers[0], 0, e_wh, price)
    u = m.consumers[0]
    fills = fills_of(m, m.chain.send(m.letb.functions.request(0, e_wh, 0), u))
    before = balance(m, u)
    receipt = m.chain.send(m.letb.functions.settle(u, 1, 0, fills, [0]), m.tdno)
    assert balance(m, u) - before == e_wh * price  # transferred, not credited
    assert m.letb.functions.credit_of(u).call() == 0
    assert m.letb.events.Credited().process_receipt(receipt, errors=DISCARD) == ()
    assert balance(m, m.letb.address) == 1


# ----- feedback and reputation -------------------------------------------------------------------


def test_feedback_moves_reputation_by_the_rule(market: Market) -> None:
    m = market
    u, nonce, fills = _matched(m)
    m.chain.send(m.letb.functions.settle(u, nonce, 0, fills, [1000, 500]), m.tdno)
    receipt = m.chain.send(m.letb.functions.feedback(u, nonce, 0, fills, [5, 0]), u)
    rated = m.letb.events.Rated().process_receipt(receipt, errors=DISCARD)
    want = [(7 * INITIAL_REP + 1000) // 8, (7 * INITIAL_REP) // 8]
    assert [e.args.reputation for e in rated] == want
    assert [e.args.seller for e in rated] == [m.producers[0], m.producers[1]]
    assert m.letb.functions.reputation_of(m.producers[0]).call() == want[0]
    assert m.letb.functions.reputation_of(m.producers[1]).call() == want[1]


def test_feedback_reverts_for_stranger_twice_unsettled(market: Market) -> None:
    m = market
    u, nonce, fills = _matched(m)
    fb = m.letb.functions.feedback
    stranger = m.consumers[1]
    assert revert_reason(m.chain, fb(u, nonce, 0, fills, [5, 5]), stranger) == (
        "only the buyer may rate"
    )
    assert revert_reason(m.chain, fb(u, nonce, 0, fills, [5, 5]), u) == "request not settled"
    m.chain.send(m.letb.functions.settle(u, nonce, 0, fills, [1000, 500]), m.tdno)
    assert revert_reason(m.chain, fb(u, nonce, 0, fills[:1], [5]), u) == "unknown request"
    assert revert_reason(m.chain, fb(u, nonce, 0, fills, [5]), u) == "length mismatch"
    assert revert_reason(m.chain, fb(u, nonce, 0, fills, [5, 6]), u) == "score out of range"
    m.chain.send(fb(u, nonce, 0, fills, [4, 4]), u)
    assert revert_reason(m.chain, fb(u, nonce, 0, fills, [4, 4]), u) == "already rated"


def test_reputation_stays_within_bounds(market: Market) -> None:
    m = market
    p, u = m.producers[0], m.consumers[0]
    seen = []
    for t, score in enumerate([5] * 12 + [0] * 12):
        open_hour(m, t, m.letb)
        post(m, p, t, 10, 40 * PER_MWH)
        fills = fills_of(m, m.chain.send(m.letb.functions.request(t, 10, 0), u))
        nonce = t + 1
        m.chain.send(m.letb.functions.settle(u, nonce, t, fills, [10]), m.tdno)
        m.chain.send(m.letb.functions.feedback(u, nonce, t, fills, [score]), u)
        seen.append(m.letb.functions.reputation_of(p).call())
    want, r = [], INITIAL_REP
    for score in [5] * 12 + [0] * 12:
        r = (7 * r + 200 * score) // 8
        want.append(r)
    assert seen == want
    assert all(0 <= r <= 1000 for r in seen)
