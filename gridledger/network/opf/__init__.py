"""Optimal power flow of a radial feeder: DistFlow SOCP relaxation, DLMPs, exactness check."""

from gridledger.network.opf.hourly import (
    HourlyOPF,
    OPFError,
    OPFExactness,
    OPFInexactWarning,
    OPFInfeasibleError,
    OPFResult,
    delivery_charge_usd_per_mwh,
    solve_opf,
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
