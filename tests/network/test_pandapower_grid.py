"""grid_from_pandapower against pandapower's own Newton-Raphson (runpp, trafo_model="pi").

Small hand-built nets exercise each conversion rule (transformers, switches, parallel lines,
dangling lines, refusals); the SimBench grids are the acceptance (1e-6 p.u. at every bus)."""

import copy
import dataclasses

import numpy as np
import pandapower as pp
import pandas as pd
import pytest

from gridledger.network import (
    BUS_OFFSET,
    LV_BASE_MVA,
    GridModelError,
    GridTopologyError,
    choose_base_mva,
    grid_from_pandapower,
    run_power_flow,
)


def _runpp(net):
    # "pi": the magnetising admittance at the transformer's buses, as the feeder models it
    pp.runpp(net, trafo_model="pi", tolerance_mva=1e-11, max_iteration=50, numba=False)
    return net


def _max_dv(grid, net, p_kw=None, q_kvar=None):
    gen = grid.generators
    res = run_power_flow(
        grid.feeder,
        p_kw,
        q_kvar,
        p_gen_kw=gen.p_kw.groupby(gen.bus).sum(),
        q_gen_kvar=gen.q_kvar.groupby(gen.bus).sum(),
    )
    vm = _runpp(net).res_bus.vm_pu.loc[grid.feeder.buses.index - BUS_OFFSET].to_numpy()
    return float(np.max(np.abs(vm - res.v_pu.to_numpy())))


def _small_net(n_lv=1):
    """20 kV ext_grid bus, `n_lv` MV/LV transformers each feeding a 4-bus cable LV grid."""
    net = pp.create_empty_network(sn_mva=1.0)
    mv = pp.create_bus(net, 20.0, name="MV busbar")
    pp.create_ext_grid(net, mv, vm_pu=1.02)
    for k in range(n_lv):
        mv_k = mv
        if k:
            mv_k = pp.create_bus(net, 20.0)
            pp.create_line(net, mv, mv_k, 2.0, "NA2XS2Y 1x185 RM/25 12/20 kV")
        b = [pp.create_bus(net, 0.4, name=f"LV{k}.{i}") for i in range(4)]
        pp.create_transformer(net, mv_k, b[0], std_type="0.63 MVA 20/0.4 kV")
        for i, j, km in ((0, 1, 0.15), (1, 2, 0.1), (0, 3, 0.2)):
            pp.create_line(net, b[i], b[j], km, "NAYY 4x150 SE")
        for i in (1, 2, 3):
            pp.create_load(net, b[i], p_mw=0.03 * i, q_mvar=0.01 * i)
        pp.create_sgen(net, b[2], p_mw=0.02, q_mvar=0.0, type="PV")
    return net


def test_transformer_lines_and_slack_match_runpp():
    net = _small_net()
    grid = grid_from_pandapower(net, name="small")
    f = grid.feeder
    # feeder bus = pandapower bus + 1: the markets number buses from 1
    assert f.buses.index.tolist() == [1, 2, 3, 4, 5] and BUS_OFFSET == 1
    assert (f.n_buses, f.n_lines, f.substation_bus, f.v0_pu) == (5, 4, 1, 1.02)
    assert grid.loads.bus.tolist() == (net.load.bus + 1).tolist()
    assert grid.generators.bus.tolist() == (net.sgen.bus + 1).tolist()
    # iron losses (1.65 kW at 1 p.u.) split between the transformer's buses ("pi" model)
    assert f.buses.shunt_kw.loc[[1, 2]].tolist() == pytest.approx([0.825, 0.825], rel=1e-9)
    assert f.buses.shunt_kvar.loc[4] > 0  # cable charging
    assert _max_dv(grid, net) < 1e-9


def test_lv_nets_get_the_lv_base_and_any_base_gives_the_same_power_flow():
    net = _small_net()
    grid = grid_from_pandapower(net)
    assert grid.feeder.base_mva == LV_BASE_MVA == 0.1 and net.sn_mva == 1.0
    mv_only = pp.create_empty_network(sn_mva=2.0)
    a, b = pp.create_bus(mv_only, 20.0), pp.create_bus(mv_only, 20.0)
    pp.create_ext_grid(mv_only, a)
    pp.create_line(mv_only, a, b, 2.0, "NA2XS2Y 1x185 RM/25 12/20 kV")
    assert choose_base_mva(mv_only) == 2.0
    one = grid_from_pandapower(net, base_mva=1.0)
    assert one.feeder.base_mva == 1.0
    ratio = (grid.feeder.lines.r_pu / one.feeder.lines.r_pu).to_numpy()
    assert ratio == pytest.approx(np.full(4, 0.1), rel=1e-12)  # z_pu scales with the base
    assert grid.feeder.buses.shunt_kw.to_numpy() == pytest.approx(one.feeder.buses.shunt_kw)
    assert _max_dv(grid, net) < 1e-9 and _max_dv(one, net) < 1e-9
    with pytest.raises(GridModelError, match="base_mva must be a positive number"):
        grid_from_pandapower(net, base_mva=0.0)


def test_closed_bus_switch_fuses_and_parallel_lines_merge():
    net = _small_net()
    extra = pp.create_bus(net, 0.4)
    pp.create_switch(net, 2, extra, et="b", closed=True)
    pp.create_load(net, extra, p_mw=0.01, q_mvar=0.0)
    pp.create_line(net, 1, 2, 0.15, "NAYY 4x150 SE")  # parallel to line 0
    grid = grid_from_pandapower(net)
    assert extra + BUS_OFFSET not in grid.feeder.buses.index and grid.feeder.n_lines == 4
    # the load on the fused bus sits at its representative (pandapower bus 2)
    assert grid.loads.bus.loc[3] == 2 + BUS_OFFSET
    assert _max_dv(grid, net) < 1e-9


def test_open_bus_switch_separates():
    net = _small_net()
    extra = pp.create_bus(net, 0.4, name="behind an open switch")
    sw = pp.create_switch(net, 2, extra, et="b", closed=False)
    with pytest.raises(GridTopologyError, match=rf"1 bus\(es\).*e.g. bus {extra}"):
        grid_from_pandapower(net)
    net.switch.loc[sw, "closed"] = True
    assert grid_from_pandapower(net).feeder.n_buses == 5


def test_line_open_at_one_end_leaves_its_charging_at_the_other():
    net = _small_net()
    spur = pp.create_line(net, 3, 4, 0.5, "NA2XS2Y 1x185 RM/25 12/20 kV")  # would close a loop
    pp.create_switch(net, 4, spur, et="l", closed=False)
    grid = grid_from_pandapower(net)
    assert grid.feeder.n_lines == 4
    assert _max_dv(grid, net) < 1e-9


def test_meshed_net_is_refused_naming_the_loop():
    net = _small_net()
    pp.create_line(net, 2, 4, 0.1, "NAYY 4x150 SE")
    with pytest.raises(GridTopologyError, match="meshed") as info:
        grid_from_pandapower(net, name="loopy")
    msg = str(info.value)
    assert "loopy" in msg
    loop = msg[msg.index("[") + 1 : msg.index("]")]
    assert sorted(int(b) for b in loop.split(",")) == [1, 2, 4]  # LV busbar, bus 2, bus 4


def test_islanded_buses_are_refused_with_count_and_example():
    net = _small_net()
    lone = pp.create_bus(net, 0.4, name="lonely")
    pp.create_load(net, lone, p_mw=0.01, q_mvar=0.0)
    net.line.loc[2, "in_service"] = False  # bus 4 (0-3 spur) falls off as well
    with pytest.raises(GridTopologyError, match=r"2 bus\(es\) are not connected") as info:
        grid_from_pandapower(net)
    assert "e.g. bus 4" in str(info.value)
    net.bus.loc[[4, lone], "in_service"] = False  # out of service: dropped, not refused
    assert grid_from_pandapower(net).feeder.n_buses == 4


def test_topology_is_checked_before_the_elements():
    net = _small_net()
    pp.create_gen(net, 2, p_mw=0.01)
    pp.create_line(net, 2, 4, 0.1, "NAYY 4x150 SE")
    with pytest.raises(GridTopologyError):
        grid_from_pandapower(net)


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda net: pp.create_gen(net, 2, p_mw=0.01), "in-service gen"),
        (lambda net: net.trafo.assign(tap_changer_type="Ratio", tap_pos=2, tap_neutral=0), "tap"),
        (lambda net: net.load.assign(const_z_p_percent=50.0), "voltage-dependent"),
        (lambda net: net.trafo.assign(vn_lv_kv=0.41), "off-nominal ratio"),
    ],
)
def test_what_the_feeder_cannot_represent_is_refused(edit, words):
    net = _small_net()
    out = edit(net)
    if isinstance(out, pd.DataFrame):
        net[("trafo" if "hv_bus" in out.columns else "load")] = out
    with pytest.raises(GridModelError, match=words):
        grid_from_pandapower(net)


def test_each_mv_lv_transformer_starts_an_lv_grid():
    grid = grid_from_pandapower(_small_net(n_lv=3))
    lv = grid.lv_grid_of_bus
    assert grid.n_lv_grids == 3
    assert lv.value_counts().to_dict() == {0: 4, 1: 4, 2: 4, -1: 3}
    assert (lv.loc[grid.loads.bus] >= 0).all()  # every load of this net is in an LV grid
    kinds = grid.generators
    assert kinds.kind.unique().tolist() == ["pv"] and (kinds.voltage_level == 7).all()


# ---------------------------------------------------------------- SimBench acceptance
@pytest.fixture(scope="module", params=["1-LV-urban6--0-sw", "1-MVLV-urban-6.305-0-sw"])
def simbench_case(request):
    import simbench

    net = simbench.get_simbench_net(request.param)
    return net, grid_from_pandapower(net, name=request.param)


@pytest.mark.slow
def test_simbench_nominal_matches_runpp(simbench_case):
    net, grid = simbench_case
    assert _max_dv(grid, copy.deepcopy(net)) <= 1e-6


@pytest.mark.slow
def test_simbench_profile_hour_matches_runpp(simbench_case):
    net, grid = simbench_case
    net = copy.deepcopy(net)
    row = grid.profiles.loc["2016-06-01 12:00"]
    ld, gen = grid.loads, grid.generators
    p_mult = row[ld.profile + "_pload"].to_numpy()
    q_mult = row[ld.profile + "_qload"].to_numpy()
    g_mult = row[gen.profile].to_numpy()
    net.load.loc[ld.index, "p_mw"] *= p_mult
    net.load.loc[ld.index, "q_mvar"] *= q_mult
    net.sgen.loc[gen.index, "p_mw"] *= g_mult
    hour_gen = gen.assign(p_kw=gen.p_kw * g_mult)
    p = (ld.p_kw * p_mult).groupby(ld.bus).sum()
    q = (ld.q_kvar * q_mult).groupby(ld.bus).sum()
    assert g_mult.max() > 0.3  # noon in June: the PV really produces
    assert _max_dv(dataclasses.replace(grid, generators=hour_gen), net, p, q) <= 1e-6


@pytest.mark.slow
def test_simbench_tables_follow_the_interface(simbench_case):
    net, grid = simbench_case
    f = grid.feeder
    assert f.substation_bus == int(net.ext_grid.bus.iloc[0]) + BUS_OFFSET and f.v0_pu == 1.025
    assert f.buses.index.min() >= 1  # the markets' bus numbers
    assert list(grid.loads.columns) == ["name", "bus", "p_kw", "q_kvar", "profile", "kind"]
    assert grid.loads.p_kw.sum() == pytest.approx(f.buses.p_kw.sum())
    assert grid.loads.p_kw.sum() == pytest.approx(net.load.p_mw.sum() * 1e3)
    assert (f.buses.pv_kw == 0).all()
    assert set(grid.loads.kind) <= {"household", "business", "farm", "other"}
    assert len(grid.profiles) == 8784
    assert grid.profiles.index[0] == pd.Timestamp("2016-01-01 00:00")
    lv_buses = net.bus.index[net.bus.vn_kv < 1.0]
    # one MV/LV transformer in both grids (1-MVLV-urban-6.305's other two are HV/MV): one LV
    # grid of exactly the 0.4 kV buses
    assert grid.n_lv_grids == 1
    lv = grid.lv_grid_of_bus
    assert set(lv.index[lv == 0]) == set(lv_buses + BUS_OFFSET)


@pytest.mark.parametrize("backend", ["clarabel", "cvxpy"])
def test_opf_carries_the_converted_shunts_and_slack_like_the_power_flow(backend):
    from gridledger.network import HourlyOPF

    f = grid_from_pandapower(_small_net(n_lv=2)).feeder
    assert f.buses.shunt_kw.sum() > 3.0  # two transformers' iron losses
    opf = HourlyOPF(f, v_max_pu=1.06, backend=backend)
    res = opf.solve(f.buses.p_kw, f.buses.q_kvar, 50.0)
    ac = run_power_flow(f)
    assert res.v_pu.iloc[0][f.substation_bus] == pytest.approx(1.02)  # the ext_grid's voltage
    assert res.exactness.max_v_error_pu < 1e-6
    # nothing to dispatch: the OPF's import is the AC flow's, iron losses included
    assert res.p_substation_kw.iloc[0] == pytest.approx(ac.p_substation_kw, abs=1e-3)
