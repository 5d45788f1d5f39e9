"""Conservation checks of one market hour: energy per user, token supply, escrow.

Issue 5: every hour demand = local + renewable + grid (Wh, per user), and the token supply of each
chain changes only by the incentives RETB minted (none on the LETB chain); after settlement every
market's escrow holds exactly its seed (1 base unit) plus the registration bonds it keeps, plus
(LETB) the refund credits of its users: LETB.settle credits undelivered value to the buyer inside
the contract (a pull payment the user's next request spends first, or `withdraw()` pays out). The
model tracks each user's credit from the Credited / CreditUsed events. A violation stops the run
with `ConservationError` naming the hour and the party.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from gridledger.market.contracts import MarketContract, usd_to_base_units

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


def registrations(model: EnergyMarketModel, market: MarketContract) -> int:
    """Participants registered on `market` (each one has paid the bond into its escrow)."""
    if market is model.retb:
        return len(model.reps) + len(model.users)
    a = model.letb.index(market)
    return (
        sum(1 for p in model.producers if p.area == a)
        + sum(1 for u in model.users if u.area == a)
        + model.extra_registrations.get(a, 0)  # sybil identities (day/attacks.py)
    )


def letb_credits(model: EnergyMarketModel, area: int) -> int:
    """Σ of the refund credits (token base units) the users of LETB `area` hold in it."""
    credit = model.letb_credit_units
    return sum(credit.get(u.account.address, 0) for u in model.users if u.area == area)


def check_tokens(model: EnergyMarketModel, t: int, minted_units: int) -> None:
    """Token supply change == minted incentives; every escrow back to seed + bonds (+ LETB
    users' refund credits).

    Reads the chains' state (totalSupply, escrow balances): the one place the model checks the
    contracts' bookkeeping against its own."""
    t0 = time.perf_counter()
    supply = {c: model.tokens[c].total_supply() for c in model.chains}
    # one batch view (EnergyToken.balances_of) for the LETB escrows
    escrow = [
        int(b) for b in model.tokens["letb"].call("balances_of", [m.address for m in model.letb])
    ]
    escrow.append(model.tokens["retb"].balance_of(model.retb.address))
    model.timing["chain_s"] += time.perf_counter() - t0
    if supply["letb"] != model.token_supply["letb"]:
        raise ConservationError(
            f"hour {t}: LETB-chain token supply changed by "
            f"{supply['letb'] - model.token_supply['letb']} base units (no minting allowed there)"
        )
    d_supply = supply["retb"] - model.token_supply["retb"]
    if d_supply != minted_units:
        raise ConservationError(
            f"hour {t}: RETB-chain token supply changed by {d_supply} base units but "
            f"{minted_units} were minted as incentives"
        )
    model.token_supply = supply
    bond_units = usd_to_base_units(model.params.registration_bond_usd)
    seeds = [1 + bond_units * registrations(model, m) for m in (*model.letb, model.retb)]
    for a in range(len(model.letb)):
        seeds[a] += letb_credits(model, a)
    bad = [i for i, (e, s) in enumerate(zip(escrow, seeds, strict=True)) if e != s]
    if bad:
        raise ConservationError(
            f"hour {t}: escrow of market(s) {bad} holds {[escrow[i] for i in bad]} base "
            f"units after settlement, expected {[seeds[i] for i in bad]} (seed + bonds + credits)"
        )
