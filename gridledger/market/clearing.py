"""Pure-Python reference of the on-chain market rules (LETB, RETB), integer for integer.

The contracts in ``gridledger/contracts`` and these functions implement the same rules; tests run
random books and requests through both on a real EVM and demand identical trades, balances and
reputations. Units are the on-chain ones: energy in Wh, prices in token base units per Wh, money
in token base units, reputation 0..1000, feedback scores 0..5, hours as market hour indices.
All functions are pure; inputs and outputs are tuples of frozen dataclasses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from eth_abi import encode
from eth_utils import keccak

REP_MAX = 1000
SCORE_MAX = 5
POSITIVE_SCORE = 3
MAX_FILLS = 16
MAX_VISIT = 64
MAX_BATCH = 32  # items one settle_many call takes (market_base.vy MAX_BATCH)
MAX_CAPS = 64  # caps one open_hour call takes (market_base.vy MAX_CAPS)
OFFER_FANOUT = 6
"""Offers of one `offer_rounds` round between two neighbours of the book: post_offer then walks
past at most 5 offers from its hint, which keeps it within its gas bound (tests/contracts/
test_gas.py)."""
MAX_E_WH = 10**12
MAX_PRICE = 2**96 - 1
ONE = 10**18
FRACTION_BITS = 48
X_MAX_FP = 10**24
BASE_UNITS_PER_WH_PER_USD_PER_MWH = 10**12
MAX_CREDIT = 2**72 - 1  # LETB keeps a buyer's refund credit in 72 bits of its account slot

_FILL_ABI = "(uint256,address,uint256,uint256)[]"
_RETB_TRADE_ABI = "(address,uint256,uint256,uint256,uint256,address,uint256,uint256,uint256)"


class ClearingError(ValueError):
    """An input the contracts would refuse; the message names the input and the rule."""


def price_to_chain(price_usd_per_mwh: float) -> int:
    """$/MWh -> token base units per Wh (1 $/MWh = 10**12 base units per Wh)."""
    if price_usd_per_mwh < 0:
        raise ClearingError(f"price_usd_per_mwh={price_usd_per_mwh} is negative")
    return round(price_usd_per_mwh * BASE_UNITS_PER_WH_PER_USD_PER_MWH)


def price_from_chain(price: int) -> float:
    """Token base units per Wh -> $/MWh."""
    return price / BASE_UNITS_PER_WH_PER_USD_PER_MWH


# ---------------------------------------------------------------------------------------------
# LETB: price-ordered book, cheapest-first matching with a reputation threshold
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """A local producer's offer in the book: `e_wh` Wh left at `price` base units per Wh."""

    producer_id: int
    seller: str
    e_wh: int
    price: int


@dataclass(frozen=True)
class Fill:
    """One trade of a request (the LETB `Trade` event and the contract's `Fill` struct)."""

    producer_id: int
    seller: str
    e_wh: int
    price: int

    @property
    def value(self) -> int:
        """Escrowed payment, token base units."""
        return self.e_wh * self.price

    def as_tuple(self) -> tuple[int, str, int, int]:
        """The ABI tuple the LETB `settle`/`feedback` functions take."""
        return (self.producer_id, self.seller, self.e_wh, self.price)


@dataclass(frozen=True)
class MatchResult:
    """Outcome of one request: its fills, the book afterwards, Wh filled and base units paid."""

    fills: tuple[Fill, ...]
    book: tuple[Offer, ...]
    filled_wh: int
    paid: int


def book_key(offer: Offer) -> tuple[int, int]:
    """Position of an offer in the LETB book: by price, then by producer id (so the book's order
    does not depend on the order the offers were executed in)."""
    return offer.price, offer.producer_id


def insert_offer(book: Sequence[Offer], offer: Offer) -> tuple[Offer, ...]:
    """Insert after every offer whose (price, producer id) is below the new offer's."""
    if not 1 <= offer.e_wh <= MAX_E_WH:
        raise ClearingError(f"offer e_wh={offer.e_wh} outside 1..{MAX_E_WH}")
    if any(o.producer_id == offer.producer_id for o in book):
        raise ClearingError(f"producer_id={offer.producer_id} already has an offer in the book")
    pos = sum(1 for o in book if book_key(o) < book_key(offer))
    return (*book[:pos], offer, *book[pos:])


def hint_for(book: Sequence[Offer], price: int, producer_id: int = 0) -> int:
    """Producer id to pass as `hint_prev_id` for an offer at `price` (0 = insert at the head):
    the last offer before (price, producer_id); with producer_id 0 (the LETB view `hint_for`)
    the last offer with a lower price, a valid hint for any producer."""
    prev = 0
    for o in book:
        if book_key(o) >= (price, producer_id):
            break
        prev = o.producer_id
    return prev


def offer_rounds(offers: Sequence[tuple[int, int]], fanout: int) -> list[list[tuple[int, int]]]:
    """Split one book's offers, (price, producer id) each, into rounds (one block each) with
    hints that hold whatever order a node executes a round in.

    Every hint is an offer of an earlier round (the book as the round starts: no offer of the
    round itself), and at most `fanout` offers of a round fall between two neighbours of that
    book, so post_offer walks past at most `fanout - 1` offers from its hint. Returns per round
    the (producer id, hint) of each offer, in book order. n offers take
    ceil(log_{fanout+1}(n + 1)) rounds.
    """
    if fanout < 1:
        raise ClearingError(f"fanout={fanout} must be >= 1")
    keys = sorted(offers)
    if len({pid for _, pid in keys}) != len(keys):
        raise ClearingError("offer_rounds: a producer id appears twice (one offer per hour)")
    booked = [False] * len(keys)
    rounds: list[list[tuple[int, int]]] = []
    while not all(booked):
        chosen: list[tuple[int, int]] = []
        anchor, gap = 0, []  # the last booked offer's producer id, the unbooked offers after it
        for i in range(len(keys) + 1):
            if i == len(keys) or booked[i]:
                g = len(gap)
                picks = gap if g <= fanout else [
                    gap[(j + 1) * (g + 1) // (fanout + 1) - 1] for j in range(fanout)
                ]  # fmt: skip
                for k in picks:
                    chosen.append((keys[k][1], anchor))
                    booked[k] = True
                if i < len(keys):
                    anchor, gap = keys[i][1], []
            else:
                gap.append(i)
        rounds.append(chosen)
    return rounds


def match_request(
    book: Sequence[Offer],
    reputations: Mapping[int, int],
    demand_wh: int,
    rt: int,
    own_producer_id: int = 0,
    max_fills: int = MAX_FILLS,
) -> MatchResult:
    """Fill `demand_wh` Wh from the cheapest offers whose producer reputation >= `rt`.

    Mirrors LETB.request: at most MAX_VISIT offers visited and `max_fills` fills (the LETB
    deployment parameter, 1..MAX_FILLS); the buyer's own offer (`own_producer_id`) is skipped;
    exhausted offers leave the book.
    """
    if not 1 <= demand_wh <= MAX_E_WH:
        raise ClearingError(f"demand_wh={demand_wh} outside 1..{MAX_E_WH}")
    if not 0 <= rt <= REP_MAX:
        raise ClearingError(f"rt={rt} outside 0..{REP_MAX}")
    if not 1 <= max_fills <= MAX_FILLS:
        raise ClearingError(f"max_fills={max_fills} outside 1..{MAX_FILLS}")
    remaining = demand_wh
    fills: list[Fill] = []
    after: list[Offer] = []
    for i, offer in enumerate(book):
        if i >= MAX_VISIT or remaining == 0 or len(fills) == max_fills:
            after.extend(book[i:])
            break
        eligible = reputations[offer.producer_id] >= rt and offer.producer_id != own_producer_id
        if not eligible:
            after.append(offer)
            continue
        q = min(offer.e_wh, remaining)
        fills.append(Fill(offer.producer_id, offer.seller, q, offer.price))
        remaining -= q
        if q < offer.e_wh:
            after.append(replace(offer, e_wh=offer.e_wh - q))
    return MatchResult(
        fills=tuple(fills),
        book=tuple(after),
        filled_wh=demand_wh - remaining,
        paid=sum(f.value for f in fills),
    )


@dataclass(frozen=True)
class Settlement:
    """Escrow release of one request: payout per fill, total paid, refund, delivered Wh."""

    payouts: tuple[int, ...]
    paid: int
    refunded: int
    delivered_wh: int


def settle(fills: Sequence[Fill], delivered_wh: Sequence[int]) -> Settlement:
    """Pay each seller delivered * price; the undelivered rest is the buyer's refund (exact):
    LETB credits it inside the contract (`credit_refund`), RETB transfers it."""
    if len(fills) != len(delivered_wh):
        raise ClearingError(f"{len(delivered_wh)} delivered amounts for {len(fills)} fills")
    for i, (f, d) in enumerate(zip(fills, delivered_wh, strict=True)):
        if not 0 <= d <= f.e_wh:
            raise ClearingError(f"delivered_wh[{i}]={d} outside 0..scheduled {f.e_wh}")
    payouts = tuple(d * f.price for f, d in zip(fills, delivered_wh, strict=True))
    refunded = sum((f.e_wh - d) * f.price for f, d in zip(fills, delivered_wh, strict=True))
    return Settlement(payouts, sum(payouts), refunded, sum(delivered_wh))


def settle_many(
    items: Sequence[tuple[str, Sequence[Fill], Sequence[int]]],
) -> tuple[Settlement, ...]:
    """The TDNO's batch (LETB/RETB `settle_many`): (buyer, fills, delivered_wh) per request, each
    settled as by `settle`; at most MAX_BATCH items and each buyer once ("already settled")."""
    if len(items) > MAX_BATCH:
        raise ClearingError(f"{len(items)} items in one settle_many, at most {MAX_BATCH}")
    buyers = [b for b, _, _ in items]
    twice = sorted({b for b in buyers if buyers.count(b) > 1})
    if twice:
        raise ClearingError(f"buyer(s) {twice} settled twice in one batch (already settled)")
    return tuple(settle(fills, delivered) for _, fills, delivered in items)


def credit_refund(credit: int, refunded: int) -> tuple[int, int]:
    """LETB settle: the refund is credited to the buyer inside the contract (pull payment).

    Returns (credit after, refund transferred): the refund is added to the credit unless the sum
    would exceed ``MAX_CREDIT``; then the refund is transferred and the credit stays.
    """
    if not 0 <= credit <= MAX_CREDIT:
        raise ClearingError(f"credit={credit} outside 0..{MAX_CREDIT}")
    if refunded < 0:
        raise ClearingError(f"refunded={refunded} is negative")
    if credit + refunded <= MAX_CREDIT:
        return credit + refunded, 0
    return credit, refunded


def spend_credit(credit: int, total: int) -> tuple[int, int]:
    """LETB request: the buyer's credit pays first. Returns (credit used, amount pulled)."""
    if credit < 0 or total < 0:
        raise ClearingError(f"credit={credit}, total={total}: both must be >= 0")
    used = min(credit, total)
    return used, total - used


def update_reputation(reputation: int, score: int) -> int:
    """The bounded feedback rule of both contracts: (7 r + 200 score) // 8, in [0, 1000]."""
    if not 0 <= reputation <= REP_MAX:
        raise ClearingError(f"reputation={reputation} outside 0..{REP_MAX}")
    if not 0 <= score <= SCORE_MAX:
        raise ClearingError(f"score={score} outside 0..{SCORE_MAX}")
    return (7 * reputation + 200 * score) // 8


def request_commitment(buyer: str, nonce: int, t: int, fills: Sequence[Fill]) -> bytes:
    """keccak256(abi_encode(buyer, nonce, t, fills)) — the hash LETB stores (first 15 bytes)."""
    data = encode(
        ["address", "uint256", "uint256", _FILL_ABI],
        [buyer, nonce, t, [f.as_tuple() for f in fills]],
    )
    return keccak(data)


# ---------------------------------------------------------------------------------------------
# RETB: eligibility of the operator's choice, incentive with fixed-point log_k
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepOffer:
    """A renewable producer's current offer: window [start, end), capacity left, price."""

    rep: str
    start: int
    end: int
    remaining_wh: int
    price: int
    reputation: int
    stable_hours: int


@dataclass(frozen=True)
class RetbTrade:
    """The RETB `Trade` event / `RetbTrade` struct."""

    buyer: str
    nonce: int
    t: int
    start: int
    end: int
    rep: str
    e_wh: int
    price: int
    stable_hours: int

    def as_tuple(self) -> tuple[str, int, int, int, int, str, int, int, int]:
        """The ABI tuple RETB `settle`/`feedback` take."""
        return (
            self.buyer,
            self.nonce,
            self.t,
            self.start,
            self.end,
            self.rep,
            self.e_wh,
            self.price,
            self.stable_hours,
        )


@dataclass(frozen=True)
class IncentiveParams:
    """RETB constructor parameters of the incentive: base k, scale (Wh), stable reference (h)."""

    log_base_k: int = 10
    scale_wh: int = 1_000_000
    stable_ref_hours: int = 24


def ineligibility(
    offer: RepOffer, buyer: str, shortage_wh: int, start: int, end: int, rt: int
) -> str | None:
    """Why RETB would refuse `offer` for this request (its revert reason), or None if eligible."""
    if offer.rep == buyer:
        return "cannot buy from yourself"
    if not (offer.start <= start and end <= offer.end):
        return "REP window does not cover demand window"
    if offer.remaining_wh < shortage_wh:
        return "REP capacity below shortage"
    if offer.reputation < rt:
        return "REP reputation below threshold"
    return None


def choose_rep(
    ranked: Sequence[RepOffer], buyer: str, shortage_wh: int, start: int, end: int, rt: int
) -> RepOffer | None:
    """The operator's hint: the first REP of its ranking that RETB will accept (None if none)."""
    for offer in ranked:
        if ineligibility(offer, buyer, shortage_wh, start, end, rt) is None:
            return offer
    return None


def log2_fp(v: int) -> int:
    """log2(v / 1e18) * 1e18 exactly as the contracts compute it (binary-digit method)."""
    if v < ONE:
        raise ClearingError(f"log2 argument v={v} below 1e18 (= 1.0)")
    n = (v // ONE).bit_length() - 1
    z = v >> n
    result = n * ONE
    bit = ONE
    for _ in range(FRACTION_BITS):
        z = z * z // ONE
        bit >>= 1
        if z >= 2 * ONE:
            z >>= 1
            result += bit
    return result


def incentive_x_fp(
    delivered_wh: int, scheduled_wh: int, stable_hours: int, params: IncentiveParams
) -> int:
    """x = (delivered/scale) * (delivered/scheduled) * (stable_hours/ref) in 1e18 fixed point."""
    if scheduled_wh < 1 or not 0 <= delivered_wh <= scheduled_wh:
        raise ClearingError(f"delivered_wh={delivered_wh} outside 0..scheduled {scheduled_wh}")
    x = (delivered_wh * delivered_wh * stable_hours * ONE) // (
        params.scale_wh * scheduled_wh * params.stable_ref_hours
    )
    return min(x, X_MAX_FP)


def incentive(payment: int, x_fp: int, params: IncentiveParams) -> int:
    """I = C_d - C_REG = payment * log_k(1 + x), base units, as minted by RETB."""
    return payment * log2_fp(ONE + x_fp) // log2_fp(params.log_base_k * ONE)


def trade_incentive(
    trade: RetbTrade, delivered_wh: int, score: int, params: IncentiveParams
) -> int:
    """Incentive minted to the REP when the buyer rates `trade` with `score` (0 if not positive)."""
    if score < POSITIVE_SCORE or delivered_wh == 0:
        return 0
    x = incentive_x_fp(delivered_wh, trade.e_wh, trade.stable_hours, params)
    return incentive(delivered_wh * trade.price, x, params)


__all__ = [
    "MAX_BATCH",
    "MAX_CREDIT",
    "MAX_FILLS",
    "MAX_VISIT",
    "OFFER_FANOUT",
    "POSITIVE_SCORE",
    "REP_MAX",
    "SCORE_MAX",
    "ClearingError",
    "Fill",
    "IncentiveParams",
    "MatchResult",
    "Offer",
    "RepOffer",
    "RetbTrade",
    "Settlement",
    "book_key",
    "choose_rep",
    "credit_refund",
    "hint_for",
    "incentive",
    "incentive_x_fp",
    "ineligibility",
    "insert_offer",
    "log2_fp",
    "match_request",
    "offer_rounds",
    "price_from_chain",
    "price_to_chain",
    "request_commitment",
    "settle",
    "settle_many",
    "spend_credit",
    "trade_incentive",
    "update_reputation",
]
