"""Every hour of every run: the invariants of gridledger/market/invariants.py (issue 7).

After feedback (phase 7) the model checks, over the chains' state and the hour's ledger rows:
token supply change per chain = incentives minted (IncentiveMinted events, read independently of
the model's own count), every settled request delivered <= scheduled and paid + refunded = value,
settled once, no local request (LETB request, auction bid) with more fills than
`Scenario.letb_max_fills_per_request`,
at most one rating per trade and only after settlement, every reputation within
[0, REP_MAX], and each user's demand = local + renewable + grid. A violation raises
`InvariantError` naming the hour and each broken invariant. (Escrow balances are checked by
day/conservation.py.)
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from gridledger.market import invariants as inv
from gridledger.market.invariants import InvariantError

if TYPE_CHECKING:
    import pandas as pd

    from gridledger.model import EnergyMarketModel

__all__ = ["InvariantError", "check_hour_invariants", "start_invariants"]


def _token_states(model: EnergyMarketModel) -> dict[str, inv.TokenState]:
    return {c: inv.read_token_state(model.tokens[c], []) for c in model.chains}


def start_invariants(model: EnergyMarketModel) -> dict[str, inv.TokenState]:
    """Token supply per chain after set-up: the zero point of the hourly supply check (the
    model's `invariant_state`); from now on the ledger decodes the markets' events (Trade,
    Settled, Rated, IncentiveMinted)."""
    model.ledger.watch(*(c for m in model.markets for c in m.contracts()))
    return _token_states(model)


def _hour_rows(df: pd.DataFrame, t: int) -> pd.DataFrame:
    return df[df["t"] == t] if "t" in df.columns and not df.empty else df


def check_hour_invariants(model: EnergyMarketModel, t: int) -> None:
    """All invariants of hour t (module docstring); raises InvariantError on any violation."""
    t0 = time.perf_counter()
    found: list[inv.Violation] = []
    now = _token_states(model)
    led = model.ledger
    since = model.invariant_events_from  # the events of this hour only: linear in run length
    incentives = led.incentives(since)
    for c, after in now.items():
        before = model.invariant_state[c]
        minted = inv.minted_between(incentives, after.chain, before.block + 1, after.block)
        found += inv.check_supply(before, after, minted)
    model.invariant_state = now
    model.invariant_events_from = led.n_events
    requests = inv.request_book(
        _hour_rows(led.trades(since), t), _hour_rows(led.settlements(since), t)
    )
    found += inv.check_settlements(requests)
    cap = model.params.letb_max_fills_per_request
    local = [c for m in model.markets if m.kind == "local" for c in m.contracts()]
    found += inv.check_fill_counts(requests, {(c.chain.name, c.address): cap for c in local})
    found += inv.check_feedback(_hour_rows(led.feedback(since), t), requests)
    reps = {
        f"seller {a.account.address}": a.reputation
        for a in (*model.producers, *model.reps)
        if a.reputation is not None
    }
    found += inv.check_reputations(reps)
    uid = [str(u.unique_id) for u in model.users]
    found += inv.check_energy_balance(
        dict(zip(uid, (u.m_wh for u in model.users), strict=True)),
        dict(zip(uid, (u.local_wh for u in model.users), strict=True)),
        dict(zip(uid, (u.renewable_wh for u in model.users), strict=True)),
        dict(zip(uid, (u.grid_wh for u in model.users), strict=True)),
    )
    model.timing["invariants_s"] += time.perf_counter() - t0
    inv.raise_violations(found, f"in hour {t}")
