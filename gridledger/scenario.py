"""Scenario: every parameter of one simulated market day, validated; default = the paper's day.

A `Scenario` is a frozen dataclass. `Scenario()` is the seed paper's default day on the SCE 56-bus
feeder (DESIGN.md "Default scenario"); `Scenario.from_toml(path)` loads a TOML file whose keys are
field names (unknown keys are refused by name); `Scenario.replace(**kw)` returns a validated copy.
Every invalid value raises `ScenarioError` naming the field, the value and the reason (the range
checks live in gridledger/scenario_checks.py).

Hourly tables (tariff, wholesale price) hold 24 values indexed by clock hour; a run longer than a
day wraps around them. Reputation and reliability thresholds use the on-chain integer unit
(0..REPUTATION_MAX, 1000 = 100 %).
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridledger.scenario_checks import (
    BATTERY_STARTS,
    DLMP_REFERENCES,
    GERMAN_HOLIDAYS_2016,
    HOURS_IN_PROFILE_YEAR,
    LOAD_PROFILES,
    OPF_MODES,
    PRODUCER_STRATEGIES,
    PROFILE_YEAR,
    REPUTATION_MAX,
    ScenarioError,
    start_hour_of_year,
    validate,
)


@dataclass(frozen=True)
class RepPlant:
    """A renewable energy producer (utility PV plant) at a feeder bus."""

    bus: int
    p_kw: float


@dataclass(frozen=True)
class Scenario:
    """Every parameter of a simulated market day (units in the names). Default: the paper's day."""

    # --- time and randomness
    feeder: str = "sce56"
    """Feeder for `load_feeder`: "sce56", "sce47", a folder path, "simbench:<code>" or a
    pandapower net .json file (docs/real-grids.md; agents from its loads, day/world_grid.py)."""
    hours: int = 24
    """Number of market hours simulated (model steps)."""
    start_hour: int = 0
    """Clock hour of market hour t = 0."""
    dt_h: float = 1.0
    """Length of one market hour in hours."""
    seed: int = 42
    """One seed drives every generator: profiles, faults, agent keys."""
    start: str | None = None
    """Measured time (day/measured.py): ISO date in PROFILE_YEAR of market hour 0's day (at clock
    hour `start_hour`); profiles, weekdays and tariff days follow the calendar. None = the
    synthetic day(s). A real grid (`feeder` = "simbench:<code>" or a .json net) needs it."""
    load_profiles: str = "synthetic"
    """Households' load on a bundled feeder: "synthetic" (two-peak shape) or "simbench" (SimBench
    H0 profiles scaled to each bus's peak; needs `start`). Real grids always use their own."""

    # --- physical network
    include_feeder_pv: bool = False
    """Keep the feeder's original 5 MW PV at bus 45 (the paper leaves it out)."""
    rep_plants: tuple[RepPlant, ...] = (RepPlant(53, 1000.0), RepPlant(19, 800.0))
    """Renewable energy producers (PV plants) trading on RETB."""
    v_min_pu: float = 0.9
    v_max_pu: float = 1.1
    opf_mode: str = "day_ahead"
    """day_ahead: one multi-period OPF before hour 0 prices the day; hourly: re-solve each hour."""
    dlmp_reference: str = "tariff"
    """Energy price at the substation in the operator's OPF. "tariff": the ToU retail tariff, what
    grid energy costs the feeder's users, so a bus's DLMP (= the cap of local prices there) is the
    tariff adjusted for marginal losses and voltage limits: no seller may charge more than grid
    supply delivered to that bus. "wholesale": the wholesale price (caps near wholesale bind every
    offer)."""

    letb_areas: int = 3
    """Number of LETB areas, cut along the feeder's main laterals (agents/operator.py)."""
    letb_area_roots: tuple[int, ...] = ()
    """Explicit area root buses (each area = that bus's subtree); empty = derive `letb_areas`."""
    letb_max_fills_per_request: int = 3
    """Fills one LETB request may make at most (LETB deployment parameter, 1..LETB_MAX_FILLS);
    the rest of the demand goes to RETB and the grid. Settlement costs ~9k gas per fill, so 3
    keeps LETB.settle under 75k gas (half the paper's figure for non-matching operations)."""
    market_mechanism: str = "paper"
    """The markets of the day (gridledger/markets/__init__.py MECHANISMS): "paper" = the
    reference paper's LETB book per area, then RETB for the shortages; "double_auction" = a
    uniform-price double auction per area (contracts/DoubleAuction.vy; bids capped by the DLMP
    of the buyer's bus, asks floored by the feed-in tariff), then RETB. The fill cap above
    applies to its bids too."""

    # --- households, prosumers, devices
    households_per_bus: int = 1
    """1 = one user agent per load bus; n > 1 splits each bus's load into n households."""
    prosumer_share: float = 0.5
    """Share of load buses (households) with rooftop PV and a home battery (local producers)."""
    rooftop_pv_kw_per_peak_kw: float = 1.4
    """Rooftop PV nameplate per kW of the household's peak load."""
    battery_kwh_per_pv_kw: float = 3.0
    """Home battery capacity per kW of rooftop PV."""
    battery_c_rate: float = 0.5
    """Battery power limit per kWh of capacity (1/h)."""
    battery_eta_charge: float = 0.95
    battery_eta_discharge: float = 0.95
    battery_soc_min: float = 0.1
    battery_soc_max: float = 0.95
    battery_soc_initial: float = 0.2
    """State of charge at the start of the run with battery_start = "initial" (and the point a
    "cyclic" warm-up starts from)."""
    battery_start: str = "cyclic"
    """Charge at the start of the run (agents/producer.py): "cyclic" = what the producer's own
    plan leaves at the end of the same day (steady state of repeated days; runs shorter than
    a day start from battery_soc_initial), "initial" = battery_soc_initial."""

    # --- load and PV profiles (network/profiles.py shapes, parameters from here)
    load_base_fraction: float = 0.45
    """Load multiplier floor (night load relative to the shape's peak, before normalisation)."""
    load_peak_hours: tuple[float, ...] = (8.0, 20.0)
    """Clock hours of the daily load peaks (two-peak shape)."""
    load_peak_heights: tuple[float, ...] = (0.40, 0.55)
    load_peak_widths_h: tuple[float, ...] = (1.8, 2.2)
    load_variability: float = 0.04
    """Std of the seeded multiplicative noise on each household's hourly load."""
    zip_z: float = 0.2
    zip_i: float = 0.2
    zip_p: float = 0.6
    """ZIP load shares of P (constant impedance / current / power); they sum to 1."""
    ev_share: float = 0.0
    """Share of users owning an EV (controllable load with an energy need in a window)."""
    ev_energy_kwh: float = 12.0
    ev_p_max_kw: float = 7.2
    ev_window_start_h: int = 18
    ev_window_end_h: int = 24
    pv_sunrise_h: float = 6.0
    pv_sunset_h: float = 19.0
    pv_cloudiness: float = 0.15
    """PV output = clear-sky bell x seeded clearness factor in [1 - cloudiness, 1]."""

    # --- prices
    tariff_offpeak_usd_per_mwh: float = 130.0
    tariff_midpeak_usd_per_mwh: float = 160.0
    tariff_onpeak_usd_per_mwh: float = 400.0
    tariff_onpeak_periods: tuple[tuple[int, ...], ...] = ((17, 22),)
    tariff_midpeak_periods: tuple[tuple[int, ...], ...] = ((7, 17),)
    """Retail time-of-use tariff (grid = supplier of last resort); periods are [start, end)."""
    tariff_weekends_offpeak: bool = True
    """With `start`: weekends and `tariff_holidays` are off-peak all day, as in SCE's
    time-of-use schedules (on- and mid-peak apply on weekdays except holidays); false = the
    weekday periods every day."""
    tariff_holidays: tuple[str, ...] = GERMAN_HOLIDAYS_2016
    """Public holidays (ISO dates in PROFILE_YEAR) of the profiles' calendar: the SimBench data is
    German, its load treats these days like Sundays."""
    feed_in_tariff_usd_per_mwh: float = 40.0
    """Price the grid pays for exported energy; floor of every local offer."""
    wholesale_base_usd_per_mwh: float = 35.0
    wholesale_slope_usd_per_mwh: float = 45.0
    wholesale_noise_usd_per_mwh: float = 3.0
    """Substation energy price = base + slope x feeder load multiplier (+ seeded noise)."""
    producer_strategy: str = "evening_night"
    """Local producers' battery dispatch (agents/producer.py): "evening_night" (stored energy
    over the evening and the night until PV recharges it), "price_peak" (the
    `producer_peak_hours` highest-DLMP hours of each day) or "greedy"."""
    producer_price_fraction: float = 0.5
    """Local offer price v_p = FiT + f·(min(tariff, DLMP cap) − FiT) (agents/pricing.py): the
    seller's share f of the gain between the buyer's alternative (tariff) and its own (FiT)."""
    producer_peak_hours: int = 4
    """"price_peak": battery energy is spread over this many highest-DLMP hours ahead."""
    rep_price_fraction: float = 0.9
    """REP price C_d = FiT + f·(min(tariff, DLMP cap of its bus) − FiT) (value-based pricing)."""
    rep_stable_fraction: float = 0.3
    """A REP's stable window: hours whose forecast output ≥ this fraction of nameplate."""

    # --- trust, feedback, incentives
    reliability_threshold: int = 600
    """Users' minimum producer reputation rt (0..REPUTATION_MAX)."""
    reliability_threshold_spread: int = 100
    """Users' rt is drawn uniformly in rt ± spread (clipped to the scale)."""
    initial_reputation: int = 800
    """Reputation of a newly registered producer (0..REPUTATION_MAX)."""
    feedback_tolerance: float = 0.02
    """Smart meter: a trade delivered within this relative shortfall earns the top score."""
    incentive_log_base: int = 10
    """k of the RETB incentive I = C_REG·log_k(1 + x), C_REG = the trade's payment (contracts)."""
    incentive_scale_kwh: float = 1000.0
    """Reference plant-hour energy of the incentive's production-scale factor."""
    incentive_stable_ref_hours: int = 6
    """Reference cumulative stable time of the incentive's stable-time factor."""
    registration_bond_usd: float = 0.0
    """Tokens locked per market registration (Sybil mitigation; 0 = none)."""
    user_initial_usd: float = 1000.0
    """Tokens (1 token = 1 USD) granted to each user at set-up for payments."""

    # --- faults and forecast errors
    fault_rate: float = 0.0
    """Probability that a producer's delivery in an hour is faulty."""
    fault_delivery_fraction: float = 0.5
    """Share of the scheduled energy a faulty producer actually delivers."""
    forecast_error_std: float = 0.05
    """Std of the REPs' relative forecast error (actual vs posted capacity)."""

    # --- attacks (issue 7; gridledger/day/attacks.py measures each outcome)
    cheat_producers: int = 0
    """How many LETB producers under-deliver on purpose (the largest batteries; 0 = none)."""
    cheat_delivery_fraction: float = 0.3
    """Share of its sold energy a cheating producer delivers (0..1)."""
    sybil_identities: int = 0
    """Fresh identities the first cheating producer registers to escape its reputation."""

    # --- chains
    letb_chain_id: int = 31401
    retb_chain_id: int = 31402
    chain_block_gas_limit: int = 30_000_000
    """Consortium chain budget for the capacity estimate: gas per block ..."""
    chain_block_period_s: float = 5.0
    """... and seconds per block."""

    # --- derived helpers --------------------------------------------------------------------
    def __post_init__(self) -> None:
        # normalise plain values (ints for float fields, lists for tuples), then range-check
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            object.__setattr__(self, f.name, _coerce(f.name, _FIELD_TYPES[f.name], v))
        validate(self)

    def replace(self, **changes: Any) -> Scenario:
        """A validated copy with some fields changed (unknown names raise ScenarioError)."""
        return Scenario.from_dict({**self.to_dict(), **changes})

    def clock_hour(self, t: int) -> int:
        """Clock hour (0..23) of market hour t."""
        return (self.start_hour + round(t * self.dt_h)) % 24

    # --- (de)serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain values (RepPlant as dicts, tuples as lists) — TOML/JSON friendly."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "rep_plants":
                v = [{"bus": p.bus, "p_kw": p.p_kw} for p in v]
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        """Build from plain values; unknown keys and wrongly typed values raise ScenarioError."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise ScenarioError(key, value, "unknown scenario key")
            kwargs[key] = _coerce(key, _FIELD_TYPES[key], value)
        return cls(**kwargs)

    @classmethod
    def from_toml(cls, path: str | Path) -> Scenario:
        """Load a TOML scenario file (keys = field names; missing keys keep their defaults)."""
        path = Path(path)
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise ScenarioError("path", str(path), "scenario file not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError("path", str(path), f"not valid TOML: {exc}") from exc
        return cls.from_dict(data)

    def to_toml(self) -> str:
        """TOML text that `from_toml` reads back to an equal Scenario."""
        lines: list[str] = []
        plants: list[dict[str, Any]] = []
        for key, value in self.to_dict().items():
            if key == "rep_plants":
                plants = value
                continue
            if value is None:  # TOML has no null: a missing key reads back as the default None
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        for p in plants:
            lines += ["", "[[rep_plants]]", f"bus = {p['bus']}", f"p_kw = {_toml_value(p['p_kw'])}"]
        if not plants:
            # an empty array of tables cannot follow tables; write it inline before them
            lines.insert(0, "rep_plants = []")
        return "\n".join(lines) + "\n"


# --- helpers ------------------------------------------------------------------------------------

_FIELD_TYPES: dict[str, Any] = typing.get_type_hints(Scenario)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """Check a plain value against the field's type hint; lists become tuples."""
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):  # `X | None`: None or an X
        inner = next(a for a in typing.get_args(hint) if a is not type(None))
        return None if value is None else _coerce(name, inner, value)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ScenarioError(name, value, "expected a list")
        item_type = typing.get_args(hint)[0]
        return tuple(_coerce(name, item_type, v) for v in value)
    if hint is RepPlant:
        if isinstance(value, RepPlant):
            return value
        if not isinstance(value, dict) or set(value) != {"bus", "p_kw"}:
            raise ScenarioError(name, value, "each REP plant needs exactly the keys bus and p_kw")
        return RepPlant(_coerce(name, int, value["bus"]), _coerce(name, float, value["p_kw"]))
    if hint is bool:
        if not isinstance(value, bool):
            raise ScenarioError(name, value, "expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScenarioError(name, value, "expected an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ScenarioError(name, value, "expected a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ScenarioError(name, value, "expected a string")
        return value
    raise TypeError(f"no coercion for field {name} of type {hint}")  # pragma: no cover


SCENARIO_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Scenario))
"""Every Scenario field name (EnergyMarketModel accepts them as keyword overrides)."""


__all__ = [
    "BATTERY_STARTS",
    "DLMP_REFERENCES",
    "GERMAN_HOLIDAYS_2016",
    "HOURS_IN_PROFILE_YEAR",
    "LOAD_PROFILES",
    "OPF_MODES",
    "PRODUCER_STRATEGIES",
    "PROFILE_YEAR",
    "REPUTATION_MAX",
    "SCENARIO_FIELDS",
    "RepPlant",
    "Scenario",
    "ScenarioError",
    "start_hour_of_year",
]
