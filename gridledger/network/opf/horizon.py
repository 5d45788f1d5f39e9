"""`solve_opf`: one hour, or a horizon of hours (hour by hour with the cached one-hour model,
or one coupled problem when storage or EVs link the hours)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from gridledger.network.devices import EVCharger, Storage, ZIPLoad
from gridledger.network.feeder import Feeder
from gridledger.network.opf.hourly import HourlyOPF
from gridledger.network.opf.model import Device, hour_array
from gridledger.network.opf.result import OPFExactness, OPFResult


def solve_opf(
    feeder: Feeder,
    p_kw: pd.Series | pd.DataFrame,
    q_kvar: pd.Series | pd.DataFrame,
    *,
    price_usd_per_mwh: float | Sequence[float] | pd.Series,
    pv_kw: pd.Series | pd.DataFrame | None = None,
    devices: Sequence[Device] = (),
    include_pv: bool = True,
    include_shunts: bool = True,
    zip: ZIPLoad | Mapping[int, ZIPLoad] | None = None,
    v_min_pu: float = 0.95,
    v_max_pu: float = 1.05,
    v0_pu: float | None = None,
    loss_penalty_usd_per_mwh: float = 0.0,
    export_limit_kw: float | None = None,
    dt_h: float = 1.0,
    check_exactness: bool = True,
    gap_tol: float = 1e-6,
    workers: int | None = None,
) -> OPFResult:
    """OPF of one hour (p_kw/q_kvar Series by bus) or a horizon (DataFrames hours × buses).

    Loads are consumption (kW/kvar, generation negative) with optional ZIP dependence;
    `pv_kw` the available PV per bus (and hour), None = nameplate (feeder `pv_kw` if
    `include_pv`, plus PVPlant devices); the OPF may curtail it. Storage and EVs need a horizon.
    A horizon without storage/EVs is solved hour by hour with the cached one-hour model
    (hours are independent then), on `workers` threads (default `opf_workers`: one per core
    on a feeder of `PARALLEL_MIN_BUSES` or more, else one); with storage/EVs one coupled
    problem is solved.
    """
    opts = dict(
        devices=devices,
        include_pv=include_pv,
        include_shunts=include_shunts,
        zip=zip,
        v_min_pu=v_min_pu,
        v_max_pu=v_max_pu,
        v0_pu=v0_pu,
        export_limit_kw=export_limit_kw,
        dt_h=dt_h,
    )
    kw = dict(
        pv_kw=pv_kw,
        loss_penalty_usd_per_mwh=loss_penalty_usd_per_mwh,
        check_exactness=check_exactness,
        gap_tol=gap_tol,
    )
    multi = isinstance(p_kw, pd.DataFrame) or isinstance(q_kvar, pd.DataFrame)
    if not multi:
        return HourlyOPF(feeder, **opts).solve(p_kw, q_kvar, price_usd_per_mwh, **kw)
    hours = p_kw.index if isinstance(p_kw, pd.DataFrame) else q_kvar.index
    if any(isinstance(d, Storage | EVCharger) for d in devices):
        return HourlyOPF(feeder, hours=len(hours), **opts).solve(
            p_kw, q_kvar, price_usd_per_mwh, **kw
        )
    wall0 = time.perf_counter()
    model = HourlyOPF(feeder, **opts)
    price = hour_array(price_usd_per_mwh, hours, "price_usd_per_mwh")
    pen = hour_array(loss_penalty_usd_per_mwh, hours, "loss_penalty_usd_per_mwh")

    def row(x: Any, t: Any) -> Any:
        return x.loc[t] if isinstance(x, pd.DataFrame) else x

    def solve_hour(m: HourlyOPF, i: int, prime: bool = False) -> OPFResult | None:
        t = hours[i]
        args = (row(p_kw, t), row(q_kvar, t), price[i])
        if prime:  # the engine's first data, without a solve (see _solve_hours)
            m.prime(*args, pv_kw=row(pv_kw, t), loss_penalty_usd_per_mwh=pen[i], hour=t)
            return None
        return m.solve(
            *args, **{**kw, "pv_kw": row(pv_kw, t), "loss_penalty_usd_per_mwh": pen[i]}, hour=t
        )

    n = opf_workers(feeder, len(hours)) if workers is None else workers
    if n < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    return _concat(_solve_hours(model, solve_hour, len(hours), n), hours, wall0)


PARALLEL_MIN_BUSES = 1000
"""A horizon on a feeder this large is solved on one thread per core: Clarabel releases the GIL
while it solves, so two threads price a June day of 1-MVLV-semiurb-all (9,097 buses) in about
half the wall time; on smaller feeders a solve is too short for threads to pay."""


def opf_workers(feeder: Feeder, n_hours: int) -> int:
    """Threads for a horizon of `n_hours` independent hours: the cores this process may use
    (at most 8) on a feeder of `PARALLEL_MIN_BUSES` buses or more, else 1."""
    if feeder.n_buses < PARALLEL_MIN_BUSES or n_hours < 2:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, 8, n_hours))


def _solve_hours(
    model: HourlyOPF, solve_hour: Callable[..., Any], n_hours: int, workers: int
) -> list[OPFResult]:
    """Hours 0..n_hours-1 in order. With workers > 1 they are spread over `model` and its twins
    on threads; an engine not built yet is first given hour 0's data, as a serial loop would,
    so the twins and the results equal the serial loop's bit for bit. The earliest failing
    hour's error is raised, as a serial loop would."""
    if workers == 1 or model.backend != "clarabel" or n_hours < 2:
        return [solve_hour(model, i) for i in range(n_hours)]
    if model.engine.solver is None:
        solve_hour(model, 0, prime=True)
    models = [model, *(model.twin() for _ in range(workers - 1))]
    chunks = [list(range(k, n_hours, workers)) for k in range(workers)]

    def run(k: int) -> dict[int, OPFResult | Exception]:
        out: dict[int, OPFResult | Exception] = {}
        for i in chunks[k]:
            try:
                out[i] = solve_hour(models[k], i)
            except Exception as exc:  # re-raised below in hour order
                out[i] = exc
                break
        return out

    with ThreadPoolExecutor(workers, thread_name_prefix="opf") as pool:
        done: dict[int, OPFResult | Exception] = {}
        for part in pool.map(run, range(workers)):
            done.update(part)
    failed = [i for i, r in done.items() if isinstance(r, Exception)]
    if failed:
        raise done[min(failed)]
    return [done[i] for i in range(n_hours)]  # type: ignore[misc]


def _concat(parts: list[OPFResult], hours: pd.Index, wall0: float) -> OPFResult:
    """One result of a horizon from independent one-hour results."""
    statuses = [r.status for r in parts]
    status = next(
        (s for s in ("inexact", "remedied", "optimal_inaccurate") if s in statuses), "optimal"
    )
    gap = np.concatenate([r.exactness.gap for r in parts])
    verr = np.concatenate([r.exactness.v_error for r in parts])
    cur = np.concatenate([r.exactness.current_gap for r in parts])
    first = parts[0]
    return OPFResult(
        hours=hours,
        buses=first.buses,
        objective_usd=float(sum(r.objective_usd for r in parts)),
        exactness=OPFExactness.of_hours(hours, gap, verr, cur),
        status=status,
        loss_penalty_usd_per_mwh=float(max(r.loss_penalty_usd_per_mwh for r in parts)),
        solver_time_s=float(sum(r.solver_time_s for r in parts)),
        wall_time_s=time.perf_counter() - wall0,
        arrays={k: np.concatenate([r.arrays[k] for r in parts]) for k in first.arrays},
        dispatch_arrays={
            k: (labels, np.concatenate([r.dispatch_arrays[k][1] for r in parts]))
            for k, (labels, _) in first.dispatch_arrays.items()
        },
    )
