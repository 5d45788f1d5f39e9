"""Offers on a node that executes a batch in another order than it was submitted (issue 13).

anvil with `--order fees` mines the highest priority fee first; every offer of a batch is signed
with a higher tip than the one before it, so the block runs the batch backwards. Hints that name
an offer of the same batch (the predecessor in price order) then fail with 'stale hint' (the
chain is `ordered=False`: it accepts the node's order instead of raising BlockOrderError); the
rounds of `clearing.offer_rounds` (hints from earlier blocks only, at most OFFER_FANOUT offers
between two neighbours of the earlier book) all land, within their gas bound, and the book is in
(price, producer id) order.
"""

from __future__ import annotations

import random

import pytest
from eth_utils import keccak

from gridledger.chain import RpcChain, Signer, TxRequest, TxResult, send_many
from gridledger.chain.accounts import derive_account
from gridledger.chain.nodes import start_anvil
from gridledger.contracts.gas_bounds import bound_of
from gridledger.market import clearing
from gridledger.market.contracts import LETB, EnergyToken, price_to_base_units_per_wh

pytestmark = [pytest.mark.anvil, pytest.mark.slow]

N_PRODUCERS = 40
BUS = 7
GWEI = 10**9


@pytest.fixture(scope="module")
def reordering_market():
    """An LETB on an anvil node that orders by priority fee, N_PRODUCERS registered at one bus."""
    node = start_anvil(31401, order="fees")
    chain = RpcChain(node.url, "letb", expected_chain_id=31401, ordered=False)
    try:
        admin, operator, tdno = (
            chain.signer(derive_account(13, r, 0), r) for r in ("admin", "operator", "tdno")
        )
        producers = [
            chain.signer(derive_account(13, "producer", i), f"producer{i}")
            for i in range(N_PRODUCERS)
        ]
        chain.fund([s.address for s in (admin, operator, tdno, *producers)], 10**20)
        token = EnergyToken.deploy(admin, 10**24)
        area = LETB.deploy(admin, token.address, 1, operator.address, tdno.address, 400, 0)
        send_many(
            [(operator, area.register(p.address, keccak(text=p.agent), BUS, 1)) for p in producers]
        )
        pid = {p.address: area.producer_id(p.address) for p in producers}
        yield dict(chain=chain, area=area, operator=operator, producers=producers, pid=pid)
    finally:
        chain.close()
        node.stop()


def _mine_reversed(
    chain: RpcChain, items: list[tuple[Signer, TxRequest]], *, backwards: bool = True
) -> list[TxResult]:
    """Submit `items` in order, each with a higher priority fee than the one before (a fee-
    ordered node executes them last to first; `backwards=False`: lower fees, first to last),
    mine one block; results in submission order."""
    base_tip = chain.priority_fee_wei
    pending = []
    try:
        for k, (signer, req) in enumerate(items):
            chain.priority_fee_wei = base_tip + (k if backwards else len(items) - k) * GWEI
            pending.append(signer.send(req))
    finally:
        chain.priority_fee_wei = base_tip
    chain.mine()
    results = [p.result for p in pending]
    assert all(r is not None for r in results)
    return results  # type: ignore[return-value]


def _open(m, t: int) -> dict:
    price = price_to_base_units_per_wh
    m["operator"].transact(m["area"].open_hour(t, price(20), [BUS], [price(200)]))
    rng = random.Random(t)
    return {p.address: price(rng.choice([40, 40, 55, 70, 90])) + rng.randrange(3)
            for p in m["producers"]}  # fmt: skip


def test_batch_really_runs_backwards_same_block_hints_go_stale(reordering_market) -> None:
    m = reordering_market
    area, producers, pid = m["area"], m["producers"], m["pid"]
    price = _open(m, 0)
    ordered = sorted(producers, key=lambda p: (price[p.address], pid[p.address]))
    items, prev = [], 0  # the old scheme: each hint = the offer just before it in the batch
    for p in ordered:
        items.append((p, area.post_offer(0, 1000, price[p.address], prev)))
        prev = pid[p.address]
    results = _mine_reversed(m["chain"], items)
    blocks = {r.block_number for r in results}
    assert len(blocks) == 1  # one block, executed in reverse
    failed = [str(r.error) for r in results if r.error is not None]
    assert failed and all("stale hint" in e for e in failed)


@pytest.mark.parametrize("backwards", [True, False])
def test_offer_rounds_hold_in_either_execution_order(reordering_market, backwards) -> None:
    """backwards: the node reverses each round; forwards: the longest walks from the hints."""
    m = reordering_market
    area, producers, pid = m["area"], m["producers"], m["pid"]
    t = 1 if backwards else 2
    price = _open(m, t)
    by_pid = {pid[p.address]: p for p in producers}
    keys = [(price[p.address], pid[p.address]) for p in producers]
    rounds = clearing.offer_rounds(keys, clearing.OFFER_FANOUT)
    assert len(rounds) == 2
    for posts in rounds:
        items = [(by_pid[i], area.post_offer(t, 1000, price[by_pid[i].address], h))
                 for i, h in posts]  # fmt: skip
        results = _mine_reversed(m["chain"], items, backwards=backwards)
        assert [r.error for r in results] == [None] * len(items)
        assert max(r.gas_used for r in results) <= bound_of("LETB.post_offer")
    book = area.book()
    assert sorted(book) == sorted(pid.values())
    assert [(area.offer_of(i)["price"], i) for i in book] == sorted(keys)


def test_model_hours_at_households_per_bus_5_on_anvil() -> None:
    """The issue's failing case: 315 households (105 producers) on the project's anvil nodes,
    where same-block hints reverted with 'stale hint' in the first hour. Two hours of the model:
    every offer lands within its gas bound, in more than one block per hour."""
    from gridledger import EnergyMarketModel, Scenario

    nodes = [start_anvil(31401), start_anvil(31402)]
    try:
        # "price_peak" over a 2-hour run offers stored energy in both hours
        sc = Scenario().replace(
            households_per_bus=5, hours=2, start_hour=10, producer_strategy="price_peak"
        )
        model = EnergyMarketModel(sc, chain=f"{nodes[0].url},{nodes[1].url}")
        res = model.run()
    finally:
        for n in nodes:
            n.stop()
    assert len(res.hourly) == 2 and len(model.producers) == 105
    g = res.gas
    offers = g[(g["operation"] == "post_offer") & (g["contract"] != "RETB")]
    assert len(offers) > 100 and (offers["status"] == 1).all()
    assert offers["gas_used"].max() <= bound_of("LETB.post_offer")
    assert offers.groupby("t")["block"].nunique().min() >= 2  # several offer rounds per hour
    assert len(model.ledger.events("OfferPosted", contract="LETB")) >= len(offers)
