"""Scenario: defaults, validation with named errors, TOML round trip."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gridledger.scenario import SCENARIO_FIELDS, RepPlant, Scenario, ScenarioError

SCENARIOS = Path(__file__).resolve().parents[2] / "gridledger" / "scenarios"


def test_default_is_the_papers_day() -> None:
    s = Scenario()
    assert s.feeder == "sce56"
    assert s.hours == 24
    assert s.include_feeder_pv is False
    assert s.rep_plants == (RepPlant(53, 1000.0), RepPlant(19, 800.0))
    assert s.load_peak_hours == (8.0, 20.0)
    assert any(a <= 20 < b for a, b in s.tariff_onpeak_periods)
    assert s.feed_in_tariff_usd_per_mwh < s.tariff_offpeak_usd_per_mwh


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Scenario().hours = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("prosumer_share", 1.5, "share in [0, 1]"),
        ("hours", 0, "between 1"),
        ("hours", 2.5, "expected an integer"),
        ("battery_soc_initial", 0.99, "within [soc_min, soc_max]"),
        ("zip_p", 0.9, "sum to 1"),
        ("tariff_onpeak_periods", ((17, 25),), "0 <= start < end <= 24"),
        ("load_peak_heights", (0.4,), "one value per load peak"),
        ("ev_energy_kwh", 500.0, "cannot be charged"),
        ("producer_strategy", "random", "must be one of"),
        ("reliability_threshold", 1001, "0..1000"),
        ("feed_in_tariff_usd_per_mwh", 500.0, "below the lowest retail tariff"),
        ("retb_chain_id", 31401, "distinct chain ids"),
        ("include_feeder_pv", 1, "true or false"),
        ("rep_plants", (RepPlant(53, -1.0),), "p_kw must be positive"),
        ("incentive_log_base", 1, "> 1"),
        ("letb_max_fills_per_request", 0, "between 1 and 16"),
        ("letb_max_fills_per_request", 17, "between 1 and 16"),
    ],
)
def test_invalid_values_name_field_value_reason(field: str, value: object, reason: str) -> None:
    with pytest.raises(ScenarioError) as info:
        Scenario().replace(**{field: value})
    err = info.value
    assert reason in str(err)
    assert repr(field) in str(err) or field in str(err)
    assert err.reason and err.field


def test_replace_unknown_field() -> None:
    with pytest.raises(ScenarioError, match=r"'prosumer_shar'.*unknown scenario key"):
        Scenario().replace(prosumer_shar=0.3)


def test_toml_round_trip(tmp_path: Path) -> None:
    s = Scenario().replace(
        hours=6, seed=7, rep_plants=(RepPlant(30, 250.0),), fault_rate=0.1, prosumer_share=0.25
    )
    path = tmp_path / "s.toml"
    path.write_text(s.to_toml())
    assert Scenario.from_toml(path) == s


def test_toml_round_trip_without_plants(tmp_path: Path) -> None:
    s = Scenario().replace(rep_plants=())
    path = tmp_path / "s.toml"
    path.write_text(s.to_toml())
    assert Scenario.from_toml(path) == s


def test_toml_unknown_key_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("hours = 4\nprosumers = 0.3\n")
    with pytest.raises(ScenarioError, match="'prosumers'"):
        Scenario.from_toml(path)


def test_toml_bad_plant_table(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[rep_plants]]\nbus = 53\nkw = 10\n")
    with pytest.raises(ScenarioError, match="rep_plants"):
        Scenario.from_toml(path)


def test_toml_wrong_type_and_syntax(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('hours = "24"\n')
    with pytest.raises(ScenarioError, match=r"'hours'.*expected an integer"):
        Scenario.from_toml(path)
    path.write_text("hours = \n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        Scenario.from_toml(path)
    with pytest.raises(ScenarioError, match="not found"):
        Scenario.from_toml(tmp_path / "missing.toml")


def test_shipped_scenarios_load() -> None:
    """default.toml is the paper's day; faulty.toml is that day with exactly the changes its
    header describes (20 % faulty producer-hours delivering half, forecast error 0.1)."""
    assert Scenario.from_toml(SCENARIOS / "default.toml") == Scenario()
    faulty = Scenario.from_toml(SCENARIOS / "faulty.toml")
    changed = {k: v for k, v in faulty.to_dict().items() if v != Scenario().to_dict()[k]}
    assert changed == {"fault_rate": 0.2, "forecast_error_std": 0.1}
    assert faulty.fault_delivery_fraction == 0.5  # the default, restated in the file


def test_field_list_matches_dataclass() -> None:
    assert set(SCENARIO_FIELDS) == {f.name for f in dataclasses.fields(Scenario)}
    assert "prosumer_share" in SCENARIO_FIELDS and "seed" in SCENARIO_FIELDS
