"""`Results.attacks`: the measured outcome of every attack tried in a run, one row per attack.

The rows are `summary["attacks"]` (built by `gridledger.day.attacks.attack_summary`) as a tidy
frame with fixed columns and dtypes, so a run without attacks, an attack that has no value for a
column (a sybil row has no `producer_id`) and a folder saved before this frame existed all give
the same columns. List-valued summary fields (sold Wh by hour, switch hours, buyers' rt) stay in
the summary only. This module imports nothing heavy: `Results.load` uses it without a chain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

INT64_MAX = 2**63 - 1

ATTACK_COLUMNS: dict[str, str] = {
    # what was tried and what happened
    "scenario": "object",
    "tried": "object",
    "outcome": "object",
    "refused": "bool",
    "revert_reason": "object",
    # the two numbers that must be 0
    "tokens_unaccounted_base_units": "int64",
    "wh_unaccounted": "int64",
    # non-delivering producer
    "producer_id": "Int64",
    "sold_wh": "Int64",
    "delivered_wh": "Int64",
    "paid_usd": "float64",
    "refunded_usd": "float64",
    "balance_change_usd": "float64",
    "reputation_start": "Int64",
    "reputation_end": "Int64",
    "median_rt": "float64",
    "hour_below_median_rt": "Int64",
    "sold_wh_after_drop": "Int64",
    "honest_wh_after_drop": "Int64",
    "sold_wh_to_buyers_rt_above_reputation": "Int64",
    # sybil producers
    "identities_registered": "Int64",
    "identities_used": "Int64",
    "sybil_cost_usd": "float64",
    "sybil_wh_sold": "Int64",
    "sybil_revenue_usd": "float64",
    "sybil_wh_to_buyers_above_median_rt": "Int64",
    "net_gain_usd": "float64",
}
"""Column -> dtype of `Results.attacks` (nullable Int64 where a row may have no value)."""

_RENAMED = {"happened": "outcome", "tokens_unaccounted": "tokens_unaccounted_base_units"}


def attacks_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Tidy frame of `summary["attacks"]` rows (missing keys -> NA, extra keys ignored).

    Token amounts are integer base units; a value beyond int64 is stored as int64's maximum
    (still non-zero, which is what the column is read for).
    """
    records = []
    for row in rows:
        rec = {_RENAMED.get(k, k): v for k, v in row.items()}
        rec.setdefault("refused", False)
        rec.setdefault("revert_reason", "")
        tok = rec.get("tokens_unaccounted_base_units")
        if tok is not None:
            rec["tokens_unaccounted_base_units"] = min(int(tok), INT64_MAX)
        records.append({c: rec.get(c) for c in ATTACK_COLUMNS})
    frame = pd.DataFrame(records, columns=list(ATTACK_COLUMNS))
    return frame.astype(ATTACK_COLUMNS)


def format_attack_table(frame: pd.DataFrame) -> list[str]:
    """Text lines: scenario | tried | what happened | tokens | Wh unaccounted (CLI `run`)."""
    if frame.empty:
        return []
    lines = ["attacks: scenario | tried | what happened | tokens unaccounted | Wh unaccounted"]
    for a in frame.itertuples(index=False):
        lines.append(
            f"  {a.scenario} | {a.tried} | {a.outcome} | "
            f"{a.tokens_unaccounted_base_units} | {a.wh_unaccounted}"
        )
    return lines
