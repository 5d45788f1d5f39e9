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

import mesa
import numpy as np


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
    """A household buyer; holds its key, signs its own requests, rates its trades."""

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

    def buy_from_grid(self, e_wh: int, tariff_usd_per_mwh: float) -> None:
        """Supplier of last resort: energy at the time-of-use tariff (billed off-chain)."""
        self.grid_wh += e_wh
        self.grid_usd += e_wh * tariff_usd_per_mwh / 1e6
