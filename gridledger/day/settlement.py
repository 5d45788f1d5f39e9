"""Phases 6-7 of a market hour: the TDNO meters and settles, users' smart meters rate trades.

Also the AC power flows of the metered hour (trading and baseline) and the trade rows of
Results.trades, each built from the contracts' own Trade events.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np

from gridledger.agents.tdno import pro_rata
from gridledger.agents.user import meter_score
from gridledger.chain import TxResult
from gridledger.day.chains import events, send_phase
from gridledger.day.conservation import ConservationError
from gridledger.market.contracts import price_from_base_units_per_wh, usd_from_base_units
from gridledger.network.powerflow import run_power_flow

if TYPE_CHECKING:
    from gridledger.model import EnergyMarketModel

MAX_SCORE = 5
"""Smart-meter rating scale 0..MAX_SCORE (gridledger/contracts/README.md)."""


def phase6_tdno(
    model: EnergyMarketModel,
    t: int,
    letb_req: dict[int, dict[str, Any]],
    retb_trades: dict[int, dict[str, Any]],
) -> dict[str, Any]:
    """Stage 3: meter each seller (faults, REP forecast error), split its delivery pro rata over
    its trades, confirm on chain (escrow pays; LETB credits, RETB refunds the rest), balance
    shortfalls from the grid, pay exports at the feed-in tariff, run the hour's AC power flows."""
    sc = model.params
    faults = model.faults[t]
    # what each producer sold, trade by trade
    prod_by_addr = {p.account.address: p for p in model.producers}
    sold: dict[str, list[tuple[int, int, int]]] = defaultdict(list)  # seller -> (uid, i, e)
    for uid, req in letb_req.items():
        for i, f in enumerate(req["fills"]):
            sold[f["seller"]].append((uid, i, int(f["e_wh"])))
    delivered_letb: dict[int, list[int]] = {
        uid: [0] * len(req["fills"]) for uid, req in letb_req.items()
    }
    for p in model.producers:
        trades = sold.get(p.account.address, [])
        p.sold_wh = sum(e for _, _, e in trades)
        fault = sc.fault_delivery_fraction if faults[p.index] else None
        deliverable = p.deliverable_wh(fault)
        split = pro_rata(deliverable, [e for _, _, e in trades])
        for (uid, i, _e), d in zip(trades, split, strict=True):
            delivered_letb[uid][i] = d
        p.settle(sum(split), sc.dt_h)
    unknown = set(sold) - set(prod_by_addr)
    if unknown:
        raise ConservationError(f"hour {t}: LETB trades by unknown sellers {sorted(unknown)}")
    delivered_retb: dict[int, int] = {}
    n_prod = len(model.producers)
    for r in model.reps:
        trades = [(uid, int(x["trade"]["e_wh"])) for uid, x in retb_trades.items() if x["rep"] is r]
        produced = r.produced_wh(t, sc.dt_h)
        deliverable = min(r.sold_wh, produced)
        if faults[n_prod + r.index]:
            deliverable = int(deliverable * sc.fault_delivery_fraction)
        split = pro_rata(deliverable, [e for _, e in trades])
        for (uid, _e), d in zip(trades, split, strict=True):
            delivered_retb[uid] = d
        r.settle(t, sum(split), sc.dt_h)
    # TDNO confirms on chain -> escrow pays producers; LETB credits the undelivered value to the
    # buyer inside the contract (spent by its next request), RETB refunds it. One settle_many
    # call per market (and per MAX_BATCH requests), every request checked as by settle().
    settled = settle_on_chain(model, t, letb_req, delivered_letb, retb_trades, delivered_retb)
    tariff = float(model.tariff[t])
    for (kind, uid), ev in settled.items():
        is_letb = kind == "letb"
        u = (letb_req if is_letb else retb_trades)[uid]["user"]
        paid = usd_from_base_units(int(ev["paid"]))
        if is_letb and ev.get("credit") is not None:
            model.letb_credit_units[u.account.address] = int(ev["credit"])
        if is_letb:
            d = sum(delivered_letb[uid])
            u.local_usd += paid
            short = u.local_wh - d
            u.local_wh = d
        else:
            d = delivered_retb[uid]
            u.renewable_usd += paid
            short = u.renewable_wh - d
            u.renewable_wh = d
        if short > 0:  # balancing: the grid makes up what was not delivered
            model.grid.sell(u, short, tariff)
    # producers' exports and REP exports are bought by the grid at the feed-in tariff
    for p in model.producers:
        p.revenue_hour_usd = model.grid.buy_export(p.exported_kwh, model.fit)
    for r in model.reps:
        model.grid.buy_export(r.exported_kwh, model.fit)
    power_flows(model, t)
    return {"letb": delivered_letb, "retb": delivered_retb}


def settle_on_chain(
    model: EnergyMarketModel,
    t: int,
    letb_req: dict[int, dict[str, Any]],
    delivered_letb: dict[int, list[int]],
    retb_trades: dict[int, dict[str, Any]],
    delivered_retb: dict[int, int],
) -> dict[tuple[str, int], dict[str, Any]]:
    """The TDNO's settle_many calls of hour t (one per market and MAX_BATCH requests, one block
    per chain); returns each request's Settled event by ("letb" | "retb", user id), in the order
    of `letb_req` then `retb_trades`, with the buyer's LETB credit after it under "credit"
    (None if no Credited event: nothing refunded, or the refund was transferred)."""
    td = {c: model.signers[("tdno", c)] for c in model.chains}
    items: list[tuple[Any, Any]] = []
    markets: list[Any] = []
    by_area: dict[int, list[int]] = defaultdict(list)
    for uid, req in letb_req.items():
        by_area[req["user"].area].append(uid)
    for area, uids in sorted(by_area.items()):
        market = model.letb[area]
        batch = [
            {
                "buyer": letb_req[uid]["user"].account.address,
                "nonce": letb_req[uid]["nonce"],
                "fills": letb_req[uid]["fills"],
                "delivered_wh": delivered_letb[uid],
            }
            for uid in uids
        ]
        calls = market.settle_many(t, batch)
        items += [(td["letb"], c) for c in calls]
        markets += [market] * len(calls)
    retb_keys = list(retb_trades)
    calls = model.retb.settle_many(
        [retb_trades[uid]["trade"] for uid in retb_keys], [delivered_retb[uid] for uid in retb_keys]
    )
    items += [(td["retb"], c) for c in calls]
    markets += [model.retb] * len(calls)
    results = send_phase(model, "settle", items)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for market, res in zip(markets, results, strict=True):
        kind = "letb" if market is not model.retb else "retb"
        credit: dict[str, int] = {}
        for name, ev in events(market, res):
            if name == "Credited":
                credit[ev["buyer"]] = int(ev["credit"])
            elif name == "Settled":
                key = (kind, ev["buyer"])
                if key in found:
                    raise ConservationError(
                        f"hour {t}: {kind} request of {ev['buyer']} settled twice"
                    )
                found[key] = dict(ev, credit=credit.get(ev["buyer"]))
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for kind, reqs in (("letb", letb_req), ("retb", retb_trades)):
        for uid, req in reqs.items():
            ev = found.pop((kind, req["user"].account.address), None)
            if ev is None:
                raise ConservationError(f"hour {t}: {kind} request of user {uid} was not settled")
            out[(kind, uid)] = ev
    if found:
        raise ConservationError(f"hour {t}: settlements of no request of the hour: {sorted(found)}")
    return out


def power_flows(model: EnergyMarketModel, t: int) -> None:
    """AC power flow of the metered hour (trading) and of the baseline (batteries idle)."""
    t0 = time.perf_counter()
    feeder, pos = model.feeder, model.feeder.topology.pos
    n = feeder.n_buses
    p_load, q_load, pv_self = np.zeros(n), np.zeros(n), np.zeros(n)
    for u in model.users:
        i = pos[u.bus]
        p_load[i] += u.load_kw[t] + u.ev_kw[t]
        q_load[i] += u.q_kvar[t]
        pv_self[i] += u.self_pv_kw[t]
    rep_out, batt = np.zeros(n), np.zeros(n)
    for r in model.reps:
        rep_out[pos[r.bus]] += r.actual_kw[t]
    for p in model.producers:
        batt[pos[p.bus]] += p.battery_power_kw(model.params.dt_h)
    if model.params.include_feeder_pv:
        rep_out += feeder.buses["pv_kw"].to_numpy() * model.pv_shape[t]
    # battery discharge is an injection, charging a load (constant power both)
    model.last_power_flow = run_power_flow(
        feeder, p_load, q_load, pv_kw=pv_self + rep_out + batt, include_pv=True, zip=model.zip
    )
    model.last_power_flow_baseline = run_power_flow(
        feeder, p_load, q_load, pv_kw=pv_self + rep_out, include_pv=True, zip=model.zip
    )
    model.timing["power_flow_s"] += time.perf_counter() - t0


def phase7_feedback(
    model: EnergyMarketModel,
    t: int,
    letb_req: dict[int, dict[str, Any]],
    retb_trades: dict[int, dict[str, Any]],
    metered: dict[str, Any],
) -> int:
    """Stage 4: smart meters rate each trade; returns the incentive base units minted."""
    sc = model.params
    items = []
    keys: list[tuple[str, int]] = []
    for uid, req in letb_req.items():
        u = req["user"]
        scores = [
            meter_score(int(f["e_wh"]), d, sc.feedback_tolerance, MAX_SCORE)
            for f, d in zip(req["fills"], metered["letb"][uid], strict=True)
        ]
        req["scores"] = scores
        items.append(
            (
                u.letb_signer,
                model.letb[u.area].feedback(
                    u.account.address, req["nonce"], t, req["fills"], scores
                ),
            )
        )
        keys.append(("letb", uid))
    for uid, x in retb_trades.items():
        u = x["user"]
        d = metered["retb"][uid]
        x["score"] = meter_score(int(x["trade"]["e_wh"]), d, sc.feedback_tolerance, MAX_SCORE)
        items.append((u.retb_signer, model.retb.feedback(x["trade"], d, x["score"])))
        keys.append(("retb", uid))
    results = send_phase(model, "feedback", items)
    minted_units = 0
    prod_by_addr = {p.account.address: p for p in model.producers}
    rep_by_addr = {r.account.address: r for r in model.reps}
    for (kind, uid), res in zip(keys, results, strict=True):
        if kind == "letb":
            req = letb_req[uid]
            u = req["user"]
            for name, ev in events(model.letb[u.area], res):
                if name == "Rated":
                    prod_by_addr[ev["seller"]].reputation = int(ev["reputation"])
            trade_rows_letb(model, t, req, metered["letb"][uid])
        else:
            x = retb_trades[uid]
            incentive = 0
            for name, ev in events(model.retb, res):
                if name == "Rated":
                    rep_by_addr[ev["rep"]].reputation = int(ev["reputation"])
                elif name == "IncentiveMinted":
                    incentive = int(ev["incentive"])
            minted_units += incentive
            x["rep"].incentive_usd += usd_from_base_units(incentive)
            trade_row_retb(model, t, x, metered["retb"][uid], incentive)
    return minted_units


def trade_rows_letb(
    model: EnergyMarketModel, t: int, req: dict[str, Any], delivered: list[int]
) -> None:
    u = req["user"]
    res: TxResult = req["tx"]
    for f, d, s in zip(req["fills"], delivered, req["scores"], strict=True):
        model.trade_rows.append(
            {
                "t": t,
                "chain": "letb",
                "area": u.area,
                "buyer": u.account.address,
                "buyer_id": u.unique_id,
                "seller": f["seller"],
                "producer_id": int(f["producer_id"]),
                "nonce": req["nonce"],
                "index": int(f["index"]),
                "e_wh": int(f["e_wh"]),
                "price": int(f["price"]),
                "price_usd_per_mwh": price_from_base_units_per_wh(int(f["price"])),
                "delivered_wh": int(d),
                "feedback": int(s),
                "incentive_usd": 0.0,
                "tx_hash": res.tx_hash,
                "block": res.block_number,
            }
        )


def trade_row_retb(
    model: EnergyMarketModel, t: int, x: dict[str, Any], delivered: int, incentive: int
) -> None:
    u, tr, res = x["user"], x["trade"], x["tx"]
    model.trade_rows.append(
        {
            "t": t,
            "chain": "retb",
            "area": -1,
            "buyer": u.account.address,
            "buyer_id": u.unique_id,
            "seller": tr["rep"],
            "producer_id": x["rep"].index,
            "nonce": int(tr["nonce"]),
            "index": 0,
            "e_wh": int(tr["e_wh"]),
            "price": int(tr["price"]),
            "price_usd_per_mwh": price_from_base_units_per_wh(int(tr["price"])),
            "delivered_wh": int(delivered),
            "feedback": int(x["score"]),
            "incentive_usd": usd_from_base_units(incentive),
            "tx_hash": res.tx_hash,
            "block": res.block_number,
        }
    )
