"""`gridledger run --households-per-bus N` (issue 13): scale is the user's parameter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gridledger.cli import main

DEFAULT_HOUSEHOLDS = 63
"""Households (users + local producers) of the default day at households_per_bus = 1."""


@pytest.mark.parametrize("value", ["0", "1001"])
def test_households_per_bus_out_of_range_is_named(value: str, tmp_path: Path, capsys) -> None:
    out = tmp_path / "o"
    assert main(["run", "--households-per-bus", value, "--out", str(out), "--no-progress"]) == 2
    assert f"'households_per_bus' = {value}" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_households_per_bus_scales_the_day(tmp_path: Path, capsys) -> None:
    """Twice the households, each an agent; the summary prints agents, transactions, tx/s."""
    out = tmp_path / "o"
    argv = ["run", "--hours", "1", "--households-per-bus", "2", "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    s = json.loads((out / "summary.json").read_text())
    assert s["users"] + s["producers"] == 2 * DEFAULT_HOUSEHOLDS
    assert s["agents"] == s["users"] + s["producers"] + s["reps"] + 2
    assert s["tx_total"] > s["tx_count"] > 0
    assert "households_per_bus = 2" in (out / "scenario.toml").read_text()
    assert f"{s['agents']:,d} agents signing, {s['tx_total']:,d} transactions" in printed
    assert " tx/s" in printed


def test_households_per_bus_refused_with_resume(tmp_path: Path, capsys) -> None:
    rc = main(["run", "--resume", str(tmp_path), "--households-per-bus", "2"])
    assert rc == 2 and "--households-per-bus" in capsys.readouterr().err
