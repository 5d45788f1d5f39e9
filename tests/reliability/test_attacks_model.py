"""Attack scenarios as Scenario options, run through the whole market day (real EVM, real OPF).

Short runs: the afternoon/evening hours 14..21 in which the local producers sell (peak strategy).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from gridledger import EnergyMarketModel, Results, Scenario
from gridledger.day.attacks import AttackSetupError
from gridledger.scenario import ScenarioError

EVENING = {"hours": 8, "start_hour": 14}
pytestmark = pytest.mark.slow  # 4-5 s per run of the evening: the two fixtures, each sybil test


def run(**fields: object) -> tuple[EnergyMarketModel, Results]:
    model = EnergyMarketModel(Scenario(**EVENING, **fields))
    return model, model.run()


@pytest.fixture(scope="module")
def honest() -> tuple[EnergyMarketModel, Results]:
    return run()


@pytest.fixture(scope="module")
def cheat() -> tuple[EnergyMarketModel, Results, int]:
    """The run with one producer delivering 30 %, and that producer's token balance on the
    LETB chain before the first market hour (read here, from the token contract)."""
    model = EnergyMarketModel(Scenario(**EVENING, cheat_producers=1, cheat_delivery_fraction=0.3))
    balance0 = model.tokens["letb"].balance_of(model.cheaters[0].account.address)
    return model, model.run(), balance0


def test_no_attack_no_attack_rows(honest: tuple[EnergyMarketModel, Results]) -> None:
    assert honest[1].summary["attacks"] == []


def test_cheater_paid_only_for_delivered_buyers_refunded(
    cheat: tuple[EnergyMarketModel, Results, int],
) -> None:
    model, res, balance0 = cheat
    (a,) = res.summary["attacks"]
    p = model.cheaters[0]
    mine = res.trades[res.trades["seller"] == p.account.address]
    assert len(mine) > 0
    # every one of its trades settled at 30 % (integer Wh, pro rata over the hour's trades)
    for _t, g in mine.groupby("t"):
        assert g["delivered_wh"].sum() == int(g["e_wh"].sum() * 0.3)
    assert a["delivered_wh"] < a["sold_wh"]
    # escrow paid it exactly delivered x price: its token balance on chain grew by that ...
    paid = sum(int(d) * int(pr) for d, pr in zip(mine["delivered_wh"], mine["price"], strict=True))
    assert model.tokens["letb"].balance_of(p.account.address) - balance0 == paid > 0
    assert a["tokens_unaccounted"] == 0
    # ... and the TDNO's metering equals what the chain settled
    assert a["wh_unaccounted"] == 0
    expect_refund = sum(
        (int(e) - int(d)) * int(pr)
        for e, d, pr in zip(mine["e_wh"], mine["delivered_wh"], mine["price"], strict=True)
    )
    assert a["refunded_usd"] == pytest.approx(expect_refund / 1e18) and a["refunded_usd"] > 0
    # buyers' energy still balances every hour: demand = delivered local + renewable + grid,
    # the undelivered 70 % bought from the grid, the delivered Wh those the chains settled
    assert len(res.hourly) == EVENING["hours"]
    settled = res.trades.groupby(["t", "chain"])["delivered_wh"].sum().unstack(fill_value=0)
    for row in res.hourly.itertuples():
        local, renewable = (settled.get(c, {}).get(row.t, 0) / 1e3 for c in ("letb", "retb"))
        assert row.local_kwh == pytest.approx(local, abs=1e-9), row.t
        assert row.renewable_kwh == pytest.approx(renewable, abs=1e-9), row.t
        supplied = row.local_kwh + row.renewable_kwh + row.grid_import_kwh
        assert row.demand_kwh == pytest.approx(supplied, rel=1e-12), row.t


def test_cheater_reputation_falls_and_it_loses_trades(
    cheat: tuple[EnergyMarketModel, Results, int], honest: tuple[EnergyMarketModel, Results]
) -> None:
    model, res, _ = cheat
    (a,) = res.summary["attacks"]
    reps = [r["reputation"] for r in model.attack_hours]
    assert a["reputation_end"] < a["reputation_start"]
    assert all(b <= a_ for a_, b in itertools.pairwise(reps))  # never rises
    assert a["hour_below_median_rt"] is not None
    # the contract never filled a buyer whose rt is above the cheater's reputation
    assert a["sold_wh_to_buyers_rt_above_reputation"] == 0
    # after its reputation fell, the same producer sells less than it does when honest, and
    # its share of the local market falls (honest producers keep theirs)
    idx = model.cheaters[0].index
    after = a["hour_below_median_rt"]
    hmodel, hres = honest
    lc = res.trades[(res.trades["chain"] == "letb") & (res.trades["t"] > after)]
    lh = hres.trades[(hres.trades["chain"] == "letb") & (hres.trades["t"] > after)]
    addr_c, addr_h = model.producers[idx].account.address, hmodel.producers[idx].account.address
    mine_c = int(lc.loc[lc["seller"] == addr_c, "e_wh"].sum())
    mine_h = int(lh.loc[lh["seller"] == addr_h, "e_wh"].sum())
    assert mine_c == a["sold_wh_after_drop"]
    assert mine_c < mine_h
    assert mine_c / lc["e_wh"].sum() < mine_h / lh["e_wh"].sum()


def test_cheat_options_validated() -> None:
    with pytest.raises(ScenarioError, match="cheat_delivery_fraction"):
        Scenario(cheat_delivery_fraction=1.5)
    with pytest.raises(ScenarioError, match="cheat_producers"):
        Scenario(cheat_producers=-1)
    with pytest.raises(AttackSetupError, match="cheat_producers"):
        EnergyMarketModel(Scenario(hours=1, cheat_producers=10_000))


SYBIL = {"cheat_producers": 1, "sybil_identities": 2}


def test_sybils_escape_reputation_without_mitigation() -> None:
    """Fresh identities start at 800, above most users' rt: the burnt owner sells again."""
    model, res = run(**SYBIL)
    cheat, syb = res.summary["attacks"]
    assert syb["scenario"] == "sybil producers"
    assert syb["identities_used"] >= 1 and syb["switch_hours"]
    assert syb["sybil_wh_sold"] > 0
    assert syb["sybil_wh_to_buyers_above_median_rt"] > 0  # the attack works
    assert syb["tokens_unaccounted"] == 0 and syb["wh_unaccounted"] == 0
    assert cheat["tokens_unaccounted"] == 0 and cheat["wh_unaccounted"] == 0
    sybil_addrs = {s["account"].address for s in model.sybils}
    assert set(res.trades["seller"]) & sybil_addrs


def test_sybils_with_low_start_reputation_and_bond() -> None:
    """Mitigation: fresh identities start at 450 (below the median rt 500 +- 100) and cost a
    5 USD bond each: they reach only the low-trust tail of buyers and pay the bonds."""
    model, res = run(
        **SYBIL, initial_reputation=450, reliability_threshold=500, registration_bond_usd=5.0
    )
    _cheat, syb = res.summary["attacks"]
    assert syb["sybil_cost_usd"] == pytest.approx(10.0)
    assert syb["sybil_wh_to_buyers_above_median_rt"] == 0
    assert all(rt <= 450 for rt in syb["sybil_buyers_rt"])
    assert syb["tokens_unaccounted"] == 0 and syb["wh_unaccounted"] == 0
    # bonds sit in the owner's LETB escrow (the model's hourly escrow check counted them)
    assert model.extra_registrations == {model.cheaters[0].area: 2}
    with pytest.raises(AttackSetupError, match="sybil_identities"):
        EnergyMarketModel(Scenario(hours=1, sybil_identities=1))


def test_cli_runs_shipped_attacks_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`gridledger run --scenario attacks.toml` (the bundled example) prints the attack table."""
    from gridledger.cli import main

    out = tmp_path / "out"
    args = ["run", "--scenario", "attacks.toml", "--hours", "8", "--no-progress"]
    rc = main([*args, "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    table = text.split("attacks: scenario | tried | what happened | tokens unaccounted | Wh ")[1]
    rows = [ln for ln in table.splitlines() if ln.startswith("  ") and " | " in ln]
    assert [r.split(" | ")[0].strip() for r in rows] == [
        "non-delivering producer",
        "sybil producers",
    ]
    assert all(r.split(" | ")[-2:] == ["0", "0"] for r in rows)
    assert (out / "summary.json").exists()
