"""Batched settlement and order-independent offers on the real EVM (issue 13).

settle_many: every per-request rule of settle holds per item (delivered <= scheduled, TDNO only,
paid once, feedback only by the buyer and only after settlement), the outcome equals the
reference clearing item for item, a refused item reverts the whole call, at most MAX_BATCH
items per call, and the gas per item and per call stays within gridledger/contracts/
gas_bounds.py. Offers: the rounds of `clearing.offer_rounds` land in book order whatever order
each round is executed in, every post_offer within its gas bound.
"""

from __future__ import annotations

import random

import pytest
from eth_abi import decode as abi_decode
from web3.logs import DISCARD

from gridledger.chain import EmbeddedChain
from gridledger.contracts.gas_bounds import bound_of, item_bound_of
from gridledger.market import clearing
from gridledger.market.contracts import LETB as LETBWrapper
from gridledger.market.contracts import (
    MAX_BATCH,
    MAX_BATCH_FILLS,
    SETTLE_FILL_GAS_LIMIT,
    SETTLE_ITEM_GAS_LIMIT,
)

from .conftest import (
    CAP,
    FLOOR,
    PER_MWH,
    Chain,
    Market,
    balance,
    commitment,
    deploy_market,
    fills_of,
    open_hour,
    post,
    revert_reason,
)

PRICE = 80 * PER_MWH


def _letb_requests(m: Market, t: int = 0) -> list[tuple[str, int, list[tuple]]]:
    """Hour t: three producers offer 100 Wh each, every consumer buys 120 Wh (1-2 fills)."""
    for i, p in enumerate(m.producers[:3]):
        post(m, p, t, 100, (40 + i) * PER_MWH)
    out = []
    for u in m.consumers[:2]:
        fills = fills_of(m, m.chain.send(m.letb.functions.request(t, 120, 0), u))
        out.append((u, m.letb.functions.account_state(u).call()[1], fills))
    return out


def _ref_fills(fills: list[tuple]) -> list[clearing.Fill]:
    return [clearing.Fill(*f) for f in fills]


def test_contracts_and_reference_share_the_batch_cap(market: Market) -> None:
    assert market.letb.functions.max_batch().call() == MAX_BATCH == clearing.MAX_BATCH
    assert market.retb.functions.max_batch().call() == MAX_BATCH


def test_letb_settle_many_pays_each_request_as_the_reference(market: Market) -> None:
    m = market
    open_hour(m, 0, m.letb)
    reqs = _letb_requests(m)
    assert [len(f) for _, _, f in reqs] == [2, 2]
    delivered = [[f[2] - 7 * k for k, f in enumerate(fills)] for _, _, fills in reqs]
    sellers = sorted({f[1] for _, _, fills in reqs for f in fills})
    before = {a: balance(m, a) for a in sellers}
    items = [(u, n, fills, d) for (u, n, fills), d in zip(reqs, delivered, strict=True)]
    receipt = m.chain.send(m.letb.functions.settle_many(0, items), m.tdno)
    ref = clearing.settle_many(
        [(u, _ref_fills(fills), d) for (u, _n, fills), d in zip(reqs, delivered, strict=True)]
    )
    settled = m.letb.events.Settled().process_receipt(receipt, errors=DISCARD)
    assert [(e.args.buyer, e.args.paid, e.args.refunded) for e in settled] == [
        (u, s.paid, s.refunded) for (u, _, _), s in zip(reqs, ref, strict=True)
    ]
    got = {a: balance(m, a) - before[a] for a in sellers}
    want: dict[str, int] = dict.fromkeys(sellers, 0)
    for (_u, _n, fills), s in zip(reqs, ref, strict=True):
        for f, pay in zip(fills, s.payouts, strict=True):
            want[f[1]] += pay
    assert got == want
    for (u, _n, _f), s in zip(reqs, ref, strict=True):
        assert m.letb.functions.credit_of(u).call() == s.refunded
    assert receipt.gasUsed // len(items) <= item_bound_of("LETB.settle_many")


def test_letb_settle_many_refusals(market: Market) -> None:
    """Over schedule, a stranger, twice (in one batch and after settlement), a forged item; and
    feedback: before settlement, by a stranger, twice. Each refused call changes nothing."""
    m = market
    open_hour(m, 0, m.letb)
    (u0, n0, f0), (u1, n1, f1) = _letb_requests(m)
    ok0, ok1 = (u0, n0, f0, [f[2] for f in f0]), (u1, n1, f1, [f[2] for f in f1])
    sm = m.letb.functions.settle_many
    over = (u1, n1, f1, [f1[0][2] + 1, f1[1][2]])
    assert revert_reason(m.chain, sm(0, [ok0, over]), m.tdno) == "delivered above schedule"
    assert revert_reason(m.chain, sm(0, [ok0, ok1]), u0) == "unauthorised: tdno only"
    assert revert_reason(m.chain, sm(0, [ok0, ok0]), m.tdno) == "already settled"
    forged = (u1, n1 + 1, f1, ok1[3])
    assert revert_reason(m.chain, sm(0, [ok0, forged]), m.tdno) == "unknown request"
    assert revert_reason(m.chain, sm(1, [ok0]), m.tdno) == "unknown request"  # another hour
    fb = m.letb.functions.feedback
    assert revert_reason(m.chain, fb(u0, n0, 0, f0, [5] * len(f0)), u0) == "request not settled"
    assert m.letb.functions.account_state(u0).call()[3] & 8  # still open: nothing was settled
    m.chain.send(sm(0, [ok0, ok1]), m.tdno)
    assert revert_reason(m.chain, sm(0, [ok1]), m.tdno) == "already settled"
    stranger = m.consumers[2]
    assert revert_reason(m.chain, fb(u0, n0, 0, f0, [5] * len(f0)), stranger) == (
        "only the buyer may rate"
    )
    m.chain.send(fb(u0, n0, 0, f0, [5] * len(f0)), u0)
    assert revert_reason(m.chain, fb(u0, n0, 0, f0, [5] * len(f0)), u0) == "already rated"


def _retb_trades(m: Market, n: int, t: int = 0) -> list[tuple]:
    rep = m.reps[0]
    m.chain.send(m.retb.functions.post_offer(t, t, t + 12, 10**8, PRICE, 100), rep)
    out = []
    for u in m.consumers[:n]:
        receipt = m.chain.send(m.retb.functions.request(t, 5000, t, t + 1, 0, rep), u)
        ev = m.retb.events.Trade().process_receipt(receipt, errors=DISCARD)[0].args
        out.append((ev.buyer, ev.nonce, ev.t, ev.start, ev.end, ev.rep, ev.e_wh, ev.price,
                    ev.stable_hours))  # fmt: skip
    return out


def test_retb_settle_many_pays_and_refunds_each_trade(market: Market) -> None:
    m = market
    open_hour(m, 0, m.retb)
    trades = _retb_trades(m, 3)
    delivered = [5000, 4000, 0]
    rep, users = m.reps[0], [tr[0] for tr in trades]
    b_rep, b_users = balance(m, rep), [balance(m, u) for u in users]
    receipt = m.chain.send(m.retb.functions.settle_many(trades, delivered), m.tdno)
    assert balance(m, rep) - b_rep == sum(delivered) * PRICE
    assert [balance(m, u) - b for u, b in zip(users, b_users, strict=True)] == [
        (5000 - d) * PRICE for d in delivered
    ]
    assert balance(m, m.retb.address) == 1  # escrow seed only: everything paid out
    assert receipt.gasUsed // len(trades) <= item_bound_of("RETB.settle_many")
    fb = m.retb.functions.feedback
    m.chain.send(fb(trades[1], 4000, 5), users[1])  # rating after the batch works per item
    assert revert_reason(m.chain, fb(trades[1], 4000, 5), users[1]) == "already rated"


def test_retb_settle_many_refusals(market: Market) -> None:
    m = market
    open_hour(m, 0, m.retb)
    trades = _retb_trades(m, 2)
    sm = m.retb.functions.settle_many
    assert revert_reason(m.chain, sm(trades, [5000, 5001]), m.tdno) == "delivered above schedule"
    assert revert_reason(m.chain, sm(trades, [1, 1]), trades[0][0]) == "unauthorised: tdno only"
    assert revert_reason(m.chain, sm([trades[0], trades[0]], [1, 1]), m.tdno) == "already settled"
    assert revert_reason(m.chain, sm(trades, [1]), m.tdno) == "length mismatch"
    fb = m.retb.functions.feedback
    assert revert_reason(m.chain, fb(trades[0], 1, 5), trades[0][0]) == "request not settled"
    m.chain.send(sm(trades, [1, 1]), m.tdno)
    assert revert_reason(m.chain, sm([trades[1]], [1]), m.tdno) == "already settled"
    assert revert_reason(m.chain, fb(trades[0], 1, 5), trades[1][0]) == "only the buyer may rate"


def test_more_than_max_batch_items_are_refused_and_the_wrapper_splits(market: Market) -> None:
    m = market
    open_hour(m, 0, m.retb)
    trades = _retb_trades(m, 1)
    reason = revert_reason(
        m.chain, m.retb.functions.settle_many(trades * (MAX_BATCH + 1), [1] * (MAX_BATCH + 1)),
        m.tdno,
    )  # fmt: skip
    assert reason != ""  # the ABI decoder refuses an array above its bound
    wrapper = LETBWrapper(EmbeddedChain(31401, "letb"), m.letb.address)
    item = {"buyer": m.consumers[0], "nonce": 1, "fills": [], "delivered_wh": []}
    calls = wrapper.settle_many(0, [item] * (2 * MAX_BATCH + 1))
    assert [c.function for c in calls] == ["settle_many", "settle_many", "settle"]  # lone: settle
    types = wrapper.abi.function("settle_many", 2).input_types
    assert [len(abi_decode(types, c.data[4:])[1]) for c in calls[:2]] == [MAX_BATCH, MAX_BATCH]
    assert [c.gas for c in calls[:2]] == [SETTLE_ITEM_GAS_LIMIT * MAX_BATCH] * 2  # no fills
    fill = {"producer_id": 1, "seller": m.producers[0], "e_wh": 1, "price": PRICE}
    wide = {**item, "fills": [fill] * 16, "delivered_wh": [1] * 16}  # a 16-fill market
    calls = wrapper.settle_many(0, [wide] * 10)
    assert [len(abi_decode(types, c.data[4:])[1]) for c in calls] == [6, 4]  # <= 96 fills each
    assert calls[0].gas == 6 * SETTLE_ITEM_GAS_LIMIT + 96 * SETTLE_FILL_GAS_LIMIT


# ----- full batches: the per-call bound at the cap -------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("max_fills", [3, 16])
def test_full_letb_batch_within_bounds(max_fills: int) -> None:
    """The largest call the wrapper makes: MAX_BATCH requests of 3 fills (the model's fill cap),
    or, in a market allowing 16 fills, MAX_BATCH_FILLS // 16 requests of 16 fills; within the
    per-call bound, and per item within the single settle's bound at 3 fills."""
    n_items = min(MAX_BATCH, MAX_BATCH_FILLS // max_fills)
    n_prod = n_items * max_fills  # one 1..10 Wh offer per seller, each request takes max_fills
    chain = Chain.fresh(n_prod + n_items + 8)
    m = deploy_market(chain, n_producers=1, n_consumers=n_items, n_reps=1,
                      letb_max_fills=max_fills)  # fmt: skip
    sellers = chain.accounts[-n_prod:]  # all at one bus, ids 3, 4, ... (after producer, prosumer)
    for who in sellers:  # seeded with 1 base unit, as the model seeds every seller
        chain.send_quiet(m.letb.functions.register(who, commitment(who), 500, 1), m.operator)
        chain.send_quiet(m.token.functions.transfer(who, 1), m.admin)
    chain.send(m.letb.functions.open_hour(0, FLOOR, [500], [CAP]), m.operator)
    for i, p in enumerate(sellers):
        m.chain.send_quiet(m.letb.functions.post_offer(0, 10, PRICE, i + 2 if i else 0), p)
    items = []
    for u in m.consumers:
        fills = fills_of(m, m.chain.send(m.letb.functions.request(0, 10 * max_fills, 0), u))
        assert len(fills) == max_fills
        items.append((u, m.letb.functions.account_state(u).call()[1], fills, [9] * max_fills))
    wrapper = LETBWrapper(EmbeddedChain(31401, "letb"), m.letb.address)
    as_dicts = [{"buyer": u, "nonce": n, "fills": [dict(zip(("producer_id", "seller", "e_wh",
                 "price"), f, strict=True)) for f in fs], "delivered_wh": d}
                for u, n, fs, d in items]  # fmt: skip
    assert len(wrapper.settle_many(0, as_dicts)) == 1  # the wrapper's largest call
    receipt = m.chain.send(m.letb.functions.settle_many(0, items), m.tdno)
    print(f"LETB.settle_many {n_items} items x {max_fills} fills: {receipt.gasUsed} gas")
    assert receipt.gasUsed <= bound_of("LETB.settle_many")
    if max_fills == 3:
        assert receipt.gasUsed // n_items <= item_bound_of("LETB.settle_many")
    settled = m.letb.events.Settled().process_receipt(receipt, errors=DISCARD)
    assert [e.args.delivered_wh for e in settled] == [9 * max_fills] * n_items


@pytest.mark.slow
def test_full_retb_batch_within_bounds() -> None:
    chain = Chain.fresh(MAX_BATCH + 12)
    m = deploy_market(chain, n_producers=1, n_consumers=MAX_BATCH, n_reps=1)
    open_hour(m, 0, m.retb)
    trades = _retb_trades(m, MAX_BATCH)
    receipt = m.chain.send(m.retb.functions.settle_many(trades, [4000] * MAX_BATCH), m.tdno)
    print(f"RETB.settle_many {MAX_BATCH} items: {receipt.gasUsed} gas")
    assert receipt.gasUsed <= bound_of("RETB.settle_many")
    assert receipt.gasUsed // MAX_BATCH <= item_bound_of("RETB.settle_many")


# ----- offers: rounds whose hints hold in any execution order ---------------------------------


@pytest.fixture(scope="module")
def offer_market() -> tuple[Market, int]:
    chain = Chain.fresh()
    m = deploy_market(chain, n_producers=20, n_consumers=2, n_reps=1)
    return m, chain.snapshot()


@pytest.mark.parametrize("order", ["ascending", "descending", "shuffled"])
def test_offer_rounds_land_in_book_order_in_any_execution_order(offer_market, order) -> None:
    """Equal and distinct prices; each round executed in `order` (ascending = the longest
    walks). Every post_offer succeeds within its gas bound and the book is (price, id) sorted,
    as the reference builds it."""
    m, snap = offer_market
    m.chain.revert(snap)
    open_hour(m, 0, m.letb)
    rng = random.Random(13)
    pid = {p: m.letb.functions.producer_id(p).call() for p in m.producers}
    by_pid = {v: k for k, v in pid.items()}
    price = {p: rng.choice([40, 40, 55, 70, 90, 120]) * PER_MWH + i % 3 for i, p in
             enumerate(m.producers)}  # fmt: skip
    rounds = clearing.offer_rounds([(price[p], pid[p]) for p in m.producers],
                                   clearing.OFFER_FANOUT)  # fmt: skip
    assert len(rounds) == 2  # 20 offers, fan-out 6: the second round walks from round 1's
    ref: tuple[clearing.Offer, ...] = ()
    for posts in rounds:
        if order == "descending":
            posts = posts[::-1]
        elif order == "shuffled":
            posts = rng.sample(posts, len(posts))
        for p_id, hint in posts:
            who = by_pid[p_id]
            receipt = m.chain.send(m.letb.functions.post_offer(0, 100, price[who], hint), who)
            assert receipt.gasUsed <= bound_of("LETB.post_offer"), (p_id, receipt.gasUsed)
            ref = clearing.insert_offer(ref, clearing.Offer(p_id, who, 100, price[who]))
    book = m.letb.functions.book().call()
    assert book == [o.producer_id for o in ref]
    keys = [(m.letb.functions.offer_of(i).call()[1], i) for i in book]
    assert keys == sorted(keys) and len(book) == 20


def test_offer_rounds_bound_the_walk() -> None:
    """Pure: per round, at most `fanout` offers between two neighbours of the earlier book, every
    hint from an earlier round, every offer exactly once."""
    rng = random.Random(5)
    for n in (1, 6, 7, 48, 49, 400):
        keys = [(rng.randrange(8), i + 1) for i in range(n)]
        rounds = clearing.offer_rounds(keys, 6)
        booked: list[tuple[int, int]] = []
        for posts in rounds:
            gaps: dict[int, int] = {}
            for _p_id, hint in posts:
                assert hint == 0 or hint in {k[1] for k in booked}
                gaps[hint] = gaps.get(hint, 0) + 1
            assert max(gaps.values()) <= 6
            booked += [k for k in keys if k[1] in {p for p, _ in posts}]
        assert sorted(booked) == sorted(keys)
        assert len(rounds) == next(r for r in range(1, 9) if 7**r - 1 >= n)


def test_stale_hint_still_refused_for_an_offer_of_the_same_round(market: Market) -> None:
    """The failure the rounds avoid: a hint naming an offer not yet executed this hour."""
    m = market
    open_hour(m, 0, m.letb)
    later = m.letb.functions.producer_id(m.producers[0]).call()
    call = m.letb.functions.post_offer(0, 100, CAP // 2, later)
    assert revert_reason(m.chain, call, m.producers[1]) == "stale hint"
