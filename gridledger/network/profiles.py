"""Profiles of the default day, pure functions of explicit parameters and one numpy Generator.

Hour t (0..hours-1) stands for the interval [t, t+1) h. Shapes are per-unit multipliers
(load: 1.0 = peak load of the feeder table; PV: 1.0 = nameplate); prices in $/MWh.
The Scenario passes its own values; the defaults here are the paper's day (README "The default
day and its choices"): two load peaks (08:00 and 20:00), a clear-sky PV bell with seeded cloud
variability, a time-of-use retail tariff, a flat feed-in tariff and a wholesale price following
the load.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DayProfiles",
    "default_day",
    "feed_in_tariff",
    "load_shape",
    "pv_shape",
    "tou_tariff",
    "wholesale_price",
]


def _hours(hours: int) -> np.ndarray:
    if hours <= 0:
        raise ValueError(f"hours must be > 0, got {hours}")
    return np.arange(hours, dtype=float)


def _circ_gauss(t: np.ndarray, centre_h: float, width_h: float) -> np.ndarray:
    """Gaussian bump on a 24 h circle (so the evening peak wraps past midnight)."""
    d = (t - centre_h + 12.0) % 24.0 - 12.0
    return np.exp(-0.5 * (d / width_h) ** 2)


def load_shape(
    hours: int = 24,
    *,
    rng: np.random.Generator | None = None,
    base: float = 0.45,
    peak_hours: Sequence[float] = (8.0, 20.0),
    peak_heights: Sequence[float] = (0.40, 0.55),
    peak_widths_h: Sequence[float] = (1.8, 2.2),
    noise: float = 0.02,
) -> np.ndarray:
    """Two-peak daily load multiplier (max 1.0 at the evening peak when noise = 0).

    multiplier(t) = base + sum_k height_k · bump(t; peak_k, width_k), times (1 + noise·N(0,1)),
    then divided by its noise-free maximum so that 1.0 = the tabulated peak load.
    """
    if not (len(peak_hours) == len(peak_heights) == len(peak_widths_h)):
        raise ValueError("peak_hours, peak_heights and peak_widths_h must have equal length")
    t = _hours(hours)
    shape = np.full_like(t, base)
    for c, h, w in zip(peak_hours, peak_heights, peak_widths_h, strict=True):
        shape += h * _circ_gauss(t, c, w)
    grid = np.arange(0, 24, 0.25)
    ref = base + sum(
        h * _circ_gauss(grid, c, w)
        for c, h, w in zip(peak_hours, peak_heights, peak_widths_h, strict=True)
    )
    shape = shape / ref.max()
    if rng is not None and noise > 0:
        shape = shape * (1.0 + noise * rng.standard_normal(hours))
    return np.clip(shape, 0.0, None)


def pv_shape(
    hours: int = 24,
    *,
    rng: np.random.Generator | None = None,
    sunrise_h: float = 6.0,
    sunset_h: float = 18.0,
    cloudiness: float = 0.15,
) -> np.ndarray:
    """Clear-sky PV multiplier (sin² bell between sunrise and sunset, at hour mid-points)
    times a seeded cloud factor in [1 - cloudiness, 1] (Beta(5, 2)-distributed clearness)."""
    if not 0 <= cloudiness <= 1:
        raise ValueError(f"cloudiness must be in [0, 1], got {cloudiness}")
    if not sunrise_h < sunset_h:
        raise ValueError("sunrise_h must be before sunset_h")
    t = (_hours(hours) + 0.5) % 24.0
    x = (t - sunrise_h) / (sunset_h - sunrise_h)
    clear = np.where((x > 0) & (x < 1), np.sin(np.pi * np.clip(x, 0, 1)) ** 2, 0.0)
    if rng is None or cloudiness == 0:
        return clear
    clearness = rng.beta(5.0, 2.0, size=hours)
    return clear * (1.0 - cloudiness * (1.0 - clearness))


def tou_tariff(
    hours: int = 24,
    *,
    offpeak_usd_per_mwh: float = 120.0,
    midpeak_usd_per_mwh: float = 180.0,
    onpeak_usd_per_mwh: float = 280.0,
    onpeak: Sequence[tuple[int, int]] = ((7, 10), (17, 22)),
    midpeak: Sequence[tuple[int, int]] = ((10, 17),),
) -> np.ndarray:
    """Time-of-use retail tariff per hour; periods are [start, end) hour-of-day ranges."""
    hod = _hours(hours).astype(int) % 24
    price = np.full(hours, offpeak_usd_per_mwh, dtype=float)
    for a, b in midpeak:
        price[(hod >= a) & (hod < b)] = midpeak_usd_per_mwh
    for a, b in onpeak:
        price[(hod >= a) & (hod < b)] = onpeak_usd_per_mwh
    return price


def feed_in_tariff(hours: int = 24, *, value_usd_per_mwh: float = 60.0) -> np.ndarray:
    """Flat feed-in tariff paid for exports to the grid."""
    return np.full(hours, float(value_usd_per_mwh))


def wholesale_price(
    hours: int = 24,
    *,
    rng: np.random.Generator | None = None,
    load: np.ndarray | None = None,
    base_usd_per_mwh: float = 35.0,
    slope_usd_per_mwh: float = 45.0,
    noise_usd_per_mwh: float = 3.0,
    floor_usd_per_mwh: float = 5.0,
) -> np.ndarray:
    """Substation energy price per hour: base + slope · load multiplier (+ seeded noise)."""
    shape = load_shape(hours) if load is None else np.asarray(load, dtype=float)
    if shape.shape != (hours,):
        raise ValueError(f"load must have shape ({hours},), got {shape.shape}")
    price = base_usd_per_mwh + slope_usd_per_mwh * shape
    if rng is not None and noise_usd_per_mwh > 0:
        price = price + noise_usd_per_mwh * rng.standard_normal(hours)
    return np.maximum(price, floor_usd_per_mwh)


@dataclass(frozen=True)
class DayProfiles:
    """All hourly profiles of one day (arrays of length `hours`)."""

    load: np.ndarray
    pv: np.ndarray
    retail_usd_per_mwh: np.ndarray
    feed_in_usd_per_mwh: np.ndarray
    wholesale_usd_per_mwh: np.ndarray


def default_day(seed: int = 0, hours: int = 24) -> DayProfiles:
    """The default day from one seed (independent child streams for each profile)."""
    load_rng, pv_rng, price_rng = (
        np.random.Generator(np.random.PCG64(s)) for s in np.random.SeedSequence(seed).spawn(3)
    )
    load = load_shape(hours, rng=load_rng)
    return DayProfiles(
        load=load,
        pv=pv_shape(hours, rng=pv_rng),
        retail_usd_per_mwh=tou_tariff(hours),
        feed_in_usd_per_mwh=feed_in_tariff(hours),
        wholesale_usd_per_mwh=wholesale_price(hours, rng=price_rng, load=load),
    )
