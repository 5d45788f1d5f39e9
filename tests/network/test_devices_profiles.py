"""Device validation (paper eq. 1-12) and the default-day profiles."""

import numpy as np
import pytest

from gridledger.network import (
    DeviceError,
    EVCharger,
    PVPlant,
    RegulatedPlant,
    Storage,
    ZIPLoad,
    default_day,
    feed_in_tariff,
    load_shape,
    pv_shape,
    tou_tariff,
    wholesale_price,
)


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: RegulatedPlant(bus=3, p_min_kw=100, p_max_kw=50), "p_max_kw"),
        (
            lambda: RegulatedPlant(bus=3, p_min_kw=0, p_max_kw=50, cost_a_usd_per_mw2h=-1),
            "cost_a_usd_per_mw2h",
        ),
        (lambda: RegulatedPlant(bus=3, p_min_kw=0, p_max_kw=float("nan")), "p_max_kw"),
        (lambda: PVPlant(bus=53, capacity_kw=-1), "capacity_kw"),
        (
            lambda: EVCharger(bus=48, p_max_kw=7, e_demand_kwh=10, t_arrive=5, t_depart=5),
            "t_depart",
        ),
        (lambda: ZIPLoad(z_p=0.5, i_p=0.5, p_p=0.5), "p_p"),
        (lambda: ZIPLoad(z_q=-0.1, i_q=0.1, p_q=1.0), "z_q"),
        (
            lambda: Storage(bus=37, e_max_kwh=100, p_ch_max_kw=10, p_dis_max_kw=10, eta_ch=1.2),
            "eta_ch",
        ),
        (
            lambda: Storage(
                bus=37, e_max_kwh=100, p_ch_max_kw=10, p_dis_max_kw=10, e_min_kwh=20, e_init_kwh=10
            ),
            "e_init_kwh",
        ),
    ],
)
def test_invalid_devices_name_the_field(factory, field):
    with pytest.raises(DeviceError, match=field):
        factory()


def test_device_models():
    g = RegulatedPlant(
        bus=30,
        p_min_kw=0,
        p_max_kw=500,
        cost_a_usd_per_mw2h=20,
        cost_b_usd_per_mwh=40,
        cost_c_usd_per_h=5,
    )
    assert g.cost_usd_per_h(500) == pytest.approx(20 * 0.25 + 40 * 0.5 + 5)
    ev = EVCharger(bus=48, p_max_kw=7, e_demand_kwh=30, t_arrive=18, t_depart=22)
    with pytest.raises(DeviceError, match="exceeds p_max_kw x window = 28 kWh"):
        ev.check_feasible()
    s = Storage(bus=37, e_max_kwh=100, p_ch_max_kw=10, p_dis_max_kw=10, e_min_kwh=20)
    assert s.e0_kwh == 60
    z = ZIPLoad(z_p=0.2, i_p=0.5, p_p=0.3, z_q=1.0, i_q=0.0, p_q=0.0)
    assert z.factors(1.0) == pytest.approx((1.0, 1.0))
    assert z.factors(0.9) == pytest.approx((0.2 * 0.81 + 0.45 + 0.3, 0.81))
    (k0p, k1p), (k0q, k1q) = z.opf_coefficients()
    # linear in v = V²: exact at V = 1, tangent there, Z term exact everywhere
    assert k0p + k1p == pytest.approx(1.0) and (k0q, k1q) == (0.0, 1.0)
    v = 0.95**2
    assert abs(k0p + k1p * v - z.factors(0.95)[0]) < 0.5 * 0.05**2 * 0.5 + 1e-12


def test_load_shape_two_peaks():
    shape = load_shape(24)
    assert shape.max() == pytest.approx(1.0, abs=1e-3)
    assert int(np.argmax(shape)) == 20
    morning = shape[4:13]
    assert int(np.argmax(morning)) + 4 == 8
    assert shape[8] > shape[4] and shape[8] > shape[13] and shape[3] < 0.6


def test_pv_shape_clear_sky_and_clouds():
    clear = pv_shape(24)
    assert clear[:6].max() == 0 and clear[18:].max() == 0
    assert int(np.argmax(clear)) in (11, 12) and clear.max() > 0.98
    cloudy = pv_shape(24, rng=np.random.default_rng(1), cloudiness=0.3)
    assert np.all(cloudy <= clear + 1e-12) and np.all(cloudy >= 0.7 * clear - 1e-12)
    assert not np.allclose(cloudy, clear)


def test_tariffs_and_prices():
    tou = tou_tariff(24)
    assert tou[3] == 120 and tou[8] == 280 and tou[12] == 180 and tou[20] == 280
    assert feed_in_tariff(24, value_usd_per_mwh=55.0).tolist() == [55.0] * 24
    assert (feed_in_tariff(24) < tou).all()
    w = wholesale_price(24)
    assert int(np.argmax(w)) == 20 and w.min() > 0


def test_default_day_reproducible_from_seed():
    a, b, c = default_day(7), default_day(7), default_day(8)
    for name in ("load", "pv", "wholesale_usd_per_mwh"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert not np.array_equal(getattr(a, name), getattr(c, name))
    assert a.load.shape == a.pv.shape == (24,)
    with pytest.raises(ValueError, match="hours"):
        load_shape(0)
