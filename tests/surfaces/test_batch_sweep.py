"""Sweep files: validation, run ids, incremental storage (no model runs here)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest

from gridledger.batch import (
    RunOutput,
    Sweep,
    SweepError,
    add_batch_parser,
    finished_run_ids,
    load_hourly,
    load_runs,
    run_id,
    save_output,
)
from gridledger.scenario import Scenario, ScenarioError

EXAMPLE = Path(__file__).resolve().parents[2] / "gridledger/scenarios/sweep_example.toml"


def test_example_sweep_expands_grid_times_seeds() -> None:
    sweep = Sweep.from_toml(EXAMPLE)
    runs = sweep.runs()
    assert len(runs) == 2 * 2 * 2 * len(sweep.seeds)
    assert {r.scenario.hours for r in runs} == {3}
    assert [r.seed for r in runs[:2]] == list(sweep.seeds)  # seeds innermost
    assert runs[0].params == {"prosumer_share": 0.25, "reliability_threshold": 400, "fault_rate": 0}
    assert runs[-1].scenario.fault_rate == 0.2
    assert len({r.run_id for r in runs}) == len(runs)


def test_run_id_is_a_content_hash_of_the_scenario() -> None:
    a = Scenario().replace(hours=3, seed=1)
    assert run_id(a) == run_id(Scenario().replace(seed=1, hours=3))
    assert run_id(a) != run_id(a.replace(seed=2))
    assert run_id(a) != run_id(a.replace(prosumer_share=0.3))


def test_base_scenario_file_is_relative_to_the_sweep(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text("prosumer_share = 0.3\nhours = 5\n")
    (tmp_path / "s.toml").write_text(
        'scenario = "base.toml"\nseeds = [7]\n[grid]\nfault_rate=[0.1]'
    )
    (run,) = Sweep.from_toml(tmp_path / "s.toml").runs()
    assert (run.scenario.prosumer_share, run.scenario.hours, run.seed) == (0.3, 5, 7)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"grdi": {}}, r"unknown sweep key\(s\) \['grdi'\]"),
        ({"grid": {"prosumer_shar": [0.1]}}, "grid.prosumer_shar"),
        ({"grid": {"prosumer_share": 0.1}}, "grid.prosumer_share.*non-empty list"),
        ({"grid": {"seed": [1, 2]}}, "grid.seed"),
        ({"seeds": []}, "seeds"),
        ({"seeds": [1, 1]}, "repeat"),
        ({"fixed": {"seed": 3}}, "fixed.seed"),
        ({"hourly": "yes"}, "hourly"),
    ],
)
def test_bad_sweeps_are_refused_naming_the_key(data: dict, match: str) -> None:
    with pytest.raises(SweepError, match=match):
        Sweep.from_dict(data)


def test_bad_grid_value_fails_before_anything_runs() -> None:
    with pytest.raises(SweepError, match="prosumer_share") as err:
        Sweep.from_dict({"grid": {"prosumer_share": [0.5, 1.5]}})
    assert isinstance(err.value.__cause__, ScenarioError)


def test_missing_sweep_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match=r"nope\.toml"):
        Sweep.from_toml(tmp_path / "nope.toml")


def test_saved_runs_are_found_and_loaded_in_sweep_order(tmp_path: Path) -> None:
    sweep = Sweep.from_dict({"hours": 2, "seeds": [1, 2], "grid": {"fault_rate": [0.0, 0.1]}})
    runs = sweep.runs()
    for spec in reversed(runs[1:]):  # saved out of order, one run missing
        hourly = pd.DataFrame({"run_id": spec.run_id, "t": [0, 1], "x": [1.0, 2.0]})
        save_output(RunOutput(spec.run_id, {"run_id": spec.run_id, "kpi": 1.0}, hourly), tmp_path)
    assert finished_run_ids(tmp_path) == {r.run_id for r in runs[1:]}
    rows = load_runs(tmp_path, sweep)
    assert list(rows["run_id"]) == [r.run_id for r in runs[1:]]
    assert len(load_hourly(tmp_path)) == 2 * 3
    assert not list(tmp_path.rglob("*.tmp"))  # no temporary files left behind


def test_batch_parser() -> None:
    parser = argparse.ArgumentParser(prog="gridledger")
    add_batch_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["batch", "s.toml", "--workers", "2", "--out", "o"])
    assert (args.sweep, args.out, args.workers, args.scheduler) == (
        Path("s.toml"),
        Path("o"),
        2,
        None,
    )
    assert callable(args.func)
    with pytest.raises(SystemExit):
        parser.parse_args(["batch", "s.toml", "--workers", "0"])
    with pytest.raises(SystemExit):
        parser.parse_args(["batch", "s.toml", "--serial", "--scheduler", "tcp://x:1"])
