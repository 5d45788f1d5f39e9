"""Scripted adversaries of a market day (issue 7) and their measured outcomes.

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

if TYPE_CHECKING:
    from gridledger.model import EnergyMarketModel


class AttackSetupError(ValueError):
    """An attack option cannot be applied to this world (names the scenario field)."""


def mark_cheaters(model: EnergyMarketModel) -> None:
    """Make the `cheat_producers` producers with the largest batteries under-deliver."""
    sc = model.params
    n = sc.cheat_producers
    if n > len(model.producers):
        raise AttackSetupError(
            f"scenario field 'cheat_producers' = {n}: only {len(model.producers)} local "
            "producers in this world"
        )
    order = sorted(model.producers, key=lambda p: (-p.capacity_kwh, p.index))
    model.cheaters = order[:n]
    for p in model.cheaters:
        p.cheat_fraction = sc.cheat_delivery_fraction
    model.attack_hours: list[dict[str, Any]] = []


def start_balances(model: EnergyMarketModel) -> None:
    """Token balances of the adversaries after set-up (the measured outcome's zero point)."""
    tok = model.tokens["letb"]
    model.cheater_balance0 = {
        p.account.address: tok.balance_of(p.account.address) for p in model.cheaters
    }


def record_hour(model: EnergyMarketModel, t: int) -> None:
    """After feedback: each adversary's sold / delivered Wh and reputation in hour t."""
    for p in model.cheaters:
        model.attack_hours.append(
            {
                "t": t,
                "producer_id": p.index,
                "sold_wh": int(p.sold_wh),
                "delivered_wh": int(p.delivered_wh),
                "reputation": p.reputation,
            }
        )


def attack_summary(model: EnergyMarketModel, trades: Any) -> list[dict[str, Any]]:
    """One dict per attack tried: what was tried, what happened, tokens and Wh unaccounted."""
    if not model.cheaters:
        return []
    sc = model.params
    tok = model.tokens["letb"]
    letb = trades[trades["chain"] == "letb"]
    hours = model.attack_hours
    rts = np.array([u.rt for u in model.users])
    median_rt = float(np.median(rts))
    out = []
    for p in model.cheaters:
        addr = p.account.address
        mine = letb[letb["seller"] == addr]
        h = [r for r in hours if r["producer_id"] == p.index]
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
    for o in out:
        o["happened"] = (
            f"paid for {o['delivered_wh']:,} of {o['sold_wh']:,} Wh, buyers refunded "
            f"${o['refunded_usd']:.2f}; reputation {o['reputation_start']} -> "
            f"{o['reputation_end']}; sold {o['sold_wh_after_drop']:,} Wh after falling below "
            f"median rt {o['median_rt']:.0f} (honest producers {o['honest_wh_after_drop']:,} Wh), "
            f"{o['sold_wh_to_buyers_rt_above_reputation']} Wh to buyers with rt above it"
        )
    return out
