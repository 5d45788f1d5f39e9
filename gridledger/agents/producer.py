"""LocalProducer: a prosumer's rooftop PV and home battery, selling stored energy on LETB.

Behind the meter, the household's own load is served by its PV first (identical in the trading
scheme and in the baseline); the producer agent owns what is left: the PV surplus charges the
battery, surplus the battery cannot take is offered at once, and stored energy is offered by the
producer's strategy:

- "evening_night" (the paper scenario's default): stored energy serves the hours without PV
  surplus, from the evening until the producer's PV recharges it next morning. Each such hour t
  gets the share w_t / sum(w over the hours left until the recharge) of the energy it holds, with
  w_t = the operator's forecast of the feeder's metered demand at t x (DLMP cap of its bus at t −
  FiT): energy goes where buyers need it and where a kWh is worth most at its bus (on-peak
  evening hours weigh ~4x the night). Hours beyond the run repeat the run's last day (a rolling
  plan: tomorrow's night is planned like today's).
- "price_peak": the producer discharges in the `producer_peak_hours` highest-DLMP hours of each
  clock day, spreading the energy it holds evenly over the selected hours left in that day: the
  evening peak only (the night gets nothing).
- "greedy": the energy it holds spread evenly over the hours left in the run.

Battery at the start of the run (Scenario.battery_start): "cyclic" (the paper scenario) — each
battery enters hour 0 with the charge its own plan leaves at the end of the same day, the steady
state of repeated days (`LocalProducer.warm_up`, offers assumed sold: at night demand far exceeds
stored energy; a run shorter than a day starts from `battery_soc_initial`); "initial" —
`battery_soc_initial`. In a multi-day run the charge simply carries from one day to the next.

Offer price (agents/pricing.py): v_p = FiT + f·(min(T_t, cap) − FiT) with f =
`producer_price_fraction` (0.5: the gain from trade between the buyer's alternative, the tariff
T_t, and the seller's, the feed-in tariff, split equally), cap = the DLMP cap of its bus this hour,
so the price always lies within [feed-in tariff, DLMP cap] as the contracts demand. If cap < FiT
no offer is possible that hour.
Energy sold and delivered leaves the PV surplus first, then the battery; PV surplus not sold is
exported to the grid at the feed-in tariff (off-chain, paid by the grid agent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import mesa
import numpy as np

from gridledger.agents.pricing import split_gain_price
from gridledger.network.devices import Storage

if TYPE_CHECKING:
    from gridledger.agents.grid import GridAgent
    from gridledger.markets.base import MarketHour


@dataclass(frozen=True)
class Offer:
    """A local offer for one market hour (energy in Wh, price in $/MWh)."""

    e_wh: int
    price_usd_per_mwh: float
    from_pv_wh: int
    """Part of the offer that is PV surplus of this hour (the rest is battery energy)."""


def peak_hours(prices: np.ndarray, n: int) -> np.ndarray:
    """Boolean mask of the n highest-priced hours (ties broken by the earlier hour)."""
    order = np.lexsort((np.arange(len(prices)), -np.asarray(prices, dtype=float)))
    mask = np.zeros(len(prices), dtype=bool)
    mask[order[: min(n, len(prices))]] = True
    return mask


def day_starts(clock_hours: np.ndarray) -> np.ndarray:
    """Index of the first market hour of each hour's clock day (days start at clock hour 0)."""
    clock = np.asarray(clock_hours, dtype=int)
    starts = np.zeros(len(clock), dtype=int)
    for t in range(1, len(clock)):
        starts[t] = t if clock[t] == 0 else starts[t - 1]
    return starts


def daily_peak_hours(prices: np.ndarray, clock_hours: np.ndarray, n: int) -> np.ndarray:
    """Mask of the n highest-priced hours of each clock day of the run."""
    starts = day_starts(clock_hours)
    mask = np.zeros(len(prices), dtype=bool)
    for a in np.unique(starts):
        b = a + int(np.count_nonzero(starts == a))
        mask[a:b] = peak_hours(np.asarray(prices)[a:b], n)
    return mask


def extend_day(values: np.ndarray, extra: int = 24) -> np.ndarray:
    """`values` followed by `extra` hours repeating its last day (the whole run if shorter)."""
    v = np.asarray(values, dtype=float)
    period = min(24, len(v))
    tail = np.resize(v[len(v) - period :], extra)
    return np.concatenate([v, tail])


class LocalProducer(mesa.Agent):
    """Rooftop PV + battery of one prosumer household; sells on its area's LETB."""

    role = "producer"

    def __init__(
        self,
        model: mesa.Model,
        *,
        bus: int,
        area: int,
        index: int,
        pv_surplus_kw: np.ndarray,
        storage: Storage,
        capacity_kwh: float,
    ) -> None:
        super().__init__(model)
        self.bus = bus
        self.area = area
        self.index = index
        self.pv_surplus_kw = np.asarray(pv_surplus_kw, dtype=float)
        self.pv_surplus_ext_kw = extend_day(self.pv_surplus_kw)  # + one repeated day
        self.storage = storage
        self.capacity_kwh = capacity_kwh
        self.e_kwh = storage.e0_kwh
        self.reputation: int | None = None
        self.cost_usd = 0.0  # negative = revenue (tokens and feed-in)
        self.revenue_usd = 0.0
        self.sell_mask: np.ndarray | None = None
        """Hours in which the plan offers stored energy (the hours with a positive weight)."""
        self.strategy = "greedy"
        self.sell_weight = np.zeros(0)  # per run hour + one repeated day (extend_day)
        self.horizon_end = np.zeros(0, dtype=int)  # exclusive end of each hour's planning horizon
        # per-hour state
        self.charge_kwh = 0.0
        self.offer: Offer | None = None
        self.sold_wh = 0
        self.delivered_wh = 0
        self.exported_kwh = 0.0
        self.discharge_kwh = 0.0
        self.faulty = False
        self.cheat_fraction: float | None = None  # set for an adversary (day/attacks.py)

    @property
    def soc(self) -> float:
        return self.e_kwh / self.capacity_kwh

    def plan_day(
        self,
        caps_usd_per_mwh: np.ndarray,
        strategy: str,
        n_peak: int,
        *,
        clock_hours: np.ndarray,
        demand_kw: np.ndarray,
        fit_usd_per_mwh: float,
    ) -> None:
        """Weights of the hours in which stored energy is offered and each hour's horizon
        (strategy of the module doc). `demand_kw`: the operator's forecast of the feeder's
        metered demand per run hour."""
        n = len(caps_usd_per_mwh)
        self.strategy = strategy
        surplus = self.pv_surplus_ext_kw > 0
        if strategy == "evening_night":
            gain = np.maximum(np.asarray(caps_usd_per_mwh, dtype=float) - fit_usd_per_mwh, 0.0)
            weight = extend_day(np.asarray(demand_kw, dtype=float) * gain)
            weight[surplus] = 0.0
            # horizon: up to the next hour with PV surplus (the recharge), or the extension's end
            nxt = len(weight)
            ends = np.empty(len(weight), dtype=int)
            for t in range(len(weight) - 1, -1, -1):
                if surplus[t]:
                    nxt = t
                ends[t] = nxt if nxt > t else len(weight)
        elif strategy == "price_peak":
            starts = day_starts(clock_hours)
            day_end = np.array([s + int(np.count_nonzero(starts == s)) for s in starts])
            weight = extend_day(daily_peak_hours(caps_usd_per_mwh, clock_hours, n_peak))
            ends = np.concatenate([day_end, np.full(24, n + 24)])
        else:  # greedy: evenly over the hours left in the run
            weight = np.ones(n + 24)
            ends = np.concatenate([np.full(n, n), np.full(24, n + 24)])
        self.sell_weight = weight
        self.horizon_end = ends
        self.sell_mask = weight[:n] > 0

    def battery_offer_kwh(self, t: int, e_kwh: float, dt_h: float) -> float:
        """Stored energy the plan offers in hour t with e_kwh in the battery (after charging)."""
        s = self.storage
        usable_kwh = max(0.0, e_kwh - s.e_min_kwh) * s.eta_dis
        w = self.sell_weight
        if t >= len(w) or w[t] <= 0:
            return 0.0
        ahead = float(w[t : self.horizon_end[t]].sum())
        return min(usable_kwh * w[t] / ahead, s.p_dis_max_kw * dt_h)

    def charge_from(self, t: int, e_kwh: float, dt_h: float) -> float:
        """kWh the PV surplus of hour t puts into a battery holding e_kwh (before losses)."""
        s = self.storage
        surplus_kwh = float(self.pv_surplus_ext_kw[t]) * dt_h
        room_kwh = max(0.0, s.e_max_kwh - e_kwh)
        return min(surplus_kwh, s.p_ch_max_kw * dt_h, room_kwh / s.eta_ch)

    def warm_up(self, dt_h: float, *, tol_kwh: float = 1e-6) -> float:
        """Cyclic steady state: the charge this battery holds at the start of a day that is the
        same as the day before (its plan run over the run's first 24 hours, offers assumed sold,
        from the current charge until the charge at the day's end equals its start). Sets and
        returns the start charge (kWh)."""
        s = self.storage
        e = self.e_kwh
        for _ in range(50):
            e_day = e
            for t in range(24):
                e_day += self.charge_from(t, e_day, dt_h) * s.eta_ch
                e_day -= self.battery_offer_kwh(t, e_day, dt_h) / s.eta_dis
            e_day = min(max(e_day, s.e_min_kwh), s.e_max_kwh)
            if abs(e_day - e) < tol_kwh:
                break
            e = e_day
        self.e_kwh = e_day
        return e_day

    def charge(self, t: int, dt_h: float) -> float:
        """PV surplus of hour t charges the battery; returns surplus kWh left after charging."""
        surplus_kwh = float(self.pv_surplus_kw[t]) * dt_h
        charge_kwh = self.charge_from(t, self.e_kwh, dt_h)
        self.e_kwh += charge_kwh * self.storage.eta_ch
        self.charge_kwh = charge_kwh
        return surplus_kwh - charge_kwh

    def decide_offer(self, hour: MarketHour) -> Offer | None:
        """Stage 1 of `hour`: charge, then the offer `make_offer` makes at this bus's cap with
        the scenario's `producer_price_fraction` (the local market posts `self.offer`)."""
        return self.make_offer(
            hour.t,
            cap_usd_per_mwh=hour.caps_usd_per_mwh[self.bus],
            tariff_usd_per_mwh=hour.tariff_usd_per_mwh,
            fit_usd_per_mwh=hour.fit_usd_per_mwh,
            fraction=self.model.params.producer_price_fraction,  # type: ignore[attr-defined]
            dt_h=hour.dt_h,
        )

    def make_offer(
        self,
        t: int,
        *,
        cap_usd_per_mwh: float,
        tariff_usd_per_mwh: float,
        fit_usd_per_mwh: float,
        fraction: float,
        dt_h: float,
    ) -> Offer | None:
        """Stage 1: charge from PV, then decide (es_p, v_p) for hour t (None = no offer)."""
        self.sold_wh = self.delivered_wh = 0
        self.exported_kwh = self.discharge_kwh = 0.0
        self.faulty = False
        self.offer_wh = 0
        leftover_kwh = self.charge(t, dt_h)
        self.pv_left_kwh = leftover_kwh
        price = split_gain_price(tariff_usd_per_mwh, cap_usd_per_mwh, fit_usd_per_mwh, fraction)
        battery_kwh = self.battery_offer_kwh(t, self.e_kwh, dt_h)
        pv_wh = int(leftover_kwh * 1000.0)
        e_wh = pv_wh + int(battery_kwh * 1000.0)
        if price is None or e_wh <= 0:
            self.offer = None
        else:
            self.offer = Offer(e_wh=e_wh, price_usd_per_mwh=price, from_pv_wh=pv_wh)
        return self.offer

    def metered_wh(self, t: int, sold_wh: int, fault_fraction: float | None, dt_h: float) -> int:
        """The TDNO meters hour t: this producer sold `sold_wh`; returns what it can physically
        deliver: a fault cuts it; an adversary delivers only its `cheat_fraction` of what it
        sold, on purpose. Sellers of every market implement this, `settle_delivery` and
        `export_to` (agents/tdno.py)."""
        self.sold_wh = sold_wh
        deliverable = sold_wh
        if fault_fraction is not None:
            self.faulty = True
            deliverable = int(sold_wh * fault_fraction)
        if self.cheat_fraction is not None:
            deliverable = min(deliverable, int(sold_wh * self.cheat_fraction))
        return deliverable

    def export_to(self, grid: GridAgent, fit_usd_per_mwh: float) -> None:
        """PV surplus neither sold nor stored goes to the grid at the feed-in tariff."""
        self.revenue_hour_usd = grid.buy_export(self.exported_kwh, fit_usd_per_mwh)

    def settle_delivery(self, t: int, delivered_wh: int, dt_h: float) -> None:
        """After metering hour t: battery discharges what was delivered beyond the PV surplus;
        the PV surplus not sold (or not delivered) is exported to the grid at the feed-in tariff."""
        self.delivered_wh = delivered_wh
        pv_used_kwh = min(self.pv_left_kwh, delivered_wh / 1000.0)
        from_batt_kwh = delivered_wh / 1000.0 - pv_used_kwh
        s = self.storage
        self.e_kwh -= from_batt_kwh / s.eta_dis
        if self.e_kwh < s.e_min_kwh - 1e-9:
            raise ValueError(
                f"producer {self.unique_id} at bus {self.bus}: battery below e_min "
                f"({self.e_kwh:.6f} < {s.e_min_kwh:.6f} kWh) after delivering {delivered_wh} Wh"
            )
        self.discharge_kwh = from_batt_kwh
        self.exported_kwh = self.pv_left_kwh - pv_used_kwh

    def battery_power_kw(self, dt_h: float) -> float:
        """Net battery power this hour: discharge positive, charge negative."""
        return (self.discharge_kwh - self.charge_kwh) / dt_h
