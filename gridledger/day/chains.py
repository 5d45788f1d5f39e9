"""The market's chains: set-up (accounts, deployments, funding, registration) and sending phases.

Two chains (the 'letb' consortium chain, the 'retb' chain), each with its EnergyToken; the
scenario's markets (markets/: the paper's LETB per area and RETB zone) deploy and register on
them; every mined transaction goes to the model's `Ledger` (gas frame = Results.gas).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_utils import keccak

from gridledger.chain import (
    ChainBackend,
    Signer,
    TxRequest,
    TxResult,
    send_many,
)
from gridledger.chain.accounts import derive_account
from gridledger.chain.preflight import check_node
from gridledger.day.conservation import ConservationError
from gridledger.day.funding import chain_budgets, check_faucets
from gridledger.market.contracts import (
    DeployedContract,
    EnergyToken,
    usd_to_base_units,
)

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from gridledger.markets.base import Market
    from gridledger.model import EnergyMarketModel


SELLER_SEED_UNITS = 1
"""Token base units (1e-18 USD) each seller (local producer, REP, sybil identity) receives at
set-up besides its bond: it stays in the seller's account for the whole run."""


def commitment(seed: int, role: str, index: int) -> bytes:
    """Identity commitment: a hash, no personal data."""
    return keccak(text=f"gridledger/identity/{seed}/{role}/{index}")


@dataclass(frozen=True, eq=False)
class Accounts:
    """Every party's keys on the chains (the agents hold their own; these are the rest)."""

    signers: dict[tuple[str, str], Signer]  # (agent key, chain) -> signer, every party
    admin: LocalAccount  # deploys the contracts and grants the tokens
    gas_budgets: dict[str, dict[str, int]]  # chain -> account address -> wei (day/funding.py)


def assign_accounts(model: EnergyMarketModel, chains: Mapping[str, ChainBackend]) -> Accounts:
    """Set-up, step 1 of 3 on the model's chains ({'letb': ..., 'retb': ...}, made by the model
    from its `--chain` spec): every agent's key and signers (set on the agents), and each
    account's gas budget (day/funding.py); no transaction. Then `preflight_chains`, then
    `deploy_and_register` (set-up transactions have t = -1)."""
    sc = model.params
    for ch in chains.values():
        model.ledger.attach(ch)
    seed = sc.seed
    acct = {
        "admin": derive_account(seed, "admin", 0),
        "operator": derive_account(seed, "operator", 0),
        "tdno": derive_account(seed, "tdno", 0),
    }
    signers: dict[tuple[str, str], Signer] = {}

    def signer(agent_key: str, account: Any, chain: str) -> Signer:
        s = chains[chain].signer(account, agent=agent_key)
        signers[(agent_key, chain)] = s
        return s

    for role, a in acct.items():
        for ch in chains:
            signer(role, a, ch)
    for u in model.users:
        u.account = derive_account(seed, "user", u.index)
        u.letb_signer = signer(f"user{u.index}", u.account, "letb")
        u.retb_signer = signer(f"user{u.index}", u.account, "retb")
    for p in model.producers:
        p.account = derive_account(seed, "producer", p.index)
        p.signer = signer(f"producer{p.index}", p.account, "letb")
    for r in model.reps:
        r.account = derive_account(seed, "rep", r.index)
        r.signer = signer(f"rep{r.index}", r.account, "retb")
    model.operator.account, model.tdno.account = acct["operator"], acct["tdno"]
    # gas for everyone: each account's budget from what its role can send (day/funding.py)
    budgets = {c: chain_budgets(model, c, acct["admin"]) for c in chains}
    return Accounts(signers, acct["admin"], budgets)


def preflight_chains(model: EnergyMarketModel) -> list[str]:
    """Before any transaction: every node can run the day (chain/preflight.py: call gas, fork,
    block gas limit; chain ids were checked at connect) and every faucet can pay the run's gas
    (day/funding.py). Raises a PreflightError subclass; returns one line per chain to print."""
    reports = {c: check_node(ch) for c, ch in model.chains.items()}
    funds = check_faucets(model, model.chains, model.gas_budgets)
    return [
        f"{reports[c].line()}; faucet holds {have / 1e18:,.3f} coins, the run needs "
        f"{need / 1e18:,.3f}"
        for c, (have, need) in funds.items()
    ]


def deploy_and_register(model: EnergyMarketModel) -> None:
    """Set-up transactions on the model's chains (after `assign_accounts` and the preflight):
    gas funding, the tokens, then each market's deployments, grants, approvals and
    registrations (markets/base.py), one block per chain per step, markets in hour order."""
    sc = model.params
    t0 = time.perf_counter()
    budgets = model.gas_budgets
    markets = model.markets
    for ch_name, ch in model.chains.items():
        ch.fund(list(budgets[ch_name]), list(budgets[ch_name].values()))
    user_units = usd_to_base_units(sc.user_initial_usd)
    bond = usd_to_base_units(sc.registration_bond_usd)
    n_participants = len(model.users) + len(model.producers) + len(model.reps)
    supply = (user_units + bond * 2) * (n_participants + 1) + usd_to_base_units(10.0)
    admin = {c: model.signers[("admin", c)] for c in model.chains}
    res = send_many([(admin[c], EnergyToken.deploy_request(supply)) for c in model.chains])
    model.tokens = {
        c: EnergyToken.at_result(model.chains[c], r) for c, r in zip(model.chains, res, strict=True)
    }
    _send_split(markets, "deploy", "deployed")
    # minter rights, markets' grants (escrow seeds), users' tokens on every chain, sellers'
    # bonds and SELLER_SEED_UNITS, so a seller's token balance slot is already open when the market
    # first pays it (the zero -> non-zero SSTORE, 22.1k gas, is paid here, not by settle)
    reqs = [
        (admin[m.chain], model.tokens[m.chain].set_minter(c.address, True))
        for m in markets
        if m.mints_incentives
        for c in m.contracts()
    ]
    reqs += [x for m in markets for x in m.grants()]
    for u in model.users:
        for c in model.chains:
            reqs.append((admin[c], model.tokens[c].transfer(u.account.address, user_units + bond)))
    reqs += [x for m in markets for x in m.seller_grants()]
    send_many(reqs)
    send_many([x for m in markets for x in m.approvals()])  # each participant signs its own
    # registration by the operator (it knows each meter's bus)
    _send_split(markets, "registrations", "registered")
    model.token_supply = {c: model.tokens[c].total_supply() for c in model.chains}
    model.timing["chain_s"] += time.perf_counter() - t0


def _send_split(markets: Sequence[Market], build: str, done: str) -> None:
    """One set-up step: every market's transactions in one batch (one block per chain), each
    market's results handed back to it."""
    parts = [getattr(m, build)() for m in markets]
    results = send_many([x for p in parts for x in p])
    for m, res in zip(markets, split_results(parts, results), strict=True):
        getattr(m, done)(res)


def split_results(
    parts: Sequence[Sequence[Any]], results: Sequence[TxResult]
) -> list[list[TxResult]]:
    """The results of one batch cut back into the parts it was built from (same order)."""
    out, start = [], 0
    for part in parts:
        out.append(list(results[start : start + len(part)]))
        start += len(part)
    if start != len(results):
        raise ValueError(f"split_results: {len(results)} results for {start} transactions")
    return out


def send_phase(
    model: EnergyMarketModel, phase: str, items: list[tuple[Signer, TxRequest]]
) -> list[TxResult]:
    """One phase = one batch = one block per chain involved (reverts raise, named); `phase`
    (a markets.Phase) labels the transactions in the gas frame."""
    model.ledger.phase = str(phase)
    t0 = time.perf_counter()
    out = send_many(items) if items else []
    model.timing["chain_s"] += time.perf_counter() - t0
    for r in out:
        model.hour_gas[r.chain] += r.gas_used
    model.hour_tx += len(out)
    return out


def events(contract: DeployedContract, result: TxResult) -> list[tuple[str, dict[str, Any]]]:
    """(event name, args) of the contract's logs in a mined result, in log order."""
    return [(e.name, e.args) for e in contract.decode_logs(result)]


def one_event(contract: DeployedContract, result: TxResult, name: str) -> dict[str, Any]:
    """Arguments of the one event `name` the contract emitted in a mined result."""
    found = [e.args for e in contract.decode_logs(result) if e.name == name]
    if len(found) != 1:
        raise ConservationError(
            f"{contract.label} transaction {result.tx_hash} emitted {len(found)} {name} events, "
            "expected exactly one"
        )
    return found[0]
