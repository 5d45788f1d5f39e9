"""Sellers' pricing rule: split the gain from trade between the buyer's and the seller's
alternatives, within the bounds the contracts enforce.

A buyer's alternative to a local or renewable purchase is the grid at the time-of-use tariff T_t;
a seller's alternative is exporting to the grid at the feed-in tariff FiT. Any price in
[FiT, T_t] leaves both better off; the rule gives the seller the share f of that gain:

    v = FiT + f · (min(T_t, cap_b) − FiT)

where cap_b is the DLMP cap of the seller's bus in hour t (the contracts refuse a price above the
cap and below the feed-in floor, so v always lies in [FiT, cap_b]; with cap_b < FiT no sale is
possible that hour). The buyer's saving per MWh is (1 − f)(T_t − FiT), i.e. a relative discount
(1 − f)(1 − FiT/T_t) on the tariff: it grows with the tariff, so the same rule gives buyers their
largest relative saving in the on-peak hours, when stored energy displaces on-peak grid energy.

Shares (scenario fields): local producers f = `producer_price_fraction` = 0.5 (the symmetric
Nash bargaining split; many small sellers compete in each area's price-ordered book); REPs
f = `rep_price_fraction` = 0.9 (value-based pricing of a utility plant with few rivals in the
single RETB zone: it prices just below the buyers' alternative, a discount of 10 % of T_t − FiT).
"""

from __future__ import annotations


def split_gain_price(
    tariff_usd_per_mwh: float, cap_usd_per_mwh: float, fit_usd_per_mwh: float, fraction: float
) -> float | None:
    """v = FiT + fraction·(min(tariff, cap) − FiT) in $/MWh; None when cap < FiT (no sale)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"price fraction must be in [0, 1], got {fraction}")
    if cap_usd_per_mwh < fit_usd_per_mwh:
        return None
    ceiling = min(tariff_usd_per_mwh, cap_usd_per_mwh)
    return fit_usd_per_mwh + fraction * max(ceiling - fit_usd_per_mwh, 0.0)
