"""Reading the hour's records back from the paper contracts' shared events (Settled, Credited:
contracts/market_base.vy), for any market built on them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from gridledger.chain import TxResult
from gridledger.day.chains import events
from gridledger.day.conservation import ConservationError
from gridledger.markets.base import Fill

__all__ = ["per_request", "settled_events"]


def per_request(
    records: Sequence[Any], fill_of: Callable[[Any], Fill], value_of: Callable[[Any], int]
) -> dict[tuple[int, int], list[int]]:
    """Values of per-fill records grouped by request (buyer id, nonce), in fill order."""
    out: dict[tuple[int, int], list[int]] = defaultdict(list)
    for r in records:
        f = fill_of(r)
        out[(f.buyer_id, f.nonce)].append(value_of(r))
    return out


def settled_events(
    t: int, market: str, contracts: Sequence[Any], results: Sequence[TxResult]
) -> dict[str, dict[str, Any]]:
    """Each buyer's Settled event of the hour's settle calls (buyer address -> its args, with
    the buyer's credit after it under "credit", None if no Credited event)."""
    found: dict[str, dict[str, Any]] = {}
    for contract, res in zip(contracts, results, strict=True):
        credit: dict[str, int] = {}
        for name, ev in events(contract, res):
            if name == "Credited":
                credit[ev["buyer"]] = int(ev["credit"])
            elif name == "Settled":
                if ev["buyer"] in found:
                    raise ConservationError(
                        f"hour {t}: {market} request of {ev['buyer']} settled twice"
                    )
                found[ev["buyer"]] = dict(ev, credit=credit.get(ev["buyer"]))
    return found
