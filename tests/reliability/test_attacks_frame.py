"""`Results.attacks`: the attack outcomes of a run as a tidy frame, saved and loaded with the rest.

One run of the shipped attacks.toml (afternoon and evening, 8 hours, real EVM and OPF).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from gridledger import EnergyMarketModel, Results, Scenario
from gridledger.chain.nodes import start_anvil
from gridledger.cli import format_summary
from gridledger.day.attack_table import ATTACK_COLUMNS, attacks_frame
from gridledger.day.refusals import ProbeSetupError, probe_refusals

ATTACKS_TOML = Path(__file__).resolve().parents[2] / "gridledger" / "scenarios" / "attacks.toml"


@pytest.fixture(scope="module")
def attacked_model() -> tuple[EnergyMarketModel, Results]:
    model = EnergyMarketModel(Scenario.from_toml(ATTACKS_TOML))
    return model, model.run()


@pytest.fixture(scope="module")
def attacked(attacked_model: tuple[EnergyMarketModel, Results]) -> Results:
    return attacked_model[1]


@pytest.mark.slow  # the module's attacked run: ~7 s once
def test_one_row_per_attack_with_the_summarys_values(attacked: Results) -> None:
    a = attacked.attacks
    assert list(a.columns) == list(ATTACK_COLUMNS)
    assert {c: str(t) for c, t in a.dtypes.items()} == ATTACK_COLUMNS
    assert list(a["scenario"]) == ["non-delivering producer", "sybil producers"]
    cheat, syb = attacked.summary["attacks"]
    row0, row1 = a.iloc[0], a.iloc[1]
    assert row0["outcome"] == cheat["happened"] and row1["outcome"] == syb["happened"]
    assert row0["producer_id"] == cheat["producer_id"]
    assert row0["sold_wh"] == cheat["sold_wh"] > row0["delivered_wh"] == cheat["delivered_wh"]
    assert row0["refunded_usd"] == cheat["refunded_usd"] > 0
    assert row0["reputation_end"] < row0["reputation_start"] == 450
    # the on-chain balance change of the cheater is exactly what the escrow paid it
    assert row0["balance_change_usd"] == pytest.approx(row0["paid_usd"])
    assert row1["identities_registered"] == 2 and row1["sybil_cost_usd"] == pytest.approx(10.0)
    assert row1["sybil_wh_to_buyers_above_median_rt"] == 0  # the mitigation holds
    assert pd.isna(row1["producer_id"]) and pd.isna(row0["identities_used"])
    assert not a["refused"].any()  # both attacks are measured effects, not refused calls


@pytest.mark.slow  # the module's attacked run: ~7 s once
def test_nothing_unaccounted(attacked: Results) -> None:
    assert (attacked.attacks["tokens_unaccounted_base_units"] == 0).all()
    assert (attacked.attacks["wh_unaccounted"] == 0).all()


@pytest.mark.slow  # the module's attacked run: ~7 s once
def test_cli_table_is_the_frame(attacked: Results) -> None:
    text = format_summary(attacked.summary)
    rows = [ln for ln in text.split("attacks: scenario")[1].splitlines()[1:] if " | " in ln]
    assert [r.split(" | ")[0].strip() for r in rows] == list(attacked.attacks["scenario"])
    assert [r.split(" | ")[2] for r in rows] == list(attacked.attacks["outcome"])


@pytest.mark.slow  # the module's attacked run: ~7 s once
def test_round_trip(attacked: Results, tmp_path: Path) -> None:
    attacked.save(tmp_path)
    assert (tmp_path / "attacks.parquet").is_file()
    back = Results.load(tmp_path)
    pd.testing.assert_frame_equal(back.attacks, attacked.attacks)
    assert back.equals(attacked)
    changed = Results.load(tmp_path)
    changed.attacks.loc[0, "wh_unaccounted"] = 1
    assert not changed.equals(attacked)


@pytest.mark.slow  # the module's attacked run: ~7 s once
def test_folder_saved_before_the_frame_existed(attacked: Results, tmp_path: Path) -> None:
    """No attacks.parquet: rebuilt from summary.json; no attack rows there: empty frame."""
    attacked.save(tmp_path / "old")
    (tmp_path / "old" / "attacks.parquet").unlink()
    back = Results.load(tmp_path / "old")
    pd.testing.assert_frame_equal(back.attacks, attacked.attacks)
    shutil.copytree(tmp_path / "old", tmp_path / "older")
    summary_path = tmp_path / "older" / "summary.json"
    summary = json.loads(summary_path.read_text())
    del summary["attacks"]
    summary_path.write_text(json.dumps(summary))
    empty = Results.load(tmp_path / "older").attacks
    assert empty.empty and list(empty.columns) == list(ATTACK_COLUMNS)
    assert {c: str(t) for c, t in empty.dtypes.items()} == ATTACK_COLUMNS


def test_no_attack_empty_frame_round_trips(tmp_path: Path) -> None:
    frame = attacks_frame([])
    r = Results(*(pd.DataFrame({"x": [1]}) for _ in range(4)), summary={"attacks": []})
    assert r.attacks.equals(frame) and r.attacks.empty
    r.save(tmp_path)
    back = Results.load(tmp_path)
    pd.testing.assert_frame_equal(back.attacks, frame)
    assert back.equals(r)


REFUSALS = {
    "bid above DLMP cap": "price above DLMP cap",
    "bid below feed-in tariff": "price below feed-in floor",
    "over-delivery confirmation": "delivered above schedule",
    "settlement by a non-TDNO": "unauthorised: tdno only",
    "hour opened by a non-operator": "unauthorised: operator only",
    "feedback by a stranger": "only the buyer may rate",
    "feedback by the seller": "only the buyer may rate",
    "second rating by the buyer": "already rated",
}


@pytest.mark.slow  # the module's attacked run: ~7 s once
def test_refusals_probed_after_the_run(
    attacked_model: tuple[EnergyMarketModel, Results], tmp_path: Path
) -> None:
    """Attacks 3-7 on the run's own contracts and agents' keys: all refused, nothing moves, the
    day's frames and KPIs unchanged, the rows land in Results.attacks."""
    model, day = attacked_model
    rows = probe_refusals(model)
    assert {r["scenario"]: r["revert_reason"] for r in rows[:-2]} == REFUSALS
    replays = rows[-2:]
    assert [r["scenario"] for r in replays] == ["cross-chain replay"] * 2
    assert (
        "signed for chain id 31401, but chain 'retb' has chain id 31402"
        in (replays[0]["revert_reason"])
    )
    assert (
        "signed for chain id 31402, but chain 'letb' has chain id 31401"
        in (replays[1]["revert_reason"])
    )
    assert all(r["refused"] for r in rows)
    assert all(r["tokens_unaccounted"] == 0 and r["wh_unaccounted"] == 0 for r in rows)
    after = model.results()
    for name in ("hourly", "trades", "agents"):
        pd.testing.assert_frame_equal(getattr(after, name), getattr(day, name))
    assert after.summary["total_gas"] == day.summary["total_gas"]
    probe_gas = after.gas[after.gas["t"] == -2]
    assert len(after.gas) == len(day.gas) + len(probe_gas) and set(probe_gas["phase"]) == {"probe"}
    a = after.attacks
    assert len(a) == 2 + len(rows) and a["refused"].sum() == len(rows)
    assert list(a["revert_reason"].iloc[2:-2]) == list(REFUSALS.values())
    assert (a["tokens_unaccounted_base_units"] == 0).all() and (a["wh_unaccounted"] == 0).all()
    after.save(tmp_path)
    assert Results.load(tmp_path).equals(after)
    with pytest.raises(ProbeSetupError, match="not finished"):
        probe_refusals(EnergyMarketModel(Scenario(hours=1)))


def test_sybils_that_never_sold() -> None:
    """One hour: no identity switch, so the sybils sell nothing; the summary still builds (an
    empty selection once raised KeyError 'e_wh') and reports zeros."""
    res = EnergyMarketModel(
        Scenario(hours=1, start_hour=14, cheat_producers=1, sybil_identities=1)
    ).run()
    syb = res.attacks.set_index("scenario").loc["sybil producers"]
    assert syb["identities_used"] == 0 and syb["sybil_wh_sold"] == 0
    assert syb["sybil_wh_to_buyers_above_median_rt"] == 0 and syb["net_gain_usd"] == 0


@pytest.mark.anvil
def test_refusals_on_anvil_nodes() -> None:
    """The same probes on a run whose two chains are anvil processes: the node reverts with the
    contract's reason, and the replay is refused before it reaches the other node."""
    sc = Scenario(hours=1, start_hour=18)
    with start_anvil(sc.letb_chain_id) as letb, start_anvil(sc.retb_chain_id) as retb:
        model = EnergyMarketModel(sc, chain=f"{letb.url},{retb.url}")
        day = model.run()
        rows = probe_refusals(model)
        assert {r["scenario"]: r["revert_reason"] for r in rows[:-2]} == REFUSALS
        assert all(r["refused"] for r in rows)
        assert all("signed for chain id" in r["revert_reason"] for r in rows[-2:])
        assert all(r["tokens_unaccounted"] == 0 and r["wh_unaccounted"] == 0 for r in rows)
        after = model.results()
        assert after.summary["total_gas"] == day.summary["total_gas"]
        assert after.attacks["refused"].all() and len(after.attacks) == len(rows)
