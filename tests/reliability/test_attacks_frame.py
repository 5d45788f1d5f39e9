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
from gridledger.cli import format_summary
from gridledger.day.attack_table import ATTACK_COLUMNS, attacks_frame

ATTACKS_TOML = Path(__file__).resolve().parents[2] / "gridledger" / "scenarios" / "attacks.toml"


@pytest.fixture(scope="module")
def attacked() -> Results:
    return EnergyMarketModel(Scenario.from_toml(ATTACKS_TOML)).run()


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


def test_nothing_unaccounted(attacked: Results) -> None:
    assert (attacked.attacks["tokens_unaccounted_base_units"] == 0).all()
    assert (attacked.attacks["wh_unaccounted"] == 0).all()


def test_cli_table_is_the_frame(attacked: Results) -> None:
    text = format_summary(attacked.summary)
    rows = [ln for ln in text.split("attacks: scenario")[1].splitlines()[1:] if " | " in ln]
    assert [r.split(" | ")[0].strip() for r in rows] == list(attacked.attacks["scenario"])
    assert [r.split(" | ")[2] for r in rows] == list(attacked.attacks["outcome"])


def test_round_trip(attacked: Results, tmp_path: Path) -> None:
    attacked.save(tmp_path)
    assert (tmp_path / "attacks.parquet").is_file()
    back = Results.load(tmp_path)
    pd.testing.assert_frame_equal(back.attacks, attacked.attacks)
    assert back.equals(attacked)
    changed = Results.load(tmp_path)
    changed.attacks.loc[0, "wh_unaccounted"] = 1
    assert not changed.equals(attacked)


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
