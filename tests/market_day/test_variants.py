"""Short runs (2-3 market hours, real chains and solver) of what the default day leaves out:
hourly OPF, EVs, a registration bond, and `gridledger run --chain URL,URL` on anvil nodes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import requests

from gridledger import EnergyMarketModel, Results, Scenario
from gridledger.chain.nodes import start_anvil
from gridledger.cli import main
from gridledger.day.chains import SELLER_SEED_UNITS
from gridledger.market.contracts import usd_to_base_units

pytestmark = pytest.mark.slow

EVENING = Scenario(hours=3, start_hour=18)
"""Evening hours: batteries sell on LETB, EVs charge (window 18-24), no rooftop PV from 19:00."""


def test_hourly_opf_matches_day_ahead_prices() -> None:
    """Without storage in the OPF the hours are independent, so re-solving the compiled hourly
    OPF each hour must give the day-ahead DLMPs of the same hours."""
    sc = Scenario(hours=3, start_hour=11)
    hourly = EnergyMarketModel(sc.replace(opf_mode="hourly"))
    day_ahead = EnergyMarketModel(sc)
    assert np.isnan(hourly.operator.dlmp.to_numpy()).all()  # nothing priced before the hours
    for t in range(3):
        hourly.step()
        opf = hourly.last_opf
        assert list(opf.dlmp_usd_per_mwh.index) == [t]  # a fresh one-hour solve
        assert opf.exactness.max_relaxation_gap <= 1e-6
    ours = hourly.operator.dlmp.to_numpy()
    expected = day_ahead.day_ahead.dlmp_usd_per_mwh.to_numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-4)
    r = hourly.results()
    assert r.summary["opf_mode"] == "hourly"
    assert (r.hourly["opf_max_relaxation_gap"] <= 1e-6).all()
    assert r.trades["e_wh"].sum() > 0


def test_evs_add_their_charging_energy_to_demand() -> None:
    """Half the households charge an EV (12 kWh spread over 18:00-24:00 = 2 kW each hour)."""
    without = EnergyMarketModel(EVENING)
    with_ev = EnergyMarketModel(EVENING.replace(ev_share=0.5))
    n_ev = sum(1 for u in with_ev.users if u.ev_kw.any())
    assert n_ev == round(0.5 * len(with_ev.users))
    a, b = without.run(), with_ev.run()
    extra_kwh = (b.hourly["demand_kwh"] - a.hourly["demand_kwh"]).to_numpy()
    # 19:00 on has no rooftop PV left: every EV's 2 kWh is metered (1 Wh rounding per user)
    np.testing.assert_allclose(extra_kwh[1:], n_ev * 2.0, atol=n_ev * 1e-3)
    assert (extra_kwh[0] > 0) and (extra_kwh[0] <= n_ev * 2.0 + 1e-6)
    # the extra load shows in the metered AC power flow at the substation
    assert (b.hourly["p_substation_kw"] > a.hourly["p_substation_kw"] + 0.9 * n_ev * 2.0).all()
    np.testing.assert_allclose(
        b.hourly["demand_kwh"],
        b.hourly["local_kwh"] + b.hourly["renewable_kwh"] + b.hourly["grid_import_kwh"],
        atol=1e-9,
    )


def test_registration_bond_is_escrowed_and_kept() -> None:
    """With a bond, every participant pays it into each market it registers on; the escrow
    keeps the bonds through trading and settlement (checked every hour by the model too)."""
    bond_usd = 5.0
    model = EnergyMarketModel(EVENING.replace(hours=2, registration_bond_usd=bond_usd))
    bond = usd_to_base_units(bond_usd)
    letb_token, retb_token = model.tokens["letb"], model.tokens["retb"]
    start = usd_to_base_units(model.params.user_initial_usd)
    for u in model.users:  # granted initial + bond, paid the bond at registration
        assert letb_token.balance_of(u.account.address) == start
        assert retb_token.balance_of(u.account.address) == start
    for p in model.producers:  # granted bond + seed, paid the bond: the seed stays
        assert letb_token.balance_of(p.account.address) == SELLER_SEED_UNITS
    for rep in model.reps:
        assert retb_token.balance_of(rep.account.address) == SELLER_SEED_UNITS
    for a, market in enumerate(model.letb):
        n = sum(p.area == a for p in model.producers) + sum(u.area == a for u in model.users)
        assert letb_token.balance_of(market.address) == 1 + n * bond
    n_retb = len(model.reps) + len(model.users)
    assert retb_token.balance_of(model.retb.address) == 1 + n_retb * bond
    r = model.run()
    assert r.trades["e_wh"].sum() > 0
    assert retb_token.balance_of(model.retb.address) == 1 + n_retb * bond
    # each buyer paid exactly its delivered energy at the trade prices, from its own balance
    paid: dict[str, int] = {}  # exact integers (value = Wh x base units per Wh)
    for tr in r.trades[r.trades["chain"] == "letb"].itertuples():
        paid[tr.buyer] = paid.get(tr.buyer, 0) + int(tr.delivered_wh) * int(tr.price)
    assert paid
    for u in model.users:
        assert letb_token.balance_of(u.account.address) == start - paid.get(u.account.address, 0)


def test_cli_run_on_anvil_nodes(tmp_path: Path) -> None:
    """`gridledger run --chain URL,URL` runs the day on two anvil nodes started here; every
    transaction in gas.parquet is mined on the node of its chain."""
    sc_file = tmp_path / "evening.toml"
    sc_file.write_text(Scenario(hours=2, start_hour=18).to_toml())
    sc = Scenario()
    with start_anvil(sc.letb_chain_id) as letb, start_anvil(sc.retb_chain_id) as retb:
        out = tmp_path / "run"
        args = ["run", "--scenario", str(sc_file), "--chain", f"{letb.url},{retb.url}"]
        assert main([*args, "--out", str(out), "--no-progress"]) == 0
        r = Results.load(out)
        summary = json.loads((out / "summary.json").read_text())
        assert summary["chain"] == f"{letb.url},{retb.url}"
        assert len(r.hourly) == 2 and r.trades["e_wh"].sum() > 0
        pngs = sorted((out / "figures").glob("*.png"))
        assert [p.stem for p in pngs] == [
            "fig3_gas_per_operation", "fig4_battery_and_load", "fig5_pv_vs_deficiency",
            "fig6_grid_demand", "fig7_user_price",
        ]  # fmt: skip
        assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)
        for name, node in (("letb", letb), ("retb", retb)):
            gas = r.gas[r.gas["chain"] == name]
            assert int(_rpc(node.url, "eth_blockNumber", []), 16) >= gas["block"].max()
            for row in gas.groupby("operation").head(1).itertuples():
                receipt = _rpc(node.url, "eth_getTransactionReceipt", [row.tx_hash])
                assert int(receipt["blockNumber"], 16) == row.block
                assert receipt["blockHash"] == row.block_hash
                assert int(receipt["gasUsed"], 16) == row.gas_used


def _rpc(url: str, method: str, params: list) -> dict | str:
    """One JSON-RPC call straight to the node (independent of gridledger's chain layer)."""
    reply = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    reply.raise_for_status()
    return reply.json()["result"]


def test_undelivered_energy_becomes_refund_credit_held_by_letb() -> None:
    """Faulty producers leave undelivered LETB energy: its value is credited to the buyer inside
    the LETB (not transferred), spent by the buyer's next request; the model tracks every user's
    credit from the events (its hourly escrow check counts them) and reports the total."""
    # "price_peak" over a 4-hour run sells stored energy in all of them (LETB trades at midday)
    model = EnergyMarketModel(
        Scenario(hours=4, start_hour=11, fault_rate=0.5, producer_strategy="price_peak")
    )
    r = model.run()
    on_chain = {
        u.account.address: model.letb[u.area].credit_of(u.account.address) for u in model.users
    }
    assert sum(on_chain.values()) > 0
    assert {a: c for a, c in on_chain.items() if c} == {
        a: c for a, c in model.letb_credit_units.items() if c
    }
    assert r.summary["letb_credits_usd"] == pytest.approx(sum(on_chain.values()) / 10**18)
    # each escrow = seed + its users' credits (no bond, every request settled)
    token = model.tokens["letb"]
    for a, market in enumerate(model.letb):
        credits = sum(c for u in model.users if u.area == a for c in [on_chain[u.account.address]])
        assert token.balance_of(market.address) == 1 + credits
