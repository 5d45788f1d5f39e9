"""AC sweep against pandapower's Newton-Raphson (independent implementation)."""

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pandas as pd
import pytest

from gridledger.network import (
    BUS_OFFSET,
    Feeder,
    PowerFlowDivergedError,
    ZIPLoad,
    grid_from_pandapower,
    load_feeder,
    run_power_flow,
)


def _runpp(net):
    pp.runpp(net, algorithm="nr", tolerance_mva=1e-12, max_iteration=50, numba=False)
    return net


def _assert_same(feeder, res, net, tol=1e-6, offset=0):
    """`offset` = feeder bus - pandapower bus (BUS_OFFSET after conversion, 0 for to_pandapower)."""
    vm = net.res_bus.vm_pu.reindex(feeder.buses.index - offset).to_numpy()
    assert np.max(np.abs(vm - res.v_pu.to_numpy())) <= tol
    va = net.res_bus.va_degree.reindex(feeder.buses.index - offset).to_numpy()
    assert np.max(np.abs(va - res.va_deg.to_numpy())) <= 1e-4
    assert res.p_substation_kw == pytest.approx(net.res_ext_grid.p_mw.iloc[0] * 1e3, abs=1e-4)
    assert res.q_substation_kvar == pytest.approx(net.res_ext_grid.q_mvar.iloc[0] * 1e3, abs=1e-4)
    assert res.loss_kw == pytest.approx(net.res_line.pl_mw.sum() * 1e3, abs=1e-4)


def test_sce56_matches_pandapower_with_capacitors():
    f = load_feeder("sce56")
    res = run_power_flow(f, include_pv=False)
    _assert_same(f, res, _runpp(f.to_pandapower()))
    assert 0.96 < res.v_pu.min() < 0.97 and res.iterations < 20


def test_sce56_matches_pandapower_with_paper_pv_and_heavy_load():
    f = load_feeder("sce56").with_pv({45: 0.0, 53: 1000.0, 19: 800.0})
    g = Feeder(
        f.buses.assign(p_kw=1.3 * f.buses.p_kw, q_kvar=1.3 * f.buses.q_kvar),
        f.lines,
        f.base_kv,
        f.base_mva,
        f.substation_bus,
    )
    res = run_power_flow(g)
    _assert_same(g, res, _runpp(g.to_pandapower(include_pv=True)))


def test_sce56_reverse_flow_original_pv_without_shunts():
    f = load_feeder("sce56")
    res = run_power_flow(f, include_shunts=False)  # 5 MW PV at bus 45 -> export
    _assert_same(f, res, _runpp(f.to_pandapower(include_shunts=False, include_pv=True)))
    no_pv = run_power_flow(f, include_shunts=False, include_pv=False)
    assert res.p_substation_kw < 0 and res.v_pu[45] > no_pv.v_pu[45] + 0.01


def test_case33bw_from_pandapower_matches_newton_raphson():
    net = pn.case33bw()
    f = grid_from_pandapower(net).feeder
    assert (f.n_buses, f.n_lines, f.substation_bus) == (33, 32, BUS_OFFSET)
    res = run_power_flow(f)
    _assert_same(f, res, _runpp(net), offset=BUS_OFFSET)
    assert res.loss_kw == pytest.approx(202.68, abs=0.01)  # textbook figure of Baran & Wu


def test_pandapower_round_trip_keeps_tables():
    f = load_feeder("sce56")
    grid = grid_from_pandapower(f.to_pandapower(include_pv=True))
    g = grid.feeder  # to_pandapower keeps the feeder's numbers; the way back adds BUS_OFFSET
    cols = ["p_kw", "q_kvar", "shunt_kvar", "shunt_kw"]
    back = g.buses[cols].set_axis(g.buses.index - BUS_OFFSET)
    pd.testing.assert_frame_equal(f.buses[cols], back, check_names=False)
    pv = grid.generators.assign(bus=grid.generators.bus - BUS_OFFSET).groupby("bus").p_kw.sum()
    assert pv.to_dict() == pytest.approx(f.buses.pv_kw[f.buses.pv_kw > 0].to_dict())
    np.testing.assert_allclose(g.lines[["r_pu", "x_pu"]], f.lines[["r_pu", "x_pu"]], rtol=1e-12)


def test_zip_loads_match_pandapower_voltage_dependence():
    f = load_feeder("sce56")
    z = ZIPLoad(z_p=0.3, i_p=0.4, p_p=0.3, z_q=0.5, i_q=0.2, p_q=0.3)
    res = run_power_flow(f, include_pv=False, zip=z)
    net = f.to_pandapower()
    net.load["const_z_p_percent"] = 30.0
    net.load["const_i_p_percent"] = 40.0
    net.load["const_z_q_percent"] = 50.0
    net.load["const_i_q_percent"] = 20.0
    _assert_same(f, res, _runpp(net))
    # drawn load follows the exact formula at the solved voltage
    v = res.v_pu[37]
    assert res.p_load_kw[37] == pytest.approx(f.buses.p_kw[37] * (0.3 * v * v + 0.4 * v + 0.3))


def test_net_load_series_and_balance():
    f = load_feeder("sce56")
    p = pd.Series({37: 500.0, 52: -300.0})
    q = pd.Series({37: 100.0})
    res = run_power_flow(f, p, q, include_shunts=False, include_pv=False)
    assert res.p_substation_kw == pytest.approx(200.0 + res.loss_kw, rel=1e-9)
    assert res.branch.loss_kw.sum() == pytest.approx(res.loss_kw)
    with pytest.raises(ValueError, match="unknown bus"):
        run_power_flow(f, pd.Series({999: 1.0}))


def test_divergence_raises_named_error():
    f = load_feeder("sce56")
    with pytest.raises(PowerFlowDivergedError, match="sce56"):
        run_power_flow(f, 60.0 * f.buses.p_kw, 60.0 * f.buses.q_kvar)


def test_line_charging_is_modelled_as_shunts():
    net = pn.case33bw()
    net.line["c_nf_per_km"] = 400.0  # a cable feeder: 0.13 Mvar of charging in all
    net.line["g_us_per_km"] = 2.0
    f = grid_from_pandapower(net).feeder
    assert f.buses.shunt_kvar.sum() > 100 and f.buses.shunt_kw.sum() > 0
    res = run_power_flow(f)
    vm = _runpp(net).res_bus.vm_pu.reindex(f.buses.index - BUS_OFFSET).to_numpy()
    assert np.max(np.abs(vm - res.v_pu.to_numpy())) <= 1e-9


def test_sce47_zero_impedance_ties_carry_equal_voltages():
    f = load_feeder("sce47")
    res = run_power_flow(f)
    for a, b in [(2, 13), (16, 17), (18, 19), (22, 23), (21, 24)]:
        assert res.v_pu[a] == pytest.approx(res.v_pu[b], abs=1e-12)
    assert res.p_substation_kw == pytest.approx(
        f.buses.p_kw.sum() - f.buses.pv_kw.sum() + res.loss_kw, rel=1e-9
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_radial_feeders_match_pandapower(seed):
    from gridledger.network import synthetic_feeder

    f = synthetic_feeder(60, seed=seed, load_kw=40.0, branching=5)
    rng = np.random.default_rng(seed)
    pv_buses = rng.choice(f.buses.index[1:], size=5, replace=False)
    f = f.with_pv({int(b): float(rng.uniform(50, 300)) for b in pv_buses})
    res = run_power_flow(f)
    _assert_same(f, res, _runpp(f.to_pandapower(include_pv=True)))
