"""EnergyToken's gas layout on the real EVM: unlimited approvals of market contracts kept as bits
in the owner's account slot (same ERC-20 behaviour as the allowance map), batched payouts with
`transfer_many`, and the supply bound that keeps balances clear of those bits."""

from __future__ import annotations

import pytest
from web3.logs import DISCARD

from .conftest import (
    CAP,
    FLOOR,
    PER_MWH,
    USD,
    Market,
    balance,
    deploy_revert_reason,
    open_hour,
    post,
    revert_reason,
)

MAX = 2**256 - 1


def test_market_contracts_get_spender_indices_and_users_keep_eoa_allowances(m_: Market) -> None:
    m = m_
    tok = m.token.functions
    assert tok.spender_index(m.letb.address).call() == 1
    assert tok.spender_index(m.retb.address).call() == 2
    assert tok.n_spenders().call() == 2
    u = m.consumers[0]
    assert tok.allowance(u, m.letb.address).call() == MAX
    assert tok.allowance(m.outsider, m.letb.address).call() == MAX  # everyone approved in setup
    m.chain.send(tok.approve(m.outsider, MAX), u)  # an EOA spender: the ordinary map
    assert tok.spender_index(m.outsider).call() == 0
    assert tok.allowance(u, m.outsider).call() == MAX
    assert tok.n_spenders().call() == 2
    assert balance(m, u) == 10**6 * USD  # the bits never show in balances


def test_finite_approval_of_a_market_replaces_the_unlimited_bit(m_: Market) -> None:
    m = m_
    tok = m.token.functions
    u = m.consumers[0]
    open_hour(m, 0, m.letb)
    post(m, m.producers[0], 0, 1000, 50 * PER_MWH)
    receipt = m.chain.send(tok.approve(m.letb.address, 100 * 50 * PER_MWH), u)
    ev = m.token.events.Approval().process_receipt(receipt, errors=DISCARD)[0].args
    assert (ev.owner, ev.spender, ev.value) == (u, m.letb.address, 100 * 50 * PER_MWH)
    assert tok.allowance(u, m.letb.address).call() == 100 * 50 * PER_MWH
    call = m.letb.functions.request(0, 101, 0)
    assert revert_reason(m.chain, call, u) == "insufficient allowance"
    m.chain.send(m.letb.functions.request(0, 60, 0), u)
    assert tok.allowance(u, m.letb.address).call() == 40 * 50 * PER_MWH  # decremented
    m.chain.send(tok.approve(m.letb.address, MAX), u)
    assert tok.allowance(u, m.letb.address).call() == MAX
    assert tok.allowance(u, m.retb.address).call() == MAX  # other bits untouched


def test_transfer_many_pays_each_receiver_with_one_debit(m_: Market) -> None:
    m = m_
    a, b, c = m.admin, m.producers[0], m.producers[1]
    before = {w: balance(m, w) for w in (a, b, c)}
    receipt = m.chain.send(m.token.functions.transfer_many([b, c, b], [5, 7, 11]), a)
    assert balance(m, a) == before[a] - 23
    assert balance(m, b) == before[b] + 16
    assert balance(m, c) == before[c] + 7
    events = m.token.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert [(e.args.sender, e.args.receiver, e.args.value) for e in events] == [
        (a, b, 5),
        (a, c, 7),
        (a, b, 11),
    ]


def test_transfer_many_reverts_whole(m_: Market) -> None:
    m = m_
    tm = m.token.functions.transfer_many
    u, p = m.consumers[0], m.producers[0]
    zero = "0x" + "00" * 20
    assert revert_reason(m.chain, tm([p], [1, 2]), u) == "length mismatch"
    assert revert_reason(m.chain, tm([p, zero], [1, 2]), u) == "zero address"
    have = balance(m, u)
    assert revert_reason(m.chain, tm([p, p], [have, 1]), u) == "insufficient balance"
    assert revert_reason(m.chain, tm([p], [MAX]), u) == "insufficient balance"
    assert balance(m, u) == have


def test_supply_stays_below_2_pow_192(m_: Market) -> None:
    m = m_
    chain = m.chain
    assert deploy_revert_reason(chain, "EnergyToken", 2**192) == "supply out of range"
    chain.send(m.token.functions.set_minter(m.admin, True), m.admin)
    room = 2**192 - 1 - m.token.functions.totalSupply().call()
    mint = m.token.functions.mint(m.outsider, room + 1)
    assert revert_reason(chain, mint, m.admin) == "supply out of range"
    chain.send(m.token.functions.mint(m.outsider, room), m.admin)
    assert m.token.functions.totalSupply().call() == 2**192 - 1


@pytest.fixture
def m_(market: Market) -> Market:
    return market


def test_caps_are_packed_four_buses_per_slot_under_one_hour(m_: Market) -> None:
    """A group of four buses (bus // 4) keeps the caps of the last hour that posted any of them:
    a bus left out that hour has no cap, other groups keep theirs."""
    m = m_
    oh = m.letb.functions.open_hour
    m.chain.send(oh(0, FLOOR, [3, 4, 5, 6], [CAP, CAP + 1, CAP + 2, CAP + 3]), m.operator)
    assert m.letb.functions.cap_of(6).call() == [0, CAP + 3]
    m.chain.send(oh(1, FLOOR, [5], [CAP + 7]), m.operator)
    assert m.letb.functions.cap_of(3).call() == [0, CAP]  # group 0 not touched in hour 1
    assert m.letb.functions.cap_of(4).call() == [2**256 - 1, 0]
    assert m.letb.functions.cap_of(5).call() == [1, CAP + 7]
    assert m.letb.functions.cap_of(6).call() == [2**256 - 1, 0]
    assert m.letb.functions.cap_of(0).call() == [2**256 - 1, 0]  # pre-paid slot, never posted
    assert revert_reason(m.chain, oh(2, FLOOR, [3], [2**60]), m.operator) == "cap out of range"
    assert revert_reason(m.chain, oh(2, 2**56, [], []), m.operator) == "price out of range"
    m.chain.send(oh(2, FLOOR, [3], [2**60 - 1]), m.operator)
    assert m.letb.functions.cap_of(3).call() == [2, 2**60 - 1]
