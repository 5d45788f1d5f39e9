"""Optimal power flow of a radial feeder: DistFlow SOCP relaxation, DLMPs, exactness check.

model.py (the SOCP as a cvxpy model) and conic.py (the same one-hour SOCP for Clarabel directly),
hourly.py (`HourlyOPF`: compile once, re-solve per hour, check exactness), horizon.py
(`solve_opf` over one hour or many), result.py (`OPFResult` and the errors).
"""

from gridledger.network.opf.horizon import solve_opf
from gridledger.network.opf.hourly import HourlyOPF
from gridledger.network.opf.result import (
    OPFError,
    OPFExactness,
    OPFInexactWarning,
    OPFInfeasibleError,
    OPFResult,
    delivery_charge_usd_per_mwh,
)

__all__ = [
    "HourlyOPF",
    "OPFError",
    "OPFExactness",
    "OPFInexactWarning",
    "OPFInfeasibleError",
    "OPFResult",
    "delivery_charge_usd_per_mwh",
    "solve_opf",
]
