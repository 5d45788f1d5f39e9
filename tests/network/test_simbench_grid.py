"""load_simbench: the Parquet cache (atomic, reused without SimBench), grid_source and the
scenario's feeder specs, named errors before any work."""

import os
import sys

import pandapower as pp
import pandas as pd
import pytest

from gridledger.network import (
    GridSourceError,
    SimbenchMissingError,
    UnknownGridError,
    grid_from_pandapower,
    grid_source,
    load_feeder,
    load_simbench,
    simbench_grid,
)
from gridledger.scenario import Scenario, ScenarioError

CODE = "1-LV-urban6--0-sw"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cold load into a fresh cache folder (shared by the tests of this module)."""
    root = tmp_path_factory.mktemp("gridledger-cache")
    before = simbench_grid.STATS["simbench_loads"]
    grid = load_simbench(CODE, cache_dir=root)
    assert simbench_grid.STATS["simbench_loads"] == before + 1
    return root, grid


@pytest.mark.slow
def test_second_load_reads_the_cache_without_simbench(cache):
    root, cold = cache
    folder = simbench_grid.simbench_cache_dir(CODE, root)
    assert folder.name == f"{CODE}-sb1.6.3-c{simbench_grid.CONVERTER_VERSION}"
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    before = simbench_grid.STATS["simbench_loads"]
    warm = load_simbench(CODE, cache_dir=root)
    assert simbench_grid.STATS["simbench_loads"] == before  # SimBench was not asked again
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == mtimes
    pd.testing.assert_frame_equal(warm.feeder.buses, cold.feeder.buses)
    pd.testing.assert_frame_equal(warm.feeder.lines, cold.feeder.lines)
    pd.testing.assert_frame_equal(warm.loads, cold.loads)
    pd.testing.assert_frame_equal(warm.generators, cold.generators)
    pd.testing.assert_series_equal(warm.lv_grid_of_bus, cold.lv_grid_of_bus)
    pd.testing.assert_frame_equal(warm.profiles, cold.profiles, check_freq=False)
    assert (warm.feeder.v0_pu, warm.feeder.substation_bus) == (1.025, cold.feeder.substation_bus)


@pytest.mark.slow
def test_load_feeder_takes_a_simbench_spec(cache, monkeypatch):
    root, grid = cache
    monkeypatch.setenv("GRIDLEDGER_CACHE", str(root))
    before = simbench_grid.STATS["simbench_loads"]
    feeder = load_feeder(f"simbench:{CODE}")
    assert simbench_grid.STATS["simbench_loads"] == before
    assert (feeder.n_buses, feeder.substation_bus) == (59, grid.feeder.substation_bus)


@pytest.mark.slow
def test_cache_is_written_atomically(cache):
    root, grid = cache
    folder = simbench_grid.simbench_cache_dir(CODE, root)
    # nothing but complete cache folders: the temporary folder was renamed into place
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{t}.parquet" for t in simbench_grid._TABLES] + ["meta.json"]
    )
    # a second writer of the same grid (a race) keeps the first complete copy, leaves no litter
    mtime = (folder / "meta.json").stat().st_mtime_ns
    simbench_grid._write(grid, folder)
    assert (folder / "meta.json").stat().st_mtime_ns == mtime
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


@pytest.mark.slow
def test_hourly_profiles_are_the_mean_of_four_quarter_hours(cache):
    import simbench

    _, grid = cache
    raw = simbench.get_simbench_net(CODE).profiles["load"]
    col = "H0-A_pload"
    june = raw.index[raw.time == "01.06.2016 12:00"][0]
    expect = raw[col].iloc[june : june + 4].mean()
    assert grid.profiles.loc["2016-06-01 12:00", col] == pytest.approx(expect, rel=1e-12)
    assert grid.profiles.shape[0] == 8784
    assert grid.profiles.index[-1] == pd.Timestamp("2016-12-31 23:00")
    # German clock time: 27 March skips 02:00 (filled from its neighbours), 30 October has
    # two 02:00 hours (one mean of eight values)
    assert not grid.profiles.isna().any().any()
    spring = grid.profiles[col].loc["2016-03-27 01:00":"2016-03-27 03:00"].to_numpy()
    assert spring[1] == pytest.approx((spring[0] + spring[2]) / 2)
    t = pd.to_datetime(raw.time, format="%d.%m.%Y %H:%M")
    autumn = raw[col][t.dt.floor("h") == pd.Timestamp("2016-10-30 02:00")]
    assert len(autumn) == 8
    assert grid.profiles.loc["2016-10-30 02:00", col] == pytest.approx(autumn.mean())


def test_unknown_code_is_refused_before_any_work(tmp_path):
    before = simbench_grid.STATS["simbench_loads"]
    with pytest.raises(UnknownGridError, match="1-LV-urban6--0-sw") as info:
        load_simbench("1-LV-urban7--0-sw", cache_dir=tmp_path)
    assert "collect_all_simbench_codes" in str(info.value)
    assert simbench_grid.STATS["simbench_loads"] == before and not any(tmp_path.iterdir())


def test_missing_simbench_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "simbench", None)  # as if not installed
    with pytest.raises(SimbenchMissingError, match=r"gridledger\[simbench\]"):
        load_simbench(CODE, cache_dir=tmp_path)


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("GRIDLEDGER_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert simbench_grid.cache_root() == tmp_path / "xdg" / "gridledger"
    monkeypatch.setenv("GRIDLEDGER_CACHE", str(tmp_path / "mine"))
    assert simbench_grid.cache_root() == tmp_path / "mine"


def test_grid_source_reads_a_pandapower_json(tmp_path):
    net = pp.create_empty_network()
    a, b, c = (pp.create_bus(net, 0.4) for _ in range(3))
    pp.create_ext_grid(net, a)
    pp.create_line(net, a, b, 0.1, "NAYY 4x150 SE")
    pp.create_line(net, b, c, 0.1, "NAYY 4x150 SE")
    pp.create_load(net, c, p_mw=0.02, q_mvar=0.005, name="shop")
    path = tmp_path / "mine.json"
    pp.to_json(net, str(path))
    grid = grid_source(str(path))
    assert grid.name == "mine" and grid.loads.name.tolist() == ["shop"]
    pd.testing.assert_frame_equal(grid.feeder.buses, grid_from_pandapower(net).feeder.buses)
    assert load_feeder(str(path)).n_buses == 3
    with pytest.raises(GridSourceError, match="no such"):
        grid_source(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(GridSourceError, match="not a pandapower net"):
        grid_source(str(tmp_path / "bad.json"))


def test_scenario_checks_a_grid_spec_without_loading_it(monkeypatch, tmp_path):
    monkeypatch.setenv("GRIDLEDGER_CACHE", str(tmp_path))
    before = simbench_grid.STATS["simbench_loads"]
    day = "2016-06-01"  # a real grid runs on its measured profiles: it needs a start date
    assert Scenario(feeder=f"simbench:{CODE}", start=day).feeder == f"simbench:{CODE}"
    with pytest.raises(ScenarioError, match="unknown SimBench code"):
        Scenario(feeder="simbench:no-such-grid", start=day)
    with pytest.raises(ScenarioError, match="no such pandapower net file"):
        Scenario(feeder=str(tmp_path / "absent.json"), start=day)
    assert simbench_grid.STATS["simbench_loads"] == before and not os.listdir(tmp_path)
