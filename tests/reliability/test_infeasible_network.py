"""Scenario 10: demand beyond the voltage limits. The OPF names the cause, the hour falls back to
the documented safe rule (grid_only) and the run completes with every invariant checked."""

from __future__ import annotations

import pytest

from gridledger import EnergyMarketModel, Scenario
from gridledger.cli import format_summary


@pytest.mark.slow  # 3-6 s: a model day
def test_infeasible_hours_fall_back_to_grid_only() -> None:
    # v_min 0.98 p.u.: the evening peak cannot reach it at bus 37 (best ~0.973 p.u.)
    model = EnergyMarketModel(Scenario(hours=4, start_hour=17, v_min_pu=0.98))
    res = model.run()
    h = res.hourly
    assert len(h) == 4  # no crash
    bad = h[h["opf_status"] == "infeasible"]
    assert len(bad) >= 1 and (bad["fallback"] == "grid_only").all()
    assert (h.loc[h["opf_status"] == "ok", "fallback"] == "").all()
    s = res.summary
    assert s["opf_fallback_hours"] == [int(t) for t in bad["t"]]
    causes = [f for f in s["opf_failures"] if f["t"] is not None]
    assert all("lower voltage limit 0.98" in f["cause"] and f["bus"] == 37 for f in causes)
    # the safe rule: nobody sells in a fallback hour, the grid covers all demand
    fallback_t = set(bad["t"])
    assert not res.trades["t"].isin(fallback_t).any()
    assert (bad["local_kwh"] == 0).all() and (bad["renewable_kwh"] == 0).all()
    assert (bad["grid_import_kwh"] == bad["demand_kwh"]).all()
    assert "OPF infeasible in hour(s)" in format_summary(s)
