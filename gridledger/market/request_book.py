"""The ledger's events read as books: matched requests, what markets keep, credits, mints.

Pure functions over the ledger's frames (`Ledger.trades()`, `Ledger.settlements()`,
`Ledger.events(...)`) that gridledger/market/invariants.py checks against the chain state. Token
and energy amounts stay exact Python ints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

__all__ = [
    "REQUEST_KEY",
    "credit_totals",
    "in_blocks",
    "kept_by_rule",
    "ledger_rows",
    "minted_between",
    "request_book",
    "request_key",
]

REQUEST_KEY = ["chain", "address", "buyer", "nonce"]
"""A matched request: market contract (chain, address), buyer and the buyer's request nonce."""


# --------------------------------------------------------------------------------------------
# helpers on ledger frames
# --------------------------------------------------------------------------------------------


def _ints(values: Iterable[Any]) -> list[int]:
    """Exact Python ints of a column (token amounts exceed int64 and live in object columns)."""
    out = []
    for v in values:
        if isinstance(v, float):
            raise TypeError(f"token/energy amount {v!r} is a float: exact integers are required")
        out.append(int(v))
    return out


def ledger_rows(df: pd.DataFrame | None, *cols: str) -> list[dict[str, Any]]:
    """Records of a frame; a column name that appears twice (the ledger renames RETB's `rep`
    to `seller`, which LETB events already have) takes the first non-missing value."""
    if df is None or df.empty:
        return []
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"frame lacks columns {missing} (has {list(df.columns)})")
    names = list(df.columns)
    rows = df.itertuples(index=False, name=None)
    if df.columns.is_unique:  # the usual frame: nothing to merge
        return [dict(zip(names, values, strict=True)) for values in rows]
    out = []
    for values in rows:
        row: dict[str, Any] = {}
        for k, v in zip(names, values, strict=True):
            if k not in row or _missing(row[k]):
                row[k] = v
        out.append(row)
    return out


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def in_blocks(df: pd.DataFrame | None, chain: str, first: int, last: int) -> pd.DataFrame:
    """Rows of `chain` mined in blocks first..last (inclusive)."""
    if df is None or df.empty:
        return pd.DataFrame()
    sel = (df["chain"] == chain) & (df["block"] >= first) & (df["block"] <= last)
    return df[sel]


def request_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return (row["chain"], row["address"], row["buyer"], int(row["nonce"]))


def request_book(trades: pd.DataFrame, settlements: pd.DataFrame) -> pd.DataFrame:
    """One row per matched request from the Trade and Settled events of LETB and RETB.

    Columns: chain, address, contract, buyer, nonce, t, n_fills, scheduled_wh, value (Σ e_wh·price,
    base units), settled (bool), delivered_wh, paid, refunded (None while open). Amounts are
    exact Python ints.
    """
    cols = [*REQUEST_KEY, "contract", "t", "n_fills", "scheduled_wh", "value", "settled",
            "delivered_wh", "paid", "refunded"]  # fmt: skip
    book: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in ledger_rows(trades, *REQUEST_KEY, "e_wh", "price"):
        key = request_key(r)
        row = book.setdefault(
            key,
            dict(zip(REQUEST_KEY, key, strict=True), contract=r.get("contract", ""),
                 t=int(r["t"]), n_fills=0, scheduled_wh=0, value=0, settled=False,
                 delivered_wh=None, paid=None, refunded=None, settled_twice=False),
        )  # fmt: skip
        e_wh, price = _ints((r["e_wh"], r["price"]))
        row["n_fills"] += 1
        row["scheduled_wh"] += e_wh
        row["value"] += e_wh * price
    for s in ledger_rows(settlements, *REQUEST_KEY, "delivered_wh", "paid", "refunded"):
        key = request_key(s)
        row = book.get(key)
        if row is None:
            row = book[key] = dict(
                zip(REQUEST_KEY, key, strict=True), contract=s.get("contract", ""), t=None,
                n_fills=0, scheduled_wh=0, value=0, settled=False, settled_twice=False,
            )  # fmt: skip
        if row["settled"]:
            row["settled_twice"] = True
        row["settled"] = True
        row["delivered_wh"], row["paid"], row["refunded"] = _ints(
            (s["delivered_wh"], s["paid"], s["refunded"])
        )
    return pd.DataFrame(list(book.values()), columns=[*cols, "settled_twice"])


def kept_by_rule(
    registered: pd.DataFrame, bond_units: Mapping[tuple[str, str], int], seed_units: int = 1
) -> dict[tuple[str, str], int]:
    """What each market (chain, address) keeps by rule: escrow seed + bond x registrations.

    `registered` = `Ledger.events("Registered")`; `bond_units` lists every market to check (its
    bond, 0 if none), so markets without registrations still get their seed.
    """
    out = {m: seed_units for m in bond_units}
    for r in ledger_rows(registered, "chain", "address"):
        m = (r["chain"], r["address"])
        if m in out:
            out[m] += int(bond_units[m])
    return out


def minted_between(incentives: pd.DataFrame, chain: str, first: int, last: int) -> int:
    """Σ IncentiveMinted.incentive on `chain` in blocks first..last."""
    return sum(_ints(in_blocks(incentives, chain, first, last).get("incentive", [])))


def credit_totals(
    credited: pd.DataFrame | None,
    used: pd.DataFrame | None = None,
    withdrawn: pd.DataFrame | None = None,
) -> dict[tuple[str, str], int]:
    """Σ of the buyers' refund credits per market (chain, address), from LETB's events.

    `credited` = `Ledger.events("Credited")`, `used` = `Ledger.events("CreditUsed")` (both carry
    the buyer's credit after the event), `withdrawn` = `Ledger.events("Withdrawn")` (credit -> 0).
    """
    last: dict[tuple[str, str, str], tuple[int, int, int]] = {}
    for df, who in ((credited, "buyer"), (used, "buyer"), (withdrawn, "account")):
        cols = ("chain", "address", "block", "log_index", who)
        if who == "buyer":
            cols = (*cols, "credit")
        for r in ledger_rows(df, *cols):
            credit = 0 if who == "account" else int(r["credit"])
            key = (r["chain"], r["address"], r[who])
            pos = (int(r["block"]), int(r["log_index"]))
            if key not in last or last[key][:2] < pos:
                last[key] = (*pos, credit)
    out: dict[tuple[str, str], int] = {}
    for (chain, address, _buyer), (_b, _i, credit) in last.items():
        out[(chain, address)] = out.get((chain, address), 0) + credit
    return out
