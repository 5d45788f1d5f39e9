"""Scripted adversaries of a market day (issue 7) and their measured outcomes.

Sybil producers (`Scenario.sybil_identities`): the first cheater owns that many fresh
identities, each registered by the operator at its bus (paying `registration_bond_usd` into the
escrow). When its reputation has fallen below the users' median rt and below what a fresh identity
starts with (`initial_reputation`), it sells its energy under the next fresh identity. The
mitigation is measured: with `initial_reputation` below the users' rt a fresh identity sells
nothing; the bond makes every identity cost `registration_bond_usd`.

Non-delivering producer (`Scenario.cheat_producers`, `cheat_delivery_fraction`): the producers
with the largest batteries sell as usual but deliver only a fraction of what they sold. The TDNO
meters that, the LETB escrow pays them only for delivered Wh and refunds the buyers the rest, the
buyers' smart meters rate the trades low and the reputation falls, so users whose reliability
threshold rt is above it stop buying from them. `attack_summary` measures all of this from the
chain (token balances) and the trade rows; the run summary prints one line per attack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from gridledger.chain import send_many
from gridledger.chain.accounts import derive_account
from gridledger.day.chains import SELLER_SEED_UNITS, commitment, one_event
from gridledger.day.funding import budget_wei
from gridledger.market.contracts import usd_to_base_units

if TYPE_CHECKING:
    from gridledger.agents.producer import LocalProducer
    from gridledger.model import EnergyMarketModel
    from gridledger.scenario import Scenario


class AttackSetupError(ValueError):
    """An attack option cannot be applied to this world (names the scenario field)."""


def mark_cheaters(sc: Scenario, producers: list[LocalProducer]) -> list[LocalProducer]:
    """Make the `cheat_producers` producers with the largest batteries under-deliver; returns
    them (the model's `cheaters`)."""
    n = sc.cheat_producers
    if n > len(producers):
        raise AttackSetupError(
            f"scenario field 'cheat_producers' = {n}: only {len(producers)} local "
            "producers in this world"
        )
    order = sorted(producers, key=lambda p: (-p.capacity_kwh, p.index))
    cheaters = order[:n]
    for p in cheaters:
        p.cheat_fraction = sc.cheat_delivery_fraction
    if sc.sybil_identities and not cheaters:
        raise AttackSetupError(
            f"scenario field 'sybil_identities' = {sc.sybil_identities}: needs an owner, "
            "set cheat_producers >= 1"
        )
    return cheaters


def register_sybils(model: EnergyMarketModel) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """Fresh identities of the first cheater: keys, gas, bond, approval, operator registration.

    Returns the identities (account, signer, producer_id, used_from) and the extra
    registrations per LETB area (the model's `sybils` and `extra_registrations`)."""
    sc = model.params
    if not sc.sybil_identities:
        return [], {}
    if not model.letb:  # scenario_checks refuses this; a model built otherwise stops here
        raise AttackSetupError(
            f"scenario field 'sybil_identities' = {sc.sybil_identities}: the sybil attack "
            f"registers on the paper's LETB, market_mechanism = {sc.market_mechanism!r} has none"
        )
    owner = model.cheaters[0]
    ch, tok, market = model.chains["letb"], model.tokens["letb"], model.letb[owner.area]
    bond = usd_to_base_units(sc.registration_bond_usd)
    accts = [derive_account(sc.seed, "sybil", i) for i in range(sc.sybil_identities)]
    signers = [ch.signer(a, agent=f"sybil{i}") for i, a in enumerate(accts)]
    ch.fund([a.address for a in accts], budget_wei(model, "letb", "seller"))
    admin, op = model.signers[("admin", "letb")], model.signers[("operator", "letb")]
    # bond + the seed every seller gets at set-up (day/chains.py SELLER_SEED_UNITS)
    send_many([(admin, tok.transfer(a.address, bond + SELLER_SEED_UNITS)) for a in accts])
    if bond:
        send_many([(s, tok.approve(market.address)) for s in signers])
    res = send_many(
        [
            (op, market.register(a.address, commitment(sc.seed, "sybil", i), owner.bus, 1))
            for i, a in enumerate(accts)
        ]
    )
    sybils = []
    for a, s, r in zip(accts, signers, res, strict=True):
        ev = one_event(market, r, "Registered")
        sybils.append(
            {"account": a, "signer": s, "producer_id": int(ev["producer_id"]), "used_from": None}
        )
    return sybils, {owner.area: len(accts)}


def switch_identity(model: EnergyMarketModel, t: int) -> None:
    """After hour t: the owner takes the next fresh identity if its own is worth less."""
    if not model.sybils:
        return
    sc = model.params
    owner = model.cheaters[0]
    median_rt = float(np.median([u.rt for u in model.users]))
    rep = owner.reputation if owner.reputation is not None else sc.initial_reputation
    fresh = [s for s in model.sybils if s["used_from"] is None]
    if fresh and rep < median_rt and rep < sc.initial_reputation:
        s = fresh[0]
        s["used_from"] = t + 1
        owner.account, owner.signer = s["account"], s["signer"]
        owner.producer_id, owner.reputation = s["producer_id"], sc.initial_reputation
        model.sybil_switch_hours.append(t + 1)


def start_balances(model: EnergyMarketModel) -> tuple[dict[int, str], dict[str, int]]:
    """Token balances of the adversaries after set-up (the measured outcome's zero point):
    each cheater's own address by producer index, and the LETB token balance by address."""
    tok = model.tokens["letb"]
    cheater_main = {p.index: p.account.address for p in model.cheaters}
    addrs = [p.account.address for p in model.cheaters]
    addrs += [s["account"].address for s in model.sybils]
    return cheater_main, {a: tok.balance_of(a) for a in addrs}


def record_hour(model: EnergyMarketModel, t: int) -> None:
    """After feedback: each adversary's sold / delivered Wh and reputation in hour t."""
    for p in model.cheaters:
        model.attack_hours.append(
            {
                "t": t,
                "producer_id": p.index,
                "identity": p.account.address,
                "sold_wh": int(p.sold_wh),
                "delivered_wh": int(p.delivered_wh),
                "reputation": p.reputation,
            }
        )
    switch_identity(model, t)


def attack_summary(model: EnergyMarketModel, trades: Any) -> list[dict[str, Any]]:
    """One dict per attack tried: what was tried, what happened, tokens and Wh unaccounted.

    The rows of `gridledger.day.refusals.probe_refusals` (if it ran) come last.
    """
    probes = list(model.refusal_rows)
    if not model.cheaters:
        return probes
    sc = model.params
    tok = model.tokens["letb"]
    letb = trades[trades["chain"] == "letb"]
    hours = model.attack_hours
    rts = np.array([u.rt for u in model.users])
    median_rt = float(np.median(rts))
    out = []
    for p in model.cheaters:
        addr = model.cheater_main[p.index]
        mine = letb[letb["seller"] == addr]
        h = [r for r in hours if r["identity"] == addr]
        # exact integer base units (int64 would overflow: price ~1e14 units/Wh)
        fills = list(zip(mine["e_wh"], mine["delivered_wh"], mine["price"], strict=True))
        paid_units = sum(int(d) * int(pr) for _e, d, pr in fills)
        refunded_units = sum((int(e) - int(d)) * int(pr) for e, d, pr in fills)
        balance_change = tok.balance_of(addr) - model.cheater_balance0[addr]
        metered_wh = sum(r["delivered_wh"] for r in h)
        settled_wh = int(mine["delivered_wh"].sum())
        rep_path = [r["reputation"] for r in h if r["reputation"] is not None]
        rep_end = rep_path[-1] if rep_path else sc.initial_reputation
        drop_t = next(
            (r["t"] for r in h if r["reputation"] is not None and r["reputation"] < median_rt),
            None,
        )
        after = letb if drop_t is None else letb[letb["t"] > drop_t]
        # reputation the buyers saw in hour t = after hour t-1's feedback
        rep_seen = {r["t"] + 1: r["reputation"] for r in h}
        rep_seen[0] = sc.initial_reputation
        rt_of = {u.unique_id: u.rt for u in model.users}
        above = [
            int(e)
            for tt, b, e in zip(mine["t"], mine["buyer_id"], mine["e_wh"], strict=True)
            if rt_of[b] > (rep_seen.get(int(tt)) or sc.initial_reputation)
        ]
        out.append(
            {
                "scenario": "non-delivering producer",
                "producer_id": p.index,
                "tried": f"producer {p.index} delivers {sc.cheat_delivery_fraction:.0%} of what "
                "it sells",
                "sold_wh": int(mine["e_wh"].sum()),
                "delivered_wh": settled_wh,
                "paid_usd": paid_units / 1e18,
                "refunded_usd": refunded_units / 1e18,
                "balance_change_usd": balance_change / 1e18,
                "reputation_start": sc.initial_reputation,
                "reputation_end": rep_end,
                "median_rt": median_rt,
                "hour_below_median_rt": drop_t,
                "sold_wh_by_hour": {int(r["t"]): r["sold_wh"] for r in h if r["sold_wh"]},
                "sold_wh_after_drop": int(after[after["seller"] == addr]["e_wh"].sum()),
                "honest_wh_after_drop": int(after[after["seller"] != addr]["e_wh"].sum()),
                "sold_wh_to_buyers_rt_above_reputation": sum(above),
                # paid on chain vs delivered x price; metered (TDNO) vs settled (chain)
                "tokens_unaccounted": abs(balance_change - paid_units),
                "wh_unaccounted": abs(metered_wh - settled_wh),
            }
        )
    if model.sybils:
        out.append(sybil_summary(model, letb, tok))
    for o in out:
        if "happened" in o:
            continue
        o["happened"] = (
            f"paid for {o['delivered_wh']:,} of {o['sold_wh']:,} Wh, buyers refunded "
            f"${o['refunded_usd']:.2f}; reputation {o['reputation_start']} -> "
            f"{o['reputation_end']}; sold {o['sold_wh_after_drop']:,} Wh after falling below "
            f"median rt {o['median_rt']:.0f} (honest producers {o['honest_wh_after_drop']:,} Wh), "
            f"{o['sold_wh_to_buyers_rt_above_reputation']} Wh to buyers with rt above it"
        )
    return out + probes


def sybil_summary(model: EnergyMarketModel, letb: Any, tok: Any) -> dict[str, Any]:
    """What the owner's fresh identities achieved and what they cost (bond, on chain)."""
    sc = model.params
    addrs = {s["account"].address for s in model.sybils}
    used = [s for s in model.sybils if s["used_from"] is not None]
    theirs = letb[letb["seller"].isin(addrs)]
    rt_of = {u.unique_id: u.rt for u in model.users}
    paid_units = sum(
        int(d) * int(pr) for d, pr in zip(theirs["delivered_wh"], theirs["price"], strict=True)
    )
    balance_change = sum(tok.balance_of(a) - model.cheater_balance0[a] for a in addrs)
    metered_wh = sum(r["delivered_wh"] for r in model.attack_hours if r["identity"] in addrs)
    settled_wh = int(theirs["delivered_wh"].sum())
    buyers_rt = sorted({rt_of[b] for b in theirs["buyer_id"]})
    bond_usd = sc.registration_bond_usd * len(model.sybils)
    sold_wh = int(theirs["e_wh"].sum())
    median_rt = float(np.median(list(rt_of.values())))
    # a boolean Series, not a list: an empty list would select columns, not rows
    above = theirs[theirs["buyer_id"].map(rt_of) > median_rt]
    return {
        "scenario": "sybil producers",
        "tried": f"producer {model.cheaters[0].index} registers {len(model.sybils)} fresh "
        f"identities (start reputation {sc.initial_reputation}, bond "
        f"${sc.registration_bond_usd:.2f} each)",
        "identities_registered": len(model.sybils),
        "identities_used": len(used),
        "switch_hours": list(model.sybil_switch_hours),
        "sybil_cost_usd": bond_usd,
        "sybil_wh_sold": sold_wh,
        "sybil_revenue_usd": paid_units / 1e18,
        "sybil_buyers_rt": buyers_rt,
        "sybil_wh_to_buyers_above_median_rt": int(above["e_wh"].sum()),
        "net_gain_usd": paid_units / 1e18 - bond_usd,
        "balance_change_usd": balance_change / 1e18,
        "tokens_unaccounted": abs(balance_change - paid_units),
        "wh_unaccounted": abs(metered_wh - settled_wh),
        "happened": f"{len(used)} of {len(model.sybils)} identities used (hours "
        f"{model.sybil_switch_hours}); sold {sold_wh:,} Wh for ${paid_units / 1e18:.2f} "
        f"after bonds of ${bond_usd:.2f}"
        + (f"; buyers' rt {buyers_rt[0]}..{buyers_rt[-1]}" if buyers_rt else "")
        + f"; {int(above['e_wh'].sum()):,} Wh to buyers above the median rt {median_rt:.0f}",
    }
