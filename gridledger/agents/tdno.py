"""TDNO: meters what was physically delivered each hour, confirms it on chain, settles escrow.

Metering: each producer's deliverable energy this hour is what it sold, cut by a configured fault
(probability `fault_rate` per producer and hour: it delivers `fault_delivery_fraction`) or, for a
REP, by its real output falling short of the forecast it sold against (forecast error). A
producer's deliverable energy is shared over its trades pro rata (integer Wh, floor, remainder to
the earliest trades), so delivered <= scheduled for every trade. The AC power flow of the hour
(network/powerflow, exact ZIP loads) with the metered injections gives the voltages, losses and
substation import that the TDNO records beside the settlement.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np

from gridledger.day.conservation import ConservationError
from gridledger.market.contracts import usd_from_base_units
from gridledger.markets.base import Delivery, EnergyKind, Fill, Settlement
from gridledger.network.powerflow import PowerFlowResult, run_power_flow

if TYPE_CHECKING:
    from gridledger.agents.grid import GridAgent
    from gridledger.agents.user import UserAgent


def pro_rata(deliverable_wh: int, scheduled_wh: Sequence[int]) -> list[int]:
    """Split `deliverable_wh` over trades in proportion to their schedule, never above it.

    Integer Wh: each trade gets floor(share); the Wh left by flooring go one each to the
    earliest trades that still have room. Sum = min(deliverable, total scheduled).
    """
    total = sum(scheduled_wh)
    if deliverable_wh >= total:
        return list(scheduled_wh)
    if deliverable_wh <= 0 or total == 0:
        return [0] * len(scheduled_wh)
    out = [s * deliverable_wh // total for s in scheduled_wh]
    left = deliverable_wh - sum(out)
    for i, s in enumerate(scheduled_wh):
        if left == 0:
            break
        if out[i] < s:
            out[i] += 1
            left -= 1
    return out


class TDNO(mesa.Agent):
    """Transmission/distribution network operator: meters, confirms delivery, settles.

    Each hour, market by market: `meter` the sellers against the market's fills (the market
    then builds the settlement calls the TDNO signs), `settle_buyers` with what the chain
    settled (the grid balances what was not delivered); then `meter_grid`: the AC power
    flows of the hour, with and without trading."""

    role = "tdno"

    def __init__(self, model: mesa.Model, *, bus: int) -> None:
        super().__init__(model)
        self.bus = bus
        self.cost_usd = 0.0
        self.last_power_flow: PowerFlowResult | None = None
        self.last_power_flow_baseline: PowerFlowResult | None = None

    def fault_fraction(self, t: int, seller: Any) -> float | None:
        """The share of its sale a seller delivers under a fault in hour t (None: no fault).
        The fault table (day/world.py) has one column per producer, then one per plant."""
        model: Any = self.model
        slot = seller.index if seller.role == "producer" else len(model.producers) + seller.index
        return model.params.fault_delivery_fraction if model.faults[t][slot] else None

    def meter(self, t: int, fills: Sequence[Fill], sellers: Sequence[Any]) -> list[Delivery]:
        """Meter every seller of one market in hour t: what it delivers against its fills
        (`seller.metered_wh`: faults, forecast error), shared over them pro rata; each seller
        then settles its own energy (`settle_delivery`). Returns one Delivery per fill."""
        dt_h = self.model.params.dt_h  # type: ignore[attr-defined]
        by_seller: dict[str, list[int]] = defaultdict(list)  # seller address -> fill positions
        for i, f in enumerate(fills):
            by_seller[f.seller].append(i)
        unknown = set(by_seller) - {s.account.address for s in sellers}
        if unknown:
            market = fills[0].market
            raise ConservationError(
                f"hour {t}: {market} trades by unknown sellers {sorted(unknown)}"
            )
        delivered = [0] * len(fills)
        for s in sellers:
            mine = by_seller.get(s.account.address, [])
            scheduled = [fills[i].e_wh for i in mine]
            deliverable = s.metered_wh(t, sum(scheduled), self.fault_fraction(t, s), dt_h)
            split = pro_rata(deliverable, scheduled)
            for i, d in zip(mine, split, strict=True):
                delivered[i] = d
            s.settle_delivery(t, sum(split), dt_h)
        return [Delivery(f, d) for f, d in zip(fills, delivered, strict=True)]

    def settle_buyers(
        self,
        t: int,
        kind: EnergyKind,
        settlements: Sequence[Settlement],
        users: dict[int, UserAgent],
        grid: GridAgent,
    ) -> None:
        """Each buyer's settled request: it paid for what was delivered; the grid makes up the
        rest at the tariff (balancing)."""
        tariff = float(self.model.tariff[t])  # type: ignore[attr-defined]
        for s in settlements:
            u = users[s.buyer_id]
            short = u.settled(kind, usd_from_base_units(s.paid_base_units), s.delivered_wh)
            if short > 0:
                grid.sell(u, short, tariff)

    def meter_grid(self, t: int) -> None:
        """AC power flow of the metered hour (trading) and of the baseline (batteries idle)."""
        model: Any = self.model
        t0 = time.perf_counter()
        feeder, pos = model.feeder, model.feeder.topology.pos
        n = feeder.n_buses
        p_load, q_load, pv_self = np.zeros(n), np.zeros(n), np.zeros(n)
        for u in model.users:
            i = pos[u.bus]
            p_load[i] += u.load_kw[t] + u.ev_kw[t]
            q_load[i] += u.q_kvar[t]
            pv_self[i] += u.self_pv_kw[t]
        rep_out, batt = np.zeros(n), np.zeros(n)
        for r in model.reps:
            rep_out[pos[r.bus]] += r.actual_kw[t]
        for p in model.producers:
            batt[pos[p.bus]] += p.battery_power_kw(model.params.dt_h)
        if model.params.include_feeder_pv:
            rep_out += feeder.buses["pv_kw"].to_numpy() * model.pv_shape[t]
        # battery discharge is an injection, charging a load (constant power both)
        self.last_power_flow = run_power_flow(
            feeder, p_load, q_load, pv_kw=pv_self + rep_out + batt, include_pv=True, zip=model.zip
        )
        self.last_power_flow_baseline = run_power_flow(
            feeder, p_load, q_load, pv_kw=pv_self + rep_out, include_pv=True, zip=model.zip
        )
        model.timing["power_flow_s"] += time.perf_counter() - t0
