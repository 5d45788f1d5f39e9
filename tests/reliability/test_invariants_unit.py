"""Each invariant check finds the violation it is for (hand-made ledger frames) and names it;
and on a real world, tampering that bypasses the market rules is caught."""

from __future__ import annotations

import pandas as pd
import pytest

from gridledger.chain import EmbeddedChain
from gridledger.market import invariants as inv

from .conftest import USD, World

A, B, M, Z = "0x" + "aa" * 20, "0x" + "bb" * 20, "0x" + "cc" * 20, inv.ZERO_ADDRESS


def trade(buyer=A, nonce=1, e_wh=100, p=5, seller=B):
    return dict(chain="c", address=M, contract="LETB", buyer=buyer, seller=seller, nonce=nonce,
                t=0, e_wh=e_wh, price=p, block=3)  # fmt: skip


def settled(buyer=A, nonce=1, delivered=60, paid=300, refunded=200):
    return dict(chain="c", address=M, contract="LETB", buyer=buyer, nonce=nonce,
                delivered_wh=delivered, paid=paid, refunded=refunded, block=4)  # fmt: skip


def test_request_book_and_settlement_checks():
    book = inv.request_book(pd.DataFrame([trade()]), pd.DataFrame([settled()]))
    assert book.loc[0, "value"] == 500 and book.loc[0, "settled"]
    assert inv.check_settlements(book) == []
    over = inv.request_book(pd.DataFrame([trade()]), pd.DataFrame([settled(delivered=101)]))
    kinds = [v.invariant for v in inv.check_settlements(over)]
    assert kinds == ["delivered_le_scheduled", "settlement_value"]  # 101 Wh x 5 != paid 300
    lost = inv.request_book(pd.DataFrame([trade()]), pd.DataFrame([settled(refunded=199)]))
    kinds = {v.invariant for v in inv.check_settlements(lost)}
    assert kinds == {"settlement_value"}
    twice = inv.request_book(pd.DataFrame([trade()]), pd.DataFrame([settled(), settled()]))
    assert "settled more than once" in str(inv.check_settlements(twice)[0])


def test_fill_cap_check_counts_the_fills_of_each_request():
    trades = pd.DataFrame([trade(seller=s) for s in (A, B, Z)] + [trade(buyer=B, seller=A)])
    book = inv.request_book(trades, pd.DataFrame())
    assert inv.check_fill_counts(book, {("c", M): 3}) == []
    (v,) = inv.check_fill_counts(book, {("c", M): 2})
    assert v.invariant == "fill_cap" and "3 fills, the market allows at most 2" in v.detail
    assert A in v.subject
    assert inv.check_fill_counts(book, {("other", M): 1}) == []  # markets not listed: unchecked


def test_escrow_check_counts_open_requests_and_kept_tokens():
    trades = pd.DataFrame([trade(), trade(buyer=B, nonce=1, e_wh=10, p=7)])
    book = inv.request_book(trades, pd.DataFrame([settled()]))
    kept = inv.kept_by_rule(pd.DataFrame([{"chain": "c", "address": M}] * 3), {("c", M): 2 * USD})
    assert kept == {("c", M): 1 + 6 * USD}
    assert inv.check_escrow({("c", M): 1 + 6 * USD + 70}, book, kept) == []
    (v,) = inv.check_escrow({("c", M): 1 + 6 * USD + 69}, book, kept)
    assert v.invariant == "escrow" and "1 open request(s) worth 70" in v.detail
    # LETB refund credits are held in escrow too
    assert inv.check_escrow({("c", M): 1 + 6 * USD + 70 + 9}, book, kept, {("c", M): 9}) == []
    (v,) = inv.check_escrow({("c", M): 1 + 6 * USD + 70}, book, kept, {("c", M): 9})
    assert "credits 9" in v.detail


def test_credit_totals_take_each_buyers_latest_credit():
    def ev(block, i, who, credit=None):
        row = dict(chain="c", address=M, block=block, log_index=i)
        if credit is None:
            return {**row, "account": who}
        return {**row, "buyer": who, "credit": credit}

    credited = pd.DataFrame([ev(1, 0, A, 50), ev(1, 1, B, 20), ev(4, 0, A, 80)])
    used = pd.DataFrame([ev(2, 0, A, 10), ev(3, 0, B, 0)])
    assert inv.credit_totals(credited, used) == {("c", M): 80}
    assert inv.credit_totals(credited, used, pd.DataFrame([ev(5, 0, A)])) == {("c", M): 0}
    assert inv.credit_totals(credited.iloc[:2], used) == {("c", M): 10}
    assert inv.credit_totals(None) == {}


def _state(block, supply, **bal):
    return inv.TokenState("c", block, supply, {k: v for k, v in bal.items()})


def test_balance_changes_need_a_signature_an_allowance_or_a_rule():
    txs = pd.DataFrame([
        dict(chain="c", block=2, tx_hash="t1", sender=A, operation="transfer"),
        dict(chain="c", block=3, tx_hash="t2", sender=B, operation="transferFrom"),
        dict(chain="c", block=4, tx_hash="t3", sender=B, operation="feedback"),
    ])  # fmt: skip
    tr = pd.DataFrame([
        dict(chain="c", address="T", block=2, log_index=0, tx_hash="t1", sender=A, receiver=B,
             value=10),
        dict(chain="c", address="T", block=3, log_index=0, tx_hash="t2", sender=A, receiver=B,
             value=5),
        dict(chain="c", address="T", block=4, log_index=0, tx_hash="t3", sender=Z, receiver=B,
             value=3),
    ])  # fmt: skip
    before = _state(1, 100, **{A: 50, B: 0})
    after = _state(4, 103, **{A: 35, B: 18})
    kinds = [v.invariant for v in inv.check_balance_changes(before, after, tr, txs, markets=[M])]
    # B pulled A's tokens without an allowance; a mint without IncentiveMinted
    assert kinds == ["unsigned_debit", "mint_without_incentive"]
    approvals = pd.DataFrame([dict(chain="c", block=2, owner=A, spender=B, value=5)])
    incentives = pd.DataFrame([dict(chain="c", block=4, tx_hash="t3", seller=B, incentive=3)])
    assert inv.check_balance_changes(before, after, tr, txs, markets=[M], approvals=approvals,
                                     incentives=incentives) == []  # fmt: skip
    assert inv.check_supply(before, after, 3) == []
    assert inv.check_supply(before, after, 0)[0].invariant == "supply"
    silent = _state(4, 103, **{A: 35, B: 19})  # one unit appeared without a Transfer
    (v,) = inv.check_balance_changes(before, silent, tr, txs, markets=[M], approvals=approvals,
                                     incentives=incentives)  # fmt: skip
    assert v.invariant == "unexplained_balance_change" and v.subject == B


def test_feedback_reputation_and_energy_checks():
    book = inv.request_book(pd.DataFrame([trade(), trade(buyer=B)]), pd.DataFrame([settled()]))
    rating = dict(chain="c", address=M, buyer=A, nonce=1, seller=B, score=5, reputation=475)
    assert inv.check_feedback(pd.DataFrame([rating]), book) == []
    dup = inv.check_feedback(pd.DataFrame([rating, rating]), book)
    assert [v.invariant for v in dup] == ["one_feedback_per_trade"]
    early = inv.check_feedback(pd.DataFrame([{**rating, "buyer": B}]), book)
    assert [v.invariant for v in early] == ["feedback_after_settlement"]
    assert inv.check_reputations({"p": 0, "q": 1000}) == []
    assert [v.subject for v in inv.check_reputations({"p": -1, "q": 1001, "r": 5})] == ["p", "q"]
    assert inv.check_energy_balance({"u": 10}, {"u": 3}, {"u": 2}, {"u": 5}) == []
    (v,) = inv.check_energy_balance({"u": 10}, {"u": 3}, {}, {"u": 5})
    assert "demand 10 Wh != local 3 + renewable 0 + grid 5 Wh" in str(v)
    with pytest.raises(inv.InvariantError, match="1 invariant violation"):
        inv.raise_violations([v], "in hour 3")


def test_amounts_must_be_exact_integers():
    with pytest.raises(TypeError, match="float"):
        inv.request_book(pd.DataFrame([{**trade(), "price": 5.0}]), pd.DataFrame())


def test_world_detects_tokens_moved_around_the_market_rules():
    chain = EmbeddedChain(31498, "market")
    w = World({"letb": chain, "retb": chain}, seed=77)
    w.check()
    # a user tips the escrow directly: legal for the token, but the escrow no longer equals
    # the open requests' value, and the check says so
    u = w.users[0]
    u.on("letb").transact(w.tokens["letb"].transfer(w.letb.address, 5))
    (v,) = w.violations()
    assert v.invariant == "escrow" and w.letb.address in v.subject
