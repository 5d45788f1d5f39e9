"""Gas bound of each contract operation: half the reference paper's figures (issue 3).

The paper reports ≈ 280k gas for LETB matching, ≈ 110k for RETB matching and <= 150k for every
other operation; gridledger's contracts must stay within half of that. The contract tests
(tests/contracts/test_gas.py), the model-day test (tests/market_day/test_gas_day.py) and
benchmarks/bench_gas.py all take their bounds from here.

Operations are named ``"<Contract>.<function>"``, optionally followed by a qualifier
(``"LETB.request 3 fills"``); a bound applies to every name that starts with its key.

A batched call (``settle_many``: the TDNO settles up to MAX_BATCH = 32 requests of one market
and hour) has two bounds: per item (its gas / its items) the bound of the single call it
replaces, 75k, and per call MAX_BATCH x 75k = 2.4M, 8 % of a 30M-gas block.
"""

from __future__ import annotations

from gridledger.market.clearing import MAX_BATCH  # items per settle_many call (market_base.vy)

PAPER_GAS: dict[str, int] = {"LETB.request": 280_000, "RETB.request": 110_000}
"""The reference paper's gas figures for matching (LETB, RETB)."""
PAPER_OTHER_GAS = 150_000
"""The paper's figure for every other operation."""

GAS_BOUNDS: dict[str, int] = {op: gas // 2 for op, gas in PAPER_GAS.items()}
"""Bound per operation prefix: LETB.request 140k, RETB.request 55k."""
OTHER_BOUND = PAPER_OTHER_GAS // 2
"""Bound of every other operation (registration, approvals, hours, offers, settlement,
feedback, withdrawal, token transfers): 75k."""


GAS_BOUNDS["DoubleAuction.post_bid"] = GAS_BOUNDS["LETB.request"]
"""A bid is the buyer's request of the hour: it escrows e_wh * limit as LETB.request escrows
its payment (a buyer's first bid also pays its order slot's first write, 20k)."""

GAS_BOUNDS["DoubleAuction.open_hour"] = 100_000
"""Above the 75k target: the auction caps bids too, so the operator posts the DLMP cap of every
member's bus (the default scenario's largest area: 25 buses, 82k gas; LETB posts its sellers'
9). market_base.open_hour costs ≈ 21k + 5k per group of four buses + 0.8k per bus."""

BATCHED: dict[str, str] = {
    "LETB.settle_many": "LETB.settle",
    "RETB.settle_many": "RETB.settle",
    "DoubleAuction.settle_many": "DoubleAuction.settle",
    "DoubleAuction.clear": "DoubleAuction.clear_bid",
}
"""Batched operation -> the single-item operation whose bound each of its items keeps."""
GAS_BOUNDS["DoubleAuction.clear_bid"] = GAS_BOUNDS["LETB.request"]
"""One bid filled by DoubleAuction.clear (no transaction of its own): the matching LETB.request
does per request (the first clear call of an hour also walks the books for the price)."""
GAS_BOUNDS.update({op: MAX_BATCH * OTHER_BOUND for op in BATCHED})


def item_bound_of(operation: str) -> int:
    """Gas bound per item of a batched `operation` ("LETB.settle_many 12 items"): the bound of
    the single call it batches."""
    for batched, single in BATCHED.items():
        if operation == batched or operation.startswith(batched + " "):
            return bound_of(single)
    raise ValueError(f"{operation!r} is not a batched operation; batched: {sorted(BATCHED)}")


def bound_of(operation: str) -> int:
    """Gas bound of `operation` ("LETB.settle 3 fills", "RETB.request", ...): the bound of the
    longest matching prefix in GAS_BOUNDS, else OTHER_BOUND (per call for batched operations)."""
    for prefix, gas in sorted(GAS_BOUNDS.items(), key=lambda kv: -len(kv[0])):
        if operation == prefix or operation.startswith(prefix + " "):
            return gas
    return OTHER_BOUND


__all__ = [
    "BATCHED",
    "GAS_BOUNDS",
    "MAX_BATCH",
    "OTHER_BOUND",
    "PAPER_GAS",
    "PAPER_OTHER_GAS",
    "bound_of",
    "item_bound_of",
]
