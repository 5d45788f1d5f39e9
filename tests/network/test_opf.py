"""DistFlow SOCP OPF: exactness, DLMPs, named errors and warnings (real Clarabel solver)."""

import warnings

import numpy as np
import pandas as pd
import pytest

from gridledger.network import (
    EVCharger,
    HourlyOPF,
    OPFInexactWarning,
    OPFInfeasibleError,
    RegulatedPlant,
    Storage,
    ZIPLoad,
    default_day,
    delivery_charge_usd_per_mwh,
    load_feeder,
    solve_opf,
)


@pytest.fixture(scope="module")
def feeder():
    # the paper's default: original 5 MW PV at bus 45 off, REP plants at 53 and 19
    return load_feeder("sce56").with_pv({45: 0.0, 53: 1000.0, 19: 800.0})


@pytest.fixture(scope="module")
def day(feeder):
    prof = default_day(seed=0)
    cols = feeder.buses.index
    return {
        "p": pd.DataFrame(np.outer(prof.load, feeder.buses.p_kw), columns=cols),
        "q": pd.DataFrame(np.outer(prof.load, feeder.buses.q_kvar), columns=cols),
        "pv": pd.DataFrame(np.outer(prof.pv, feeder.buses.pv_kw), columns=cols),
        "price": prof.wholesale_usd_per_mwh,
    }


@pytest.fixture(scope="module")
def default_result(feeder, day):
    return solve_opf(feeder, day["p"], day["q"], price_usd_per_mwh=day["price"], pv_kw=day["pv"])


def test_default_day_relaxation_exact_every_hour(default_result):
    r = default_result
    assert r.status == "optimal"
    assert len(r.exactness.gap_by_hour) == 24
    assert (r.exactness.gap_by_hour <= 1e-6).all()
    assert (r.exactness.v_error_by_hour <= 1e-6).all()
    assert r.exactness.max_relaxation_gap <= 1e-6 and r.exactness.max_v_error_pu <= 1e-6
    assert r.exactness.max_current_gap_pu <= 1e-6  # also the raw SOC slack, unweighted
    assert r.dlmp_usd_per_mwh.shape == (24, 56) and r.v_pu.shape == (24, 56)
    assert ((r.v_pu >= 0.95 - 1e-7) & (r.v_pu <= 1.05 + 1e-7)).all().all()


def test_substation_dlmp_equals_energy_price(default_result, day):
    r = default_result
    np.testing.assert_allclose(r.dlmp_usd_per_mwh[1].to_numpy(), day["price"], rtol=1e-7)
    assert np.abs(r.dlmp_q_usd_per_mvarh[1]).max() < 1e-6
    # losses make energy dearer downstream at the evening peak
    assert (r.dlmp_usd_per_mwh.loc[20].drop(1) > day["price"][20]).all()


def test_objective_equals_priced_purchase(default_result, day):
    r = default_result
    assert r.objective_usd == pytest.approx(float((r.p_substation_kw / 1e3 * day["price"]).sum()))
    load = day["p"].sum(axis=1) - r.dispatch["pv_p_kw"].sum(axis=1)
    np.testing.assert_allclose(r.p_substation_kw, load + r.loss_kw, rtol=1e-6)


@pytest.mark.parametrize("hour", [8, 12, 20])
def test_dlmp_equals_finite_difference_of_optimal_cost(feeder, day, hour):
    opf = HourlyOPF(feeder)
    p, q, pv, price = (
        day["p"].loc[hour],
        day["q"].loc[hour],
        day["pv"].loc[hour],
        day["price"][hour],
    )
    base = opf.solve(p, q, price, pv_kw=pv, hour=hour)
    h = 1.0  # kW / kvar
    for bus in (3, 19, 37, 45, 54):
        cost = [
            opf.solve(
                p.add(pd.Series({bus: s * h}), fill_value=0),
                q,
                price,
                pv_kw=pv,
                check_exactness=False,
            ).objective_usd
            for s in (1, -1)
        ]
        fd = (cost[0] - cost[1]) / (2 * h / 1e3)
        assert base.dlmp_usd_per_mwh.loc[hour, bus] == pytest.approx(fd, rel=1e-3)
        cost_q = [
            opf.solve(
                p,
                q.add(pd.Series({bus: s * h}), fill_value=0),
                price,
                pv_kw=pv,
                check_exactness=False,
            ).objective_usd
            for s in (1, -1)
        ]
        fd_q = (cost_q[0] - cost_q[1]) / (2 * h / 1e3)
        assert base.dlmp_q_usd_per_mvarh.loc[hour, bus] == pytest.approx(fd_q, rel=1e-3, abs=1e-4)


def test_hourly_model_is_compiled_once_and_matches_horizon(feeder, day, default_result):
    a, b = HourlyOPF(feeder), HourlyOPF(feeder)
    assert a.model is b.model
    r = a.solve(
        day["p"].loc[19], day["q"].loc[19], day["price"][19], pv_kw=day["pv"].loc[19], hour=19
    )
    pd.testing.assert_series_equal(
        r.dlmp_usd_per_mwh.loc[19], default_result.dlmp_usd_per_mwh.loc[19], rtol=1e-6
    )


def test_infeasible_voltage_names_bus_and_hour(feeder, day):
    p, q = day["p"].loc[[12, 20]].copy(), day["q"].loc[[12, 20]].copy()
    p.loc[20] *= 2.5
    q.loc[20] *= 2.5
    with pytest.raises(
        OPFInfeasibleError, match=r"lower voltage limit 0.95 p.u. at bus \d+, hour 20"
    ) as info:
        solve_opf(feeder, p, q, price_usd_per_mwh=50.0, include_pv=False)
    err = info.value
    assert err.hour == 20 and err.bus in feeder.buses.index
    assert feeder.depth[err.bus] >= 10  # the far end of the feeder sags first


def test_infeasible_export_limit_is_named(feeder):
    must_run = RegulatedPlant(bus=30, p_min_kw=4000.0, p_max_kw=5000.0)
    with pytest.raises(OPFInfeasibleError, match="export limit 0 kW at the substation"):
        solve_opf(
            feeder,
            feeder.buses.p_kw,
            feeder.buses.q_kvar,
            price_usd_per_mwh=50.0,
            devices=[must_run],
            export_limit_kw=0.0,
            v_max_pu=1.1,
            include_pv=False,
        )


def test_negative_price_inexact_is_remedied_with_warning(feeder):
    with pytest.warns(OPFInexactWarning, match="loss penalty"):
        r = solve_opf(
            feeder, 0.5 * feeder.buses.p_kw, 0.5 * feeder.buses.q_kvar, price_usd_per_mwh=-20.0
        )
    assert r.status == "remedied"
    assert r.exactness.max_relaxation_gap <= 1e-6 and r.exactness.max_v_error_pu <= 1e-6
    assert r.loss_penalty_usd_per_mwh > 20.0


def test_relaxation_feasible_but_ac_infeasible_voltage_is_named(feeder):
    # capacitors push light-load voltages above 1.0 p.u. with no control left; the relaxation
    # "absorbs" the vars with fictitious losses. That must not pass as a solution.
    with pytest.raises(
        OPFInfeasibleError,
        match=r"upper voltage limit 1 p.u. at bus \d+, hour 0.*fictitious losses",
    ) as info:
        solve_opf(
            feeder,
            0.2 * feeder.buses.p_kw,
            0.2 * feeder.buses.q_kvar,
            price_usd_per_mwh=50.0,
            v_min_pu=0.95,
            v_max_pu=1.0,
            include_pv=False,
        )
    assert info.value.hour == 0 and info.value.bus in feeder.buses.index


def test_horizon_with_storage_and_ev(feeder, day, default_result):
    ess = Storage(
        bus=37,
        e_max_kwh=600.0,
        p_ch_max_kw=200.0,
        p_dis_max_kw=200.0,
        e_init_kwh=300.0,
        eta_ch=0.95,
        eta_dis=0.95,
        cost_usd_per_mwh=2.0,
    )
    ev = EVCharger(bus=48, p_max_kw=7.2, e_demand_kwh=30.0, t_arrive=18, t_depart=24)
    r = solve_opf(
        feeder,
        day["p"],
        day["q"],
        price_usd_per_mwh=day["price"],
        pv_kw=day["pv"],
        devices=[ess, ev],
    )
    assert r.status == "optimal"
    assert r.exactness.max_relaxation_gap <= 1e-6 and r.exactness.max_v_error_pu <= 1e-6
    np.testing.assert_allclose(r.dlmp_usd_per_mwh[1].to_numpy(), day["price"], rtol=1e-7)
    e = r.dispatch["storage_e_kwh"].iloc[:, 0].to_numpy()
    assert e.min() >= -1e-6 and e.max() <= 600 + 1e-6 and e[-1] >= 300 - 1e-6
    ev_p = r.dispatch["ev_p_kw"].iloc[:, 0]
    assert ev_p.sum() == pytest.approx(30.0, rel=1e-6)
    assert ev_p.loc[:17].abs().max() < 1e-6 and ev_p.max() <= 7.2 + 1e-6
    # the EV charges in the cheapest hours of its window
    window = pd.Series(day["price"][18:24], index=range(18, 24))
    assert ev_p.loc[window.idxmin()] == pytest.approx(7.2, rel=1e-4)
    base_cost = default_result.objective_usd + 30.0 * window.min() / 1e3
    assert r.objective_usd <= base_cost + 1.0  # storage arbitrage can only help (+ EV energy)


def test_zip_loads_z_exact_i_linearised(feeder):
    p, q = feeder.buses.p_kw, feeder.buses.q_kvar
    z_only = ZIPLoad(z_p=0.5, i_p=0.0, p_p=0.5, z_q=0.5, i_q=0.0, p_q=0.5)
    r = solve_opf(feeder, p, q, price_usd_per_mwh=50.0, zip=z_only)
    assert r.exactness.max_v_error_pu <= 1e-6
    with_i = ZIPLoad(z_p=0.2, i_p=0.5, p_p=0.3, z_q=0.2, i_q=0.5, p_q=0.3)
    r = solve_opf(feeder, p, q, price_usd_per_mwh=50.0, zip=with_i)
    # the constant-current term is linearised around V = 1: small, visible, reported
    assert 1e-7 < r.exactness.max_v_error_pu < 1e-3


@pytest.mark.parametrize("hour", [8, 19, 20])
def test_delivery_charge_is_the_cost_of_moving_a_kwh(feeder, day, default_result, hour):
    """The charge from bus 19 (a REP plant) to bus 54 equals the change of the optimal system
    cost when 1 kW more is taken at 54 and 1 kW less at 19 (central finite difference of
    re-solved OPFs, independent of the DLMP arithmetic)."""
    dc = delivery_charge_usd_per_mwh(default_result, 19, 54)
    opf = HourlyOPF(feeder)
    p, q, pv = (day[k].loc[hour] for k in ("p", "q", "pv"))
    price = day["price"][hour]
    h = 1.0  # kW
    cost = [
        opf.solve(
            p.add(pd.Series({54: s * h, 19: -s * h}), fill_value=0),
            q,
            price,
            pv_kw=pv,
            check_exactness=False,
        ).objective_usd
        for s in (1, -1)
    ]
    fd = (cost[0] - cost[1]) / (2 * h / 1e3)
    assert fd > 0  # moving energy down the feeder costs losses
    assert dc.loc[hour] == pytest.approx(fd, rel=1e-3)
    with pytest.raises(KeyError, match="bus 999 is not in the OPF result"):
        delivery_charge_usd_per_mwh(default_result, 1, 999)


def test_bad_inputs_raise(feeder):
    with pytest.raises(ValueError, match="unknown bus"):
        solve_opf(feeder, pd.Series({999: 1.0}), pd.Series(dtype=float), price_usd_per_mwh=1.0)
    with pytest.raises(ValueError, match="exceeds its capacity"):
        solve_opf(
            feeder,
            feeder.buses.p_kw,
            feeder.buses.q_kvar,
            price_usd_per_mwh=1.0,
            pv_kw=pd.Series({53: 2000.0}),
        )
    with pytest.raises(ValueError, match="couple hours"):
        HourlyOPF(feeder, devices=[Storage(bus=3, e_max_kwh=1, p_ch_max_kw=1, p_dis_max_kw=1)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="v0_pu"):
            HourlyOPF(feeder, v0_pu=1.2)


@pytest.mark.parametrize(
    "zip_load", [None, ZIPLoad(z_p=0.2, i_p=0.5, p_p=0.3, z_q=0.3, i_q=0.3, p_q=0.4)]
)
def test_direct_clarabel_backend_matches_cvxpy_reference(feeder, day, zip_load):
    gen = RegulatedPlant(
        bus=30,
        p_min_kw=0.0,
        p_max_kw=400.0,
        q_min_kvar=-100.0,
        q_max_kvar=100.0,
        cost_a_usd_per_mw2h=30.0,
        cost_b_usd_per_mwh=40.0,
        cost_c_usd_per_h=2.0,
    )
    fast = HourlyOPF(feeder, devices=[gen], zip=zip_load, export_limit_kw=500.0)
    ref = HourlyOPF(feeder, devices=[gen], zip=zip_load, export_limit_kw=500.0, backend="cvxpy")
    assert fast.engine is not ref.engine
    for hour in (3, 12, 20):  # the fast engine is re-used across hours (in-place update)
        args = (day["p"].loc[hour], day["q"].loc[hour], day["price"][hour])
        a = fast.solve(*args, pv_kw=day["pv"].loc[hour], hour=hour)
        b = ref.solve(*args, pv_kw=day["pv"].loc[hour], hour=hour)
        assert a.objective_usd == pytest.approx(b.objective_usd, rel=1e-6)
        np.testing.assert_allclose(a.dlmp_usd_per_mwh, b.dlmp_usd_per_mwh, rtol=1e-5)
        np.testing.assert_allclose(a.dlmp_q_usd_per_mvarh, b.dlmp_q_usd_per_mvarh, atol=1e-3)
        np.testing.assert_allclose(a.v_pu, b.v_pu, atol=1e-7)
        np.testing.assert_allclose(a.dispatch["gen_p_kw"], b.dispatch["gen_p_kw"], atol=1e-3)
        assert a.exactness.max_relaxation_gap <= 1e-6


def test_reverse_flow_and_sce47_are_exact_without_remedy():
    with warnings.catch_warnings():
        warnings.simplefilter("error", OPFInexactWarning)
        raw = load_feeder("sce56")  # original 5 MW PV at bus 45: the feeder exports
        r = solve_opf(raw, raw.buses.p_kw, raw.buses.q_kvar, price_usd_per_mwh=50.0)
        assert r.p_substation_kw.iloc[0] < -1000 and r.status == "optimal"
        assert r.exactness.max_relaxation_gap <= 1e-6 and r.exactness.max_v_error_pu <= 1e-6
        assert r.dlmp_usd_per_mwh.loc[0, 1] == pytest.approx(50.0, rel=1e-8)
        f47 = load_feeder("sce47")  # zero-impedance ties to PV buses
        r = solve_opf(f47, f47.buses.p_kw, f47.buses.q_kvar, price_usd_per_mwh=50.0)
        assert r.status == "optimal"
        assert r.exactness.max_relaxation_gap <= 1e-6 and r.exactness.max_v_error_pu <= 1e-6


def test_feeder_pickles_without_compiled_models(feeder, day):
    import pickle

    HourlyOPF(feeder).solve(day["p"].loc[20], day["q"].loc[20], 50.0, pv_kw=day["pv"].loc[20])
    assert "_opf_cache" in feeder.__dict__
    clone = pickle.loads(pickle.dumps(feeder))
    assert "_opf_cache" not in clone.__dict__
    pd.testing.assert_frame_equal(clone.buses, feeder.buses)
    a = solve_opf(
        clone, day["p"].loc[20], day["q"].loc[20], price_usd_per_mwh=50.0, pv_kw=day["pv"].loc[20]
    )
    b = solve_opf(
        feeder, day["p"].loc[20], day["q"].loc[20], price_usd_per_mwh=50.0, pv_kw=day["pv"].loc[20]
    )
    np.testing.assert_allclose(a.dlmp_usd_per_mwh, b.dlmp_usd_per_mwh, rtol=1e-8)
    assert repr(feeder).startswith("Feeder(name='sce56', buses=56, lines=55")


def test_horizon_dlmp_is_derivative_of_total_cost(feeder, day):
    ess = Storage(bus=37, e_max_kwh=600.0, p_ch_max_kw=200.0, p_dis_max_kw=200.0)
    kw = dict(price_usd_per_mwh=day["price"], pv_kw=day["pv"], devices=[ess])
    base = solve_opf(feeder, day["p"], day["q"], **kw)
    h = 1.0
    for bus, hour in ((54, 20), (19, 8)):
        cost = []
        for s in (1, -1):
            p = day["p"].copy()
            p.loc[hour, bus] += s * h
            cost.append(solve_opf(feeder, p, day["q"], check_exactness=False, **kw).objective_usd)
        fd = (cost[0] - cost[1]) / (2 * h / 1e3)
        assert base.dlmp_usd_per_mwh.loc[hour, bus] == pytest.approx(fd, rel=1e-3)
