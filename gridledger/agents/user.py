"""User: a household (or one load bus) buying energy: LETB first, RETB for the shortage, grid last.

Demand: the household's metered demand m per hour — its ZIP load at the hour's load multiplier
(nominal power at 1 p.u.; the AC power flow applies the exact ZIP voltage dependence), plus an
optional EV charged evenly inside its window, minus its own rooftop PV behind the meter (a
prosumer's PV serves its own home first, in the trading scheme and the baseline alike).

Each hour the user posts (m, rt) on its area's LETB, sends the shortage Δm with its demand window
T_D = [t, t+1) to RETB, and buys what is still short from the grid at the time-of-use tariff.
After metering, energy a producer failed to deliver is made up by the grid (balancing at tariff)
and the smart meter rates each trade: full score when the delivered energy is within
`feedback_tolerance` of the schedule, otherwise the score scales with the delivered share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import mesa
import numpy as np

from gridledger.day.conservation import ConservationError
from gridledger.market.contracts import price_from_base_units_per_wh
from gridledger.markets.base import EnergyKind, Fill, Offer, Rating, Request

if TYPE_CHECKING:
    from gridledger.agents.grid import GridAgent
    from gridledger.agents.operator import NetworkOperator

MAX_SCORE = 5
"""Smart-meter rating scale 0..MAX_SCORE (gridledger/contracts/README.md)."""


def meter_score(scheduled_wh: int, delivered_wh: int, tolerance: float, max_score: int) -> int:
    """Smart-meter rating of one trade, 0..max_score."""
    if scheduled_wh <= 0:
        return max_score
    ratio = delivered_wh / scheduled_wh
    if ratio >= 1.0 - tolerance:
        return max_score
    return max(0, min(max_score, math.floor(ratio * max_score)))


def ev_profile_kw(
    hours: int, clock_hours: np.ndarray, energy_kwh: float, start_h: int, end_h: int, dt_h: float
) -> np.ndarray:
    """EV charging power: energy_kwh spread evenly over the window hours of each day."""
    in_window = (clock_hours >= start_h) & (clock_hours < end_h)
    out = np.zeros(hours)
    out[in_window] = energy_kwh / ((end_h - start_h) * dt_h)
    return out


class UserAgent(mesa.Agent):
    """A household buyer; holds its key, signs its own requests, rates its trades.

    Each hour (the hour loop in model.py asks, markets/ build the transactions): `plan_hour`
    meters the demand; `local_request` and `choose_plant` decide what to ask which market;
    `bought` and `settled` keep the local / renewable / grid balances; `rate` scores a trade."""

    role = "user"
    kind = "household"
    """What the load is: "household", or on a real grid its data's "business", "farm", "other"."""

    def __init__(
        self,
        model: mesa.Model,
        *,
        bus: int,
        area: int,
        index: int,
        load_kw: np.ndarray,
        q_kvar: np.ndarray,
        self_pv_kw: np.ndarray,
        ev_kw: np.ndarray,
        reliability_threshold: int,
    ) -> None:
        super().__init__(model)
        self.bus = bus
        self.area = area
        self.index = index
        self.load_kw = np.asarray(load_kw, dtype=float)
        self.q_kvar = np.asarray(q_kvar, dtype=float)
        self.self_pv_kw = np.asarray(self_pv_kw, dtype=float)
        self.ev_kw = np.asarray(ev_kw, dtype=float)
        self.rt = int(reliability_threshold)
        gross = self.load_kw + self.ev_kw
        self.demand_kw = np.maximum(gross - self.self_pv_kw, 0.0)
        """Metered demand per hour (kW = kWh per 1 h market)."""
        self.pv_surplus_kw = np.maximum(self.self_pv_kw - gross, 0.0)
        self.cost_usd = 0.0
        self.cost_usd_baseline = 0.0
        self.reset_hour()

    def reset_hour(self) -> None:
        self.m_wh = 0
        self.local_wh = 0
        self.local_usd = 0.0
        self.renewable_wh = 0
        self.renewable_usd = 0.0
        self.shortage_wh = 0
        self.grid_wh = 0
        self.grid_usd = 0.0
        self.hour_cost_usd = 0.0
        self.hour_cost_usd_baseline = 0.0

    def demand_wh(self, t: int, dt_h: float) -> int:
        return round(self.demand_kw[t] * dt_h * 1000.0)

    def plan_hour(self, t: int, dt_h: float) -> None:
        """The metered demand m of hour t, what the markets and the grid must cover."""
        self.m_wh = self.demand_wh(t, dt_h)

    @property
    def uncovered_wh(self) -> int:
        """Demand of the hour not bought on any market yet."""
        return self.m_wh - self.local_wh - self.renewable_wh

    def local_request(self, market: str, t: int, *, book_has_offers: bool) -> Request | None:
        """Stage 2 on the local market: ask for the whole demand of hour t, unless there is none
        or the area's book holds no offer this hour (the request could not fill: save the gas)."""
        if self.m_wh <= 0 or not book_has_offers:
            return None
        return Request(market, self.unique_id, self.m_wh, self.rt, t, t + 1)

    def choose_plant(
        self, t: int, offers: Sequence[Offer], operator: NetworkOperator
    ) -> Offer | None:
        """Stage 2 on the renewable zone: the plant the operator ranks first (delivered cost at
        this user's bus) among the offers whose window, remaining energy and reputation fit the
        shortage of hour t; None if the user has no shortage or no offer fits."""
        self.shortage_wh = self.m_wh - self.local_wh
        if self.shortage_wh <= 0:
            return None
        eligible = [
            o
            for o in offers
            if o.window_start_t <= t
            and t + 1 <= o.window_end_t
            and o.e_wh >= self.shortage_wh
            and o.reputation >= self.rt
        ]
        if not eligible:
            return None
        ranking = operator.rank_reps(
            t,
            self.bus,
            [
                (i, o.bus, price_from_base_units_per_wh(o.price_base_units_per_wh))
                for i, o in enumerate(eligible)
            ],
        )
        return eligible[ranking[0]]

    def renewable_request(
        self, market: str, t: int, offers: Sequence[Offer], operator: NetworkOperator
    ) -> Request | None:
        """Stage 2 on the renewable zone: the shortage of hour t, for [t, t+1), to the plant
        `choose_plant` picks (None: no shortage or no plant fits)."""
        choice = self.choose_plant(t, offers, operator)
        if choice is None:
            return None
        return Request(market, self.unique_id, self.shortage_wh, self.rt, t, t + 1, choice.seller)

    def bought(self, kind: EnergyKind, e_wh: int) -> None:
        """A market filled e_wh of this user's request (scheduled, not yet metered)."""
        if kind == "local":
            self.local_wh += e_wh
        else:
            self.renewable_wh += e_wh

    def settled(self, kind: EnergyKind, paid_usd: float, delivered_wh: int) -> int:
        """After metering: the market's energy is what was delivered and the user paid
        `paid_usd` for it; returns the Wh not delivered (the grid makes them up)."""
        if kind == "local":
            short = self.local_wh - delivered_wh
            self.local_usd += paid_usd
            self.local_wh = delivered_wh
        else:
            short = self.renewable_wh - delivered_wh
            self.renewable_usd += paid_usd
            self.renewable_wh = delivered_wh
        return short

    def rate(self, fill: Fill, delivered_wh: int, tolerance: float) -> Rating:
        """The smart meter's score of one trade (`meter_score`)."""
        return Rating(
            fill, delivered_wh, meter_score(fill.e_wh, delivered_wh, tolerance, MAX_SCORE)
        )

    def buy_rest(self, grid: GridAgent, t: int, tariff_usd_per_mwh: float) -> None:
        """What no market covered this hour, from the grid at the tariff."""
        rest = self.uncovered_wh
        if rest < 0:
            raise ConservationError(
                f"hour {t}: user {self.unique_id} at bus {self.bus} bought {-rest} Wh more than "
                "its demand on the markets"
            )
        grid.sell(self, rest, tariff_usd_per_mwh)

    def buy_from_grid(self, e_wh: int, tariff_usd_per_mwh: float) -> None:
        """Supplier of last resort: energy at the time-of-use tariff (billed off-chain)."""
        self.grid_wh += e_wh
        self.grid_usd += e_wh * tariff_usd_per_mwh / 1e6

    def auction_bid(
        self,
        market: str,
        t: int,
        *,
        cap_usd_per_mwh: float,
        tariff_usd_per_mwh: float,
        fit_usd_per_mwh: float,
    ) -> tuple[Request, float] | None:
        """Stage 1 in a double auction (markets/double_auction.py): bid for the whole demand of
        hour t at no more than the grid would charge (the tariff, the user's alternative) and
        the DLMP cap of its bus; returns (the request, its limit in $/MWh). None without demand
        or when the limit is below the feed-in floor (the contract allows no such price)."""
        limit_usd_per_mwh = min(tariff_usd_per_mwh, cap_usd_per_mwh)
        if self.m_wh <= 0 or limit_usd_per_mwh < fit_usd_per_mwh:
            return None
        return Request(market, self.unique_id, self.m_wh, self.rt, t, t + 1), limit_usd_per_mwh
