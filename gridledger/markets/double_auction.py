"""A uniform-price (pay-as-clear) double auction per area, as a market plug-in (markets/base.py),
and the contract's wrapper `DoubleAuction` (gridledger/contracts/DoubleAuction.vy).

It replaces the paper's local book: `market_mechanism = "double_auction"` runs it in every
LETB area on the 'letb' chain, then RETB for the shortages (markets/__init__.py MECHANISMS).
Stage 1: producers decide their asks with the paper's offer rule (`LocalProducer.decide_offer`);
then users whose area has asks decide their bids (`UserAgent.auction_bid`: the whole demand at
most the tariff, within the DLMP cap of their bus). Asks, then bids, go on chain in rounds whose
insertion hints hold in any execution order (market/clearing.py `offer_rounds`; every area's
round r in one block). A bid escrows e_wh * limit. Stage 2 (the market's request step): the
operator clears each area, one call per CLEAR_CHUNK bids: one price for the area and hour, the
midpoint of the marginal bid and ask (markets/double_auction_ref.py states the rule); the escrow
not needed at that price becomes the buyer's refund credit. Stages 3-4 are the local book's,
inherited: the TDNO settles each area with `settle_many` (undelivered value credited), each
buyer rates its fills.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from gridledger.chain import TxRequest, TxResult
from gridledger.day.chains import commitment, events
from gridledger.day.conservation import ConservationError
from gridledger.market.clearing import offer_rounds
from gridledger.market.contracts import (
    MarketContract,
    price_to_base_units_per_wh,
    usd_to_base_units,
)
from gridledger.markets import double_auction_ref as ref
from gridledger.markets.base import Fill, MarketHour, SignedTx, World
from gridledger.markets.letb import LETB, LocalBook
from gridledger.markets.phases import Phase

__all__ = ["CLEAR_CHUNK", "DoubleAuction", "DoubleAuctionMarket"]

CLEAR_CHUNK = 32
"""Bids one clear call fills (≈ 27k gas each with 3 fills: tests/contracts/
test_double_auction_gas.py); the first call of an hour also walks the books for the price."""
CLEAR_BID_GAS = 25_000
CLEAR_FILL_GAS = 10_000
CLEAR_ORDER_GAS = 4_000
"""Gas limit of a clear call: 100k + per bid CLEAR_BID_GAS + CLEAR_FILL_GAS per fill it may take
(measured ≈ 16k + 8k per fill) + CLEAR_ORDER_GAS per order walked (the first call of an hour
walks every order of the hour for the price: ≈ 2.6k each). Limits, not costs: a node packs a
block by them, so they are kept near the real cost."""


class DoubleAuction(MarketContract):
    """The double auction of one area (contracts/DoubleAuction.vy); settlement, feedback and
    credits take LETB's calls (same Fill, commitment and events)."""

    artifact = "DoubleAuction"
    required_functions = (
        "register", "open_hour", "post_ask", "post_bid", "clear", "settle", "settle_many",
        "feedback", "withdraw", "credit_of",
    )  # fmt: skip

    settle = LETB.settle
    settle_many = LETB.settle_many
    feedback = LETB.feedback
    withdraw = LETB.withdraw
    credit_of = LETB.credit_of

    @classmethod
    def deploy_request(cls, *args: Any, **kw: Any) -> TxRequest:  # type: ignore[override]
        """One area's creation transaction: LETB's constructor arguments (token, area_id,
        operator, tdno, initial_reputation, bond, max_fills = fills one bid may take)."""
        return LETB.deploy_request(*args, **{"artifact": cls.artifact, **kw})

    def register(  # type: ignore[override]
        self, account: str, commitment: bytes, bus: int, role: int, member_id: int
    ) -> TxRequest:
        """Operator registers a member: identity commitment, bus, role mask (1 seller, 2 buyer,
        3 both) and its member id (1..2**24-1, each once; it orders ties in the books)."""
        return self.tx("register", account, commitment, bus, role, member_id)

    def post_ask(self, t: int, e_wh: int, price: int, hint_prev_id: int) -> TxRequest:
        """Seller's ask for hour t; hint = the member id of the ask before it (0 = head)."""
        return self.tx("post_ask", t, e_wh, price, hint_prev_id, gas=300_000)

    def post_bid(self, t: int, e_wh: int, limit: int, hint_prev_id: int) -> TxRequest:
        """Buyer's bid for hour t (escrows e_wh * limit); hint = the bid before it (0 = head)."""
        return self.tx("post_bid", t, e_wh, limit, hint_prev_id, gas=300_000)

    def clear(
        self, t: int, max_bids: int, *, orders_walked: int = 0, max_fills: int = 16
    ) -> TxRequest:
        """Operator's clearing call for hour t: the next `max_bids` bids (the first call of the
        hour sets the price walking the hour's orders: pass their number as `orders_walked`;
        `max_fills` = the contract's fill cap, for the gas limit)."""
        per_bid = CLEAR_BID_GAS + CLEAR_FILL_GAS * max_fills
        gas = 100_000 + per_bid * max_bids + CLEAR_ORDER_GAS * orders_walked
        return self.tx("clear", t, max_bids, gas=gas)

    def clearing_state(self) -> tuple[int, int, int]:
        """(hour of the book, phase 0 open / 1 clearing / 2 cleared, price base units per Wh)."""
        return tuple(int(x) for x in self.call("clearing_state"))  # type: ignore[return-value]

    def book(self, side: int) -> list[int]:
        """Member ids of the asks (side 1) or bids (2) of the last hour with orders, in order."""
        return [int(x) for x in self.call("book", side)]

    def member_id(self, account: str) -> int:
        return int(self.call("member_id", account))


class DoubleAuctionMarket(LocalBook):
    """The double auction as a local market: one contract per area on the 'letb' chain
    (module docstring). Set-up funding, approvals, settlement, feedback and the escrow rule
    (seed + bonds + users' refund credits) are the local book's."""

    name = "double_auction"
    chain = "letb"
    kind = "local"
    request_phase = Phase.LETB_REQUEST

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.member_ids: dict[str, int] = {}
        """Member id of every participant in its area's auction (address -> id)."""
        self._bids: dict[int, list[tuple[Any, int, int]]] = {}  # area -> (user, e_wh, limit)
        self._asks: dict[int, int] = {}  # area -> asks posted this hour
        self._cleared: list[int] = []  # the area of each clear call, in order
        self.bid_wh = 0
        self.prices: dict[int, int] = {}
        """The hour's clearing price per area that cleared orders (base units per Wh)."""

    # ---- set-up ---------------------------------------------------------------------------
    def deploy(self) -> list[SignedTx]:
        w, sc = self.world, self.world.params
        bond = usd_to_base_units(sc.registration_bond_usd)
        roles = (w.operator.account.address, w.tdno.account.address)
        args = (*roles, sc.initial_reputation, bond, sc.letb_max_fills_per_request)
        token = w.tokens[self.chain].address
        return [
            (self.signer("admin"), DoubleAuction.deploy_request(token, a, *args))
            for a in range(w.n_areas)
        ]

    def deployed(self, results: Sequence[TxResult]) -> None:
        chain = self.world.chains[self.chain]
        self.books = [DoubleAuction.at_result(chain, r) for r in results]  # type: ignore[misc]

    def registrations(self) -> list[SignedTx]:
        """Producers (sellers, role 1), then users (buyers, role 2); member ids numbered per
        area in that order (what the LETB numbers its producers by)."""
        w, seed, op = self.world, self.world.params.seed, self.signer("operator")
        members = [(p, "producer", 1) for p in w.producers] + [(u, "user", 2) for u in w.users]
        count: dict[int, int] = defaultdict(int)
        items = []
        for agent, role_name, role in members:
            count[agent.area] += 1
            self.member_ids[agent.account.address] = count[agent.area]
            c = commitment(seed, role_name, agent.index)
            call = self.books[agent.area].register(
                agent.account.address, c, agent.bus, role, count[agent.area]
            )
            items.append((op, call))
        return items

    def registered(self, results: Sequence[TxResult]) -> None:
        for p in self.world.producers:
            p.producer_id = self.member_ids[p.account.address]
            p.reputation = self.world.params.initial_reputation

    # ---- the hour -------------------------------------------------------------------------
    def open_hour(self, hour: MarketHour) -> list[SignedTx]:
        """Caps for the buses of the area's sellers AND buyers (bids are capped too)."""
        w, op = self.world, self.signer("operator")
        fit = price_to_base_units_per_wh(hour.fit_usd_per_mwh)
        items = []
        for a, m in enumerate(self.books):
            members = [x.bus for x in (*w.producers, *w.users) if x.area == a]
            buses, caps = w.operator.open_caps(members, hour.caps_usd_per_mwh, hour.fit_usd_per_mwh)
            items.extend((op, call) for call in m.open_hour_calls(hour.t, fit, buses, caps))
        return items

    def offers(self, hour: MarketHour) -> list[list[SignedTx]]:
        """Asks (the offers the producers decided) in offer rounds per area, then bids (the
        users' decisions) in rounds of their own: a user sees the hour's AskPosted events and
        bids only where its area has asks (else the bid could not fill: save gas and escrow)."""
        t, caps = hour.t, hour.caps_usd_per_mwh
        asks: dict[int, list[tuple[Any, int, int]]] = defaultdict(list)  # (agent, e_wh, price)
        bids: dict[int, list[tuple[Any, int, int]]] = defaultdict(list)  # (agent, e_wh, limit)
        self.offered_wh = self.bid_wh = 0
        for p in self.world.producers:  # each decided its offer (`decide_offer`) before
            if p.offer is not None:
                price = price_to_base_units_per_wh(p.offer.price_usd_per_mwh)
                asks[p.area].append((p, p.offer.e_wh, price))
                self.offered_wh += p.offer.e_wh
        credit = self.world.letb_credit_units
        for u in hour.buyers:
            if u.area not in asks:
                continue
            bid = u.auction_bid(
                self.name, t, cap_usd_per_mwh=caps[u.bus],
                tariff_usd_per_mwh=hour.tariff_usd_per_mwh, fit_usd_per_mwh=hour.fit_usd_per_mwh,
            )  # fmt: skip
            if bid is not None:
                req, limit_usd_per_mwh = bid
                limit = price_to_base_units_per_wh(limit_usd_per_mwh)
                bids[u.area].append((u, req.e_wh, limit))
                self.bid_wh += req.e_wh
                # the escrow spends the refund credit first (CreditUsed); clearing credits back
                a = u.account.address
                credit[a] = credit.get(a, 0) - min(credit.get(a, 0), req.e_wh * limit)
        self._asks = {a: len(x) for a, x in asks.items()}
        self._bids = dict(bids)
        ask_rounds: list[list[SignedTx]] = []
        bid_rounds: list[list[SignedTx]] = []
        for a, orders in sorted(asks.items()):
            self._post_rounds(ask_rounds, ref.ASK, a, t, orders)
        for a, orders in sorted(bids.items()):
            self._post_rounds(bid_rounds, ref.BID, a, t, orders)
        self.areas_with_offers = set(asks)
        return ask_rounds + bid_rounds

    def _post_rounds(
        self, rounds: list[list[SignedTx]], side: int, area: int, t: int, orders: list
    ) -> None:
        """Add one area's asks or bids to `rounds` with hints from `offer_rounds`."""
        by_id = {self.member_ids[x.account.address]: (x, e, p) for x, e, p in orders}
        keys = [ref.book_key(side, ref.Order(m, "", e, p)) for m, (_x, e, p) in by_id.items()]
        contract = self.books[area]
        post = contract.post_ask if side == ref.ASK else contract.post_bid
        for r, posts in enumerate(offer_rounds(keys, ref.ORDER_FANOUT)):
            if r == len(rounds):
                rounds.append([])
            for mid, hint in posts:
                agent, e, p = by_id[mid]
                signer = agent.signer if side == ref.ASK else agent.letb_signer
                rounds[r].append((signer, post(t, e, p, hint)))

    def requests(self, hour: MarketHour) -> list[SignedTx]:
        """The operator clears every area with orders: ceil(bids / CLEAR_CHUNK) calls (one if
        the area has asks only), in order, in one block."""
        op, items, self._cleared = self.signer("operator"), [], []
        for a in sorted(set(self._asks) | set(self._bids)):
            n_bids = len(self._bids.get(a, []))
            walked = n_bids + self._asks.get(a, 0)
            for k in range(max(1, math.ceil(n_bids / CLEAR_CHUNK))):
                bids = min(CLEAR_CHUNK, n_bids - k * CLEAR_CHUNK)
                call = self.books[a].clear(
                    hour.t, bids, orders_walked=walked if k == 0 else 0,
                    max_fills=self.world.params.letb_max_fills_per_request,
                )  # fmt: skip
                items.append((op, call))
                self._cleared.append(a)
        return items

    def fills(self, hour: MarketHour, results: Sequence[TxResult]) -> list[Fill]:
        """Every bid's fills from the clearing's Trade events, bids in book order; the Matched
        event checks them, the Credited events give each buyer's credit after clearing."""
        users = {u.account.address: u for u in self.world.users}
        credit = self.world.letb_credit_units
        out: list[Fill] = []
        self._requests, self.prices = [], {}
        for a, res in zip(self._cleared, results, strict=True):
            trades: list[dict[str, Any]] = []
            for name, ev in events(self.books[a], res):
                if name == "Trade":
                    trades.append(ev)
                elif name == "Credited":
                    credit[ev["buyer"]] = int(ev["credit"])
                elif name == "Priced":
                    self.prices[a] = int(ev["price"])
                elif name == "Matched":
                    mine = [self._fill(a, users[ev["buyer"]], tr, res) for tr in trades]
                    trades = []
                    if sum(f.e_wh for f in mine) != int(ev["filled_wh"]):
                        raise ConservationError(
                            f"hour {hour.t}: bid of {ev['buyer']} in area {a}: fills do not add "
                            f"up to filled_wh {ev['filled_wh']}"
                        )
                    if mine:
                        self._requests.append((users[ev["buyer"]], int(ev["nonce"]), mine))
                        out += mine
        return out

    def _fill(self, area: int, u: Any, ev: dict[str, Any], res: TxResult) -> Fill:
        return Fill(
            market=self.name,
            chain=self.chain,
            area=area,
            buyer_id=u.unique_id,
            buyer=u.account.address,
            seller_id=int(ev["producer_id"]),
            seller=ev["seller"],
            nonce=int(ev["nonce"]),
            index=int(ev["index"]),
            e_wh=int(ev["e_wh"]),
            price_base_units_per_wh=int(ev["price"]),
            tx_hash=res.tx_hash,
            block=res.block_number,
            event=ev,
        )

    def hour_columns(self) -> dict[str, float]:
        return {"offered_local_kwh": self.offered_wh / 1000.0}
