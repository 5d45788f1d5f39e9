"""One LETB market hour and one RETB trade end to end through the chain layer, on both
backends: set-up and funding, caps, offers, matching, settlement, feedback, incentives; decoded
into the ledger's frames."""

from __future__ import annotations

import math

import pytest
from eth_utils import keccak

from gridledger.chain import ChainBackend, Signer, TransactionReverted, send_many
from gridledger.chain.accounts import derive_account
from gridledger.market.contracts import (
    LETB,
    RETB,
    EnergyToken,
    fund_agents,
    price_to_base_units_per_wh,
)
from gridledger.market.ledger import Ledger

USD = 10**18
REP0 = 400


def signers(chain: ChainBackend, role: str, n: int) -> list[Signer]:
    return [chain.signer(derive_account(11, role, i), f"{role}{i}") for i in range(n)]


def join_zone(
    token: EnergyToken,
    zone: RETB,
    admin: Signer,
    operator: Signer,
    rep: Signer,
    user: Signer,
    user_tag: str,
) -> None:
    """Make `zone` the token's minter (escrow seeded), approve it for the REP at bus 53 and the
    user at bus 12, and register both."""
    send_many(
        [
            (admin, token.set_minter(zone.address)),
            (admin, token.transfer(zone.address, 1)),
            (rep, token.approve(zone.address)),
            (user, token.approve(zone.address)),
        ]
    )
    send_many(
        [
            (operator, zone.register(rep.address, keccak(text="rep"), 53, 1)),
            (operator, zone.register(user.address, keccak(text=user_tag), 12, 2)),
        ]
    )


@pytest.fixture
def market(letb: ChainBackend):
    chain = letb
    ledger = Ledger().attach(chain)
    ledger.phase = "setup"
    admin, operator, tdno = (signers(chain, r, 1)[0] for r in ("admin", "operator", "tdno"))
    producers, users = signers(chain, "producer", 2), signers(chain, "user", 2)
    chain.fund([admin.address], 10**20)
    token = EnergyToken.deploy(admin, 10**9 * USD)
    area = LETB.deploy(admin, token.address, 1, operator.address, tdno.address, REP0, 0)
    ledger.watch(token, area)
    everyone = [operator, tdno, *producers, *users]
    fund_agents(token, admin, [s.address for s in everyone], gas_wei=10**19, token_units=100 * USD)
    send_many(
        [(admin, token.transfer(area.address, 1))]
        + [(s, token.approve(area.address)) for s in (*producers, *users)]
    )
    buses = {s.address: 20 + i for i, s in enumerate((*producers, *users))}
    send_many(
        [
            (operator, area.register(s.address, keccak(text=s.agent), buses[s.address], role))
            for role, group in ((1, producers), (2, users))
            for s in group
        ]
    )
    return dict(chain=chain, ledger=ledger, token=token, area=area, operator=operator,
                tdno=tdno, producers=producers, users=users, buses=buses)  # fmt: skip


def test_one_letb_hour_end_to_end(market):
    ledger, token, area = market["ledger"], market["token"], market["area"]
    operator, tdno = market["operator"], market["tdno"]
    (p0, p1), (u0, u1) = market["producers"], market["users"]
    price = price_to_base_units_per_wh
    ledger.t, ledger.phase = 0, "caps"
    seller_buses = [market["buses"][p.address] for p in (p0, p1)]
    operator.transact(area.open_hour(0, price(30), seller_buses, [price(90)] * 2))
    assert area.current_hour() == 0 and area.cap_of(seller_buses[0]) == (0, price(90))

    ledger.phase = "offers"  # both hints read before the block; the contract walks forward
    send_many(
        [(p0, area.post_offer(0, 1000, price(50))), (p1, area.post_offer(0, 1000, price(40)))]
    )
    assert [area.offer_of(i)["seller"] for i in area.book()] == [p1.address, p0.address]

    ledger.phase = "requests"
    send_many([(u0, area.request(0, 1500, 300)), (u1, area.request(0, 800, 300))])
    trades = ledger.trades()
    fills = [(r.buyer, r.seller, r.e_wh, r.price) for r in trades.itertuples()]
    assert fills == [
        (u0.address, p1.address, 1000, price(40)),
        (u0.address, p0.address, 500, price(50)),
        (u1.address, p0.address, 500, price(50)),
    ]
    assert set(trades["t"]) == {0} and set(trades["chain"]) == {"letb"}

    ledger.phase = "settle"
    requests = {}
    for buyer, grp in trades.groupby("buyer", sort=False):
        rows = grp.sort_values("index").to_dict("records")
        requests[buyer] = (int(rows[0]["nonce"]), rows)
    delivered = {u0.address: [1000, 400], u1.address: [500]}
    send_many(
        [
            (tdno, area.settle(b, nonce, 0, rows, delivered[b]))
            for b, (nonce, rows) in requests.items()
        ]
    )
    settled = ledger.settlements()
    assert settled.set_index("buyer")["delivered_wh"].to_dict() == {
        u0.address: 1400,
        u1.address: 500,
    }
    assert token.balance_of(p1.address) == 100 * USD + 1000 * price(40)
    assert token.balance_of(p0.address) == 100 * USD + 900 * price(50)
    # the undelivered 100 Wh stay in the LETB as u0's refund credit (pull payment)
    assert token.balance_of(u0.address) == 100 * USD - 1000 * price(40) - 500 * price(50)
    assert area.credit_of(u0.address) == 100 * price(50) and area.credit_of(u1.address) == 0

    ledger.phase = "feedback"
    scores = {u0.address: [5, 1], u1.address: [4]}
    buyers = {u0.address: u0, u1.address: u1}
    send_many(
        [
            (buyers[b], area.feedback(b, nonce, 0, rows, scores[b]))
            for b, (nonce, rows) in requests.items()
        ]
    )
    reps = ledger.reputations()
    r_p1 = (7 * REP0 + 200 * 5) // 8
    r_p0 = (7 * ((7 * REP0 + 200 * 1) // 8) + 200 * 4) // 8
    assert reps.groupby("seller")["reputation"].last().to_dict() == {
        p1.address: r_p1,
        p0.address: r_p0,
    }
    assert area.reputation_of(p0.address) == r_p0

    gas = ledger.gas()
    hour = gas[gas["t"] == 0]
    # one block per phase on both backends
    assert hour.groupby("phase")["block"].nunique().to_dict() == {
        "caps": 1, "offers": 1, "requests": 1, "settle": 1, "feedback": 1,
    }  # fmt: skip
    assert set(hour["operation"]) == {"open_hour", "post_offer", "request", "settle", "feedback"}
    assert (hour["status"] == 1).all() and (hour["gas_used"] > 21_000).all()
    assert set(ledger.funding()["operation"]) == {"fund_gas", "fund_tokens"}
    assert ledger.gas_per_hour().to_dict() == {0: int(hour["gas_used"].sum())}

    ledger.phase = "withdraw"
    u0.transact(area.withdraw())
    assert area.credit_of(u0.address) == 0
    assert token.balance_of(u0.address) == 100 * USD - 1000 * price(40) - 400 * price(50)


def test_letb_refusals_are_named(market):
    area, operator = market["area"], market["operator"]
    (p0, _), (u0, _) = market["producers"], market["users"]
    price = price_to_base_units_per_wh
    operator.transact(area.open_hour(0, price(30), [market["buses"][p0.address]], [price(90)]))
    with pytest.raises(TransactionReverted) as info:
        p0.transact(area.post_offer(0, 1000, price(95)))
    assert info.value.reason == "price above DLMP cap"
    assert (info.value.agent, info.value.contract, info.value.function) == (
        "producer0", "LETB", "post_offer",
    )  # fmt: skip
    with pytest.raises(TransactionReverted, match="unauthorised: operator only"):
        u0.transact(area.open_hour(1, price(30), [], []))


def test_one_retb_trade_with_incentive(letb: ChainBackend):
    chain = letb
    ledger = Ledger().attach(chain)
    admin, operator, tdno = (signers(chain, r, 1)[0] for r in ("admin", "operator", "tdno"))
    (rep,), (user,) = signers(chain, "rep", 1), signers(chain, "user", 1)
    chain.fund([admin.address], 10**20)
    token = EnergyToken.deploy(admin, 10**9 * USD)
    k, scale_wh, ref_h = 10, 1_000_000, 24
    zone = RETB.deploy(admin, token.address, 1, operator.address, tdno.address, REP0, 0,
                       k, scale_wh, ref_h)  # fmt: skip
    ledger.watch(token, zone)
    fund_agents(token, admin, [s.address for s in (operator, tdno, rep, user)],
                gas_wei=10**19, token_units=100 * USD)  # fmt: skip
    join_zone(token, zone, admin, operator, rep, user, "user")
    price = price_to_base_units_per_wh
    ledger.t = 0
    operator.transact(zone.open_hour(0, price(30), [53], [price(90)]))
    rep.transact(zone.post_offer(0, 0, 4, 5000, price(60), 10))
    assert zone.rep_offer(rep.address)["remaining_wh"] == 5000
    user.transact(zone.request(0, 2000, 0, 2, 300, rep.address))
    (trade,) = ledger.trades().to_dict("records")
    assert (trade["buyer"], trade["seller"], trade["e_wh"], trade["price"]) == (
        user.address, rep.address, 2000, price(60),
    )  # fmt: skip
    assert zone.rep_offer(rep.address)["remaining_wh"] == 3000
    trade_args = {**trade, "rep": trade["seller"]}
    tdno.transact(zone.settle(trade_args, 1800))
    user.transact(zone.feedback(trade_args, 1800, 5))
    (inc,) = ledger.incentives().to_dict("records")
    c_reg = 1800 * price(60)
    x = (1800 / scale_wh) * (1800 / 2000) * (10 / ref_h)
    assert inc["incentive"] == pytest.approx(c_reg * math.log(1 + x, k), rel=1e-6)
    assert token.balance_of(rep.address) == 100 * USD + c_reg + inc["incentive"]
    assert token.balance_of(user.address) == 100 * USD - c_reg
    assert ledger.reputations()["reputation"].tolist() == [(7 * REP0 + 200 * 5) // 8]
    with pytest.raises(TransactionReverted, match="already rated"):
        user.transact(zone.feedback(trade_args, 1800, 5))


def test_one_ledger_over_letb_and_retb_has_one_seller_column(market):
    """LETB events name the seller `seller`, RETB's `rep`: the ledger merges them into one."""
    chain, ledger, token, area = market["chain"], market["ledger"], market["token"], market["area"]
    operator, tdno = market["operator"], market["tdno"]
    (p0, _), (u0, u1) = market["producers"], market["users"]
    admin = signers(chain, "admin", 1)[0]
    (rep,) = signers(chain, "rep", 1)
    zone = RETB.deploy(admin, token.address, 1, operator.address, tdno.address, REP0, 0,
                       10, 1_000_000, 24)  # fmt: skip
    ledger.watch(zone)
    fund_agents(token, admin, [rep.address], gas_wei=10**19, token_units=USD)
    join_zone(token, zone, admin, operator, rep, u1, "u1")
    price = price_to_base_units_per_wh
    bus = market["buses"][p0.address]
    operator.transact(area.open_hour(0, price(30), [bus], [price(90)]))
    operator.transact(zone.open_hour(0, price(30), [53], [price(90)]))
    p0.transact(area.post_offer(0, 1000, price(50)))
    rep.transact(zone.post_offer(0, 0, 4, 5000, price(60), 10))
    u0.transact(area.request(0, 700, 300))
    u1.transact(zone.request(0, 2000, 0, 2, 300, rep.address))

    trades = ledger.trades()
    assert trades.columns.is_unique and "rep" not in trades.columns
    sellers = trades.set_index("contract")["seller"].to_dict()
    assert sellers == {"LETB": p0.address, "RETB": rep.address}
