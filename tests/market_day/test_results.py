"""Results: Parquet + JSON round trip, atomic saves, mixed or broken folders refused by name."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gridledger.results import Results, ResultsError
from gridledger.scenario import Scenario


def _results(seed: int = 0) -> Results:
    rng = np.random.default_rng(seed)
    hourly = pd.DataFrame(
        {
            "t": np.arange(24),
            "grid_import_kwh": rng.random(24) * 100,
            "grid_import_kwh_baseline": rng.random(24) * 100,
        }
    ).set_index("t")
    trades = pd.DataFrame(
        {"chain": ["letb", "retb"], "buyer": ["0xa", "0xb"], "e_wh": [10, 20], "price": [1, 2]}
    )
    gas = pd.DataFrame({"operation": ["post_offer"], "gas_used": np.array([51234], dtype="int64")})
    agents = pd.DataFrame({"t": [0, 0], "agent": [1, 2], "soc": [0.2, np.nan]})
    summary = {"cost_saving_pct": np.float64(12.5), "total_gas": np.int64(51234), "nan": np.nan}
    return Results(hourly, trades, gas, agents, summary, Scenario().replace(hours=3))


def test_round_trip(tmp_path: Path) -> None:
    r = _results()
    r.save(tmp_path / "out")
    back = Results.load(tmp_path / "out")
    for name in ("hourly", "trades", "gas", "agents"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(r, name))
    assert back.summary == {"cost_saving_pct": 12.5, "total_gas": 51234, "nan": None}
    assert back.scenario == Scenario().replace(hours=3)
    assert not list((tmp_path / "out").glob(".*tmp"))


def test_missing_folder_named(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match=r"summary\.json: missing"):
        Results.load(tmp_path)


def test_failed_save_leaves_no_loadable_mix(tmp_path: Path) -> None:
    good = _results(0)
    good.save(tmp_path)
    bad = _results(1)
    bad.gas = pd.DataFrame({"x": [object()]})  # pyarrow cannot write this -> save fails midway
    with pytest.raises(Exception, match="object"):
        bad.save(tmp_path)
    assert not list(tmp_path.glob(".*tmp")), "temporary file left behind"
    # hourly/trades already replaced by the new save, summary still the old one -> refused
    with pytest.raises(ResultsError, match="interrupted save"):
        Results.load(tmp_path)


def test_process_killed_mid_save(tmp_path: Path) -> None:
    """A real crash (os._exit inside the 3rd os.replace) leaves nothing half-written that loads."""
    _results(0).save(tmp_path)
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_results import _results
        real = os.replace
        calls = []
        def crashing(a, b):
            calls.append(b)
            if len(calls) == 3:
                os._exit(9)
            real(a, b)
        os.replace = crashing
        _results(5).save({str(tmp_path)!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False)
    assert proc.returncode == 9
    with pytest.raises(ResultsError, match="interrupted save"):
        Results.load(tmp_path)
    # a fresh complete save makes the folder loadable again
    _results(2).save(tmp_path)
    Results.load(tmp_path)


def test_corrupt_parquet_named(tmp_path: Path) -> None:
    _results().save(tmp_path)
    (tmp_path / "gas.parquet").write_bytes(b"not parquet")
    with pytest.raises(ResultsError, match=r"gas\.parquet: unreadable"):
        Results.load(tmp_path)


def test_equals() -> None:
    assert _results(3).equals(_results(3))
    assert not _results(3).equals(_results(4))
