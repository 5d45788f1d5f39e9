"""The market's chains: set-up (accounts, deployments, funding, registration) and sending phases.

Two chains (LETB consortium chain, RETB chain), each with its EnergyToken; one LETB per area and
one RETB, all through the typed wrappers of `gridledger.market.contracts`; every mined
transaction goes to the model's `Ledger` (gas frame = Results.gas).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
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
    LETB,
    RETB,
    DeployedContract,
    EnergyToken,
    usd_to_base_units,
)

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

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
    gas funding, deployments, grants, approvals, registrations."""
    sc = model.params
    seed = sc.seed
    t0 = time.perf_counter()
    budgets = model.gas_budgets
    acct = {
        "admin": model.admin_account,
        "operator": model.operator.account,
        "tdno": model.tdno.account,
    }
    for ch_name, ch in model.chains.items():
        ch.fund(list(budgets[ch_name]), list(budgets[ch_name].values()))
    # deploy: token per chain, LETB per area, RETB zone
    user_units = usd_to_base_units(sc.user_initial_usd)
    bond = usd_to_base_units(sc.registration_bond_usd)
    n_participants = len(model.users) + len(model.producers) + len(model.reps)
    supply = (user_units + bond * 2) * (n_participants + 1) + usd_to_base_units(10.0)
    admin = {c: model.signers[("admin", c)] for c in model.chains}
    res = send_many([(admin[c], EnergyToken.deploy_request(supply)) for c in model.chains])
    model.tokens = {
        c: EnergyToken.at_result(model.chains[c], r) for c, r in zip(model.chains, res, strict=True)
    }
    op, td = acct["operator"].address, acct["tdno"].address
    reqs = [
        (
            admin["letb"],
            LETB.deploy_request(
                model.tokens["letb"].address,
                a,
                op,
                td,
                sc.initial_reputation,
                bond,
                sc.letb_max_fills_per_request,
            ),
        )
        for a in range(model.n_areas)
    ]
    reqs.append(
        (
            admin["retb"],
            RETB.deploy_request(
                model.tokens["retb"].address,
                0,
                op,
                td,
                sc.initial_reputation,
                bond,
                sc.incentive_log_base,
                round(sc.incentive_scale_kwh * 1000),
                sc.incentive_stable_ref_hours,
            ),
        )
    )
    res = send_many(reqs)
    model.letb = [LETB.at_result(model.chains["letb"], r) for r in res[:-1]]
    model.retb = RETB.at_result(model.chains["retb"], res[-1])
    # minter, escrow seeds, token grants; every seller also gets SELLER_SEED_UNITS beside
    # its bond, so its token balance slot is already open when the market first pays it (the
    # zero -> non-zero SSTORE, 22.1k gas, is paid here, not by LETB/RETB.settle)
    reqs = [(admin["retb"], model.tokens["retb"].set_minter(model.retb.address, True))]
    reqs += [(admin["letb"], model.tokens["letb"].transfer(m.address, 1)) for m in model.letb]
    reqs.append((admin["retb"], model.tokens["retb"].transfer(model.retb.address, 1)))
    for u in model.users:
        for c in model.chains:
            reqs.append((admin[c], model.tokens[c].transfer(u.account.address, user_units + bond)))
    grant = bond + SELLER_SEED_UNITS
    for p in model.producers:
        reqs.append((admin["letb"], model.tokens["letb"].transfer(p.account.address, grant)))
    for r in model.reps:
        reqs.append((admin["retb"], model.tokens["retb"].transfer(r.account.address, grant)))
    send_many(reqs)
    # approvals (each participant signs its own)
    reqs = []
    for u in model.users:
        reqs.append(
            (
                u.letb_signer,
                model.tokens["letb"].approve(model.letb[u.area].address),
            )
        )
        reqs.append((u.retb_signer, model.tokens["retb"].approve(model.retb.address)))
    if bond:
        for p in model.producers:
            reqs.append(
                (
                    p.signer,
                    model.tokens["letb"].approve(model.letb[p.area].address),
                )
            )
        for r in model.reps:
            reqs.append((r.signer, model.tokens["retb"].approve(model.retb.address)))
    send_many(reqs)
    # registration by the operator (it knows each meter's bus)
    ops = {c: model.signers[("operator", c)] for c in model.chains}
    reqs = []
    for p in model.producers:
        reqs.append(
            (
                ops["letb"],
                model.letb[p.area].register(
                    p.account.address,
                    commitment(seed, "producer", p.index),
                    p.bus,
                    1,
                ),
            )
        )
    for r in model.reps:
        reqs.append(
            (
                ops["retb"],
                model.retb.register(r.account.address, commitment(seed, "rep", r.index), r.bus, 1),
            )
        )
    for u in model.users:
        com = commitment(seed, "user", u.index)
        reqs.append((ops["letb"], model.letb[u.area].register(u.account.address, com, u.bus, 2)))
        reqs.append((ops["retb"], model.retb.register(u.account.address, com, u.bus, 2)))
    res = send_many(reqs)
    for p, r in zip(model.producers, res[: len(model.producers)], strict=True):
        ev = one_event(model.letb[p.area], r, "Registered")
        p.producer_id = int(ev["producer_id"])
        p.reputation = sc.initial_reputation
    for r in model.reps:
        r.reputation = sc.initial_reputation
    model.token_supply = {c: model.tokens[c].total_supply() for c in model.chains}
    model.timing["chain_s"] += time.perf_counter() - t0


def send_phase(
    model: EnergyMarketModel, phase: str, items: list[tuple[Signer, TxRequest]]
) -> list[TxResult]:
    """One phase = one batch = one block per chain involved (reverts raise, named)."""
    model.ledger.phase = phase
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
