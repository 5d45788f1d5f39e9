"""The generic market hour: one loop over the scenario's markets (docs/markets.md).

`EnergyMarketModel._hour` (gridledger/model.py) calls `run_hour`: at each step of `Phase` it asks
every market of the scenario's mechanism (gridledger/markets/) for the transactions its agents
decide and sign, and sends them as one block per chain (day/chains.py: `send_phase`); then the
hour's checks (day/invariant_checks.py), the adversaries' record (day/attacks.py) and the hour's
row (day/kpis.py). `model.stage` names the step running, for NodeDownError.

Nothing here is specific to a mechanism: a market's own rules live in its module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from mesa.agentset import AgentSet

from gridledger.checkpoint import block_ref, check_replayed_hour
from gridledger.day import attacks
from gridledger.day.chains import send_phase, split_results
from gridledger.day.invariant_checks import check_hour_invariants
from gridledger.day.kpis import record_hour
from gridledger.markets.base import Delivery, Fill, MarketHour, SignedTx, trade_row
from gridledger.markets.phases import Phase

if TYPE_CHECKING:
    import mesa

    from gridledger.agents.user import UserAgent
    from gridledger.chain import TxResult
    from gridledger.model import EnergyMarketModel

__all__ = ["any_order", "run_hour", "send"]


def run_hour(model: EnergyMarketModel, t: int) -> dict[str, Any]:
    """One market hour: each step asks the agents, through the scenario's markets, and sends
    what they sign as one block per chain; returns the hour's row."""
    sc = model.params
    model.stage = Phase.OPEN_HOUR
    caps = model.operator.price_hour(t)
    any_order(model, model.users, "plan_hour", t, sc.dt_h)
    order = list(model.users)
    model.random.shuffle(order)  # the hour's seeded request order (MarketHour.buyers)
    hour = MarketHour(t, caps, float(model.tariff[t]), model.fit, sc.dt_h, tuple(order))
    send(model, Phase.OPEN_HOUR, [m.open_hour(hour) for m in model.markets])
    model.stage = Phase.POST_OFFER
    sellers = {s.unique_id: s for m in model.markets for s in m.sellers()}
    any_order(model, sellers.values(), "decide_offer", hour)
    post_offers(model, hour)
    users = {u.unique_id: u for u in model.users}
    fills: list[list[Fill]] = []
    for m in model.markets:  # in mechanism order: a shortage goes on to the next market
        model.stage = m.request_phase
        (results,) = send(model, m.request_phase, [m.requests(hour)])
        fills.append(m.fills(hour, results))
        for f in fills[-1]:
            users[f.buyer_id].bought(m.kind, f.e_wh)
    model.stage = Phase.GRID
    for u in model.users:
        u.buy_rest(model.grid, t, hour.tariff_usd_per_mwh)
    model.stage = Phase.SETTLE
    tdno = model.tdno
    deliveries = [tdno.meter(t, f, m.sellers()) for m, f in zip(model.markets, fills, strict=True)]
    settled = send(
        model,
        Phase.SETTLE,
        [m.settle(hour, d) for m, d in zip(model.markets, deliveries, strict=True)],
    )
    for m, res in zip(model.markets, settled, strict=True):
        tdno.settle_buyers(t, m.kind, m.settled(hour, res), users, model.grid)
    for m in model.markets:
        for seller in m.sellers():
            seller.export_to(model.grid, model.fit)
    tdno.meter_grid(t)
    model.last_power_flow = tdno.last_power_flow
    model.last_power_flow_baseline = tdno.last_power_flow_baseline
    model.stage = Phase.FEEDBACK
    minted = feedback(model, hour, deliveries, users)
    model.stage = Phase.CHECKS
    attacks.record_hour(model, t)
    check_hour_invariants(model, t)
    columns = {k: v for m in model.markets for k, v in m.hour_columns().items()}
    row = record_hour(model, t, columns, minted)
    if model.checkpoint_dir is not None or model.resumed_from is not None:
        model.hour_blocks.append({c: block_ref(ch) for c, ch in model.chains.items()})
    if model.resumed_from is not None and t <= model.resumed_from.last_completed_hour:
        check_replayed_hour(model, t, model.resumed_from)
    return row


def any_order(
    model: EnergyMarketModel, agents: Iterable[mesa.Agent], method: str, *args: Any
) -> None:
    """Ask agents to act where their order cannot matter (each acts on its own state):
    Mesa's `shuffle_do`, shuffled by `model.act_random` so that the model's own stream (the
    hour's request order) stays the same whatever acts this way."""
    AgentSet(agents, random=model.act_random).shuffle_do(method, *args)


def send(
    model: EnergyMarketModel, phase: Phase, parts: list[list[SignedTx]]
) -> list[list[TxResult]]:
    """The markets' transactions of one step as one block per chain; each market's results
    back in its own list."""
    results = send_phase(model, phase, [x for part in parts for x in part])
    return split_results(parts, results)


def post_offers(model: EnergyMarketModel, hour: MarketHour) -> None:
    """Stage 1: every market's offer rounds; round r of all markets shares block r."""
    rounds = [m.offers(hour) for m in model.markets]
    model.offer_blocks = max((len(r) for r in rounds), default=0)
    for r in range(max(model.offer_blocks, 1)):
        send(model, Phase.POST_OFFER, [mr[r] if r < len(mr) else [] for mr in rounds])


def feedback(
    model: EnergyMarketModel,
    hour: MarketHour,
    deliveries: list[list[Delivery]],
    users: dict[int, UserAgent],
) -> dict[str, int]:
    """Stage 4: each user rates its trades; returns the incentives minted per chain (token
    base units) and records every rated trade as a row of Results.trades."""
    tol = model.params.feedback_tolerance
    ratings = [
        [users[d.fill.buyer_id].rate(d.fill, d.delivered_wh, tol) for d in ds] for ds in deliveries
    ]
    results = send(
        model,
        Phase.FEEDBACK,
        [m.feedback(hour, r) for m, r in zip(model.markets, ratings, strict=True)],
    )
    minted = {c: 0 for c in model.chains}
    for m, rs, res in zip(model.markets, ratings, results, strict=True):
        incentives = m.rated(hour, res)
        minted[m.chain] += sum(incentives)
        for rating, units in zip(rs, incentives, strict=True):
            model.trade_rows.append(trade_row(hour.t, rating, units))
    return minted
