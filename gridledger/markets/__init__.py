"""Market mechanisms as plug-ins (docs/markets.md): the interface (`base.py`), one module per
market, and the registry the hour loop reads.

`MARKETS` maps a market's name to its class; `MECHANISMS` maps a scenario's
`market_mechanism` to the markets that run, in the order the hour calls them (a user's
shortage goes from one to the next). To add a mechanism: one module implementing
`base.Market`, its line in `MARKETS`, its line in `MECHANISMS`.
"""

from __future__ import annotations

from gridledger.markets.base import (
    Delivery,
    Fill,
    Market,
    MarketHour,
    Offer,
    Rating,
    Request,
    Settlement,
    World,
)
from gridledger.markets.double_auction import DoubleAuctionMarket
from gridledger.markets.letb import LocalBook
from gridledger.markets.phases import Phase
from gridledger.markets.retb import RenewableZone

__all__ = [
    "MARKETS",
    "MECHANISMS",
    "Delivery",
    "Fill",
    "Market",
    "MarketHour",
    "Offer",
    "Phase",
    "Rating",
    "Request",
    "Settlement",
    "UnknownMechanismError",
    "World",
    "markets_of",
]

MARKETS: dict[str, type[Market]] = {
    LocalBook.name: LocalBook,  # markets/letb.py
    RenewableZone.name: RenewableZone,  # markets/retb.py
    DoubleAuctionMarket.name: DoubleAuctionMarket,  # markets/double_auction.py
}
"""Market name -> class, one line per market."""

MECHANISMS: dict[str, tuple[str, ...]] = {
    "paper": ("letb", "retb"),  # the paper's scheme: local book per area, then renewable zone
    "double_auction": ("double_auction", "retb"),  # a uniform-price auction per area, then RETB
}
"""Scenario `market_mechanism` -> the names of its markets, in hour order."""


class UnknownMechanismError(ValueError):
    """A scenario names a market mechanism that is not registered."""


def markets_of(mechanism: str) -> tuple[type[Market], ...]:
    """The market classes of a mechanism, in hour order (UnknownMechanismError if unknown)."""
    if mechanism not in MECHANISMS:
        raise UnknownMechanismError(
            f"market_mechanism = {mechanism!r}: not one of {sorted(MECHANISMS)}"
        )
    return tuple(MARKETS[name] for name in MECHANISMS[mechanism])
