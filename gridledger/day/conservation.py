"""Conservation checks of one market hour: energy per user, token supply, escrow.

Issue 5: every hour demand = local + renewable + grid (Wh, per user), and the token supply of each
chain changes only by the incentives RETB minted (none on the LETB chain); after settlement every
market's escrow holds exactly what the market expects (markets/base.py `expected_escrow`): its
seed (1 base unit) plus the registration bonds it keeps, plus (LETB) the refund credits of its
users: LETB.settle credits undelivered value to the buyer inside
the contract (a pull payment the user's next request spends first, or `withdraw()` pays out). The
model tracks each user's credit from the Credited / CreditUsed events. A violation stops the run
with `ConservationError` naming the hour and the party.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gridledger.agents.user import UserAgent
    from gridledger.model import EnergyMarketModel


class ConservationError(RuntimeError):
    """Energy or token accounting does not balance in an hour; names the hour and the party."""


def check_user_energy(t: int, users: list[UserAgent]) -> None:
    """Each user's metered demand = local + renewable + grid energy (integer Wh, exact)."""
    for u in users:
        if u.m_wh != u.local_wh + u.renewable_wh + u.grid_wh:
            raise ConservationError(
                f"hour {t}: user {u.unique_id} at bus {u.bus}: demand {u.m_wh} Wh != local "
                f"{u.local_wh} + renewable {u.renewable_wh} + grid {u.grid_wh} Wh"
            )


def check_tokens(model: EnergyMarketModel, t: int, minted_by_chain: Mapping[str, int]) -> None:
    """Token supply change per chain == the incentives its markets minted; every market's
    contracts hold what the market expects after settlement (`Market.expected_escrow`: seed +
    bonds, + LETB users' refund credits).

    Reads the chains' state (totalSupply, escrow balances: one batch view per chain): the one
    place the model checks the contracts' bookkeeping against its own."""
    t0 = time.perf_counter()
    supply = {c: model.tokens[c].total_supply() for c in model.chains}
    expected: dict[str, dict[str, int]] = {c: {} for c in model.chains}
    for m in model.markets:
        expected[m.chain].update(m.expected_escrow())
    escrow = {
        c: [int(b) for b in model.tokens[c].call("balances_of", list(want))] if want else []
        for c, want in expected.items()
    }
    model.timing["chain_s"] += time.perf_counter() - t0
    for c in model.chains:
        d_supply = supply[c] - model.token_supply[c]
        if d_supply != minted_by_chain.get(c, 0):
            raise ConservationError(
                f"hour {t}: {c}-chain token supply changed by {d_supply} base units but "
                f"{minted_by_chain.get(c, 0)} were minted as incentives"
            )
    model.token_supply = supply
    for c, want in expected.items():
        bad = [
            (a, have, need)
            for (a, need), have in zip(want.items(), escrow[c], strict=True)
            if have != need
        ]
        if bad:
            raise ConservationError(
                f"hour {t}: escrow of {c}-chain market contract(s) "
                + ", ".join(
                    f"{a} holds {have} base units, expected {need}" for a, have, need in bad
                )
                + " after settlement (seed + bonds + credits)"
            )
