"""EnergyToken on the real EVM: ERC-20 behaviour, minting only by minters, admin-only roles."""

import pytest

from .conftest import USD, Chain, revert_reason


@pytest.fixture(scope="module")
def setup(chain: Chain):
    token = chain.deploy("EnergyToken", 1000 * USD, sender=chain.accounts[0])
    return token, chain.snapshot()


@pytest.fixture
def token(chain: Chain, setup):
    tok, snap = setup
    chain.revert(snap)
    yield tok
    chain.revert(snap)


def test_initial_supply_goes_to_deployer(chain: Chain, token) -> None:
    admin = chain.accounts[0]
    assert token.functions.totalSupply().call() == 1000 * USD
    assert token.functions.balanceOf(admin).call() == 1000 * USD
    assert token.functions.admin().call() == admin
    assert token.functions.decimals().call() == 18
    assert token.functions.symbol().call() == "GLT"


def test_transfer_moves_balance_and_logs(chain: Chain, token) -> None:
    a, b = chain.accounts[0], chain.accounts[1]
    receipt = chain.send(token.functions.transfer(b, 7), a)
    assert token.functions.balanceOf(b).call() == 7
    ev = token.events.Transfer().process_receipt(receipt)[0].args
    assert (ev.sender, ev.receiver, ev.value) == (a, b, 7)


def test_transfer_beyond_balance_reverts(chain: Chain, token) -> None:
    a, b = chain.accounts[1], chain.accounts[2]
    assert revert_reason(chain, token.functions.transfer(b, 1), a) == "insufficient balance"


def test_transfer_to_zero_address_reverts(chain: Chain, token) -> None:
    zero = "0x" + "00" * 20
    assert revert_reason(chain, token.functions.transfer(zero, 1), chain.accounts[0]) == (
        "zero address"
    )


def test_nobody_moves_tokens_without_allowance(chain: Chain, token) -> None:
    owner, thief = chain.accounts[0], chain.accounts[3]
    call = token.functions.transferFrom(owner, thief, 1)
    assert revert_reason(chain, call, thief) == "insufficient allowance"
    chain.send(token.functions.approve(thief, 5), owner)
    assert revert_reason(chain, token.functions.transferFrom(owner, thief, 6), thief) == (
        "insufficient allowance"
    )
    chain.send(token.functions.transferFrom(owner, thief, 5), thief)
    assert token.functions.allowance(owner, thief).call() == 0
    assert token.functions.balanceOf(thief).call() == 5


def test_unlimited_allowance_is_not_decremented(chain: Chain, token) -> None:
    owner, spender = chain.accounts[0], chain.accounts[4]
    chain.send(token.functions.approve(spender, 2**256 - 1), owner)
    chain.send(token.functions.transferFrom(owner, spender, 10), spender)
    assert token.functions.allowance(owner, spender).call() == 2**256 - 1


def test_mint_only_by_minter(chain: Chain, token) -> None:
    admin, minter, other = chain.accounts[0], chain.accounts[5], chain.accounts[6]
    assert revert_reason(chain, token.functions.mint(other, 1), admin) == (
        "unauthorised: minter only"
    )
    chain.send(token.functions.set_minter(minter, True), admin)
    chain.send(token.functions.mint(other, 3), minter)
    assert token.functions.balanceOf(other).call() == 3
    assert token.functions.totalSupply().call() == 1000 * USD + 3
    chain.send(token.functions.set_minter(minter, False), admin)
    assert revert_reason(chain, token.functions.mint(other, 1), minter) == (
        "unauthorised: minter only"
    )


def test_set_minter_admin_only(chain: Chain, token) -> None:
    other = chain.accounts[7]
    assert revert_reason(chain, token.functions.set_minter(other, True), other) == (
        "unauthorised: admin only"
    )
