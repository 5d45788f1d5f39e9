"""Feeder data, topology and validation of bad files."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridledger.network import Feeder, FeederDataError, load_feeder

DATA = Path(__file__).resolve().parents[2] / "gridledger" / "network" / "data"


def test_sce56_matches_provenance_figures():
    f = load_feeder("sce56")
    assert (f.n_buses, f.n_lines) == (56, 55)
    assert f.substation_bus == 1 and f.base_kv == 12.0 and f.base_mva == 1.0
    assert f.zbase_ohm == pytest.approx(144.0)
    assert int(f.depth.max()) == 14
    assert len(f.leaves) == 25
    assert f.buses.p_kw.sum() == pytest.approx(3451.5)
    assert f.buses.q_kvar.sum() == pytest.approx(1671.637742, abs=1e-4)
    assert f.buses.shunt_kvar[f.buses.shunt_kvar > 0].to_dict() == {
        19: 600.0,
        21: 600.0,
        30: 600.0,
        53: 600.0,
    }
    assert f.buses.pv_kw[45] == 5000.0
    assert list(f.buses.columns) == ["p_kw", "q_kvar", "shunt_kvar", "pv_kw", "shunt_kw"]
    assert (f.buses.shunt_kw == 0).all()  # optional column, absent in the file
    assert list(f.lines.columns) == ["from_bus", "to_bus", "r_pu", "x_pu"]


def test_tree_helpers():
    f = load_feeder("sce56")
    assert f.path_to_root(54) == [54, 53, 51, 49, 47, 41, 34, 32, 26, 25, 23, 20, 4, 2, 1]
    assert f.children[53] == (54, 55, 56)
    assert f.parent[19] == 18 and f.parent[1] is pd.NA
    assert f.depth[1] == 0 and f.depth[54] == 14
    row = f.lines.iloc[f.line_into(53)]
    assert (row.from_bus, row.to_bus) == (51, 53)
    with pytest.raises(KeyError):
        f.line_into(1)
    # every bus's depth equals its path length
    for b in f.buses.index:
        assert len(f.path_to_root(b)) - 1 == f.depth[b]


def test_sce47_loads_with_zero_impedance_ties():
    f = load_feeder("sce47")
    assert (f.n_buses, f.n_lines, f.base_kv) == (47, 46, 12.35)
    assert int((f.lines.r_pu == 0).sum()) == 5


def test_with_pv_returns_modified_copy():
    f = load_feeder("sce56")
    g = f.with_pv({45: 0.0, 53: 1000.0, 19: 800.0})
    assert f.buses.pv_kw[45] == 5000.0 and f.buses.pv_kw.sum() == 5000.0
    assert g.buses.pv_kw.sum() == 1800.0 and g.buses.pv_kw[53] == 1000.0
    with pytest.raises(KeyError):
        f.with_pv({999: 1.0})


def test_reversed_line_is_oriented_away_from_root():
    f = load_feeder("sce56")
    lines = f.lines.copy()
    lines.loc[0, ["from_bus", "to_bus"]] = [2, 1]
    g = Feeder(f.buses, lines, f.base_kv, f.base_mva, 1)
    assert (g.lines.from_bus.iloc[0], g.lines.to_bus.iloc[0]) == (1, 2)


# ----- bad files ------------------------------------------------------------------------


def _copy(tmp_path: Path, edit_file: str | None = None, old: str = "", new: str = "") -> Path:
    folder = tmp_path / "feeder"
    folder.mkdir()
    for name in ("feeder.csv", "buses.csv", "lines.csv"):
        text = (DATA / "sce56" / name).read_text()
        if name == edit_file:
            assert old in text, f"{old!r} not in {name}"
            text = text.replace(old, new, 1)
        (folder / name).write_text(text)
    return folder


def _line_no(folder: Path, name: str, start: str) -> int:
    for n, line in enumerate((folder / name).read_text().splitlines(), start=1):
        if line.startswith(start):
            return n
    raise AssertionError(start)


def test_copied_folder_loads_like_bundled(tmp_path):
    f = load_feeder(_copy(tmp_path))
    g = load_feeder("sce56")
    pd.testing.assert_frame_equal(f.buses, g.buses)
    pd.testing.assert_frame_equal(f.lines, g.lines)


@pytest.mark.parametrize(
    ("file", "old", "new", "field", "row_start", "words"),
    [
        ("buses.csv", "\n6,49.0", "\n5,49.0", "bus", "5,49.0", "duplicate bus 5"),
        ("lines.csv", "\n4,6,", "\n4,99,", "to_bus", "4,99,", "unknown bus"),
        ("lines.csv", "\n53,56,", "\n52,53,", "to_bus", "52,53,", "closes a loop"),
        (
            "lines.csv",
            "4,5,1.026,0.421,0.007125,",
            "4,5,1.026,0.421,-0.007125,",
            "r_pu",
            "4,5,",
            "must be >= 0",
        ),
        (
            "lines.csv",
            "4,5,1.026,0.421,0.007125,",
            "4,5,1.026,0.421,0.0072,",
            "r_pu",
            "4,5,",
            "inconsistent with r_ohm",
        ),
        (
            "lines.csv",
            "4,5,1.026,0.421,0.007125,0.002923611111",
            "4,5,1.026,0.421,0.007125,nan",
            "x_pu",
            "4,5,",
            "not a finite number",
        ),
        (
            "lines.csv",
            "4,5,1.026,0.421,0.007125,0.002923611111",
            "4,5,1.026,0.421,0.007125,inf",
            "x_pu",
            "4,5,",
            "not a finite number",
        ),
        (
            "buses.csv",
            "\n19,87.0,78.3,37.922421,600.0,0.0",
            "\n19,87.0,78.3,37.922421,600.0,-1.0",
            "pv_kw",
            "19,",
            "must be >= 0",
        ),
        ("buses.csv", "\n7,53.0,47.7,", "\n7,53.0,lots,", "p_kw", "7,", "not a finite number"),
    ],
)
def test_bad_file_names_file_row_and_field(tmp_path, file, old, new, field, row_start, words):
    folder = _copy(tmp_path, file, old, new)
    with pytest.raises(FeederDataError, match=words) as info:
        load_feeder(folder)
    err = info.value
    assert err.file.endswith(file)
    assert err.field == field
    assert err.row == _line_no(folder, file, row_start)
    assert f"row {err.row}" in str(err) and file in str(err)


def test_wrong_line_count_missing_column_and_file(tmp_path):
    folder = _copy(tmp_path, "lines.csv", "\n53,56,0.141,0.34,0.0009791666667,0.002361111111,", "")
    with pytest.raises(FeederDataError, match="has 55 lines, found 54"):
        load_feeder(folder)
    (folder / "lines.csv").write_text("from_bus,to_bus,r_pu\n1,2,0.1\n")
    with pytest.raises(FeederDataError, match="missing column") as info:
        load_feeder(folder)
    assert info.value.field == "x_pu"
    (folder / "buses.csv").unlink()
    with pytest.raises(FeederDataError, match="file not found") as info:
        load_feeder(folder)
    assert info.value.file.endswith("buses.csv")
    with pytest.raises(FeederDataError, match="not a bundled feeder"):
        load_feeder(tmp_path / "nowhere")


def test_bad_substation_and_bases(tmp_path):
    folder = _copy(tmp_path, "feeder.csv", "sce56,12.0,1.0,1", "sce56,12.0,1.0,77")
    with pytest.raises(FeederDataError, match="substation bus 77") as info:
        load_feeder(folder)
    assert info.value.field == "substation_bus"
    (tmp_path / "b").mkdir()
    folder2 = _copy(tmp_path / "b", "feeder.csv", "sce56,12.0,1.0,1", "sce56,-12.0,1.0,1")
    with pytest.raises(FeederDataError, match="positive") as info:
        load_feeder(folder2)
    assert info.value.field == "base_kv" and info.value.row == 3


def test_constructor_validates_frames():
    f = load_feeder("sce56")
    lines = f.lines.copy()
    lines.loc[3, "x_pu"] = np.nan
    with pytest.raises(FeederDataError, match="not a finite number") as info:
        Feeder(f.buses, lines, 12.0, 1.0, 1)
    assert info.value.row == 4 and info.value.field == "x_pu"


def test_synthetic_feeder_is_seeded_radial():
    from gridledger.network import synthetic_feeder

    a, b = synthetic_feeder(300, seed=3), synthetic_feeder(300, seed=3)
    pd.testing.assert_frame_equal(a.lines, b.lines)
    assert (a.n_buses, a.n_lines, a.substation_bus) == (300, 299, 1)
    assert not synthetic_feeder(300, seed=4).lines.equals(a.lines)
    with pytest.raises(ValueError, match="n_buses"):
        synthetic_feeder(1)
