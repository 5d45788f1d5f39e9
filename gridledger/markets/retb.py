"""The paper's renewable zone: one RETB contract where PV plants (REPs) sell their stable
window's output, as a market plug-in (markets/base.py), and the contract's wrapper `RETB`.

Stage 1: each plant decides its post (`RepAgent.decide_offer`: window, capacity, price, stable
time). Stage 2: a user's shortage after the local market goes to the plant the operator ranks
first among those that fit (`UserAgent.choose_plant`); the contract checks the choice. Stage 3:
the TDNO settles each trade (`settle_many`; undelivered value is refunded). Stage 4: one
feedback call per trade; a well-rated, stable plant earns minted incentive tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from gridledger.agents.rep import RepAgent
from gridledger.chain import Signer, TxRequest, TxResult
from gridledger.day.chains import commitment, events, one_event
from gridledger.day.conservation import ConservationError
from gridledger.market.contracts import (
    DEPLOY_GAS_LIMIT,
    SETTLE_ITEM_GAS_LIMIT,
    MarketContract,
    price_to_base_units_per_wh,
    settle_chunks,
    usd_from_base_units,
    usd_to_base_units,
)
from gridledger.markets.base import (
    Delivery,
    Fill,
    Market,
    MarketHour,
    Offer,
    Rating,
    Settlement,
    SignedTx,
    World,
)
from gridledger.markets.events import settled_events
from gridledger.markets.phases import Phase

__all__ = ["RETB", "RETB_OFFER_FIELDS", "RETB_TRADE_FIELDS", "RenewableZone"]


RETB_OFFER_FIELDS = (
    "price", "remaining_wh", "start", "end", "reputation", "bus", "stable_hours",
)  # fmt: skip
RETB_TRADE_FIELDS = (
    "buyer", "nonce", "t", "start", "end", "rep", "e_wh", "price", "stable_hours",
)  # fmt: skip


class RETB(MarketContract):
    """Renewable energy trading contract of one zone (REP offers, operator-ranked matching,
    settlement and incentive minting)."""

    artifact = "RETB"
    required_functions = (
        "register", "open_hour", "post_offer", "request", "settle", "settle_many", "feedback",
    )  # fmt: skip

    @classmethod
    def deploy(  # type: ignore[override]
        cls,
        signer: Signer,
        token: str,
        zone_id: int,
        operator: str,
        tdno: str,
        initial_reputation: int,
        bond: int,
        log_base_k: int,
        scale_wh: int,
        stable_ref_hours: int,
        *,
        gas: int = DEPLOY_GAS_LIMIT,
        label: str | None = None,
    ) -> RETB:
        return super().deploy(
            signer, token, zone_id, operator, tdno, initial_reputation, bond, log_base_k,
            scale_wh, stable_ref_hours, gas=gas, label=label,
        )  # fmt: skip

    def post_offer(
        self, t: int, start: int, end: int, capacity_wh: int, price: int, stable_hours: int
    ) -> TxRequest:
        return self.tx("post_offer", t, start, end, capacity_wh, price, stable_hours)

    def request(
        self, t: int, shortage_wh: int, start: int, end: int, rt: int, rep: str
    ) -> TxRequest:
        """User's shortage for window [start, end); `rep` = the operator's ranking hint."""
        return self.tx("request", t, shortage_wh, start, end, rt, rep)

    def settle(self, trade: Mapping[str, Any], delivered_wh: int) -> TxRequest:
        """TDNO settles a trade (the fields of its Trade event)."""
        return self.tx("settle", _retb_trade(trade), delivered_wh)

    def settle_many(
        self, trades: Sequence[Mapping[str, Any]], delivered_wh: Sequence[int]
    ) -> list[TxRequest]:
        """TDNO settles trades (their Trade events' fields) with the delivered Wh of each; one
        settle_many call per MAX_BATCH trades, in order (a lone trade goes as `settle`)."""
        if len(trades) != len(delivered_wh):
            raise ValueError(
                f"RETB.settle_many: {len(delivered_wh)} delivered amounts for {len(trades)} trades"
            )
        return [
            self.tx(
                "settle_many",
                [_retb_trade(trades[i]) for i in part],
                [delivered_wh[i] for i in part],
                gas=SETTLE_ITEM_GAS_LIMIT * len(part),
            )
            if len(part) > 1
            else self.settle(trades[part[0]], delivered_wh[part[0]])
            for part in settle_chunks(len(trades))
        ]

    def feedback(self, trade: Mapping[str, Any], delivered_wh: int, score: int) -> TxRequest:
        return self.tx("feedback", _retb_trade(trade), delivered_wh, score)

    def rep_offer(self, rep: str) -> dict[str, Any]:
        """REP's offer: price, remaining_wh, start, end, reputation, bus, stable_hours."""
        return dict(zip(RETB_OFFER_FIELDS, self.call("rep_offer", rep), strict=True))


def _retb_trade(trade: Mapping[str, Any]) -> dict[str, Any]:
    return {k: trade[k] for k in RETB_TRADE_FIELDS}


class RenewableZone(Market):
    """The paper's RETB market: one zone contract on the 'retb' chain (module docstring)."""

    name = "retb"
    chain = "retb"
    kind = "renewable"
    request_phase = Phase.RETB_REQUEST
    mints_incentives = True

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.zone: RETB | None = None
        self.offered_wh = 0
        self._requesters: list[Any] = []
        self._fills: list[Fill] = []
        self._calls = 0

    @property
    def contract(self) -> RETB:
        if self.zone is None:
            raise RuntimeError("the RETB zone is not deployed yet")
        return self.zone

    # ---- set-up ---------------------------------------------------------------------------
    def deploy(self) -> list[SignedTx]:
        w, sc = self.world, self.world.params
        return [
            (
                self.signer("admin"),
                RETB.deploy_request(
                    w.tokens[self.chain].address,
                    0,
                    w.operator.account.address,
                    w.tdno.account.address,
                    sc.initial_reputation,
                    usd_to_base_units(sc.registration_bond_usd),
                    sc.incentive_log_base,
                    round(sc.incentive_scale_kwh * 1000),
                    sc.incentive_stable_ref_hours,
                ),
            )
        ]

    def deployed(self, results: Sequence[TxResult]) -> None:
        (res,) = results
        self.zone = RETB.at_result(self.world.chains[self.chain], res)

    def contracts(self) -> Sequence[RETB]:
        return [self.contract]

    def grants(self) -> list[SignedTx]:
        """The zone's escrow gets a 1-unit seed."""
        token, admin = self.world.tokens[self.chain], self.signer("admin")
        return [(admin, token.transfer(self.contract.address, 1))]

    def approvals(self) -> list[SignedTx]:
        w, token, zone = self.world, self.world.tokens[self.chain], self.contract.address
        items = [(u.retb_signer, token.approve(zone)) for u in w.users]
        if w.params.registration_bond_usd:
            items += [(r.signer, token.approve(zone)) for r in w.reps]
        return items

    def registrations(self) -> list[SignedTx]:
        w, seed, op, zone = (
            self.world,
            self.world.params.seed,
            self.signer("operator"),
            self.contract,
        )
        items = [
            (op, zone.register(r.account.address, commitment(seed, "rep", r.index), r.bus, 1))
            for r in w.reps
        ]
        items += [
            (op, zone.register(u.account.address, commitment(seed, "user", u.index), u.bus, 2))
            for u in w.users
        ]
        return items

    def registered(self, results: Sequence[TxResult]) -> None:
        for r in self.world.reps:
            r.reputation = self.world.params.initial_reputation

    # ---- the hour -------------------------------------------------------------------------
    def open_hour(self, hour: MarketHour) -> list[SignedTx]:
        w = self.world
        fit = price_to_base_units_per_wh(hour.fit_usd_per_mwh)
        buses, caps = w.operator.open_caps(
            (r.bus for r in w.reps), hour.caps_usd_per_mwh, hour.fit_usd_per_mwh
        )
        op = self.signer("operator")
        return [(op, call) for call in self.contract.open_hour_calls(hour.t, fit, buses, caps)]

    def offers(self, hour: MarketHour) -> list[list[SignedTx]]:
        """The plants' posts (each decided its own: `RepAgent.decide_offer`), all in one block
        (the first offer round)."""
        t, items = hour.t, []
        self.offered_wh = 0
        for r in self.world.reps:
            post = r.post
            if post is not None:
                price = price_to_base_units_per_wh(post.price_usd_per_mwh)
                call = self.contract.post_offer(
                    t, t, post.window_end, post.capacity_wh, price, post.stable_hours
                )
                items.append((r.signer, call))
                self.offered_wh += post.capacity_wh
        return [items] if items else []

    def live_offers(self, hour: MarketHour) -> list[Offer]:
        """The plants' offers as posted this hour (their OfferPosted events) with their
        reputation from their last Rated event: no view call needed."""
        return [
            Offer(
                market=self.name,
                seller_id=r.unique_id,
                seller=r.account.address,
                bus=r.bus,
                e_wh=r.post.capacity_wh,
                price_base_units_per_wh=price_to_base_units_per_wh(r.post.price_usd_per_mwh),
                window_start_t=hour.t,
                window_end_t=r.post.window_end,
                reputation=int(r.reputation),
            )
            for r in self.world.reps
            if r.post is not None
        ]

    def requests(self, hour: MarketHour) -> list[SignedTx]:
        """Each user, in the hour's order, sends its shortage to the plant it chooses; the
        chosen offer's remaining energy shrinks for the users after it."""
        live = self.live_offers(hour)
        items, self._requesters = [], []
        for u in hour.buyers:
            req = u.renewable_request(self.name, hour.t, live, self.world.operator)
            if req is None:
                continue
            i = next(i for i, o in enumerate(live) if o.seller == req.seller)
            live[i] = replace(live[i], e_wh=live[i].e_wh - req.e_wh)
            call = self.contract.request(
                hour.t, req.e_wh, req.window_start_t, req.window_end_t, req.rt, req.seller
            )
            items.append((u.retb_signer, call))
            self._requesters.append(u)
        return items

    def fills(self, hour: MarketHour, results: Sequence[TxResult]) -> list[Fill]:
        reps = {r.account.address: r for r in self.world.reps}
        self._fills = []
        for u, res in zip(self._requesters, results, strict=True):
            trade = one_event(self.contract, res, "Trade")
            rep = reps.get(trade["rep"])
            if rep is None:
                raise ConservationError(
                    f"hour {hour.t}: RETB trade of user {u.unique_id} with unknown plant "
                    f"{trade['rep']}"
                )
            self._fills.append(
                Fill(
                    market=self.name,
                    chain=self.chain,
                    area=-1,
                    buyer_id=u.unique_id,
                    buyer=u.account.address,
                    seller_id=rep.index,
                    seller=trade["rep"],
                    nonce=int(trade["nonce"]),
                    index=0,
                    e_wh=int(trade["e_wh"]),
                    price_base_units_per_wh=int(trade["price"]),
                    tx_hash=res.tx_hash,
                    block=res.block_number,
                    event=trade,
                )
            )
        return self._fills

    def sellers(self) -> Sequence[RepAgent]:
        return self.world.reps

    def settle(self, hour: MarketHour, deliveries: Sequence[Delivery]) -> list[SignedTx]:
        calls = self.contract.settle_many(
            [d.fill.event for d in deliveries], [d.delivered_wh for d in deliveries]
        )
        self._delivered = [d.delivered_wh for d in deliveries]
        self._calls = len(calls)
        td = self.signer("tdno")
        return [(td, c) for c in calls]

    def settled(self, hour: MarketHour, results: Sequence[TxResult]) -> list[Settlement]:
        found = settled_events(hour.t, self.name, [self.contract] * self._calls, results)
        out = []
        for f, d in zip(self._fills, self._delivered, strict=True):
            ev = found.pop(f.buyer, None)
            if ev is None:
                raise ConservationError(
                    f"hour {hour.t}: retb request of user {f.buyer_id} was not settled"
                )
            out.append(Settlement(self.name, f.buyer_id, int(ev["paid"]), d, ev["credit"]))
        if found:
            raise ConservationError(
                f"hour {hour.t}: settlements of no request of the hour: {sorted(found)}"
            )
        return out

    def feedback(self, hour: MarketHour, ratings: Sequence[Rating]) -> list[SignedTx]:
        users = {u.unique_id: u for u in self._requesters}
        return [
            (
                users[r.fill.buyer_id].retb_signer,
                self.contract.feedback(r.fill.event, r.delivered_wh, r.score),
            )
            for r in ratings
        ]

    def rated(self, hour: MarketHour, results: Sequence[TxResult]) -> list[int]:
        """Reputations from the Rated events; each trade's minted incentive goes to its plant."""
        reps = {r.account.address: r for r in self.world.reps}
        minted = []
        for f, res in zip(self._fills, results, strict=True):
            incentive = 0
            for name, ev in events(self.contract, res):
                if name == "Rated":
                    reps[ev["rep"]].reputation = int(ev["reputation"])
                elif name == "IncentiveMinted":
                    incentive = int(ev["incentive"])
            reps[f.seller].incentive_usd += usd_from_base_units(incentive)
            minted.append(incentive)
        return minted

    def expected_escrow(self) -> dict[str, int]:
        """Seed + the bonds of every plant and user registered in the zone."""
        w = self.world
        bond = usd_to_base_units(w.params.registration_bond_usd)
        return {self.contract.address: 1 + bond * (len(w.reps) + len(w.users))}

    def hour_columns(self) -> dict[str, float]:
        return {"offered_renewable_kwh": self.offered_wh / 1000.0}
