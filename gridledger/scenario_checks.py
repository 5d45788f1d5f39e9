"""Range checks of every Scenario field (gridledger/scenario.py runs them on construction).

`validate(s)` raises `ScenarioError` naming the field, the value and the reason at the first
problem; the allowed values of the choice fields live here beside their checks.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gridledger.market.clearing import MAX_FILLS as LETB_MAX_FILLS

if TYPE_CHECKING:
    from gridledger.scenario import Scenario

PROFILE_YEAR = 2016
"""Calendar year of the measured (SimBench) profiles: `Scenario.start` lies in it."""
HOURS_IN_PROFILE_YEAR = 8784
GERMAN_HOLIDAYS_2016 = (
    "2016-01-01",
    "2016-03-25",
    "2016-03-28",
    "2016-05-01",
    "2016-05-05",
    "2016-05-16",
    "2016-10-03",
    "2016-12-25",
    "2016-12-26",
)
"""Nationwide public holidays of Germany in 2016 (the SimBench profiles' country and year)."""
LOAD_PROFILES = ("synthetic", "simbench")

REPUTATION_MAX = 1000
"""On-chain reputation scale: integer 0..REPUTATION_MAX (interfaces.md)."""

PRODUCER_STRATEGIES = ("evening_night", "price_peak", "greedy")
BATTERY_STARTS = ("cyclic", "initial")
OPF_MODES = ("hourly", "day_ahead")
DLMP_REFERENCES = ("tariff", "wholesale")


class ScenarioError(ValueError):
    """A scenario value is invalid; the message names the field, the value and the reason."""

    def __init__(self, field_name: str, value: Any, reason: str) -> None:
        self.field = field_name
        self.value = value
        self.reason = reason
        super().__init__(f"scenario field {field_name!r} = {value!r}: {reason}")


def _check(cond: bool, name: str, value: Any, reason: str) -> None:
    if not cond:
        raise ScenarioError(name, value, reason)


def _check_grid_spec(feeder: str) -> None:
    """A real-grid feeder ("simbench:<code>", a pandapower .json) is checked without loading."""
    from gridledger.network.grid_data import GridSourceError, check_grid_spec, is_grid_spec

    if is_grid_spec(feeder):
        try:
            check_grid_spec(feeder)
        except GridSourceError as exc:
            raise ScenarioError("feeder", feeder, str(exc)) from exc


def validate(s: Scenario) -> None:
    """Type and range checks for every field; raises ScenarioError on the first problem."""
    for f in dataclasses.fields(s):
        v = getattr(s, f.name)
        values = v if isinstance(v, tuple) else (v,)
        for x in values:
            if isinstance(x, float):
                _check(math.isfinite(x), f.name, v, "must be finite")

    _check(bool(s.feeder), "feeder", s.feeder, "must name a feeder or a folder")
    _check_grid_spec(s.feeder)
    _check(1 <= s.hours <= 24 * 366, "hours", s.hours, "must be between 1 and 8784")
    _check(0 <= s.start_hour < 24, "start_hour", s.start_hour, "must be a clock hour 0..23")
    _validate_calendar(s)
    _check(s.dt_h == 1.0, "dt_h", s.dt_h, "only hourly markets (1.0) are supported")
    _check(0 <= s.seed < 2**63, "seed", s.seed, "must be a non-negative 63-bit integer")
    buses = [p.bus for p in s.rep_plants]
    _check(len(set(buses)) == len(buses), "rep_plants", buses, "one REP plant per bus")
    for p in s.rep_plants:
        _check(p.bus >= 1, "rep_plants", p, "bus numbers start at 1")
        _check(p.p_kw > 0, "rep_plants", p, "p_kw must be positive")
    _check(
        0.5 <= s.v_min_pu < s.v_max_pu <= 1.5,
        "v_min_pu",
        (s.v_min_pu, s.v_max_pu),
        "need 0.5 <= v_min_pu < v_max_pu <= 1.5",
    )
    _check(1 <= s.letb_areas <= 64, "letb_areas", s.letb_areas, "must be between 1 and 64")
    _check(
        len(set(s.letb_area_roots)) == len(s.letb_area_roots),
        "letb_area_roots",
        s.letb_area_roots,
        "root buses must be distinct",
    )
    _check(
        1 <= s.letb_max_fills_per_request <= LETB_MAX_FILLS,
        "letb_max_fills_per_request",
        s.letb_max_fills_per_request,
        f"must be between 1 and {LETB_MAX_FILLS} (the LETB contract's MAX_FILLS)",
    )
    _check(s.opf_mode in OPF_MODES, "opf_mode", s.opf_mode, f"must be one of {OPF_MODES}")
    _check(
        s.dlmp_reference in DLMP_REFERENCES,
        "dlmp_reference",
        s.dlmp_reference,
        f"must be one of {DLMP_REFERENCES}",
    )
    _check(
        1 <= s.households_per_bus <= 1000,
        "households_per_bus",
        s.households_per_bus,
        "must be between 1 and 1000",
    )
    for name in ("prosumer_share", "fault_rate", "ev_share"):
        v = getattr(s, name)
        _check(0.0 <= v <= 1.0, name, v, "must be a share in [0, 1]")
    for name in (
        "rooftop_pv_kw_per_peak_kw",
        "battery_kwh_per_pv_kw",
        "battery_c_rate",
        "ev_energy_kwh",
        "user_initial_usd",
        "registration_bond_usd",
        "incentive_scale_kwh",
    ):
        v = getattr(s, name)
        _check(v >= 0.0, name, v, "must be non-negative")
    for name in ("battery_eta_charge", "battery_eta_discharge"):
        v = getattr(s, name)
        _check(0.5 <= v <= 1.0, name, v, "efficiency must be in [0.5, 1]")
    _check(
        0.0 <= s.battery_soc_min < s.battery_soc_max <= 1.0,
        "battery_soc_min",
        (s.battery_soc_min, s.battery_soc_max),
        "need 0 <= soc_min < soc_max <= 1",
    )
    _check(
        s.battery_soc_min <= s.battery_soc_initial <= s.battery_soc_max,
        "battery_soc_initial",
        s.battery_soc_initial,
        "must lie within [soc_min, soc_max]",
    )
    n_peaks = len(s.load_peak_hours)
    _check(1 <= n_peaks <= 4, "load_peak_hours", s.load_peak_hours, "give 1 to 4 peak clock hours")
    for h in s.load_peak_hours:
        _check(0 <= h < 24, "load_peak_hours", s.load_peak_hours, "clock hours are 0..23")
    for name in ("load_peak_heights", "load_peak_widths_h"):
        v = getattr(s, name)
        _check(len(v) == n_peaks, name, v, f"needs one value per load peak ({n_peaks})")
        _check(all(x > 0 for x in v), name, v, "values must be positive")
    for name in ("load_base_fraction", "pv_cloudiness"):
        v = getattr(s, name)
        _check(0.0 <= v <= 1.0, name, v, "must be in [0, 1]")
    for name in ("load_variability", "forecast_error_std"):
        v = getattr(s, name)
        _check(0.0 <= v <= 0.5, name, v, "std must be in [0, 0.5]")
    zsum = s.zip_z + s.zip_i + s.zip_p
    for name in ("zip_z", "zip_i", "zip_p"):
        _check(getattr(s, name) >= 0.0, name, getattr(s, name), "ZIP shares are non-negative")
    _check(
        abs(zsum - 1.0) <= 1e-9,
        "zip_p",
        (s.zip_z, s.zip_i, s.zip_p),
        f"ZIP shares must sum to 1 (sum is {zsum})",
    )
    _check(
        0 <= s.ev_window_start_h < s.ev_window_end_h <= 24,
        "ev_window_start_h",
        (s.ev_window_start_h, s.ev_window_end_h),
        "need 0 <= start < end <= 24",
    )
    _check(s.ev_p_max_kw > 0, "ev_p_max_kw", s.ev_p_max_kw, "must be positive")
    _check(
        s.ev_energy_kwh <= s.ev_p_max_kw * (s.ev_window_end_h - s.ev_window_start_h),
        "ev_energy_kwh",
        s.ev_energy_kwh,
        "cannot be charged within the EV window",
    )
    _check(
        0.0 <= s.pv_sunrise_h < s.pv_sunset_h <= 24.0,
        "pv_sunrise_h",
        (s.pv_sunrise_h, s.pv_sunset_h),
        "need 0 <= sunrise < sunset <= 24",
    )
    tariffs = (
        s.tariff_offpeak_usd_per_mwh,
        s.tariff_midpeak_usd_per_mwh,
        s.tariff_onpeak_usd_per_mwh,
    )
    for name in (
        "tariff_offpeak_usd_per_mwh",
        "tariff_midpeak_usd_per_mwh",
        "tariff_onpeak_usd_per_mwh",
        "wholesale_base_usd_per_mwh",
        "wholesale_slope_usd_per_mwh",
        "wholesale_noise_usd_per_mwh",
    ):
        v = getattr(s, name)
        _check(v >= 0.0, name, v, "prices must be non-negative")
    for name in ("tariff_onpeak_periods", "tariff_midpeak_periods"):
        for period in getattr(s, name):
            _check(
                len(period) == 2 and 0 <= period[0] < period[1] <= 24,
                name,
                period,
                "each period is [start, end) with 0 <= start < end <= 24",
            )
    _check(
        s.feed_in_tariff_usd_per_mwh >= 0.0,
        "feed_in_tariff_usd_per_mwh",
        s.feed_in_tariff_usd_per_mwh,
        "must be non-negative",
    )
    _check(
        s.feed_in_tariff_usd_per_mwh < min(tariffs),
        "feed_in_tariff_usd_per_mwh",
        s.feed_in_tariff_usd_per_mwh,
        "must be below the lowest retail tariff",
    )
    _check(
        s.battery_start in BATTERY_STARTS,
        "battery_start",
        s.battery_start,
        f"must be one of {BATTERY_STARTS}",
    )
    _check(
        s.producer_strategy in PRODUCER_STRATEGIES,
        "producer_strategy",
        s.producer_strategy,
        f"must be one of {PRODUCER_STRATEGIES}",
    )
    for name in (
        "producer_price_fraction",
        "rep_price_fraction",
        "rep_stable_fraction",
        "feedback_tolerance",
        "fault_delivery_fraction",
        "cheat_delivery_fraction",
    ):
        v = getattr(s, name)
        _check(0.0 <= v <= 1.0, name, v, "must be a fraction in [0, 1]")
    _check(
        1 <= s.producer_peak_hours <= 24,
        "producer_peak_hours",
        s.producer_peak_hours,
        "must be between 1 and 24",
    )
    _check(s.cheat_producers >= 0, "cheat_producers", s.cheat_producers, "must be >= 0")
    _check(s.sybil_identities >= 0, "sybil_identities", s.sybil_identities, "must be >= 0")
    for name in ("reliability_threshold", "initial_reputation", "reliability_threshold_spread"):
        v = getattr(s, name)
        _check(0 <= v <= REPUTATION_MAX, name, v, f"must be in 0..{REPUTATION_MAX}")
    _check(
        s.incentive_stable_ref_hours >= 1,
        "incentive_stable_ref_hours",
        s.incentive_stable_ref_hours,
        "must be >= 1",
    )
    _check(
        s.incentive_log_base > 1,
        "incentive_log_base",
        s.incentive_log_base,
        "log base k must be an integer > 1",
    )
    _check(
        s.letb_chain_id != s.retb_chain_id,
        "retb_chain_id",
        s.retb_chain_id,
        "the two chains need distinct chain ids",
    )
    for name in ("letb_chain_id", "retb_chain_id"):
        v = getattr(s, name)
        _check(1 <= v < 2**32, name, v, "chain id must be in 1..2^32-1")
    _check(
        s.chain_block_gas_limit > 0,
        "chain_block_gas_limit",
        s.chain_block_gas_limit,
        "must be positive",
    )
    _check(
        s.chain_block_period_s > 0,
        "chain_block_period_s",
        s.chain_block_period_s,
        "must be positive",
    )
    from gridledger.markets import MECHANISMS  # the registry (imports the market modules)

    _check(
        s.market_mechanism in MECHANISMS,
        "market_mechanism",
        s.market_mechanism,
        f"must be one of {sorted(MECHANISMS)}",
    )
    _check(
        s.sybil_identities == 0 or s.market_mechanism == "paper",
        "sybil_identities",
        s.sybil_identities,
        "the sybil attack registers on LETB: needs market_mechanism = 'paper'",
    )


def _profile_date(name: str, value: Any, text: str) -> date:
    """`text` as an ISO date inside PROFILE_YEAR, or ScenarioError naming the field."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ScenarioError(name, value, "not an ISO date (YYYY-MM-DD)") from None
    _check(day.year == PROFILE_YEAR, name, value, f"must lie in the profiles' year {PROFILE_YEAR}")
    return day


def start_hour_of_year(s: Scenario) -> int:
    """Hour of PROFILE_YEAR (0..8783) of market hour 0 (needs `start`)."""
    assert s.start is not None
    day = _profile_date("start", s.start, s.start)
    return (day - date(PROFILE_YEAR, 1, 1)).days * 24 + s.start_hour


def _validate_calendar(s: Scenario) -> None:
    """`start`, `load_profiles` and `tariff_holidays`: dates in the profiles' year, the run
    inside it; measured profiles only with a calendar."""
    for h in s.tariff_holidays:
        _profile_date("tariff_holidays", s.tariff_holidays, h)
    _check(
        s.load_profiles in LOAD_PROFILES,
        "load_profiles",
        s.load_profiles,
        f"must be one of {LOAD_PROFILES}",
    )
    if s.start is None:
        from gridledger.network.grid_data import is_grid_spec

        _check(
            s.load_profiles == "synthetic",
            "load_profiles",
            s.load_profiles,
            "measured profiles need a calendar: set start (a date in 2016)",
        )
        _check(
            not is_grid_spec(s.feeder),
            "start",
            s.start,
            f"a real grid ({s.feeder}) runs on its measured profiles: set start (a date in "
            f"{PROFILE_YEAR})",
        )
        return
    h0 = start_hour_of_year(s)
    last = datetime(PROFILE_YEAR, 1, 1) + timedelta(hours=h0 + s.hours - 1)
    _check(
        h0 + s.hours <= HOURS_IN_PROFILE_YEAR,
        "start",
        s.start,
        f"start + hours ({s.hours}) runs past the end of the profiles' year {PROFILE_YEAR} "
        f"(its last hour would be {last:%Y-%m-%d %H:00}; "
        f"{HOURS_IN_PROFILE_YEAR - h0} hours are left)",
    )
