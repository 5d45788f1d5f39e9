"""Issue 7 attack and fault scenarios at contract level, on the real EVM through the chain layer.

Every transaction is signed by the acting agent's own derived key (`Signer`), built by the typed
wrappers, and run on every backend (in-process py-evm and revm, anvil processes). After each
scenario `World.check()` demands that no token and no Wh went unaccounted
(gridledger.market.invariants).
"""

from __future__ import annotations

import pytest
import requests
from eth_utils import keccak

from gridledger.chain import (
    ChainIdMismatchError,
    NonceError,
    RpcChain,
    TransactionReverted,
    TxRequest,
)
from gridledger.market.clearing import update_reputation

from .conftest import FUND_UNITS, REP0, USD, World, price

CAP, FLOOR = 90, 30  # $/MWh


def reverts(signer, req: TxRequest, reason: str) -> None:
    """The transaction is mined, fails, and the chain layer reports the contract's reason."""
    with pytest.raises(TransactionReverted) as info:
        signer.transact(req)
    assert info.value.reason == reason
    assert info.value.agent == signer.agent


def letb_sale(world: World, t: int, offers: dict, user, demand_wh: int, rt: int):
    """Hour t on LETB: open, post `offers` {producer: (e_wh, $/MWh)}, one request.
    Returns (nonce, fills) of the request."""
    world.open_hour(t, CAP, FLOOR)
    for p, (e_wh, usd) in offers.items():
        p.on("letb").transact(world.letb.post_offer(t, e_wh, price(usd)))
    res = user.on("letb").transact(world.letb.request(t, demand_wh, rt))
    return world.letb_request_rows(res)


def retb_sale(world: World, user):
    """Hour 0 on RETB: the first REP posts 5000 Wh for hours 0..3 at 60 $/MWh and `user` buys
    800 Wh of it. Returns (rep, trade)."""
    rep, retb = world.reps[0], world.retb
    rep.on("retb").transact(retb.post_offer(0, 0, 4, 5000, price(60), 10))
    res = user.on("retb").transact(retb.request(0, 800, 0, 1, 0, rep.address))
    return rep, World.retb_trade(retb, res)


def meter_score(delivered_wh: int, scheduled_wh: int) -> int:
    """The smart meter's rating: 5 x delivered share, rounded down (0..5)."""
    return 5 * delivered_wh // scheduled_wh


# ---- 3: offers above the DLMP cap / below the feed-in tariff --------------------------------


def test_offer_above_cap_or_below_feed_in_refused(world: World):
    world.open_hour(0, CAP, FLOOR)
    p, rep = world.producers[0].on("letb"), world.reps[0].on("retb")
    before = world.letb.book()
    reverts(p, world.letb.post_offer(0, 1000, price(CAP) + 1), "price above DLMP cap")
    reverts(p, world.letb.post_offer(0, 1000, price(FLOOR) - 1), "price below feed-in floor")
    reverts(rep, world.retb.post_offer(0, 0, 4, 5000, price(CAP) + 1, 10), "price above DLMP cap")
    reverts(rep, world.retb.post_offer(0, 0, 4, 5000, price(FLOOR) - 1, 10),
            "price below feed-in floor")  # fmt: skip
    assert world.letb.book() == before == []
    # the bounds themselves are accepted
    p.transact(world.letb.post_offer(0, 1000, price(CAP)))
    world.producers[1].on("letb").transact(world.letb.post_offer(0, 1000, price(FLOOR)))
    rep.transact(world.retb.post_offer(0, 0, 4, 5000, price(CAP), 10))
    assert len(world.letb.book()) == 2
    # a seller at a bus the operator posted no cap for this hour cannot sell at any price
    world.ledger.t = 1
    world.operator.on("letb").transact(
        world.letb.open_hour(1, price(FLOOR), [world.bus_of(world.producers[0])], [price(CAP)])
    )
    reverts(world.producers[1].on("letb"), world.letb.post_offer(1, 10, price(50)),
            "no DLMP cap for bus this hour")  # fmt: skip
    world.check("after scenario 3")


# ---- 4: feedback by a stranger, twice by the buyer, on an unsettled trade ------------------


def test_bad_feedback_refused(world: World):
    (p0, *_), (u0, u1, _) = world.producers, world.users
    tdno, letb, retb = world.tdno, world.letb, world.retb
    nonce, fills = letb_sale(world, 0, {p0: (1000, 50)}, u0, 600, 0)
    rep, trade = retb_sale(world, u0)

    fb = letb.feedback(u0.address, nonce, 0, fills, [5])
    reverts(u0.on("letb"), fb, "request not settled")
    reverts(u0.on("retb"), retb.feedback(trade, 800, 5), "request not settled")
    tdno.on("letb").transact(letb.settle(u0.address, nonce, 0, fills, [600]))
    tdno.on("retb").transact(retb.settle(trade, 800))
    for stranger in (u1, world.stranger, p0, tdno, world.operator):  # registered or not
        reverts(stranger.on("letb"), fb, "only the buyer may rate")
    for stranger in (u1, world.stranger, rep, tdno):
        reverts(stranger.on("retb"), retb.feedback(trade, 800, 5), "only the buyer may rate")
    # the buyer may not rate a different delivery than the settled one
    reverts(u0.on("retb"), retb.feedback(trade, 700, 5), "unknown request")
    u0.on("letb").transact(fb)
    u0.on("retb").transact(retb.feedback(trade, 800, 5))
    reverts(u0.on("letb"), fb, "already rated")
    reverts(u0.on("letb"), letb.feedback(u0.address, nonce, 0, fills, [0]), "already rated")
    reverts(u0.on("retb"), retb.feedback(trade, 800, 0), "already rated")
    assert letb.reputation_of(p0.address) == update_reputation(REP0, 5)
    assert retb.reputation_of(rep.address) == update_reputation(REP0, 5)
    assert len(world.ledger.feedback()) == 2
    world.check("after scenario 4")


# ---- 5: operator-only, TDNO-only and admin-only functions -------------------------------------


def test_unauthorised_role_calls_refused(world: World):
    (p0, *_), (u0, *_) = world.producers, world.users
    letb, retb, tok = world.letb, world.retb, world.tokens
    nonce, fills = letb_sale(world, 0, {p0: (1000, 50)}, u0, 600, 0)
    _, trade = retb_sale(world, u0)

    for m, market in world.markets.items():
        for who in (u0, world.stranger, world.tdno):
            s = who.on(m)
            reverts(s, market.open_hour(5, price(FLOOR), [20], [price(CAP)]),
                    "unauthorised: operator only")  # fmt: skip
            reverts(s, market.register(s.address, b"\x01" * 32, 20, 3),
                    "unauthorised: operator only")  # fmt: skip
        for who in (u0, world.stranger, world.operator):
            s = who.on(m)
            reverts(s, market.set_operator(s.address), "unauthorised: admin only")
            reverts(s, market.set_tdno(s.address), "unauthorised: admin only")
            reverts(s, tok[m].set_minter(s.address), "unauthorised: admin only")
            reverts(s, tok[m].mint(s.address, 10**24), "unauthorised: minter only")
        for who in (u0, world.stranger, world.operator, world.admin):  # admin is not the TDNO
            reverts(who.on("letb"), letb.settle(u0.address, nonce, 0, fills, [600]),
                    "unauthorised: tdno only")  # fmt: skip
            reverts(who.on("retb"), retb.settle(trade, 800), "unauthorised: tdno only")
    # the roles are unchanged and the escrow is still held for the two open requests
    assert (letb.call("operator"), letb.call("tdno")) == (
        world.operator.address, world.tdno.address,
    )  # fmt: skip
    assert world.tokens["letb"].balance_of(letb.address) == 1 + 600 * price(50)
    world.check("after scenario 5")


# ---- 6: replay of a signed LETB transaction on RETB and vice versa --------------------------


def _raw_send(chain, raw: bytes) -> str:
    """eth_sendRawTransaction straight to the node, bypassing the chain layer's own check."""
    payload = {"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
               "params": ["0x" + raw.hex()]}  # fmt: skip
    out = requests.post(chain.url, json=payload, timeout=10).json()
    assert "error" in out, f"node accepted a transaction for another chain: {out}"
    return str(out["error"].get("message", out["error"]))


def test_cross_chain_replay_refused(world: World):
    u0, stranger = world.users[0], world.stranger
    # the same deployer nonces put both tokens at the same address: a replay would be meaningful
    assert world.tokens["letb"].address == world.tokens["retb"].address
    src = {"letb": world.letb, "retb": world.retb}
    for frm, to in (("letb", "retb"), ("retb", "letb")):
        tok = world.tokens[frm]
        signed = u0.on(frm).sign(tok.transfer(stranger.address, 7 * USD))
        target = world.chains[to]
        nonce_before = target.nonce(u0.address)
        with pytest.raises(ChainIdMismatchError, match="signed for chain id"):
            target.submit(signed)
        if isinstance(target, RpcChain):  # the node itself refuses it too
            assert "chain" in _raw_send(target, signed.raw).lower()
        else:  # the in-process engines check again below the public API
            with pytest.raises(ChainIdMismatchError):
                target._submit(signed)
        target.mine()
        assert target.nonce(u0.address) == nonce_before
        # a market call signed for one market's chain is refused on the other as well
        req = src[frm].tx("set_tdno", stranger.address)
        with pytest.raises(ChainIdMismatchError):
            target.submit(world.admin.on(frm).sign(req))
    for m in ("letb", "retb"):
        assert world.tokens[m].balance_of(stranger.address) == FUND_UNITS
        assert world.tokens[m].balance_of(u0.address) == FUND_UNITS
    # replay on its own chain: the nonce is spent
    signed = u0.on("letb").sign(world.tokens["letb"].transfer(stranger.address, USD))
    world.chains["letb"].submit(signed)
    u0.on("letb")._nonce = signed.nonce + 1
    world.chains["letb"].mine()
    with pytest.raises(NonceError):
        world.chains["letb"].submit(signed)
    world.chains["letb"].mine()
    assert world.tokens["letb"].balance_of(stranger.address) == FUND_UNITS + USD
    world.check("after scenario 6")


# ---- 7: TDNO/meter fault: confirmation above the schedule ----------------------------------


def test_delivery_above_schedule_refused(world: World):
    (p0, p1, _), (u0, *_) = world.producers, world.users
    tdno, letb, retb = world.tdno, world.letb, world.retb
    nonce, fills = letb_sale(world, 0, {p0: (500, 50), p1: (1000, 60)}, u0, 900, 0)
    assert [f["e_wh"] for f in fills] == [500, 400]
    _, trade = retb_sale(world, u0)
    escrow = world.tokens["letb"].balance_of(letb.address)
    for delivered in ([501, 400], [500, 401], [10**12, 0]):
        reverts(tdno.on("letb"), letb.settle(u0.address, nonce, 0, fills, delivered),
                "delivered above schedule")  # fmt: skip
    reverts(tdno.on("retb"), retb.settle(trade, 801), "delivered above schedule")
    assert world.tokens["letb"].balance_of(letb.address) == escrow
    world.check("after refused over-confirmation")
    tdno.on("letb").transact(letb.settle(u0.address, nonce, 0, fills, [500, 400]))
    tdno.on("retb").transact(retb.settle(trade, 800))
    reverts(tdno.on("retb"), retb.settle(trade, 800), "already settled")
    world.check("after scenario 7")


# ---- 1: a producer that under-delivers ---------------------------------------------------


def test_under_delivering_producer(world: World):
    (bad, honest, other), (u0, u1, u2) = world.producers, world.users
    tdno, letb, tok = world.tdno, world.letb, world.tokens["letb"]
    offers = {bad: (1000, 40), honest: (1000, 50), other: (1000, 60)}
    # hour 0: the cheapest (bad) producer is matched first
    nonce0, fills0 = letb_sale(world, 0, offers, u0, 1000, 300)
    assert [f["seller"] for f in fills0] == [bad.address]
    res = u1.on("letb").transact(letb.request(0, 500, 300))
    nonce1, fills1 = world.letb_request_rows(res)
    assert [f["seller"] for f in fills1] == [honest.address]
    # the bad producer delivers 300 of 1000 Wh; the TDNO settles what the meters saw
    u0_before, bad_before = tok.balance_of(u0.address), tok.balance_of(bad.address)
    tdno.on("letb").transact(letb.settle(u0.address, nonce0, 0, fills0, [300]))
    tdno.on("letb").transact(letb.settle(u1.address, nonce1, 0, fills1, [500]))
    assert tok.balance_of(u0.address) == u0_before  # the refund is a credit in the LETB:
    assert letb.credit_of(u0.address) == 700 * price(40)  # exactly the undelivered value
    u0.on("letb").transact(letb.withdraw())
    assert tok.balance_of(u0.address) - u0_before == 700 * price(40)  # withdrawn in full
    assert tok.balance_of(bad.address) - bad_before == 300 * price(40)  # paid what it delivered
    score_bad = meter_score(300, 1000)
    u0.on("letb").transact(letb.feedback(u0.address, nonce0, 0, fills0, [score_bad]))
    u1.on("letb").transact(letb.feedback(u1.address, nonce1, 0, fills1, [5]))
    r_bad, r_honest = update_reputation(REP0, score_bad), update_reputation(REP0, 5)
    assert (letb.reputation_of(bad.address), letb.reputation_of(honest.address)) == (
        r_bad, r_honest,
    )  # fmt: skip
    assert r_bad < REP0 < r_honest
    world.check("after hour 0")

    # hour 1: still the cheapest, but a user with rt above its reputation skips it
    rt = REP0
    _, fills = letb_sale(world, 1, offers, u2, 800, rt)
    assert r_bad < rt <= r_honest
    assert [(f["seller"], f["e_wh"]) for f in fills] == [(honest.address, 800)]
    # a user accepting low reliability (rt <= r_bad) still buys from it: the mitigation is rt
    res = u0.on("letb").transact(letb.request(1, 100, r_bad))
    assert [f["seller"] for f in world.letb_request_rows(res)[1]] == [bad.address]
    world.check("after scenario 1 (LETB)")


def test_under_delivering_rep(world: World):
    (u0, u1, _), (bad, honest) = world.users, world.reps
    tdno, retb, tok = world.tdno, world.retb, world.tokens["retb"]
    world.open_hour(0, CAP, FLOOR)
    bad.on("retb").transact(retb.post_offer(0, 0, 4, 5000, price(55), 10))
    honest.on("retb").transact(retb.post_offer(0, 0, 4, 5000, price(60), 10))
    trade = World.retb_trade(
        retb, u0.on("retb").transact(retb.request(0, 1000, 0, 1, 300, bad.address))
    )
    before = tok.balance_of(u0.address), tok.balance_of(bad.address), tok.total_supply()
    tdno.on("retb").transact(retb.settle(trade, 200))
    score = meter_score(200, 1000)
    u0.on("retb").transact(retb.feedback(trade, 200, score))
    after = tok.balance_of(u0.address), tok.balance_of(bad.address), tok.total_supply()
    assert after[0] - before[0] == 800 * price(55)  # buyer refunded exactly the undelivered Wh
    assert after[1] - before[1] == 200 * price(55)  # no incentive for a poor rating
    assert after[2] == before[2]
    r_bad = update_reputation(REP0, score)
    assert retb.reputation_of(bad.address) == r_bad < REP0
    # the operator's hint naming the bad REP no longer passes a user with rt above it
    world.open_hour(1, CAP, FLOOR)
    reverts(u1.on("retb"), retb.request(1, 500, 1, 2, REP0, bad.address),
            "REP reputation below threshold")  # fmt: skip
    trade1 = World.retb_trade(
        retb, u1.on("retb").transact(retb.request(1, 500, 1, 2, REP0, honest.address))
    )
    assert trade1["rep"] == honest.address
    world.check("after scenario 1 (RETB)")


# ---- 2: sybil identities -------------------------------------------------------------------


@pytest.mark.parametrize("bond_usd", [0, 5])
def test_sybil_identity(chains, bond_usd: int):
    world = World(chains, seed=500 + bond_usd, bond_units=bond_usd * USD)
    (bad, honest, _), (u0, u1, u2) = world.producers, world.users
    letb, tok = world.letb, world.tokens["letb"]
    # the owner's identity is burnt: its delivery failed completely once (score 0)
    nonce, fills = letb_sale(world, 0, {bad: (1000, 40), honest: (1000, 50)}, u0, 1000, 0)
    world.tdno.on("letb").transact(letb.settle(u0.address, nonce, 0, fills, [0]))
    u0.on("letb").transact(letb.feedback(u0.address, nonce, 0, fills, [0]))
    assert letb.reputation_of(bad.address) == update_reputation(REP0, 0) == 350
    res = u1.on("letb").transact(letb.request(0, 500, 0))
    n1, f1 = world.letb_request_rows(res)
    world.tdno.on("letb").transact(letb.settle(u1.address, n1, 0, f1, [500]))
    u1.on("letb").transact(letb.feedback(u1.address, n1, 0, f1, [5]))
    r_honest = letb.reputation_of(honest.address)

    # a fresh identity of the same owner: same bus, new key; the bond (if any) is its cost
    escrow0 = tok.balance_of(letb.address)
    sybil = world.add_identity("letb", "sybil", 0, bus=world.bus_of(bad))
    cost = FUND_UNITS - tok.balance_of(sybil.address)
    assert cost == bond_usd * USD
    assert tok.balance_of(letb.address) - escrow0 == cost  # kept by the market, never refunded
    assert letb.reputation_of(sybil.address) == REP0

    # hour 1: the sybil undercuts everyone, but a typical user (rt 450 > REP0) is not sold to it
    rt_typical = 450
    nonce, fills = letb_sale(world, 1, {sybil: (1000, 35), honest: (1000, 50)}, u2, 600,
                             rt_typical)  # fmt: skip
    assert REP0 < rt_typical <= r_honest
    assert [f["seller"] for f in fills] == [honest.address]
    # a user accepting rt <= REP0 buys from it; one good rating on chain lifts it past rt 450
    res = u0.on("letb").transact(letb.request(1, 300, REP0))
    n0, f0 = world.letb_request_rows(res)
    assert [f["seller"] for f in f0] == [sybil.address]
    world.tdno.on("letb").transact(letb.settle(u0.address, n0, 1, f0, [f["e_wh"] for f in f0]))
    u0.on("letb").transact(letb.feedback(u0.address, n0, 1, f0, [5]))
    assert letb.reputation_of(sybil.address) == update_reputation(REP0, 5) >= rt_typical
    # ... and the next typical user is sold the sybil's cheaper energy, no longer the honest's
    res = u1.on("letb").transact(letb.request(1, 200, rt_typical))
    _, f1 = world.letb_request_rows(res)
    assert [f["seller"] for f in f1] == [sybil.address]
    # the chain does not tie identities together: the operator may even register an account
    # with the burnt identity's own commitment (only the DSO's identity check can stop it)
    burnt = world.letb.call("account_state", bad.address)[0]
    twin = world.add_identity(
        "letb", "sybil", 1, bus=world.bus_of(bad), commitment=keccak(text=bad.name)
    )
    assert world.letb.call("account_state", twin.address)[0] == burnt
    world.check("after scenario 2")
    # without tokens for the bond the sybil cannot be registered at all
    if bond_usd:
        with pytest.raises(TransactionReverted, match="insufficient balance"):
            world.add_identity("letb", "sybil", 2, bus=world.bus_of(bad), fund_units=USD)
