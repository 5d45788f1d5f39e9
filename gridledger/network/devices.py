"""Device models of the seed paper (Wang et al. 2023, after Liu et al. 2020, IEEE Access 8:177745).

Sign convention everywhere: power in kW / kvar, *injection* positive for generators, storage
discharge and PV; *consumption* positive for loads and EV charging. Energy in kWh, time step
`dt_h` hours. Every device is a frozen dataclass validated on construction; a bad value raises
`DeviceError` naming the device, the field and the value.

Equations (paper numbering):
- (1)-(2) regulated plant (`RegulatedPlant`): p_min <= p <= p_max, q_min <= q <= q_max,
  cost C(p) = a p² + b p + c with p in MW, cost in $/h.
- (3) PV (`PVPlant`): 0 <= p <= available(t) <= capacity; |q| <= q_max (0 = unity power factor).
- (4) EV (`EVCharger`): 0 <= p_t <= p_max inside the window [t_arrive, t_depart), p_t = 0
  outside, sum_t p_t dt = e_demand_kwh.
- (5)-(8) ZIP load (`ZIPLoad`): P(V) = P0 (z_p V² + i_p V + p_p), Q(V) = Q0 (z_q V² + i_q V + p_q),
  coefficients per component summing to 1. The AC power flow uses this exact form. The convex
  OPF works in v = V², so the Z term is exact (linear in v); the constant-current term uses the
  first-order expansion V = sqrt(v) ≈ (1 + v) / 2 around V = 1 (error (V-1)²/2, i.e. 1.25e-3
  relative at V = 0.95). `ZIPLoad.opf_coefficients()` returns the linear model used.
- (9)-(12) ESS (`Storage`): 0 <= p_ch <= p_ch_max, 0 <= p_dis <= p_dis_max,
  e_{t+1} = e_t + (eta_ch p_ch - p_dis / eta_dis) dt, e_min <= e_t <= e_max, e_T >= e_0 (by
  default), cost = cost_usd_per_mwh · (p_ch + p_dis) dt (throughput/degradation cost, which also
  discourages simultaneous charge and discharge).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

__all__ = [
    "DeviceError",
    "EVCharger",
    "PVPlant",
    "RegulatedPlant",
    "Storage",
    "ZIPLoad",
]


class DeviceError(ValueError):
    """A device parameter is invalid; the message names device, field and value."""


def _finite(obj: object) -> None:
    for f in fields(obj):  # type: ignore[arg-type]
        v = getattr(obj, f.name)
        if isinstance(v, float | int) and not isinstance(v, bool) and not math.isfinite(v):
            raise DeviceError(f"{type(obj).__name__}.{f.name} must be finite, got {v}")


def _require(ok: bool, obj: object, name: str, what: str) -> None:
    if not ok:
        raise DeviceError(
            f"{type(obj).__name__}.{name} = {getattr(obj, name)!r} is invalid: {what}"
            + (f" (device at bus {obj.bus})" if hasattr(obj, "bus") else "")
        )


@dataclass(frozen=True)
class RegulatedPlant:
    """Dispatchable plant (eq. 1-2): limits in kW/kvar, cost a·p² + b·p + c with p in MW."""

    bus: int
    p_min_kw: float
    p_max_kw: float
    q_min_kvar: float = 0.0
    q_max_kvar: float = 0.0
    cost_a_usd_per_mw2h: float = 0.0
    cost_b_usd_per_mwh: float = 0.0
    cost_c_usd_per_h: float = 0.0

    def __post_init__(self) -> None:
        _finite(self)
        _require(self.p_min_kw <= self.p_max_kw, self, "p_max_kw", "must be >= p_min_kw")
        _require(self.q_min_kvar <= self.q_max_kvar, self, "q_max_kvar", "must be >= q_min_kvar")
        _require(
            self.cost_a_usd_per_mw2h >= 0, self, "cost_a_usd_per_mw2h", "must be >= 0 (convex)"
        )

    def cost_usd_per_h(self, p_kw: float) -> float:
        p = p_kw / 1e3
        return (
            self.cost_a_usd_per_mw2h * p * p + self.cost_b_usd_per_mwh * p + self.cost_c_usd_per_h
        )


@dataclass(frozen=True)
class PVPlant:
    """PV plant (eq. 3): output 0..available (kW, per hour from a profile), |q| <= q_max_kvar."""

    bus: int
    capacity_kw: float
    q_max_kvar: float = 0.0
    cost_usd_per_mwh: float = 0.0

    def __post_init__(self) -> None:
        _finite(self)
        _require(self.capacity_kw >= 0, self, "capacity_kw", "must be >= 0")
        _require(self.q_max_kvar >= 0, self, "q_max_kvar", "must be >= 0")


@dataclass(frozen=True)
class EVCharger:
    """EV as a controllable load (eq. 4): e_demand_kwh delivered in hours [t_arrive, t_depart)."""

    bus: int
    p_max_kw: float
    e_demand_kwh: float
    t_arrive: int
    t_depart: int

    def __post_init__(self) -> None:
        _finite(self)
        _require(self.p_max_kw > 0, self, "p_max_kw", "must be > 0")
        _require(self.e_demand_kwh >= 0, self, "e_demand_kwh", "must be >= 0")
        _require(self.t_arrive >= 0, self, "t_arrive", "must be >= 0")
        _require(self.t_depart > self.t_arrive, self, "t_depart", "must be > t_arrive")

    def check_feasible(self, dt_h: float = 1.0) -> None:
        """The demand must fit in the window at full power."""
        most = self.p_max_kw * (self.t_depart - self.t_arrive) * dt_h
        _require(
            self.e_demand_kwh <= most + 1e-9,
            self,
            "e_demand_kwh",
            f"exceeds p_max_kw x window = {most:g} kWh",
        )


@dataclass(frozen=True)
class ZIPLoad:
    """ZIP voltage dependence (eq. 5-8); each triple (z, i, p) sums to 1."""

    z_p: float = 0.0
    i_p: float = 0.0
    p_p: float = 1.0
    z_q: float = 0.0
    i_q: float = 0.0
    p_q: float = 1.0

    def __post_init__(self) -> None:
        _finite(self)
        for name in ("z_p", "i_p", "p_p", "z_q", "i_q", "p_q"):
            _require(getattr(self, name) >= 0, self, name, "must be >= 0")
        _require(abs(self.z_p + self.i_p + self.p_p - 1) <= 1e-9, self, "p_p", "z_p+i_p+p_p != 1")
        _require(abs(self.z_q + self.i_q + self.p_q - 1) <= 1e-9, self, "p_q", "z_q+i_q+p_q != 1")

    def factors(self, v_pu: float) -> tuple[float, float]:
        """Exact multipliers (P/P0, Q/Q0) at voltage magnitude v_pu."""
        return (
            self.z_p * v_pu**2 + self.i_p * v_pu + self.p_p,
            self.z_q * v_pu**2 + self.i_q * v_pu + self.p_q,
        )

    def opf_coefficients(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """Linear model in v = V² used by the OPF: P/P0 ≈ k0 + k1·v (same for Q).

        V² is exact for the Z term; V ≈ (1 + v)/2 for the I term."""
        return (
            (self.p_p + self.i_p / 2, self.z_p + self.i_p / 2),
            (self.p_q + self.i_q / 2, self.z_q + self.i_q / 2),
        )

    @property
    def is_constant_power(self) -> bool:
        return self.p_p == 1.0 and self.p_q == 1.0


@dataclass(frozen=True)
class Storage:
    """Energy storage (eq. 9-12); energies in kWh, powers in kW, efficiencies in (0, 1]."""

    bus: int
    e_max_kwh: float
    p_ch_max_kw: float
    p_dis_max_kw: float
    e_min_kwh: float = 0.0
    e_init_kwh: float | None = None
    eta_ch: float = 0.95
    eta_dis: float = 0.95
    cost_usd_per_mwh: float = 1.0
    end_at_least_init: bool = True

    def __post_init__(self) -> None:
        _finite(self)
        _require(self.e_max_kwh > 0, self, "e_max_kwh", "must be > 0")
        _require(0 <= self.e_min_kwh <= self.e_max_kwh, self, "e_min_kwh", "must be in [0, e_max]")
        _require(self.p_ch_max_kw >= 0, self, "p_ch_max_kw", "must be >= 0")
        _require(self.p_dis_max_kw >= 0, self, "p_dis_max_kw", "must be >= 0")
        _require(0 < self.eta_ch <= 1, self, "eta_ch", "must be in (0, 1]")
        _require(0 < self.eta_dis <= 1, self, "eta_dis", "must be in (0, 1]")
        _require(self.cost_usd_per_mwh >= 0, self, "cost_usd_per_mwh", "must be >= 0")
        if self.e_init_kwh is not None:
            _require(
                self.e_min_kwh <= self.e_init_kwh <= self.e_max_kwh,
                self,
                "e_init_kwh",
                "must be in [e_min, e_max]",
            )

    @property
    def e0_kwh(self) -> float:
        """Initial energy (default: half way between the bounds)."""
        if self.e_init_kwh is None:
            return (self.e_min_kwh + self.e_max_kwh) / 2
        return self.e_init_kwh
