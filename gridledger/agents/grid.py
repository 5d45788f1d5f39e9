"""Grid: the supplier of last resort at the time-of-use tariff, and the buyer of exports.

Billing with the grid is off-chain (a retail contract): the grid agent sells users whatever the
markets did not cover (and any energy a producer failed to deliver) at the tariff of the hour, and
pays the feed-in tariff for energy producers export.
"""

from __future__ import annotations

import mesa


class GridAgent(mesa.Agent):
    """Retailer of last resort (tariff) and buyer of exported energy (feed-in tariff)."""

    role = "grid"

    def __init__(self, model: mesa.Model, *, bus: int) -> None:
        super().__init__(model)
        self.bus = bus
        self.sold_wh = 0
        self.revenue_usd = 0.0
        self.bought_kwh = 0.0
        self.cost_usd = 0.0  # feed-in payments
        self.reset_hour()

    def reset_hour(self) -> None:
        self.hour_sold_wh = 0
        self.hour_bought_kwh = 0.0

    def sell(self, user: mesa.Agent, e_wh: int, tariff_usd_per_mwh: float) -> float:
        """Sell e_wh to a user at the tariff; returns the bill in USD."""
        if e_wh < 0:
            raise ValueError(f"grid sale to agent {user.unique_id}: negative energy {e_wh} Wh")
        bill = e_wh * tariff_usd_per_mwh / 1e6
        user.buy_from_grid(e_wh, tariff_usd_per_mwh)  # type: ignore[attr-defined]
        self.sold_wh += e_wh
        self.hour_sold_wh += e_wh
        self.revenue_usd += bill
        return bill

    def buy_export(self, e_kwh: float, fit_usd_per_mwh: float) -> float:
        """Pay the feed-in tariff for exported energy; returns the payment in USD."""
        pay = e_kwh * fit_usd_per_mwh / 1000.0
        self.bought_kwh += e_kwh
        self.hour_bought_kwh += e_kwh
        self.cost_usd += pay
        return pay
