"""LETB on the real EVM: registry, roles, hours and caps, the price-ordered book with hints,
matching and escrow — every rule and every revert reason. Settlement and feedback:
test_letb_settlement.py."""

from __future__ import annotations

from dataclasses import replace

import pytest
from web3.logs import DISCARD

from gridledger.market import clearing

from .conftest import (
    CAP,
    FLOOR,
    INITIAL_REP,
    PER_MWH,
    USD,
    Market,
    add_letb,
    balance,
    commitment,
    deploy_revert_reason,
    fills_of,
    open_hour,
    post,
    revert_reason,
)

ZERO = "0x" + "00" * 20


def book_prices(m: Market) -> list[tuple[int, int]]:
    ids = m.letb.functions.book().call()
    return [(pid, m.letb.functions.offer_of(pid).call()[1]) for pid in ids]


def pid(m: Market, who: str) -> int:
    return m.letb.functions.producer_id(who).call()


# ----- registry and roles ---------------------------------------------------------------------


def test_registration_sets_bus_role_and_initial_reputation(market: Market) -> None:
    m = market
    p = m.producers[0]
    seller, price, e_wh, _next, hour, rep, bus = m.letb.functions.offer_of(pid(m, p)).call()
    assert (seller, price, e_wh, hour, rep, bus) == (p, 0, 0, 2**256 - 1, INITIAL_REP, m.buses[p])
    assert m.letb.functions.reputation_of(p).call() == INITIAL_REP
    _commit, nonce, producer_id, flags = m.letb.functions.account_state(p).call()
    assert (nonce, producer_id, flags) == (0, 1, 1 | 2)
    assert m.letb.functions.account_state(m.consumers[0]).call()[3] == 1 | 4
    assert m.letb.functions.account_state(m.prosumer).call()[3] == 1 | 2 | 4


def test_register_emits_event_and_admin_may_register(market: Market) -> None:
    m = market
    who = m.outsider
    receipt = m.chain.send(m.letb.functions.register(who, commitment(who), 7, 3), m.admin)
    ev = m.letb.events.Registered().process_receipt(receipt, errors=DISCARD)[0].args
    assert (ev.account, ev.commitment, ev.bus, ev.role) == (who, commitment(who), 7, 3)
    assert ev.producer_id == m.letb.functions.n_producers().call() == pid(m, who)


def test_register_reverts(market: Market) -> None:
    m = market
    who, c = m.outsider, commitment(m.outsider)
    reg = m.letb.functions.register
    assert revert_reason(m.chain, reg(who, c, 5, 1), who) == "unauthorised: operator only"
    assert revert_reason(m.chain, reg(m.producers[0], c, 5, 1), m.operator) == "already registered"
    assert revert_reason(m.chain, reg(who, b"\x00" * 32, 5, 1), m.operator) == "commitment is zero"
    assert revert_reason(m.chain, reg(who, c, 0, 1), m.operator) == "bus out of range"
    assert revert_reason(m.chain, reg(who, c, 65536, 1), m.operator) == "bus out of range"
    assert revert_reason(m.chain, reg(who, c, 5, 0), m.operator) == "bad role"
    assert revert_reason(m.chain, reg(who, c, 5, 4), m.operator) == "bad role"
    assert revert_reason(m.chain, reg(ZERO, c, 5, 1), m.operator) == "zero address"


def test_registration_bond_is_pulled_and_locked(market: Market) -> None:
    m = market
    bonded = m.chain.deploy("LETB", m.token.address, 2, m.operator, m.tdno, 300, 5 * USD, 16)
    who = m.outsider
    call = bonded.functions.register(who, commitment(who), 9, 1)
    assert revert_reason(m.chain, call, m.operator) == "insufficient allowance"
    m.chain.send(m.token.functions.approve(bonded.address, 2**256 - 1), who)
    before = balance(m, who)
    m.chain.send(call, m.operator)
    assert balance(m, who) == before - 5 * USD
    assert balance(m, bonded.address) == 5 * USD
    assert bonded.functions.bond().call() == 5 * USD
    assert bonded.functions.reputation_of(who).call() == 300


def test_role_changes_admin_only(market: Market) -> None:
    m = market
    new = m.outsider
    for fn in (m.letb.functions.set_operator, m.letb.functions.set_tdno):
        assert revert_reason(m.chain, fn(new), m.operator) == "unauthorised: admin only"
    receipt = m.chain.send(m.letb.functions.set_operator(new), m.admin)
    ev = m.letb.events.RoleSet().process_receipt(receipt, errors=DISCARD)[0].args
    assert (ev.role, ev.account) == ("operator", new)
    assert m.letb.functions.operator().call() == new
    call = m.letb.functions.open_hour(0, FLOOR, [], [])
    assert revert_reason(m.chain, call, m.operator) == "unauthorised: operator only"
    m.chain.send(call, new)
    m.chain.send(m.letb.functions.set_tdno(new), m.admin)
    assert m.letb.functions.tdno().call() == new


# ----- hours, caps and the feed-in floor ------------------------------------------------------


def test_open_hour_posts_caps_and_floor(market: Market) -> None:
    m = market
    assert revert_reason(m.chain, m.letb.functions.current_hour(), m.admin) == "no hour open"
    assert m.letb.functions.cap_of(3).call() == [2**256 - 1, 0]
    receipt = m.chain.send(m.letb.functions.open_hour(4, FLOOR, [3, 5], [CAP, CAP + 1]), m.operator)
    ev = m.letb.events.HourOpened().process_receipt(receipt, errors=DISCARD)[0].args
    assert (ev.t, ev.feed_in_floor, ev.n_caps) == (4, FLOOR, 2)
    assert m.letb.functions.current_hour().call() == 4
    assert m.letb.functions.feed_in_floor().call() == FLOOR
    assert m.letb.functions.cap_of(5).call() == [4, CAP + 1]


def test_open_hour_reverts(market: Market) -> None:
    m = market
    oh = m.letb.functions.open_hour
    op = m.operator
    assert revert_reason(m.chain, oh(0, FLOOR, [3], [CAP]), m.tdno) == "unauthorised: operator only"
    assert revert_reason(m.chain, oh(65535, FLOOR, [], []), op) == "hour too large"
    assert revert_reason(m.chain, oh(0, FLOOR, [3, 4], [CAP]), op) == "caps length mismatch"
    assert revert_reason(m.chain, oh(0, FLOOR, [0], [CAP]), op) == "bus out of range"
    assert revert_reason(m.chain, oh(0, FLOOR, [3], [0]), op) == "cap out of range"
    assert revert_reason(m.chain, oh(0, FLOOR, [3], [2**96]), op) == "cap out of range"
    assert revert_reason(m.chain, oh(0, FLOOR, [3], [FLOOR - 1]), op) == "cap below feed-in floor"
    assert revert_reason(m.chain, oh(0, 2**96, [], []), op) == "price out of range"
    m.chain.send(oh(2, FLOOR, [], []), op)
    assert revert_reason(m.chain, oh(1, FLOOR, [], []), op) == "hour already closed"


def test_open_hour_again_continues_the_hours_cap_list(market: Market) -> None:
    """More seller buses than one call carries (MAX_CAPS = 64): the operator opens the same
    hour again with the next buses; the first call's caps stay, a later hour drops them."""
    m = market
    oh, op = m.letb.functions.open_hour, m.operator
    first, more = list(range(1, 65)), list(range(65, 133))
    m.chain.send(oh(3, FLOOR, first, [CAP] * 64), op)
    m.chain.send(oh(3, FLOOR, more[:64], [CAP + 1] * 64), op)
    m.chain.send(oh(3, FLOOR, more[64:], [CAP + 2] * 4), op)
    caps = [m.letb.functions.cap_of(b).call() for b in (1, 64, 65, 128, 129, 132)]
    assert caps == [[3, CAP], [3, CAP], [3, CAP + 1], [3, CAP + 1], [3, CAP + 2], [3, CAP + 2]]
    assert m.letb.functions.current_hour().call() == 3
    m.chain.send(oh(4, FLOOR, [65], [CAP]), op)
    assert m.letb.functions.cap_of(65).call() == [4, CAP]
    assert m.letb.functions.cap_of(66).call() == [2**256 - 1, 0]  # its group's hour 4: no cap
    assert m.letb.functions.cap_of(1).call() == [3, CAP]  # hour 3's cap, none for hour 4


# ----- offers and the book --------------------------------------------------------------------


def test_offers_are_kept_in_price_order_with_ties_in_posting_order(market: Market) -> None:
    m = market
    open_hour(m, 0, m.letb)
    prices = [50, 40, 60, 40, 55, 50]
    for p, usd in zip(m.producers, prices, strict=True):
        receipt = post(m, p, 0, 1000, usd * PER_MWH)
        ev = m.letb.events.OfferPosted().process_receipt(receipt, errors=DISCARD)[0].args
        assert (ev.producer, ev.t, ev.e_wh, ev.price) == (p, 0, 1000, usd * PER_MWH)
    order = [
        m.producers.index(m.letb.functions.offer_of(i).call()[0])
        for i in m.letb.functions.book().call()
    ]
    assert order == [1, 3, 0, 5, 4, 2]
    assert m.letb.functions.head().call() == pid(m, m.producers[1])


def test_hint_computed_before_other_inserts_still_lands_in_order(market: Market) -> None:
    """Hints from the start of a block stay valid: the contract walks forward."""
    m = market
    open_hour(m, 0, m.letb)
    stale_hint = m.letb.functions.hint_for(70 * PER_MWH).call()  # empty book -> 0
    assert stale_hint == 0
    for p, usd in zip(m.producers[:3], (50, 60, 65), strict=True):
        post(m, p, 0, 1000, usd * PER_MWH)
    m.chain.send(m.letb.functions.post_offer(0, 1000, 70 * PER_MWH, stale_hint), m.producers[3])
    assert [p for _, p in book_prices(m)] == [
        50 * PER_MWH,
        60 * PER_MWH,
        65 * PER_MWH,
        70 * PER_MWH,
    ]


def test_post_offer_reverts(market: Market) -> None:
    m = market
    po = m.letb.functions.post_offer
    p = m.producers[0]
    price = 50 * PER_MWH
    assert revert_reason(m.chain, po(0, 1000, price, 0), p) == "wrong hour"
    open_hour(m, 0, m.letb)
    assert revert_reason(m.chain, po(1, 1000, price, 0), p) == "wrong hour"
    assert revert_reason(m.chain, po(0, 1000, price, 0), m.consumers[0]) == "not a producer"
    assert revert_reason(m.chain, po(0, 1000, price, 0), m.outsider) == "not a producer"
    assert revert_reason(m.chain, po(0, 0, price, 0), p) == "energy out of range"
    assert revert_reason(m.chain, po(0, 10**12 + 1, price, 0), p) == "energy out of range"
    assert revert_reason(m.chain, po(0, 1000, 0, 0), p) == "price out of range"
    assert revert_reason(m.chain, po(0, 1000, CAP + 1, 0), p) == "price above DLMP cap"
    assert revert_reason(m.chain, po(0, 1000, FLOOR - 1, 0), p) == "price below feed-in floor"
    # hint: an id with no offer this hour, then an offer dearer than ours
    assert revert_reason(m.chain, po(0, 1000, price, pid(m, m.producers[1])), p) == "stale hint"
    post(m, m.producers[1], 0, 1000, 60 * PER_MWH)
    assert revert_reason(m.chain, po(0, 1000, price, pid(m, m.producers[1])), p) == "bad hint"
    m.chain.send(po(0, 1000, price, 0), p)
    assert revert_reason(m.chain, po(0, 5, price, 0), p) == "offer already posted this hour"


def test_no_cap_for_bus_this_hour(market: Market) -> None:
    m = market
    p = m.producers[0]
    m.chain.send(m.letb.functions.open_hour(0, FLOOR, [m.buses[p]], [CAP]), m.operator)
    m.chain.send(m.letb.functions.open_hour(1, FLOOR, [], []), m.operator)  # caps not re-posted
    call = m.letb.functions.post_offer(1, 1000, 50 * PER_MWH, 0)
    assert revert_reason(m.chain, call, p) == "no DLMP cap for bus this hour"


def test_new_hour_empties_the_book_and_old_offers_are_stale_hints(market: Market) -> None:
    m = market
    open_hour(m, 0, m.letb)
    post(m, m.producers[0], 0, 1000, 50 * PER_MWH)
    open_hour(m, 1, m.letb)
    assert m.letb.functions.book().call() == []
    call = m.letb.functions.post_offer(1, 1000, 60 * PER_MWH, pid(m, m.producers[0]))
    assert revert_reason(m.chain, call, m.producers[1]) == "stale hint"
    post(m, m.producers[0], 1, 500, 55 * PER_MWH)  # a new hour allows a new offer
    assert m.letb.functions.book().call() == [pid(m, m.producers[0])]


# ----- matching and escrow --------------------------------------------------------------------


def test_request_fills_cheapest_first_and_escrows_payment(market: Market) -> None:
    m = market
    open_hour(m, 0, m.letb)
    for p, usd in zip(m.producers[:3], (50, 40, 60), strict=True):
        post(m, p, 0, 1000, usd * PER_MWH)
    u = m.consumers[0]
    before = balance(m, u)
    receipt = m.chain.send(m.letb.functions.request(0, 1500, 0), u)
    fills = fills_of(m, receipt)
    assert fills == [
        (pid(m, m.producers[1]), m.producers[1], 1000, 40 * PER_MWH),
        (pid(m, m.producers[0]), m.producers[0], 500, 50 * PER_MWH),
    ]
    paid = 1000 * 40 * PER_MWH + 500 * 50 * PER_MWH
    assert balance(m, u) == before - paid
    assert balance(m, m.letb.address) == paid + 1
    req = m.letb.events.Requested().process_receipt(receipt, errors=DISCARD)[0].args
    assert (req.nonce, req.demand_wh, req.filled_wh, req.paid) == (1, 1500, 1500, paid)
    # producer 1 exhausted and unlinked from the head, producer 0 partially filled
    assert [(i, p) for i, p in book_prices(m)] == [
        (pid(m, m.producers[0]), 50 * PER_MWH),
        (pid(m, m.producers[2]), 60 * PER_MWH),
    ]
    assert m.letb.functions.offer_of(pid(m, m.producers[0])).call()[2] == 500


def test_request_larger_than_book_takes_everything(market: Market) -> None:
    m = market
    open_hour(m, 0, m.letb)
    post(m, m.producers[0], 0, 300, 50 * PER_MWH)
    post(m, m.producers[1], 0, 200, 45 * PER_MWH)
    receipt = m.chain.send(m.letb.functions.request(0, 10_000, 0), m.consumers[0])
    assert [f[2] for f in fills_of(m, receipt)] == [200, 300]
    req = m.letb.events.Requested().process_receipt(receipt, errors=DISCARD)[0].args
    assert req.filled_wh == 500
    assert m.letb.functions.book().call() == []
    assert m.letb.functions.head().call() == 0


@pytest.mark.parametrize("cap", [1, 3])
def test_request_stops_at_the_deployed_fill_cap(market: Market, cap: int) -> None:
    """An LETB deployed with max_fills = cap fills at most cap offers per request (the rest of
    the demand stays unfilled) and agrees with the reference matcher given the same cap."""
    m = replace(market, letb=add_letb(market, cap))
    assert m.letb.functions.max_fills().call() == cap
    assert market.letb.functions.max_fills().call() == 16
    open_hour(m, 0, m.letb)
    sellers = m.producers[:5]
    for i, p in enumerate(sellers):
        post(m, p, 0, 100, (40 + i) * PER_MWH)
    u = m.consumers[0]
    before = balance(m, u)
    receipt = m.chain.send(m.letb.functions.request(0, 10_000, 0), u)
    fills = fills_of(m, receipt)
    assert [f[1] for f in fills] == sellers[:cap]
    req = m.letb.events.Requested().process_receipt(receipt, errors=DISCARD)[0].args
    paid = sum(100 * (40 + i) * PER_MWH for i in range(cap))
    assert (req.filled_wh, req.paid) == (100 * cap, paid)
    assert balance(m, u) == before - paid
    assert m.letb.functions.book().call() == [pid(m, p) for p in sellers[cap:]]
    book = tuple(
        clearing.Offer(pid(m, p), p, 100, (40 + i) * PER_MWH) for i, p in enumerate(sellers)
    )
    reps = {o.producer_id: INITIAL_REP for o in book}
    want = clearing.match_request(book, reps, 10_000, 0, max_fills=cap)
    assert [f.as_tuple() for f in want.fills] == fills
    # the capped request settles and is rated like any other
    paid_before = [balance(m, p) for p in sellers]
    m.chain.send(m.letb.functions.settle(u, req.nonce, 0, fills, [100] * cap), m.tdno)
    m.chain.send(m.letb.functions.feedback(u, req.nonce, 0, fills, [5] * cap), u)
    gained = [balance(m, p) - b for p, b in zip(sellers, paid_before, strict=True)]
    assert gained == [100 * (40 + i) * PER_MWH if i < cap else 0 for i in range(5)]
    assert m.letb.functions.reputations_of(sellers).call() == (
        [clearing.update_reputation(INITIAL_REP, 5)] * cap + [INITIAL_REP] * (5 - cap)
    )


def test_deployment_refuses_a_fill_cap_outside_1_to_16(market: Market) -> None:
    m = market
    args = (m.token.address, 2, m.operator, m.tdno, INITIAL_REP, 0)
    for bad in (0, 17):
        assert deploy_revert_reason(m.chain, "LETB", *args, bad) == "max_fills out of range"
    with pytest.raises(clearing.ClearingError, match="max_fills=17"):
        clearing.match_request((), {}, 1, 0, max_fills=17)


def test_exhausted_offer_in_the_middle_is_unlinked(market: Market) -> None:
    m = market
    open_hour(m, 0, m.letb)
    post(m, m.producers[0], 0, 1000, 40 * PER_MWH)
    post(m, m.producers[1], 0, 100, 45 * PER_MWH)
    post(m, m.producers[2], 0, 1000, 50 * PER_MWH)
    # a prosumer owns the head offer and buys: its own offer is skipped and stays the head,
    # so the exhausted offers after it are unlinked from the middle of the list
    reg = m.letb.functions.register(m.outsider, commitment(m.outsider), m.buses[m.outsider], 3)
    m.chain.send(reg, m.operator)
    m.chain.send(m.letb.functions.post_offer(0, 10, 30 * PER_MWH, 0), m.outsider)
    receipt = m.chain.send(m.letb.functions.request(0, 1100, 0), m.outsider)
    assert [f[1] for f in fills_of(m, receipt)] == [m.producers[0], m.producers[1]]
    assert m.letb.functions.book().call() == [pid(m, m.outsider), pid(m, m.producers[2])]


def test_reputation_threshold_skips_offers(market: Market) -> None:
    m = market
    open_hour(m, 0, m.letb)
    post(m, m.producers[0], 0, 1000, 40 * PER_MWH)
    r = m.chain.send(m.letb.functions.request(0, 100, INITIAL_REP + 1), m.consumers[0])
    assert fills_of(m, r) == []
    req = m.letb.events.Requested().process_receipt(r, errors=DISCARD)[0].args
    assert (req.nonce, req.filled_wh, req.paid) == (0, 0, 0)
    assert m.letb.functions.account_state(m.consumers[0]).call()[1] == 0
    r = m.chain.send(m.letb.functions.request(0, 100, INITIAL_REP), m.consumers[0])
    assert len(fills_of(m, r)) == 1


def test_prosumer_does_not_buy_its_own_offer(market: Market) -> None:
    m = market
    open_hour(m, 0, m.letb)
    post(m, m.prosumer, 0, 1000, 30 * PER_MWH)
    post(m, m.producers[0], 0, 1000, 50 * PER_MWH)
    receipt = m.chain.send(m.letb.functions.request(0, 500, 0), m.prosumer)
    assert [f[1] for f in fills_of(m, receipt)] == [m.producers[0]]


def test_request_reverts(market: Market) -> None:
    m = market
    rq = m.letb.functions.request
    u = m.consumers[0]
    assert revert_reason(m.chain, rq(0, 100, 0), u) == "wrong hour"
    open_hour(m, 0, m.letb)
    assert revert_reason(m.chain, rq(0, 100, 0), m.producers[0]) == "not a consumer"
    assert revert_reason(m.chain, rq(0, 100, 0), m.outsider) == "not a consumer"
    assert revert_reason(m.chain, rq(0, 0, 0), u) == "energy out of range"
    assert revert_reason(m.chain, rq(0, 10**12 + 1, 0), u) == "energy out of range"
    assert revert_reason(m.chain, rq(0, 100, 1001), u) == "threshold out of range"
    post(m, m.producers[0], 0, 1000, 50 * PER_MWH)
    m.chain.send(rq(0, 100, 0), u)
    assert revert_reason(m.chain, rq(0, 100, 0), u) == "previous request not settled"


def test_request_without_funds_reverts_in_the_token(market: Market) -> None:
    m = market
    open_hour(m, 0, m.letb)
    post(m, m.producers[0], 0, 1000, 50 * PER_MWH)
    u = m.consumers[1]
    m.chain.send(m.token.functions.transfer(m.admin, balance(m, u)), u)
    assert revert_reason(m.chain, m.letb.functions.request(0, 100, 0), u) == "insufficient balance"


def test_one_token_transfer_per_request_whatever_the_fills(market: Market) -> None:
    m = market
    open_hour(m, 0, m.letb)
    for i, p in enumerate(m.producers[:4]):
        post(m, p, 0, 100, (40 + i) * PER_MWH)
    receipt = m.chain.send(m.letb.functions.request(0, 350, 0), m.consumers[0])
    assert len(fills_of(m, receipt)) == 4
    transfers = m.token.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert len(transfers) == 1
    assert transfers[0].args.value == 100 * PER_MWH * (40 + 41 + 42) + 50 * 43 * PER_MWH


def test_exhausted_offer_is_a_stale_hint(market: Market) -> None:
    m = market
    open_hour(m, 0, m.letb)
    post(m, m.producers[0], 0, 100, 40 * PER_MWH)
    m.chain.send(m.letb.functions.request(0, 100, 0), m.consumers[0])
    call = m.letb.functions.post_offer(0, 100, 50 * PER_MWH, pid(m, m.producers[0]))
    assert revert_reason(m.chain, call, m.producers[1]) == "stale hint"
