"""A horizon of independent hours on threads (network/opf/horizon.py `_solve_hours`): the same
bits as the serial loop, the earliest infeasible hour's error, one thread on small feeders.

Real Clarabel on a 1,200-bus synthetic feeder (above `PARALLEL_MIN_BUSES`)."""

import numpy as np
import pandas as pd
import pytest

from gridledger.network import OPFInfeasibleError, default_day, solve_opf
from gridledger.network.feeder import load_feeder, synthetic_feeder
from gridledger.network.opf.horizon import PARALLEL_MIN_BUSES, opf_workers

N_BUSES = 1200


def _feeder():
    """A fresh feeder each time: the compiled engine is cached on the feeder object."""
    return synthetic_feeder(N_BUSES, load_kw=0.5, branching=40)


def _day(f, hours=24):
    shape = default_day(0).load[:hours]
    cols = f.buses.index
    p = pd.DataFrame(np.outer(shape, f.buses.p_kw), columns=cols)
    q = pd.DataFrame(np.outer(shape, f.buses.q_kvar), columns=cols)
    return p, q, 100.0 + 20.0 * np.sin(np.arange(hours))


def test_threads_give_the_serial_bits():
    assert N_BUSES >= PARALLEL_MIN_BUSES
    p, q, price = _day(_feeder())
    serial = solve_opf(_feeder(), p, q, price_usd_per_mwh=price, workers=1)
    threaded = solve_opf(_feeder(), p, q, price_usd_per_mwh=price, workers=3)
    assert threaded.status == serial.status
    assert threaded.objective_usd == serial.objective_usd
    for k, a in serial.arrays.items():  # every hour, bus and line: not merely close
        assert np.array_equal(threaded.arrays[k], a), k
    np.testing.assert_array_equal(threaded.exactness.gap, serial.exactness.gap)
    # an engine already used for another day (built with that day's first hour) is twinned
    # from its own first data: the threads still equal a serial loop on it
    f = _feeder()
    solve_opf(f, p.iloc[5:7], q.iloc[5:7], price_usd_per_mwh=price[5:7], workers=1)
    again_serial = solve_opf(f, p, q, price_usd_per_mwh=price, workers=1)
    again_threads = solve_opf(f, p, q, price_usd_per_mwh=price, workers=2)
    for k, a in again_serial.arrays.items():
        assert np.array_equal(again_threads.arrays[k], a), k


def test_the_earliest_infeasible_hour_is_raised():
    f = _feeder()
    p, q, price = _day(f, hours=8)
    far = f.buses.index[-1]
    for t in (3, 6):  # a load no voltage within limits can serve
        p.loc[t, far] = 1000.0  # kW: 0.945 p.u. at best, below the 0.95 limit
    errors = []
    for workers in (1, 2):
        with pytest.raises(OPFInfeasibleError) as exc:
            solve_opf(_feeder(), p, q, price_usd_per_mwh=price, workers=workers)
        errors.append(exc.value)
    assert errors[0].hour == errors[1].hour == 3
    assert str(errors[0]) == str(errors[1])


def test_one_thread_on_small_feeders_and_bad_workers_named():
    sce = load_feeder("sce56")
    assert opf_workers(sce, 24) == 1
    assert opf_workers(_feeder(), 1) == 1
    assert 1 <= opf_workers(_feeder(), 24) <= 8
    p, q, price = _day(sce, hours=2)
    with pytest.raises(ValueError, match="workers must be >= 1, got 0"):
        solve_opf(sce, p, q, price_usd_per_mwh=price, workers=0)
