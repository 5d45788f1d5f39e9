"""Scenario 9: malformed scenario and feeder files give a named error (field, value, reason) on
the command line (exit 2) and nothing is written to the output folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gridledger.cli import main
from gridledger.network.feeder import FeederDataError, load_feeder

SCE56 = Path(__file__).parents[2] / "gridledger" / "network" / "data" / "sce56"

BAD_SCENARIOS = [
    ("hourz = 3", "'hourz' = 3", "unknown scenario key"),
    ('hours = "three"', "'hours' = 'three'", "expected an integer"),
    ("hours = -1", "'hours' = -1", "must be between 1 and 8784"),
    ("prosumer_share = 1.5", "'prosumer_share' = 1.5", "must be a share in [0, 1]"),
    ("fault_rate = nan", "'fault_rate' = nan", "must be finite"),
    ("reliability_threshold = 1001", "'reliability_threshold' = 1001", "must be in 0..1000"),
    ("cheat_delivery_fraction = -0.1", "'cheat_delivery_fraction' = -0.1",
     "must be a fraction in [0, 1]"),
    ("hours = [", "'path' = '{path}'", "not valid TOML: Invalid value"),
    ("cheat_producers = 999\nhours = 1", "'cheat_producers' = 999",
     "only 21 local producers in this world"),
    ('feeder = "nowhere_feeder"', "'feeder' = 'nowhere_feeder'",
     "not a bundled feeder ('sce56', 'sce47') nor an existing folder"),
]  # fmt: skip
"""(scenario file text, the field named with its value, the reason)"""


def run_cli(tmp_path: Path, text: str) -> tuple[int, Path]:
    sc = tmp_path / "bad.toml"
    sc.write_text(text + "\n")
    out = tmp_path / "out"
    rc = main(["run", "--scenario", str(sc), "--out", str(out), "--no-progress"])
    return rc, out


@pytest.mark.parametrize(("text", "field", "reason"), BAD_SCENARIOS)
def test_bad_scenario_named_and_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, field: str, reason: str
) -> None:
    rc, out = run_cli(tmp_path, text)
    err = capsys.readouterr().err
    assert rc == 2
    field = field.format(path=tmp_path / "bad.toml")
    assert err.startswith(f"gridledger run: scenario field {field}: {reason}"), err
    assert not out.exists()


def bad_feeder(tmp_path: Path, edit: str) -> Path:
    d = tmp_path / "feeder"
    shutil.copytree(SCE56, d)
    lines = (d / "lines.csv").read_text().splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.startswith("from_bus"))
    if edit == "missing_lines":
        (d / "lines.csv").unlink()
    elif edit == "negative_r":
        f = lines[header + 1].split(",")
        f[4] = "-0.001"
        f[2] = str(-float(f[2]))
        lines[header + 1] = ",".join(f)
        (d / "lines.csv").write_text("\n".join(lines) + "\n")
    elif edit == "loop":
        lines.append("3,5,0.1,0.1,0.000694444444,0.000694444444,")
        (d / "lines.csv").write_text("\n".join(lines) + "\n")
    elif edit == "orphan_bus":
        del lines[-1]
        (d / "lines.csv").write_text("\n".join(lines) + "\n")
    return d


BAD_FEEDERS = {
    "missing_lines": "lines.csv: file not found",
    "negative_r": "lines.csv, row 5, field 'r_pu': impedance must be >= 0, got -0.001",
    "loop": "lines.csv: a radial feeder with 56 buses has 55 lines, found 56",
    "orphan_bus": "lines.csv: a radial feeder with 56 buses has 55 lines, found 54",
}
"""Each edit of a copied feeder and the error it must give: file (row, field) and reason."""


@pytest.mark.parametrize("edit", sorted(BAD_FEEDERS))
def test_bad_feeder_named_and_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: str
) -> None:
    d = bad_feeder(tmp_path, edit)
    with pytest.raises(FeederDataError) as info:
        load_feeder(d)
    assert str(info.value) == f"{d}/{BAD_FEEDERS[edit]}"
    rc, out = run_cli(tmp_path, f'feeder = "{d}"\nhours = 1')
    err = capsys.readouterr().err
    assert rc == 2
    assert str(info.value) in err
    assert not out.exists()
