"""The paper's local market: one LETB contract per area (an offer book, cheapest first, fills
capped per request), as a market plug-in (markets/base.py), and the contract's wrapper `LETB`.

Stage 1: each producer decides its offer (`LocalProducer.decide_offer`) and posts it on its
area's book in *offer rounds* (market/clearing.py `offer_rounds`): each round is one block and
every insertion hint names an offer of an earlier round, so the sorted insertion holds whatever
order a node executes a block in. Stage 2: each user with demand asks its area's book for all of
it (`UserAgent.local_request`), in the hour's seeded order; fills come back as Trade events.
Stage 3: the TDNO settles each area's requests with `settle_many`; undelivered value becomes the
buyer's refund credit inside the contract (its next request spends it first). Stage 4: one
feedback call per request rates all its fills.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from gridledger.agents.producer import LocalProducer
from gridledger.chain import TxRequest, TxResult
from gridledger.day.chains import commitment, events, one_event
from gridledger.day.conservation import ConservationError
from gridledger.market.clearing import OFFER_FANOUT, offer_rounds
from gridledger.market.contracts import (
    DEPLOY_GAS_LIMIT,
    LETB_MAX_FILLS,
    MAX_BATCH_FILLS,
    SETTLE_FILL_GAS_LIMIT,
    SETTLE_ITEM_GAS_LIMIT,
    MarketContract,
    price_to_base_units_per_wh,
    settle_chunks,
    usd_to_base_units,
)
from gridledger.markets.base import (
    Delivery,
    Fill,
    Market,
    MarketHour,
    Rating,
    Settlement,
    SignedTx,
    World,
)
from gridledger.markets.events import per_request, settled_events
from gridledger.markets.phases import Phase

__all__ = ["LETB", "LETB_OFFER_FIELDS", "LocalBook"]


class LETB(MarketContract):
    """Local energy trading contract of one area (offer book + cheapest-first matching)."""

    artifact = "LETB"
    required_functions = (
        "register", "open_hour", "post_offer", "request", "settle", "settle_many", "feedback",
        "hint_for", "withdraw", "credit_of",
    )  # fmt: skip

    @classmethod
    def deploy_request(  # type: ignore[override]
        cls,
        token: str,
        area_id: int,
        operator: str,
        tdno: str,
        initial_reputation: int,
        bond: int = 0,
        max_fills: int = LETB_MAX_FILLS,
        *,
        artifact: str | None = None,
        gas: int = DEPLOY_GAS_LIMIT,
        label: str | None = None,
    ) -> TxRequest:
        """One area's LETB creation transaction; `max_fills` (1..16) = fills one request may
        make at most. `LETB.deploy(signer, token, area_id, ...)` takes the same arguments."""
        return super().deploy_request(
            token, area_id, operator, tdno, initial_reputation, bond, max_fills,
            artifact=artifact, gas=gas, label=label,
        )  # fmt: skip

    def max_fills(self) -> int:
        """Fills one request may make at most (the deployment parameter)."""
        return int(self.call("max_fills"))

    def post_offer(
        self, t: int, e_wh: int, price: int, hint_prev_id: int | None = None
    ) -> TxRequest:
        """Producer's offer for hour t; hint = predecessor's producer id (None: ask the chain)."""
        hint = self.hint_for(price) if hint_prev_id is None else hint_prev_id
        return self.tx("post_offer", t, e_wh, price, hint)

    def request(self, t: int, demand_wh: int, rt: int) -> TxRequest:
        """User's demand for hour t with reliability threshold rt (0..1000)."""
        return self.tx("request", t, demand_wh, rt)

    def settle(
        self,
        buyer: str,
        nonce: int,
        t: int,
        fills: Sequence[Mapping[str, Any]],
        delivered_wh: Sequence[int],
    ) -> TxRequest:
        """TDNO settles a request: fills = its Trade events' (producer_id, seller, e_wh, price)."""
        return self.tx("settle", buyer, nonce, t, [_fill(f) for f in fills], list(delivered_wh))

    def settle_many(self, t: int, items: Sequence[Mapping[str, Any]]) -> list[TxRequest]:
        """TDNO settles requests of hour t: items = {buyer, nonce, fills, delivered_wh} (as for
        `settle`); one settle_many call per MAX_BATCH items or MAX_BATCH_FILLS fills, in order
        (a lone item goes as `settle`: the batch's decoding costs ≈ 8k gas more than one request
        saves)."""
        calls = []
        fills = [len(x["fills"]) for x in items]
        for part in settle_chunks(len(items), fills, MAX_BATCH_FILLS):
            if len(part) == 1:
                x = items[part[0]]
                calls.append(self.settle(x["buyer"], x["nonce"], t, x["fills"], x["delivered_wh"]))
                continue
            batch = [
                {
                    "buyer": items[i]["buyer"],
                    "nonce": items[i]["nonce"],
                    "fills": [_fill(f) for f in items[i]["fills"]],
                    "delivered_wh": list(items[i]["delivered_wh"]),
                }
                for i in part
            ]
            gas = SETTLE_ITEM_GAS_LIMIT * len(part) + SETTLE_FILL_GAS_LIMIT * sum(
                fills[i] for i in part
            )
            calls.append(self.tx("settle_many", t, batch, gas=gas))
        return calls

    def feedback(
        self,
        buyer: str,
        nonce: int,
        t: int,
        fills: Sequence[Mapping[str, Any]],
        scores: Sequence[int],
    ) -> TxRequest:
        return self.tx("feedback", buyer, nonce, t, [_fill(f) for f in fills], list(scores))

    def withdraw(self) -> TxRequest:
        """Buyer pulls its whole refund credit (token base units) out of the LETB escrow."""
        return self.tx("withdraw")

    def credit_of(self, account: str, block: int | str = "latest") -> int:
        """Refund credit of `account` in token base units (settle credits refunds; the next
        request spends it first, `withdraw` pays it out)."""
        return int(self.call("credit_of", account, block=block))

    def hint_for(self, price: int, block: int | str = "latest") -> int:
        return int(self.call("hint_for", price, block=block))

    def head(self) -> int:
        return int(self.call("head"))

    def book(self) -> list[int]:
        return [int(x) for x in self.call("book")]

    def offer_of(self, producer_id: int) -> dict[str, Any]:
        """Offer by producer id: seller, price, e_wh, next_id, t, reputation, bus."""
        return dict(zip(LETB_OFFER_FIELDS, self.call("offer_of", producer_id), strict=True))

    def producer_id(self, account: str) -> int:
        return int(self.call("producer_id", account))


LETB_OFFER_FIELDS = ("seller", "price", "e_wh", "next_id", "t", "reputation", "bus")


def _fill(f: Mapping[str, Any]) -> dict[str, Any]:
    return {k: f[k] for k in ("producer_id", "seller", "e_wh", "price")}


class LocalBook(Market):
    """The paper's LETB market: one book per area on the 'letb' chain (module docstring)."""

    name = "letb"
    chain = "letb"
    kind = "local"
    request_phase = Phase.LETB_REQUEST

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.books: list[LETB] = []
        """One contract per LETB area, by area index."""
        self.areas_with_offers: set[int] = set()
        self.offered_wh = 0
        self._requests: list[tuple[Any, int, list[Fill]]] = []  # (user, nonce, fills) filled
        self._requesters: list[Any] = []
        self._calls: list[LETB] = []  # the book of each settle call, in order
        self._delivered: dict[tuple[int, int], list[int]] = {}

    # ---- set-up ---------------------------------------------------------------------------
    def deploy(self) -> list[SignedTx]:
        w, sc = self.world, self.world.params
        return [
            (
                self.signer("admin"),
                LETB.deploy_request(
                    w.tokens[self.chain].address,
                    a,
                    w.operator.account.address,
                    w.tdno.account.address,
                    sc.initial_reputation,
                    usd_to_base_units(sc.registration_bond_usd),
                    sc.letb_max_fills_per_request,
                ),
            )
            for a in range(w.n_areas)
        ]

    def deployed(self, results: Sequence[TxResult]) -> None:
        self.books = [LETB.at_result(self.world.chains[self.chain], r) for r in results]

    def contracts(self) -> Sequence[LETB]:
        return self.books

    def grants(self) -> list[SignedTx]:
        token = self.world.tokens[self.chain]
        return [(self.signer("admin"), token.transfer(m.address, 1)) for m in self.books]

    def approvals(self) -> list[SignedTx]:
        w, token = self.world, self.world.tokens[self.chain]
        items = [(u.letb_signer, token.approve(self.books[u.area].address)) for u in w.users]
        if w.params.registration_bond_usd:
            items += [(p.signer, token.approve(self.books[p.area].address)) for p in w.producers]
        return items

    def registrations(self) -> list[SignedTx]:
        w, seed, op = self.world, self.world.params.seed, self.signer("operator")
        items = [
            (
                op,
                self.books[p.area].register(
                    p.account.address, commitment(seed, "producer", p.index), p.bus, 1
                ),
            )
            for p in w.producers
        ]
        items += [
            (
                op,
                self.books[u.area].register(
                    u.account.address, commitment(seed, "user", u.index), u.bus, 2
                ),
            )
            for u in w.users
        ]
        return items

    def registered(self, results: Sequence[TxResult]) -> None:
        producers = self.world.producers
        for p, r in zip(producers, results[: len(producers)], strict=True):
            ev = one_event(self.books[p.area], r, "Registered")
            p.producer_id = int(ev["producer_id"])
            p.reputation = self.world.params.initial_reputation

    # ---- the hour -------------------------------------------------------------------------
    def open_hour(self, hour: MarketHour) -> list[SignedTx]:
        w, op = self.world, self.signer("operator")
        fit = price_to_base_units_per_wh(hour.fit_usd_per_mwh)
        items = []
        for a, m in enumerate(self.books):
            sellers = (p.bus for p in w.producers if p.area == a)
            buses, caps = w.operator.open_caps(sellers, hour.caps_usd_per_mwh, hour.fit_usd_per_mwh)
            items.extend((op, call) for call in m.open_hour_calls(hour.t, fit, buses, caps))
        return items

    def offers(self, hour: MarketHour) -> list[list[SignedTx]]:
        """The producers' offers (each decided its own: `LocalProducer.decide_offer`) go out in
        rounds whose insertion hints, computed off chain against the book of the previous round,
        hold in any execution order."""
        t = hour.t
        by_area: dict[int, list[LocalProducer]] = defaultdict(list)
        price: dict[int, int] = {}  # agent id -> offer price in base units per Wh
        for p in self.world.producers:
            if p.offer is not None:
                price[p.unique_id] = price_to_base_units_per_wh(p.offer.price_usd_per_mwh)
                by_area[p.area].append(p)
        rounds: list[list[SignedTx]] = []
        self.offered_wh = 0
        for a, prods in sorted(by_area.items()):
            by_id = {p.producer_id: p for p in prods}
            keys = [(price[p.unique_id], p.producer_id) for p in prods]  # ids are per area
            for r, posts in enumerate(offer_rounds(keys, OFFER_FANOUT)):
                if r == len(rounds):
                    rounds.append([])
                for pid, hint in posts:
                    p = by_id[pid]
                    tx = self.books[a].post_offer(t, p.offer.e_wh, price[p.unique_id], hint)
                    rounds[r].append((p.signer, tx))
            self.offered_wh += sum(p.offer.e_wh for p in prods)
        # the hour's OfferPosted events are public: users see which areas' books hold offers
        self.areas_with_offers = set(by_area)
        return rounds

    def requests(self, hour: MarketHour) -> list[SignedTx]:
        items, self._requesters = [], []
        for u in hour.buyers:
            req = u.local_request(
                self.name, hour.t, book_has_offers=u.area in self.areas_with_offers
            )
            if req is not None:
                items.append((u.letb_signer, self.books[u.area].request(hour.t, req.e_wh, req.rt)))
                self._requesters.append(u)
        return items

    def fills(self, hour: MarketHour, results: Sequence[TxResult]) -> list[Fill]:
        out: list[Fill] = []
        self._requests = []
        credit = self.world.letb_credit_units
        for u, res in zip(self._requesters, results, strict=True):
            trades, req = [], None
            for name, ev in events(self.books[u.area], res):
                if name == "Trade":
                    trades.append(ev)
                elif name == "Requested":
                    req = ev
                elif name == "CreditUsed":  # the user's refund credit paid (part of) the request
                    credit[u.account.address] = int(ev["credit"])
            if req is None:
                raise ConservationError(
                    f"hour {hour.t}: LETB request of user {u.unique_id} emitted no Requested event"
                )
            trades.sort(key=lambda e: e["index"])
            if sum(int(e["e_wh"]) for e in trades) != int(req["filled_wh"]):
                raise ConservationError(
                    f"hour {hour.t}: LETB request of user {u.unique_id}: "
                    f"fills do not add up to filled_wh {req['filled_wh']}"
                )
            if not trades:
                continue
            nonce = int(req["nonce"])
            mine = [
                Fill(
                    market=self.name,
                    chain=self.chain,
                    area=u.area,
                    buyer_id=u.unique_id,
                    buyer=u.account.address,
                    seller_id=int(ev["producer_id"]),
                    seller=ev["seller"],
                    nonce=nonce,
                    index=int(ev["index"]),
                    e_wh=int(ev["e_wh"]),
                    price_base_units_per_wh=int(ev["price"]),
                    tx_hash=res.tx_hash,
                    block=res.block_number,
                    event=ev,
                )
                for ev in trades
            ]
            self._requests.append((u, nonce, mine))
            out += mine
        return out

    def sellers(self) -> Sequence[LocalProducer]:
        return self.world.producers

    def settle(self, hour: MarketHour, deliveries: Sequence[Delivery]) -> list[SignedTx]:
        """One settle_many call per area (and per MAX_BATCH requests), areas in order."""
        delivered = per_request(deliveries, lambda d: d.fill, lambda d: d.delivered_wh)
        by_area: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for u, nonce, fills in self._requests:
            by_area[u.area].append(
                {
                    "buyer": u.account.address,
                    "nonce": nonce,
                    "fills": [f.event for f in fills],
                    "delivered_wh": delivered[(u.unique_id, nonce)],
                }
            )
        td, items, self._calls = self.signer("tdno"), [], []
        for area, batch in sorted(by_area.items()):
            calls = self.books[area].settle_many(hour.t, batch)
            items += [(td, c) for c in calls]
            self._calls += [self.books[area]] * len(calls)
        self._delivered = delivered
        return items

    def settled(self, hour: MarketHour, results: Sequence[TxResult]) -> list[Settlement]:
        found = settled_events(hour.t, self.name, self._calls, results)
        out = []
        for u, nonce, _fills in self._requests:
            ev = found.pop(u.account.address, None)
            if ev is None:
                raise ConservationError(
                    f"hour {hour.t}: letb request of user {u.unique_id} was not settled"
                )
            if ev["credit"] is not None:
                self.world.letb_credit_units[u.account.address] = ev["credit"]
            out.append(
                Settlement(
                    self.name,
                    u.unique_id,
                    int(ev["paid"]),
                    sum(self._delivered[(u.unique_id, nonce)]),
                    ev["credit"],
                )
            )
        if found:
            raise ConservationError(
                f"hour {hour.t}: settlements of no request of the hour: {sorted(found)}"
            )
        return out

    def feedback(self, hour: MarketHour, ratings: Sequence[Rating]) -> list[SignedTx]:
        """One call per request: the scores of all its fills."""
        scores = per_request(ratings, lambda r: r.fill, lambda r: r.score)
        items = []
        for u, nonce, fills in self._requests:
            call = self.books[u.area].feedback(
                u.account.address, nonce, hour.t, [f.event for f in fills],
                scores[(u.unique_id, nonce)],
            )  # fmt: skip
            items.append((u.letb_signer, call))
        return items

    def rated(self, hour: MarketHour, results: Sequence[TxResult]) -> list[int]:
        by_addr = {p.account.address: p for p in self.world.producers}
        n = 0
        for (u, _nonce, fills), res in zip(self._requests, results, strict=True):
            for name, ev in events(self.books[u.area], res):
                if name == "Rated":
                    by_addr[ev["seller"]].reputation = int(ev["reputation"])
            n += len(fills)
        return [0] * n  # LETB mints no incentive

    def expected_escrow(self) -> dict[str, int]:
        """Seed + the bonds of the area's participants (sybils too) + its users' credits."""
        w = self.world
        bond = usd_to_base_units(w.params.registration_bond_usd)
        out = {}
        for a, m in enumerate(self.books):
            users = [u for u in w.users if u.area == a]
            registered = (
                sum(1 for p in w.producers if p.area == a)
                + len(users)
                + w.extra_registrations.get(a, 0)  # sybil identities (day/attacks.py)
            )
            credits = sum(w.letb_credit_units.get(u.account.address, 0) for u in users)
            out[m.address] = 1 + bond * registered + credits
        return out

    def hour_columns(self) -> dict[str, float]:
        return {"offered_local_kwh": self.offered_wh / 1000.0}
