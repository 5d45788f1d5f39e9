"""The contracts and the pure-Python reference (gridledger.market.clearing) agree trade for trade.

Hypothesis draws random books (posting order, sizes, prices with ties), requests (demands,
thresholds, a prosumer that must skip its own offer), the LETB's fill cap (its `max_fills`
deployment parameter, 1..16: one LETB per cap is deployed on the same chain), deliveries and
feedback scores; each example runs on the real EVM from one snapshot (reputations already spread
by a warm-up) and through the reference, and demands identical fills, books, balances,
reputations and incentives. LETB's first round of requests is settled with one settle_many call
(reference: clearing.settle_many), the second request by request.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from web3.logs import DISCARD

from gridledger.market import clearing

from .conftest import (
    LETB_MAX_FILLS,
    PER_MWH,
    RETB_PARAMS,
    Chain,
    Market,
    add_letb,
    deploy_market,
    fills_of,
    open_hour,
    revert_reason,
)

WARMUP_SCORES = [5, 0, 3, 1, 4, 5]  # spreads producers' reputations over 350..475
HOUR = len(WARMUP_SCORES)
THRESHOLDS = [0, 350, 375, 400, 425, 450, 475, 500]
SETTINGS = settings(
    max_examples=int(__import__("os").environ.get("EQ_N", "200")),
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass
class World:
    market: Market  # its LETB has the contract's own bound, LETB_MAX_FILLS
    letbs: dict[int, Market]  # the same market with an LETB of fill cap k, k = 1..LETB_MAX_FILLS
    snap: int
    pid: dict[str, int]
    reputation: dict[int, int]  # LETB reputation by producer id at the snapshot
    balances: dict[str, int]  # token balances at the snapshot
    rep_reputation: dict[str, int]  # RETB reputation by REP at the snapshot
    supply: int


def _warm_up(m: Market, letb_only: bool = False) -> None:
    """Hour h: only producer h offers, consumer 0 buys it, settles, rates WARMUP_SCORES[h]."""
    u = m.consumers[0]
    for t, (p, score) in enumerate(zip(m.producers, WARMUP_SCORES, strict=True)):
        open_hour(m, t, m.letb if letb_only else None)
        m.chain.send(m.letb.functions.post_offer(t, 100, 40 * PER_MWH, 0), p)
        fills = fills_of(m, m.chain.send(m.letb.functions.request(t, 100, 0), u))
        m.chain.send(m.letb.functions.settle(u, t + 1, t, fills, [100]), m.tdno)
        m.chain.send(m.letb.functions.feedback(u, t + 1, t, fills, [score]), u)


@pytest.fixture(scope="module")
def world(engine: str) -> World:
    chain = Chain.fresh(engine=engine)
    m = deploy_market(chain)
    _warm_up(m)
    letbs = {k: replace(m, letb=add_letb(m, k, area_id=10 + k)) for k in range(1, LETB_MAX_FILLS)}
    letbs[LETB_MAX_FILLS] = m
    for k in range(1, LETB_MAX_FILLS):
        _warm_up(letbs[k], letb_only=True)
    sellers = [*m.producers, m.prosumer]
    pid = {p: m.letb.functions.producer_id(p).call() for p in sellers}
    reps = m.letb.functions.reputations_of(sellers).call()
    for k, mk in letbs.items():  # the same producer ids and reputations in every LETB
        assert mk.letb.functions.max_fills().call() == k
        assert [mk.letb.functions.producer_id(p).call() for p in sellers] == list(pid.values())
        assert mk.letb.functions.reputations_of(sellers).call() == reps
    markets = [mk.letb.address for mk in letbs.values()]
    everyone = [*sellers, *m.consumers, *m.reps, *markets, m.retb.address]
    bal = dict(zip(everyone, m.token.functions.balances_of(everyone).call(), strict=True))
    rep_rep = dict(zip(m.reps, m.retb.functions.reputations_of(m.reps).call(), strict=True))
    supply = m.token.functions.totalSupply().call()
    open_hour(m, HOUR)  # each example starts with hour HOUR open and both books empty
    for k in range(1, LETB_MAX_FILLS):
        open_hour(letbs[k], HOUR, letbs[k].letb)
    world = World(m, letbs, chain.snapshot(), pid,
                  dict(zip([pid[p] for p in sellers], reps, strict=True)),
                  bal, rep_rep, supply)  # fmt: skip
    assert sorted(set(world.reputation.values())) == [350, 375, 400, 425, 450, 475]
    return world


# ----- LETB -------------------------------------------------------------------------------------

offer_st = st.tuples(st.integers(1, 2000), st.integers(4, 40))  # (e_wh, price in 5 $/MWh steps)


@st.composite
def letb_case(draw):
    n_sellers = 7
    chosen = draw(st.lists(st.integers(0, n_sellers - 1), min_size=1, max_size=7, unique=True))
    offers = [(i, *draw(offer_st)) for i in chosen]
    buyers = draw(st.lists(st.integers(0, 5), min_size=1, max_size=3, unique=True))
    requests = [(b, draw(st.integers(1, 6000)), draw(st.sampled_from(THRESHOLDS))) for b in buyers]
    delivered_pct = draw(st.lists(st.integers(0, 100), min_size=20, max_size=20))
    scores = draw(st.lists(st.integers(0, 5), min_size=20, max_size=20))
    rate = draw(st.lists(st.booleans(), min_size=3, max_size=3))
    # every cap 1..16 is drawn; small caps twice as often, so the cap stops requests often
    cap = draw(st.one_of(st.integers(1, 4), st.integers(1, LETB_MAX_FILLS)))
    return offers, requests, delivered_pct, scores, rate, cap


@pytest.mark.timeout(900)  # ~2 min on 2 shared cores, above the 300 s default when loaded
@pytest.mark.slow
@SETTINGS
@given(case=letb_case())
def test_letb_matches_reference(world: World, case) -> None:
    offers, requests, delivered_pct, scores, rate, cap = case
    m, chain = world.letbs[cap], world.market.chain
    chain.revert(world.snap)
    sellers = [*m.producers, m.prosumer]
    buyers = [*m.consumers, m.prosumer]

    book: tuple[clearing.Offer, ...] = ()
    for i, e_wh, step in offers:
        seller, price = sellers[i], step * 5 * PER_MWH
        hint = clearing.hint_for(book, price)
        chain.send_quiet(m.letb.functions.post_offer(HOUR, e_wh, price, hint), seller)
        book = clearing.insert_offer(book, clearing.Offer(world.pid[seller], seller, e_wh, price))

    reputation = dict(world.reputation)
    expected = dict(world.balances)
    credit = dict.fromkeys(buyers, 0)  # the warm-up delivers in full: no credit at the snapshot
    k = 0
    stopped = 0  # requests the fill cap stopped before the reference without cap would
    for _round in range(2):  # the second round spends the first round's refund credits
        matched = []
        for b, demand, rt in requests:
            buyer = buyers[b]
            own = world.pid.get(buyer, 0)
            want = clearing.match_request(book, reputation, demand, rt, own, max_fills=cap)
            uncapped = clearing.match_request(book, reputation, demand, rt, own)
            assert len(want.fills) <= cap
            stopped += len(uncapped.fills) > len(want.fills)
            receipt = chain.send(m.letb.functions.request(HOUR, demand, rt), buyer)
            events = m.letb.events.Trade().process_receipt(receipt, errors=DISCARD)
            got = [clearing.Fill(e.args.producer_id, e.args.seller, e.args.e_wh, e.args.price)
                   for e in events]  # fmt: skip
            assert got == list(want.fills)
            assert [e.args.index for e in events] == list(range(len(events)))
            book = want.book
            used, pulled = clearing.spend_credit(credit[buyer], want.paid)
            credit[buyer] -= used
            expected[buyer] -= pulled
            expected[m.letb.address] += pulled
            if want.fills:
                matched.append((buyer, events[0].args.nonce, want.fills))
        assert m.letb.functions.book().call() == [o.producer_id for o in book]
        if book:  # the head's remaining energy (partial fills happen at the head or after skips)
            assert m.letb.functions.offer_of(book[0].producer_id).call()[2] == book[0].e_wh

        settling = []  # (buyer, nonce, fills, delivered, k after the request's fills)
        for buyer, nonce, fills in matched:
            delivered = [f.e_wh * delivered_pct[(k + n) % 20] // 100 for n, f in enumerate(fills)]
            k += len(fills)
            settling.append((buyer, nonce, fills, delivered, k))
        if _round == 0:  # the first round: the TDNO settles every request in one settle_many
            ref = clearing.settle_many([(b, f, d) for b, _n, f, d, _k in settling])
            if settling:
                items = [(b, n, [x.as_tuple() for x in f], d) for b, n, f, d, _k in settling]
                chain.send_quiet(m.letb.functions.settle_many(HOUR, items), m.tdno)
        else:  # the second round: request by request
            ref = tuple(clearing.settle(f, d) for _b, _n, f, d, _k in settling)
        for j, ((buyer, nonce, fills, delivered, k), s) in enumerate(
            zip(settling, ref, strict=True)
        ):
            args = (buyer, nonce, HOUR, [f.as_tuple() for f in fills])
            if _round == 1:
                chain.send_quiet(m.letb.functions.settle(*args, delivered), m.tdno)
            for f, pay in zip(fills, s.payouts, strict=True):
                expected[f.seller] += pay
            credit[buyer], transferred = clearing.credit_refund(credit[buyer], s.refunded)
            expected[buyer] += transferred
            expected[m.letb.address] -= s.paid + transferred
            if rate[j % len(rate)]:
                sc = [scores[(k + n) % 20] for n in range(len(fills))]
                chain.send_quiet(m.letb.functions.feedback(*args, sc), buyer)
                for f, score in zip(fills, sc, strict=True):
                    reputation[f.producer_id] = clearing.update_reputation(
                        reputation[f.producer_id], score
                    )

    event("the fill cap stopped a request" if stopped else "no request stopped by the cap")
    assert {b: m.letb.functions.credit_of(b).call() for b in buyers} == credit
    for i, buyer in enumerate(buyers):  # withdraw some credits, keep others
        if credit[buyer] > 0 and rate[i % len(rate)]:
            chain.send_quiet(m.letb.functions.withdraw(), buyer)
            expected[buyer] += credit[buyer]
            expected[m.letb.address] -= credit[buyer]
            credit[buyer] = 0
    assert {b: m.letb.functions.credit_of(b).call() for b in buyers} == credit
    accounts = list(expected)
    assert dict(zip(accounts, m.token.functions.balances_of(accounts).call(), strict=True)) == (
        expected
    )
    assert m.letb.functions.reputations_of(sellers).call() == [
        reputation[world.pid[s]] for s in sellers
    ]


# ----- RETB -------------------------------------------------------------------------------------

PARAMS = clearing.IncentiveParams(**RETB_PARAMS)


@st.composite
def retb_case(draw):
    rep_offers = [
        (
            draw(st.integers(HOUR, HOUR + 4)),  # start
            draw(st.integers(1, 8)),  # length
            draw(st.integers(1, 400_000)),  # capacity
            draw(st.integers(4, 40)),  # price step
            draw(st.integers(0, 2000)),  # stable hours
        )
        for _ in range(2)
    ]
    ranking = draw(st.permutations([0, 1]))
    requests = [
        (
            u,
            draw(st.integers(1, 300_000)),
            draw(st.integers(HOUR, HOUR + 5)),
            draw(st.integers(1, 4)),
            draw(st.sampled_from([0, 300, 400, 450])),
            draw(st.integers(0, 100)),  # delivered %
            draw(st.integers(0, 5)),  # score
        )
        for u in draw(st.lists(st.integers(0, 4), min_size=1, max_size=2, unique=True))
    ]
    return rep_offers, ranking, requests


@pytest.mark.slow
@settings(SETTINGS, max_examples=50)
@given(case=retb_case())
def test_retb_matches_reference(world: World, case) -> None:
    rep_offers, ranking, requests = case
    m, chain = world.market, world.market.chain
    chain.revert(world.snap)
    offers = {}
    for rep, (start, length, cap, step, stable) in zip(m.reps, rep_offers, strict=True):
        price = step * 5 * PER_MWH
        chain.send_quiet(
            m.retb.functions.post_offer(HOUR, start, start + length, cap, price, stable), rep
        )
        offers[rep] = clearing.RepOffer(rep, start, start + length, cap, price,
                                        world.rep_reputation[rep], stable)  # fmt: skip
    expected = dict(world.balances)
    supply = world.supply
    for u, shortage, start, length, rt, pct, score in requests:
        user, end = m.consumers[u], start + length
        ranked = [offers[m.reps[i]] for i in ranking]
        choice = clearing.choose_rep(ranked, user, shortage, start, end, rt)
        call = m.retb.functions.request(HOUR, shortage, start, end, rt, ranked[0].rep)
        if choice is None:
            reason = clearing.ineligibility(ranked[0], user, shortage, start, end, rt)
            assert revert_reason(chain, call, user) == reason
            continue
        receipt = chain.send(
            m.retb.functions.request(HOUR, shortage, start, end, rt, choice.rep), user
        )
        ev = m.retb.events.Trade().process_receipt(receipt, errors=DISCARD)[0].args
        trade = clearing.RetbTrade(user, ev.nonce, HOUR, start, end, choice.rep, shortage,
                                   choice.price, choice.stable_hours)  # fmt: skip
        assert clearing.RetbTrade(**{k: ev[k] for k in ("buyer", "nonce", "t", "start", "end",
                                  "rep", "e_wh", "price", "stable_hours")}) == trade  # fmt: skip
        offers[choice.rep] = replace(choice, remaining_wh=choice.remaining_wh - shortage)
        delivered = shortage * pct // 100
        chain.send_quiet(m.retb.functions.settle(trade.as_tuple(), delivered), m.tdno)
        expected[user] += -shortage * choice.price + (shortage - delivered) * choice.price
        expected[choice.rep] += delivered * choice.price
        chain.send_quiet(m.retb.functions.feedback(trade.as_tuple(), delivered, score), user)
        incentive = clearing.trade_incentive(trade, delivered, score, PARAMS)
        expected[choice.rep] += incentive
        supply += incentive
        offers[choice.rep] = replace(
            offers[choice.rep],
            reputation=clearing.update_reputation(offers[choice.rep].reputation, score),
        )
    accounts = list(expected)
    assert dict(zip(accounts, m.token.functions.balances_of(accounts).call(), strict=True)) == (
        expected
    )
    assert m.token.functions.totalSupply().call() == supply
    assert m.retb.functions.reputations_of(m.reps).call() == [offers[r].reputation for r in m.reps]
    for rep in m.reps:
        assert m.retb.functions.rep_offer(rep).call()[1] == offers[rep].remaining_wh
