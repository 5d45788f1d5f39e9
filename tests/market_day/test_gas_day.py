"""Issue 3's gas bounds on the model's own default day: every contract operation the model sent
(set-up registrations, approvals and token grants included; deployments and native gas funding
excluded) stays within its bound, and no LETB request fills more offers than the scenario's cap.
The bounds come from gridledger/contracts/gas_bounds.py (shared with tests/contracts/test_gas.py
and benchmarks/bench_gas.py)."""

from __future__ import annotations

import pytest

from gridledger import EnergyMarketModel, Results
from gridledger.contracts.gas_bounds import BATCHED, bound_of, item_bound_of
from gridledger.day.chains import SELLER_SEED_UNITS
from gridledger.market.contracts import MAX_BATCH

pytestmark = pytest.mark.slow

MARKET_OPERATIONS = {
    "LETB.open_hour", "LETB.post_offer", "LETB.request", "LETB.settle_many", "LETB.feedback",
    "RETB.open_hour", "RETB.post_offer", "RETB.request", "RETB.settle_many", "RETB.feedback",
    "LETB.settle",  # a lone request of a market-hour
}  # fmt: skip
SETUP_OPERATIONS = {"LETB.register", "RETB.register", "EnergyToken.approve", "EnergyToken.transfer"}


def test_every_operation_of_the_default_day_within_its_gas_bound(
    day: tuple[EnergyMarketModel, Results],
) -> None:
    _model, r = day
    g = r.gas
    bounded = g[(g["operation"] != "deploy") & (g["contract"] != "native")]
    ops = bounded["contract"] + "." + bounded["operation"]
    # the day covers every operation (a lone LETB settle only where an hour has one LETB buyer:
    # not on the default day, whose batteries sell every hour; tests/contracts/test_gas.py)
    assert set(ops) >= (MARKET_OPERATIONS | SETUP_OPERATIONS) - {"LETB.settle"}
    assert (bounded["t"] == -1).any() and (bounded["t"] >= 0).any()  # set-up and market hours
    worst = bounded.groupby(ops)["gas_used"].max()
    over = {op: int(gas) for op, gas in worst.items() if gas > bound_of(op)}
    assert not over, f"operations of the default day above their gas bound: {over}"


def test_settle_many_within_its_bounds_per_item_and_per_call(
    day: tuple[EnergyMarketModel, Results],
) -> None:
    """The TDNO's settle_many calls: one Settled event per item, 2..MAX_BATCH items, gas per
    item within the single settle's bound (the per-call bound is checked above); a lone
    request of a market-hour goes as settle."""
    model, r = day
    g = r.gas
    ops = g["contract"] + "." + g["operation"]
    batched = g[ops.isin(BATCHED)]
    assert not batched.empty
    items = model.ledger.events("Settled").groupby("tx_hash").size()
    assert int(items.sum()) == len(r.trades.drop_duplicates(["chain", "buyer", "nonce"]))
    singles = g[ops.isin(set(BATCHED.values()))]
    assert (items[singles["tx_hash"]] == 1).all()
    assert int(items[batched["tx_hash"]].sum()) >= 0.9 * int(items.sum())  # most in batches
    for op, tx, gas in zip(ops[batched.index], batched["tx_hash"], batched["gas_used"],
                           strict=True):  # fmt: skip
        n = int(items[tx])
        assert 2 <= n <= MAX_BATCH, (tx, n)
        assert gas / n <= item_bound_of(op), (op, tx, gas, n)


def test_no_letb_request_fills_more_than_the_scenario_cap(
    day: tuple[EnergyMarketModel, Results],
) -> None:
    model, r = day
    cap = model.params.letb_max_fills_per_request
    assert cap == 3
    assert [m.max_fills() for m in model.letb] == [cap] * len(model.letb)  # deployed with it
    letb = r.trades[r.trades["chain"] == "letb"]
    fills = letb.groupby(["area", "buyer", "nonce"])["index"].agg(["size", "max"])
    assert fills["size"].max() == cap  # requests do reach the cap ...
    assert (fills["max"] + 1 == fills["size"]).all()  # ... and never pass it (indices 0..n-1)


def test_seller_seeds_keep_the_token_accounting_exact(
    day: tuple[EnergyMarketModel, Results],
) -> None:
    """Each seller got SELLER_SEED_UNITS at set-up and still holds them: its balance at the end
    is the seed plus exactly what its settled trades paid (plus minted incentives for REPs)."""
    model, r = day
    tok = model.tokens["letb"]
    letb = r.trades[r.trades["chain"] == "letb"]
    paid: dict[str, int] = {}
    for seller, d, price in zip(letb["seller"], letb["delivered_wh"], letb["price"], strict=True):
        paid[seller] = paid.get(seller, 0) + int(d) * int(price)
    assert model.params.registration_bond_usd == 0.0
    for p in model.producers:
        addr = p.account.address
        assert tok.balance_of(addr) == SELLER_SEED_UNITS + paid.get(addr, 0), p.unique_id
    incentives = model.ledger.incentives()
    rtok = model.tokens["retb"]
    retb = r.trades[r.trades["chain"] == "retb"]
    for rep in model.reps:
        addr = rep.account.address
        mine = retb[retb["seller"] == addr]
        pairs = zip(mine["delivered_wh"], mine["price"], strict=True)
        settled = sum(int(d) * int(pr) for d, pr in pairs)
        minted = sum(int(x) for x in incentives[incentives["seller"] == addr]["incentive"])
        assert rtok.balance_of(addr) == SELLER_SEED_UNITS + settled + minted, rep.unique_id
