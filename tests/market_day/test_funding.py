"""Funding by need (issue 13): budgets from what each role can send, a faucet check before
set-up, and funding of many accounts on one chain on the embedded chain and on anvil."""

from __future__ import annotations

import pytest

from gridledger.chain import (
    DEFAULT_CHAIN_IDS,
    FUND_TXS_PER_BLOCK,
    EmbeddedChain,
    InsufficientFundsError,
    RpcChain,
)
from gridledger.chain.accounts import derive_account
from gridledger.chain.nodes import start_anvil
from gridledger.day.funding import (
    BUDGET_MAX_FEE_WEI,
    GAS_BUDGET_MARGIN,
    FaucetTooSmallError,
    budget_wei,
    role_calls,
)
from gridledger.market.contracts import GAS_LIMITS
from gridledger.model import EnergyMarketModel
from gridledger.scenario import Scenario

N_ACCOUNTS = 1_250


def _fund_many(chain: EmbeddedChain | RpcChain) -> None:
    addrs = [derive_account(3, "user", i).address for i in range(N_ACCOUNTS)]
    amounts = [10**15 + i for i in range(N_ACCOUNTS)]  # one amount per account
    head = chain.block_number()
    res = chain.fund(addrs, amounts)
    assert len(res) == N_ACCOUNTS and all(r.ok for r in res)
    blocks = {r.block_number for r in res}
    assert len(blocks) == -(-N_ACCOUNTS // FUND_TXS_PER_BLOCK)
    assert chain.block_number() == head + len(blocks)
    for i in (0, 1, FUND_TXS_PER_BLOCK, N_ACCOUNTS - 1):
        assert chain.balance(addrs[i]) == amounts[i]


def test_funding_1250_accounts_embedded() -> None:
    _fund_many(EmbeddedChain(DEFAULT_CHAIN_IDS["letb"], "letb"))


@pytest.mark.anvil
def test_funding_1250_accounts_anvil() -> None:
    cid = DEFAULT_CHAIN_IDS["letb"]
    with start_anvil(cid) as node:
        _fund_many(RpcChain(node.url, "letb", expected_chain_id=cid))


@pytest.mark.anvil
def test_anvil_names_an_unaffordable_funding_transfer() -> None:
    """anvil admits a transfer its sender can pay now and leaves it out of a block where the
    sender's earlier transfers spent the balance: named InsufficientFundsError, not a gap."""
    cid = DEFAULT_CHAIN_IDS["letb"]
    with start_anvil(cid, balance_eth=10) as node:
        ch = RpcChain(node.url, "letb", expected_chain_id=cid)
        addrs = [derive_account(3, "user", i).address for i in range(3)]
        with pytest.raises(InsufficientFundsError, match=r"nonce 2.* not mined: its sender holds"):
            ch.fund(addrs, 4 * 10**18)
        assert [ch.balance(a) for a in addrs] == [4 * 10**18, 4 * 10**18, 0]


@pytest.mark.anvil
def test_small_faucet_refused_before_setup() -> None:
    """A faucet that cannot pay the day's gas: named error with what is needed, no tx sent."""
    sc = Scenario(hours=2)
    nodes = [start_anvil(DEFAULT_CHAIN_IDS[c], balance_eth=1) for c in ("letb", "retb")]
    try:
        spec = ",".join(n.url for n in nodes)
        with pytest.raises(FaucetTooSmallError, match=r"chain 'letb'.*anvil --balance \d+"):
            EnergyMarketModel(sc, chain=spec)
        for n in nodes:
            assert RpcChain(n.url, "probe").block_number() == 0
    finally:
        for n in nodes:
            n.stop()


def test_budgets_follow_the_role_calls(day: tuple[EnergyMarketModel, object]) -> None:
    """A user's budget is its calls x gas limits x fee cap x margin; after the default day
    every account has spent less than half of it (the margin is not eaten)."""
    model, _ = day
    hours = model.params.hours
    calls = role_calls(model, "letb")["user"]
    assert dict(calls.per_hour) == {"request": 1, "feedback": 1}
    gas = GAS_LIMITS["request"] + GAS_LIMITS["feedback"]
    assert budget_wei(model, "letb", "user") >= (
        hours * gas * BUDGET_MAX_FEE_WEI * GAS_BUDGET_MARGIN
    )
    for name, ch in model.chains.items():
        accounts = [(u.account, "user") for u in model.users]
        accounts += [(model.tdno.account, "tdno"), (model.operator.account, "operator")]
        for a, role in accounts:
            assert ch.balance(a.address) > budget_wei(model, name, role) // 2, (name, role)
