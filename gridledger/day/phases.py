"""Phases 1-5 of a market hour (DESIGN.md "One market hour"): the operator opens the hour,
producers and REPs offer, users request on LETB, shortages go to RETB, the grid covers the rest.

Each phase is one batch of transactions that the agents sign themselves, sent with
`chains.send_phase` (one block per chain involved).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from gridledger.agents.producer import LocalProducer
from gridledger.chain import Signer, TxRequest
from gridledger.day.chains import events, one_event, send_phase
from gridledger.day.conservation import ConservationError
from gridledger.day.pricing import price_hour
from gridledger.market.clearing import OFFER_FANOUT, offer_rounds
from gridledger.market.contracts import price_from_base_units_per_wh
from gridledger.market.contracts import price_to_base_units_per_wh as price_to_chain

if TYPE_CHECKING:
    from gridledger.model import EnergyMarketModel


def phase1_operator(model: EnergyMarketModel, t: int) -> dict[int, float]:
    """Operator opens hour t on both chains: feed-in floor and the DLMP cap of each seller bus
    (buses whose cap is below the floor are left out: nobody can sell there this hour)."""
    model.last_opf = price_hour(model, t)
    caps = model.operator.caps(t)
    fit = price_to_chain(model.fit)
    items = []
    ops = {c: model.signers[("operator", c)] for c in model.chains}
    for a, m in enumerate(model.letb):
        buses = sorted({p.bus for p in model.producers if p.area == a})
        buses = [b for b in buses if price_to_chain(caps[b]) >= fit]
        items.append(
            (
                ops["letb"],
                m.open_hour(t, fit, buses, [price_to_chain(caps[b]) for b in buses]),
            )
        )
    buses = sorted({r.bus for r in model.reps})
    buses = [b for b in buses if price_to_chain(caps[b]) >= fit]
    items.append(
        (
            ops["retb"],
            model.retb.open_hour(t, fit, buses, [price_to_chain(caps[b]) for b in buses]),
        )
    )
    send_phase(model, "open_hour", items)
    return caps


def phase2_offers(model: EnergyMarketModel, t: int, caps: dict[int, float]) -> dict[str, float]:
    """Stage 1: producers post (es_p, v_p) on their area's LETB in rounds whose insertion hints
    (computed off chain) hold in any execution order; REPs post on RETB with the first round."""
    sc = model.params
    fit = model.fit
    tariff = float(model.tariff[t])
    items: list[tuple[Signer, TxRequest]] = []
    by_area: dict[int, list[LocalProducer]] = defaultdict(list)
    for p in model.producers:
        offer = p.make_offer(
            t,
            cap_usd_per_mwh=caps[p.bus],
            tariff_usd_per_mwh=tariff,
            fit_usd_per_mwh=fit,
            fraction=sc.producer_price_fraction,
            dt_h=sc.dt_h,
        )
        if offer is not None:
            p.offer_price = price_to_chain(offer.price_usd_per_mwh)
            by_area[p.area].append(p)
    # insertion hints computed off chain against the book of the previous round (block), so
    # they hold whatever order a node executes a round in (clearing.offer_rounds)
    rounds: list[list[tuple[Signer, TxRequest]]] = []
    offered_wh = 0
    for _a, prods in sorted(by_area.items()):
        by_id = {p.producer_id: p for p in prods}
        keys = [(p.offer_price, p.producer_id) for p in prods]
        for r, posts in enumerate(offer_rounds(keys, OFFER_FANOUT)):
            if r == len(rounds):
                rounds.append([])
            for pid, hint in posts:
                p = by_id[pid]
                m = model.letb[p.area]
                rounds[r].append((p.signer, m.post_offer(t, p.offer.e_wh, p.offer_price, hint)))
        offered_wh += sum(p.offer.e_wh for p in prods)
    rep_wh = 0
    for r in model.reps:
        post = r.make_post(
            t,
            cap_usd_per_mwh=caps[r.bus],
            tariff_usd_per_mwh=tariff,
            fit_usd_per_mwh=fit,
            fraction=sc.rep_price_fraction,
            dt_h=sc.dt_h,
        )
        if post is not None:
            items.append(
                (
                    r.signer,
                    model.retb.post_offer(
                        t,
                        t,
                        post.window_end,
                        post.capacity_wh,
                        price_to_chain(post.price_usd_per_mwh),
                        post.stable_hours,
                    ),
                )
            )
            rep_wh += post.capacity_wh
    model.offer_blocks = len(rounds)  # LETB blocks of this hour's offers (0: none offered)
    for r, posts in enumerate(rounds or [[]]):
        batch = posts + items if r == 0 else posts  # REPs post with the first round
        if batch or r == 0:
            send_phase(model, "post_offer", batch)
    # the hour's OfferPosted events are public: users see which areas' books hold offers
    model.areas_with_offers = set(by_area)
    return {"offered_local_kwh": offered_wh / 1000.0, "offered_renewable_kwh": rep_wh / 1000.0}


def phase3_letb(model: EnergyMarketModel, t: int) -> dict[int, dict[str, Any]]:
    """Stage 2 on LETB: users (in a seeded random order) request (m, rt); fills come back as
    Trade events. A user whose area's book is empty this hour does not send a request."""
    sc = model.params
    order = list(model.users)
    model.random.shuffle(order)
    items, who = [], []
    for u in order:
        u.m_wh = u.demand_wh(t, sc.dt_h)
        # no offer in its area's book this hour: the request could not fill, save the gas
        if u.m_wh > 0 and u.area in model.areas_with_offers:
            items.append((u.letb_signer, model.letb[u.area].request(t, u.m_wh, u.rt)))
            who.append(u)
    model.user_order = order
    results = send_phase(model, "letb_request", items)
    out: dict[int, dict[str, Any]] = {}
    for u, res in zip(who, results, strict=True):
        fills, req = [], None
        for name, ev in events(model.letb[u.area], res):
            if name == "Trade":
                fills.append(ev)
            elif name == "Requested":
                req = ev
            elif name == "CreditUsed":  # the user's refund credit paid (part of) the request
                model.letb_credit_units[u.account.address] = int(ev["credit"])
        assert req is not None, "LETB request without Requested event"
        u.local_wh = int(req["filled_wh"])
        if fills:
            fills.sort(key=lambda e: e["index"])
            out[u.unique_id] = {
                "user": u,
                "nonce": int(req["nonce"]),
                "fills": fills,
                "tx": res,
            }
    return out


def phase4_retb(model: EnergyMarketModel, t: int) -> dict[int, dict[str, Any]]:
    """Stage 2 on RETB: each user's shortage goes to the REP the operator ranks first among
    those whose window, capacity and reputation fit."""
    live = []
    for r in model.reps:
        if r.post is None:
            continue
        # the REP's offer as posted this hour (its OfferPosted event) and its reputation
        # from its last Rated event: no view call needed
        live.append(
            {
                "rep": r,
                "price": price_to_chain(r.post.price_usd_per_mwh),
                "remaining": r.post.capacity_wh,
                "start": t,
                "end": r.post.window_end,
                "reputation": int(r.reputation),
            }
        )
    items, who = [], []
    for u in model.user_order:
        u.shortage_wh = u.m_wh - u.local_wh
        if u.shortage_wh <= 0 or not live:
            continue
        eligible = [
            o
            for o in live
            if o["start"] <= t
            and t + 1 <= o["end"]
            and o["remaining"] >= u.shortage_wh
            and o["reputation"] >= u.rt
        ]
        if not eligible:
            continue
        ranking = model.operator.rank_reps(
            t,
            u.bus,
            [
                (i, o["rep"].bus, price_from_base_units_per_wh(o["price"]))
                for i, o in enumerate(eligible)
            ],
        )
        best = eligible[ranking[0]]
        best["remaining"] -= u.shortage_wh
        items.append(
            (
                u.retb_signer,
                model.retb.request(t, u.shortage_wh, t, t + 1, u.rt, best["rep"].account.address),
            )
        )
        who.append(u)
    results = send_phase(model, "retb_request", items)
    out: dict[int, dict[str, Any]] = {}
    reps_by_addr = {r.account.address: r for r in model.reps}
    for u, res in zip(who, results, strict=True):
        trade = one_event(model.retb, res, "Trade")
        u.renewable_wh = int(trade["e_wh"])
        rep = reps_by_addr[trade["rep"]]
        rep.sold_wh += u.renewable_wh
        out[u.unique_id] = {"user": u, "trade": trade, "rep": rep, "tx": res}
    return out


def phase5_grid(model: EnergyMarketModel, t: int) -> None:
    """The grid sells every user what is still short at the tariff."""
    tariff = float(model.tariff[t])
    for u in model.users:
        rest = u.m_wh - u.local_wh - u.renewable_wh
        if rest < 0:
            raise ConservationError(
                f"hour {t}: user {u.unique_id} at bus {u.bus} bought {-rest} Wh more than "
                "its demand on the markets"
            )
        model.grid.sell(u, rest, tariff)
