"""Native-coin budgets: every account is funded for the gas its role can spend in the run.

An account's budget is what its transactions could cost at most: for every call its role can
send, count x gas limit (`gridledger.market.contracts.GAS_LIMITS`) x `BUDGET_MAX_FEE_WEI`,
over set-up and `hours + EXTRA_HOURS` market hours, times `GAS_BUDGET_MARGIN`. A transaction
pays gas used (well under its limit) x the effective price (under the fee cap), so a budget is an
upper bound. `role_calls` is the one table to update when a phase changes what a role sends.

The faucet of each chain is checked against the chain's total before any set-up transaction
(`check_faucets`, `FaucetTooSmallError`). The budgets are constants of the scenario, not of the
node's current base fee, so a resumed run re-signs the same funding transactions.

Users' tokens are granted by need the same way (`user_grant_units`): at least
`Scenario.user_initial_usd`, more if the run's demand can cost more (`user_token_need_usd`), so a
run of weeks does not stop when the one-day grant is spent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from gridledger.chain import DEFAULT_GAS_LIMIT, ChainBackend, PreflightError
from gridledger.market.contracts import (
    DEPLOY_GAS_LIMIT,
    GAS_LIMITS,
    SETTLE_FILL_GAS_LIMIT,
    SETTLE_ITEM_GAS_LIMIT,
    usd_to_base_units,
)

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from gridledger.model import EnergyMarketModel

__all__ = [
    "BUDGET_MAX_FEE_WEI",
    "EXTRA_HOURS",
    "FUND_GAS",
    "GAS_BUDGET_MARGIN",
    "TOKEN_GRANT_MARGIN",
    "Calls",
    "FaucetTooSmallError",
    "budget_wei",
    "chain_budgets",
    "check_faucets",
    "role_calls",
    "user_grant_units",
    "user_token_need_usd",
]

BUDGET_MAX_FEE_WEI = 3 * 10**9
"""Fee cap per gas a budget assumes (wei): a Signer's cap is 2 x base fee + 1 gwei tip, 3 gwei
on the embedded chain and a fresh anvil (base fee 1 gwei, falling while blocks stay half empty)."""
GAS_BUDGET_MARGIN = 2
"""Safety factor on every budget (base fee rises, refused attempts, the refusal probe)."""
EXTRA_HOURS = 2
"""Hours budgeted beyond the scenario's (the refusal probe, day/refusals.py, opens one)."""
MAX_FILLS_PER_REQUEST = 16
"""The largest LETB fill cap a deployment accepts (contracts/LETB.vy): a settle_many item's
budget assumes it, so the budget holds for any `letb_max_fills_per_request`."""
SETTLE_MANY_ITEM = "settle_many_item"
"""Budget name of one item of a settle_many call (its gas limit grows with the items)."""
FUND_GAS = 21_000
"""Gas of one funding transfer (the faucet pays it on top of the budgets)."""
TOKEN_GRANT_MARGIN = 1.25
"""Safety factor on a user's token need (price rounding to base units, the refusal probe)."""


class FaucetTooSmallError(PreflightError):
    """A chain's faucet holds less native coin than the run's gas budgets need."""


@dataclass(frozen=True)
class Calls:
    """What one account of a role can send: function -> count at set-up and per market hour."""

    setup: Mapping[str, int] = field(default_factory=dict)
    per_hour: Mapping[str, int] = field(default_factory=dict)

    def gas(self, hours: int) -> int:
        """Sum of gas limits over the run (set-up + `hours` market hours)."""
        one = sum(n * gas_limit(fn) for fn, n in self.setup.items())
        return one + hours * sum(n * gas_limit(fn) for fn, n in self.per_hour.items())


def gas_limit(function: str) -> int:
    """The gas limit a call of `function` is sent with (market/contracts.py `GAS_LIMITS`);
    for SETTLE_MANY_ITEM the share of one item in a settle_many call's limit."""
    if function == SETTLE_MANY_ITEM:
        return SETTLE_ITEM_GAS_LIMIT + SETTLE_FILL_GAS_LIMIT * MAX_FILLS_PER_REQUEST
    return DEPLOY_GAS_LIMIT if function == "deploy" else GAS_LIMITS.get(function, DEFAULT_GAS_LIMIT)


def role_calls(model: EnergyMarketModel, chain: str) -> dict[str, Calls]:
    """What each role can send on `chain` ('letb' or 'retb'): the one table of transaction
    counts per role (update it when a phase changes its calls).

    Sellers are local producers (LETB) or REPs (RETB); sybil identities count as sellers. The
    TDNO settles every user's LETB request / RETB trade of the hour in settle_many calls (an
    item each) and, per market, at most one lone request as a plain `settle`
    (markets/letb.py `LETB.settle_many` sends a one-item batch that way).
    """
    sc = model.params
    n_users = len(model.users)
    n_markets = model.n_areas if chain == "letb" else 1
    n_sellers = len(model.producers) + sc.sybil_identities if chain == "letb" else len(model.reps)
    participants = n_users + n_sellers
    return {
        "admin": Calls(
            setup={
                "deploy": 1 + n_markets,
                "transfer": participants + n_markets + 1,
                "set_minter": 1,
            }
        ),
        "operator": Calls(setup={"register": participants}, per_hour={"open_hour": n_markets}),
        "tdno": Calls(per_hour={"settle": n_markets, SETTLE_MANY_ITEM: n_users}),
        "user": Calls(setup={"approve": 1}, per_hour={"request": 1, "feedback": 1}),
        "seller": Calls(setup={"approve": 1}, per_hour={"post_offer": 1}),
    }


def budget_wei(model: EnergyMarketModel, chain: str, role: str) -> int:
    """Native coin (wei) one account of `role` gets on `chain`."""
    calls = role_calls(model, chain)[role]
    gas = calls.gas(model.params.hours + EXTRA_HOURS)
    return gas * BUDGET_MAX_FEE_WEI * GAS_BUDGET_MARGIN


def chain_budgets(model: EnergyMarketModel, chain: str, admin: LocalAccount) -> dict[str, int]:
    """Address -> wei of every account set-up funds on `chain` (sybils are funded later, by
    gridledger/day/attacks.py, but counted in `check_faucets`); `admin` deploys and grants."""
    acct = {"admin": admin, "operator": model.operator.account}
    acct["tdno"] = model.tdno.account
    out = {a.address: budget_wei(model, chain, role) for role, a in acct.items()}
    sellers = model.producers if chain == "letb" else model.reps
    seller_wei = budget_wei(model, chain, "seller")
    out.update({s.account.address: seller_wei for s in sellers})
    user_wei = budget_wei(model, chain, "user")
    out.update({u.account.address: user_wei for u in model.users})
    return out


def faucet_need_wei(model: EnergyMarketModel, chain: str, budgets: Mapping[str, int]) -> int:
    """What the faucet of `chain` pays: the budgets, the sybils' and every transfer's gas."""
    n_sybils = model.params.sybil_identities if chain == "letb" else 0
    sybil_wei = n_sybils * budget_wei(model, chain, "seller")
    n_transfers = len(budgets) + n_sybils
    return sum(budgets.values()) + sybil_wei + n_transfers * FUND_GAS * BUDGET_MAX_FEE_WEI


def check_faucets(
    model: EnergyMarketModel,
    chains: Mapping[str, ChainBackend],
    budgets: Mapping[str, Mapping[str, int]],
) -> dict[str, tuple[int, int]]:
    """Raise FaucetTooSmallError before set-up if a faucet cannot pay for the run's gas; else
    chain -> (wei the faucet holds, wei the run needs), for the run to print."""
    out = {}
    for name, ch in chains.items():
        need = faucet_need_wei(model, name, budgets[name])
        have = ch.balance(ch.faucet.address)
        if have < need:
            raise FaucetTooSmallError(
                f"the faucet {ch.faucet.address} holds {have / 1e18:,.3f} coins, the run's gas "
                f"needs {need / 1e18:,.3f} ({len(budgets[name])} accounts, "
                f"{model.params.hours} h)",
                chain=name,
                url=getattr(ch, "url", ""),
                advice=f"start the node with more (e.g. `anvil --balance "
                f"{-(-need // 10**18) + 1}`; `gridledger node` gives 1,000,000) or set "
                "GRIDLEDGER_FAUCET_KEY to a prefunded account holding that much",
            )
        out[name] = (have, need)
    return out


def user_token_need_usd(
    demand_wh: np.ndarray,
    tariff_usd_per_mwh: np.ndarray,
    fit_usd_per_mwh: float,
    margin: float = TOKEN_GRANT_MARGIN,
) -> float:
    """Most tokens (USD) one user can pay the markets over the run, times `margin`.

    In hour t the markets fill at most the user's metered demand `demand_wh[t]` (LETB requests
    it, RETB the shortage left), each Wh at a price of at most max(tariff_t, FiT): sellers price
    within [FiT, min(tariff, cap)] (agents/pricing.py) and a double-auction bid's limit is at
    most the tariff. A market pulls only what it fills (refunds come back as credit or tokens),
    so the sum bounds what leaves the user's balance on each chain."""
    demand = np.asarray(demand_wh, dtype=float)
    price = np.maximum(np.asarray(tariff_usd_per_mwh, dtype=float)[: len(demand)], fit_usd_per_mwh)
    return margin * float(np.dot(demand, price)) / 1e6


def user_grant_units(model: EnergyMarketModel) -> list[int]:
    """Token base units each user (in `model.users` order) is granted on every chain at set-up:
    `Scenario.user_initial_usd`, or its need over the run if larger (`user_token_need_usd`)."""
    sc = model.params
    out = []
    for u in model.users:
        demand_wh = np.round(u.demand_kw[: sc.hours] * sc.dt_h * 1000.0)
        need = user_token_need_usd(demand_wh, model.tariff, model.fit)
        out.append(usd_to_base_units(max(sc.user_initial_usd, need)))
    return out
