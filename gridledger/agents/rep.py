"""REP: a renewable energy producer (utility PV plant) trading on RETB.

Each hour the plant posts (stable window, capacity m_d in Wh, price C_d, cumulative stable time
t_d). Its forecast follows the day's PV profile; the real output differs by a seeded relative
forecast error. The stable window of each clock day is that day's longest run of hours whose
forecast output is at least `rep_stable_fraction` of nameplate (so every day with sun has one; t_d
carries across days); outside it the plant does not post on RETB and exports all output to the
grid. Price (agents/pricing.py): C_d = FiT + f·(min(T_t, cap) − FiT) with f =
`rep_price_fraction` = 0.9: value-based pricing of a utility plant with few rivals in the zone,
just below the tariff T_t its buyers would otherwise pay (a discount of 10 % of T_t − FiT), and
within [feed-in tariff, DLMP cap of its bus] as the contract enforces. Energy sold beyond what it
really produces is delivered pro rata (TDNO meters it); the rest of its output is exported to the
grid at the feed-in tariff.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import mesa
import numpy as np

from gridledger.agents.pricing import split_gain_price

if TYPE_CHECKING:
    from gridledger.agents.grid import GridAgent
    from gridledger.markets.base import MarketHour


@dataclass(frozen=True)
class RepPost:
    """A REP's hourly RETB post: window [start, end) in market hours, capacity, price."""

    window_start: int
    window_end: int
    capacity_wh: int
    price_usd_per_mwh: float
    stable_hours: int


def stable_window(forecast_kw: np.ndarray, nameplate_kw: float, fraction: float) -> tuple[int, int]:
    """Longest run of hours with forecast >= fraction·nameplate, as [start, end); (0, 0) if none."""
    ok = np.asarray(forecast_kw) >= fraction * nameplate_kw
    best = (0, 0)
    start = None
    for t, flag in enumerate([*ok.tolist(), False]):
        if flag and start is None:
            start = t
        elif not flag and start is not None:
            if t - start > best[1] - best[0]:
                best = (start, t)
            start = None
    return best


def daily_stable_windows(
    forecast_kw: np.ndarray, nameplate_kw: float, fraction: float, day_start: np.ndarray
) -> np.ndarray:
    """Per market hour, the [start, end) stable window of its clock day (`day_start[t]`: first
    hour of t's day); (t0, t0) for a day without one."""
    out = np.zeros((len(forecast_kw), 2), dtype=int)
    for a in np.unique(day_start):
        b = a + int(np.count_nonzero(day_start == a))
        w0, w1 = stable_window(np.asarray(forecast_kw)[a:b], nameplate_kw, fraction)
        out[a:b] = (a + w0, a + w1) if w1 > w0 else (a, a)
    return out


class RepAgent(mesa.Agent):
    """A PV plant selling on the RETB zone."""

    role = "rep"

    def __init__(
        self,
        model: mesa.Model,
        *,
        bus: int,
        index: int,
        nameplate_kw: float,
        forecast_kw: np.ndarray,
        actual_kw: np.ndarray,
        stable_fraction: float,
        day_start: np.ndarray | None = None,
    ) -> None:
        super().__init__(model)
        self.bus = bus
        self.index = index
        self.nameplate_kw = nameplate_kw
        self.forecast_kw = np.asarray(forecast_kw, dtype=float)
        self.actual_kw = np.asarray(actual_kw, dtype=float)
        starts = np.zeros(len(self.forecast_kw), dtype=int) if day_start is None else day_start
        self.windows = daily_stable_windows(self.forecast_kw, nameplate_kw, stable_fraction, starts)
        """[start, end) stable window of each hour's clock day."""
        self.window = next((tuple(int(x) for x in w) for w in self.windows if w[1] > w[0]), (0, 0))
        """The first day's stable window (the whole window of a one-day run)."""
        self.reputation: int | None = None
        self.stable_hours = 0
        self.cost_usd = 0.0
        self.post: RepPost | None = None
        self.sold_wh = 0
        self.delivered_wh = 0
        self.exported_kwh = 0.0
        self.incentive_usd = 0.0

    def in_window(self, t: int) -> bool:
        return bool(self.windows[t, 0] <= t < self.windows[t, 1])

    def decide_offer(self, hour: MarketHour) -> RepPost | None:
        """Stage 1 of `hour`: the post `make_post` makes at this bus's cap with the scenario's
        `rep_price_fraction` (the renewable market posts `self.post`)."""
        return self.make_post(
            hour.t,
            cap_usd_per_mwh=hour.caps_usd_per_mwh[self.bus],
            tariff_usd_per_mwh=hour.tariff_usd_per_mwh,
            fit_usd_per_mwh=hour.fit_usd_per_mwh,
            fraction=self.model.params.rep_price_fraction,  # type: ignore[attr-defined]
            dt_h=hour.dt_h,
        )

    def make_post(
        self,
        t: int,
        *,
        cap_usd_per_mwh: float,
        tariff_usd_per_mwh: float,
        fit_usd_per_mwh: float,
        fraction: float,
        dt_h: float,
    ) -> RepPost | None:
        """Stage 1 on RETB: post for hour t, or None outside the stable window / below FiT."""
        self.sold_wh = self.delivered_wh = 0
        self.exported_kwh = 0.0
        capacity_wh = int(self.forecast_kw[t] * dt_h * 1000.0)
        price = split_gain_price(tariff_usd_per_mwh, cap_usd_per_mwh, fit_usd_per_mwh, fraction)
        if not self.in_window(t) or price is None or capacity_wh <= 0:
            self.post = None
            return None
        w0, w1 = (int(x) for x in self.windows[t])
        self.post = RepPost(w0, w1, capacity_wh, price, self.stable_hours)
        return self.post

    def produced_wh(self, t: int, dt_h: float) -> int:
        return int(self.actual_kw[t] * dt_h * 1000.0)

    def metered_wh(self, t: int, sold_wh: int, fault_fraction: float | None, dt_h: float) -> int:
        """The TDNO meters hour t: what the plant sold, capped by its real output (forecast
        error) and cut by a fault (`fault_fraction` of it delivered)."""
        self.sold_wh = sold_wh
        deliverable = min(sold_wh, self.produced_wh(t, dt_h))
        if fault_fraction is not None:
            deliverable = int(deliverable * fault_fraction)
        return deliverable

    def export_to(self, grid: GridAgent, fit_usd_per_mwh: float) -> None:
        """Output not delivered to buyers goes to the grid at the feed-in tariff."""
        grid.buy_export(self.exported_kwh, fit_usd_per_mwh)

    def settle_delivery(self, t: int, delivered_wh: int, dt_h: float) -> None:
        """After metering: the rest of the real output is exported; a fully delivered window
        hour adds to the cumulative stable time t_d."""
        self.delivered_wh = delivered_wh
        self.exported_kwh = max(0.0, self.actual_kw[t] * dt_h - delivered_wh / 1000.0)
        if self.in_window(t) and delivered_wh >= self.sold_wh:
            self.stable_hours += 1
