"""What an OPF returns: `OPFResult` (DLMPs, voltages, dispatch), `OPFExactness`, the errors
and warning, and `delivery_charge_usd_per_mwh` derived from a result."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd


class OPFError(RuntimeError):
    """The OPF solver failed for a reason other than infeasibility."""


class OPFInfeasibleError(OPFError):
    """No dispatch satisfies the limits; `cause` names the binding limit (bus, hour)."""

    def __init__(self, message: str, *, cause: str, bus: int | None = None, hour: Any = None):
        self.cause = cause
        self.bus = bus
        self.hour = hour
        super().__init__(message)


class OPFInexactWarning(UserWarning):
    """The SOCP relaxation was not tight; a remedy was applied (see the message)."""


@dataclass(frozen=True, eq=False)
class OPFExactness:
    """How far the relaxed solution is from an AC power flow solution."""

    max_relaxation_gap: float  # max |z|·|l - (P²+Q²)/v_from|, p.u. power (1e-6 = 1 VA @ 1 MVA)
    max_v_error_pu: float  # max |V_OPF - V_AC| over buses and hours (nan if not checked)
    max_current_gap_pu: float  # max |l - (P²+Q²)/v_from|, p.u. squared current (raw SOC slack)
    hours: pd.Index = field(repr=False)
    gap: np.ndarray = field(repr=False)  # per hour
    v_error: np.ndarray = field(repr=False)  # per hour
    current_gap: np.ndarray = field(repr=False)  # per hour

    @classmethod
    def of_hours(
        cls, hours: pd.Index, gap: np.ndarray, v_error: np.ndarray, current_gap: np.ndarray
    ) -> OPFExactness:
        """From per-hour arrays (v_error nan where the AC check was skipped)."""
        return cls(
            max_relaxation_gap=float(gap.max()),
            max_v_error_pu=float(v_error.max()),
            max_current_gap_pu=float(current_gap.max()),
            hours=hours,
            gap=gap,
            v_error=v_error,
            current_gap=current_gap,
        )

    @cached_property
    def gap_by_hour(self) -> pd.Series:
        return pd.Series(self.gap, index=self.hours, name="relaxation_gap")

    @cached_property
    def v_error_by_hour(self) -> pd.Series:
        return pd.Series(self.v_error, index=self.hours, name="v_error_pu")


@dataclass(frozen=True, eq=False)
class OPFResult:
    """OPF solution; frames are indexed hour × bus (hours = the input's index, 0 for a Series).

    dlmp_usd_per_mwh / dlmp_q_usd_per_mvarh: locational marginal prices of P and Q.
    v_pu: voltage magnitudes of the OPF; v_ac_pu: those of the AC check at the same injections.
    p_substation_kw / q_substation_kvar / loss_kw / p_substation_ac_kw: per hour.
    p_net_kw / q_net_kvar: net bus load at the OPF's dispatch (loads at 1 p.u. minus devices).
    dispatch: per-device frames (hour × device label): gen_p_kw, gen_q_kvar, pv_p_kw, pv_q_kvar,
        storage_p_kw (discharge positive), storage_e_kwh (end of hour), ev_p_kw.
    objective_usd: total cost over the horizon. status: "optimal", "remedied" (loss penalty
    applied, exact), "inexact" (warned) or "optimal_inaccurate" (solver's reduced accuracy).
    The pandas objects are built on first access from the stored arrays (cheap re-solves).
    """

    hours: pd.Index
    buses: pd.Index = field(repr=False)
    objective_usd: float
    exactness: OPFExactness
    status: str
    loss_penalty_usd_per_mwh: float
    solver_time_s: float
    wall_time_s: float
    arrays: dict[str, np.ndarray] = field(repr=False)  # (T, n) bus arrays or (T,) hour arrays
    dispatch_arrays: dict[str, tuple[list, np.ndarray]] = field(repr=False)

    def _bus_frame(self, key: str) -> pd.DataFrame:
        return pd.DataFrame(self.arrays[key], index=self.hours, columns=self.buses)

    def _hour_series(self, key: str) -> pd.Series:
        return pd.Series(self.arrays[key], index=self.hours, name=key)

    @cached_property
    def dlmp_usd_per_mwh(self) -> pd.DataFrame:
        return self._bus_frame("dlmp_usd_per_mwh")

    @cached_property
    def dlmp_q_usd_per_mvarh(self) -> pd.DataFrame:
        return self._bus_frame("dlmp_q_usd_per_mvarh")

    @cached_property
    def v_pu(self) -> pd.DataFrame:
        return self._bus_frame("v_pu")

    @cached_property
    def v_ac_pu(self) -> pd.DataFrame:
        return self._bus_frame("v_ac_pu")

    @cached_property
    def p_net_kw(self) -> pd.DataFrame:
        return self._bus_frame("p_net_kw")

    @cached_property
    def q_net_kvar(self) -> pd.DataFrame:
        return self._bus_frame("q_net_kvar")

    @cached_property
    def p_substation_kw(self) -> pd.Series:
        return self._hour_series("p_substation_kw")

    @cached_property
    def q_substation_kvar(self) -> pd.Series:
        return self._hour_series("q_substation_kvar")

    @cached_property
    def loss_kw(self) -> pd.Series:
        return self._hour_series("loss_kw")

    @cached_property
    def p_substation_ac_kw(self) -> pd.Series:
        return self._hour_series("p_substation_ac_kw")

    @cached_property
    def dispatch(self) -> dict[str, pd.DataFrame]:
        return {
            name: pd.DataFrame(values, index=self.hours, columns=labels)
            for name, (labels, values) in self.dispatch_arrays.items()
        }


def delivery_charge_usd_per_mwh(result: OPFResult, from_bus: int, to_bus: int) -> pd.Series:
    """Marginal network cost of moving energy from `from_bus` to `to_bus`, per hour ($/MWh).

    = DLMP(to_bus) − DLMP(from_bus): the change of the optimal system cost when a source at
    from_bus injects 1 MWh more and a load at to_bus takes 1 MWh more (losses, and voltage
    limits when they bind). The operator ranks renewable plants for a user at `to_bus` by
    offer price + this charge (lowest delivered cost incl. losses first)."""
    d = result.dlmp_usd_per_mwh
    for b in (from_bus, to_bus):
        if b not in d.columns:
            raise KeyError(f"bus {b} is not in the OPF result")
    return (d[to_bus] - d[from_bus]).rename("delivery_charge_usd_per_mwh")
