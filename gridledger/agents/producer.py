"""LocalProducer: a prosumer's rooftop PV and home battery, selling stored energy on LETB.

Behind the meter, the household's own load is served by its PV first (identical in the trading
scheme and in the baseline); the producer agent owns what is left: the PV surplus charges the
battery, surplus the battery cannot take is offered at once, and stored energy is offered by the
producer's strategy:

- "price_peak" (default): the producer reads the day-ahead DLMP caps of its bus and discharges in
  the `producer_peak_hours` highest-priced hours of the day, spreading the energy it holds evenly
  over the selected hours still ahead. With DLMPs referenced to the retail tariff (the default,
  see day/pricing.py) these are the on-peak hours of highest load: the evening peak, where the
  tariff it displaces is highest and so is the buyers' saving.
- "greedy": offer everything it holds every hour.

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

import mesa
import numpy as np

from gridledger.agents.pricing import split_gain_price
from gridledger.network.devices import Storage


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
        self.storage = storage
        self.capacity_kwh = capacity_kwh
        self.e_kwh = storage.e0_kwh
        self.reputation: int | None = None
        self.cost_usd = 0.0  # negative = revenue (tokens and feed-in)
        self.revenue_usd = 0.0
        self.sell_mask: np.ndarray | None = None
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

    def plan_day(self, caps_usd_per_mwh: np.ndarray, strategy: str, n_peak: int) -> None:
        """Choose the hours in which stored energy is offered (strategy of the module doc)."""
        if strategy == "greedy":
            self.sell_mask = np.ones(len(caps_usd_per_mwh), dtype=bool)
        else:
            self.sell_mask = peak_hours(caps_usd_per_mwh, n_peak)

    def charge(self, t: int, dt_h: float) -> float:
        """PV surplus of hour t charges the battery; returns surplus kWh left after charging."""
        surplus_kwh = float(self.pv_surplus_kw[t]) * dt_h
        s = self.storage
        room_kwh = max(0.0, s.e_max_kwh - self.e_kwh)
        charge_kwh = min(surplus_kwh, s.p_ch_max_kw * dt_h, room_kwh / s.eta_ch)
        self.e_kwh += charge_kwh * s.eta_ch
        self.charge_kwh = charge_kwh
        return surplus_kwh - charge_kwh

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
        battery_kwh = 0.0
        if self.sell_mask is not None and self.sell_mask[t]:
            ahead = int(np.count_nonzero(self.sell_mask[t:]))
            s = self.storage
            usable_kwh = max(0.0, self.e_kwh - s.e_min_kwh) * s.eta_dis
            battery_kwh = min(usable_kwh / max(ahead, 1), s.p_dis_max_kw * dt_h)
        pv_wh = int(leftover_kwh * 1000.0)
        e_wh = pv_wh + int(battery_kwh * 1000.0)
        if price is None or e_wh <= 0:
            self.offer = None
        else:
            self.offer = Offer(e_wh=e_wh, price_usd_per_mwh=price, from_pv_wh=pv_wh)
        return self.offer

    def deliverable_wh(self, fault_fraction: float | None) -> int:
        """Wh this producer can physically deliver against what it sold (a fault cuts it; an
        adversary delivers only its `cheat_fraction` of what it sold, on purpose)."""
        deliverable = self.sold_wh
        if fault_fraction is not None:
            self.faulty = True
            deliverable = int(self.sold_wh * fault_fraction)
        if self.cheat_fraction is not None:
            deliverable = min(deliverable, int(self.sold_wh * self.cheat_fraction))
        return deliverable

    def settle(self, delivered_wh: int, dt_h: float) -> None:
        """After metering: battery discharges what was delivered beyond the PV surplus; the PV
        surplus not sold (or not delivered) is exported to the grid at the feed-in tariff."""
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
