"""Optimal power flow of a radial feeder: DistFlow SOCP relaxation, DLMPs, exactness check.

Modules: model.py (the SOCP as a cvxpy DPP model, input shaping), conic.py (the same one-hour
SOCP for Clarabel directly), hourly.py (`HourlyOPF`: compile once, re-solve per hour),
exactness.py (relaxation gap, AC check, infeasibility diagnosis), horizon.py (`solve_opf` over one
hour or many), result.py (`OPFResult`, errors, `delivery_charge_usd_per_mwh`). The public names
are exported by `gridledger.network`.
"""
