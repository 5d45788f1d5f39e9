"""A deployed DoubleAuction on a real EVM (revm) for the auction tests: token, one auction per
fill cap (members registered in one order, so member ids agree), sellers, buyers, a prosumer
that may ask or bid, an outsider; helpers to post with hints computed off chain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web3.contract import Contract
from web3.logs import DISCARD

from gridledger.market.clearing import Fill, offer_rounds
from gridledger.markets import double_auction_ref as ref

from .conftest import CAP, FLOOR, INITIAL_REP, USD, Chain, commitment

ASK, BID = ref.ASK, ref.BID


@dataclass
class Auction:
    """Contracts and named participants; `auctions[k]` = the auction with fill cap k."""

    chain: Chain
    token: Contract
    auctions: dict[int, Contract]
    admin: str
    operator: str
    tdno: str
    sellers: list[str]
    buyers: list[str]
    prosumer: str
    outsider: str
    buses: dict[str, int]
    ids: dict[str, int]

    @property
    def da(self) -> Contract:
        """The auction with the largest fill cap (16)."""
        return self.auctions[max(self.auctions)]


def deploy_auction(
    chain: Chain,
    n_sellers: int = 8,
    n_buyers: int = 8,
    caps: tuple[int, ...] = (16,),
    n_buses: int = 64,
) -> Auction:
    """Token + one DoubleAuction per fill cap in `caps`, everyone funded, approved, registered
    (member i at bus 10 + i % n_buses: open_hour posts at most 64 caps)."""
    acc = chain.accounts
    admin, operator, tdno = acc[0], acc[1], acc[2]
    sellers = acc[3 : 3 + n_sellers]
    buyers = acc[3 + n_sellers : 3 + n_sellers + n_buyers]
    prosumer, outsider = acc[3 + n_sellers + n_buyers], acc[4 + n_sellers + n_buyers]
    token = chain.deploy("EnergyToken", 10**12 * USD, sender=admin)
    auctions = {
        k: chain.deploy("DoubleAuction", token.address, k, operator, tdno, INITIAL_REP, 0, k)
        for k in caps
    }
    members = [(s, 1) for s in sellers] + [(b, 2) for b in buyers] + [(prosumer, 3)]
    buses = {who: 10 + i % n_buses for i, (who, _) in enumerate(members)}
    for da in auctions.values():
        chain.send_quiet(token.functions.transfer(da.address, 1), admin)  # the escrow seed
    for who, _role in members:
        chain.send_quiet(token.functions.transfer(who, 10**6 * USD), admin)
        for da in auctions.values():
            chain.send(token.functions.approve(da.address, 2**256 - 1), who)
    ids = {who: i + 1 for i, (who, _) in enumerate(members)}  # the operator numbers members
    for da in auctions.values():
        for who, role in members:
            call = da.functions.register(who, commitment(who), buses[who], role, ids[who])
            chain.send(call, operator, "DoubleAuction.register")
    return Auction(chain, token, auctions, admin, operator, tdno, sellers, buyers, prosumer,
                   outsider, buses, ids)  # fmt: skip


def open_hour(a: Auction, t: int, da: Contract | None = None, cap: int = CAP) -> None:
    """Operator opens hour t with one cap for every member's bus."""
    buses = sorted(set(a.buses.values()))
    for c in (da,) if da is not None else a.auctions.values():
        a.chain.send(c.functions.open_hour(t, FLOOR, buses, [cap] * len(buses)), a.operator)


def hint(da: Contract, side: int, t: int, price: int, member_id: int) -> int:
    """The member id to insert after in hour t's book, read from the chain (0 = head)."""
    prev = 0
    if da.functions.clearing_state().call()[0] != t:  # the book is another hour's
        return prev
    for mid in da.functions.book(side).call():
        p = da.functions.order_of(mid).call()[1]
        if ref.book_key(side, ref.Order(mid, "", 1, p)) >= ref.book_key(
            side, ref.Order(member_id, "", 1, price)
        ):
            break
        prev = mid
    return prev


def post(a: Auction, da: Contract, side: int, who: str, t: int, e_wh: int, price: int) -> Any:
    """Post an ask or a bid with a hint read from the chain's book; returns the receipt."""
    h = hint(da, side, t, price, a.ids[who])
    fn = da.functions.post_ask if side == ASK else da.functions.post_bid
    return a.chain.send(fn(t, e_wh, price, h), who)


def post_rounds(
    a: Auction, da: Contract, side: int, t: int, orders: list[tuple[str, int, int]]
) -> None:
    """Post (account, e_wh, price) orders in the rounds of clearing.offer_rounds (hints from
    earlier rounds only), as the model does."""
    by_id = {a.ids[who]: (who, e, p) for who, e, p in orders}
    keys = [ref.book_key(side, ref.Order(a.ids[w], w, e, p)) for w, e, p in orders]
    fn = da.functions.post_ask if side == ASK else da.functions.post_bid
    for rnd in offer_rounds(keys, ref.ORDER_FANOUT):
        for mid, h in rnd:
            who, e, p = by_id[mid]
            a.chain.send_quiet(fn(t, e, p, h), who)


def clear_all(a: Auction, da: Contract, t: int, chunk: int = 256) -> list[Any]:
    """Clear hour t in calls of `chunk` bids until the Cleared event; returns the receipts."""
    receipts = []
    while True:
        receipt = a.chain.send(da.functions.clear(t, chunk), a.operator)
        receipts.append(receipt)
        if da.events.Cleared().process_receipt(receipt, errors=DISCARD):
            return receipts


def logs(da: Contract, receipts: list[Any], name: str) -> list[Any]:
    """Args of every `name` event in `receipts`, in order."""
    event = getattr(da.events, name)()
    return [e.args for r in receipts for e in event.process_receipt(r, errors=DISCARD)]


def fills_by_buyer(da: Contract, receipts: list[Any]) -> dict[str, list[Fill]]:
    """Each buyer's fills from the Trade events of the clearing."""
    out: dict[str, list[Fill]] = {}
    for ev in logs(da, receipts, "Trade"):
        out.setdefault(ev.buyer, []).append(Fill(ev.producer_id, ev.seller, ev.e_wh, ev.price))
    return out
