"""Issue 16, outputs of long runs on a real two-day run through `gridledger run`: daily.parquet
beside the frames, the period figures, Fig. 4-7 of a chosen day (`--day`), bad days refused in
one line before any work, and the progress bar showing the simulated time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib import pyplot as plt

from gridledger import Scenario, run_scenario
from gridledger.cli import main
from gridledger.report import draw_figures
from gridledger.report_periods import GRID_DURATION, SAVINGS_BY_DAY
from gridledger.results import Results

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`gridledger ARGS` in a fresh interpreter (this checkout's code)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "gridledger.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("long") / "run"
    assert main(["run", "--hours", "48", "--no-progress", "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_daily_table_and_period_figures_written(
    two_days: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    res = Results.load(two_days)
    pd.testing.assert_frame_equal(pd.read_parquet(two_days / "daily.parquet"), res.daily)
    assert list(res.daily["day"]) == [1, 2]
    assert not (two_days / "monthly.parquet").exists()  # no start date: no months invented
    for stem in (SAVINGS_BY_DAY, GRID_DURATION, "fig4_battery_and_load"):
        png = two_days / "figures" / f"{stem}.png"
        assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000, stem
    assert main(["report", str(two_days), "--format", "csv"]) == 0
    assert len(pd.read_csv(two_days / "daily.csv", index_col=0)) == 2
    capsys.readouterr()


@pytest.mark.slow
def test_fig4_to_7_draw_the_chosen_day(two_days: Path) -> None:
    res = Results.load(two_days)
    day2 = res.hourly[res.hourly["t"] >= 24]
    figures = dict(draw_figures(res, "2"))
    try:
        for name in ("fig4_battery_and_load", "fig5_pv_vs_deficiency", "fig6_grid_demand"):
            assert figures[name].axes[0].get_title().endswith("\nday 2"), name
        ax6 = figures["fig6_grid_demand"].axes[0]
        after = next(ln for ln in ax6.lines if ln.get_label() == "after (P2P trading)")
        assert list(after.get_xdata()) == list(range(24))  # clock hours of day 2
        assert list(after.get_ydata()) == list(day2["grid_import_kwh"])
        price = figures["fig7_user_price"].axes[0]
        stairs = next(p for p in price.patches if p.get_label() == "after (P2P trading)")
        assert list(stairs.get_data().values) == list(day2["user_price_usd_per_mwh"])
        # Fig. 3 stays the whole run's gas; the period figures cover both days
        gas_labels = [t.get_text() for t in figures["fig3_gas_per_operation"].axes[0].texts]
        n_tx = int(res.hourly["tx_count"].sum())
        assert sum(int(t.split(" x ")[1].split()[0]) for t in gas_labels if " x " in t) == n_tx
        savings = figures[SAVINGS_BY_DAY].axes[0]
        assert [p.get_height() for p in savings.patches] == pytest.approx(
            [*res.daily["user_cost_usd_baseline"], *res.daily["user_cost_usd"]]
        )
        duration = figures[GRID_DURATION].axes[0]
        curve = next(p for p in duration.patches if p.get_label() == "with P2P trading")
        values = curve.get_data().values
        assert len(values) == 48 and np.all(np.diff(values) <= 0)
        assert values == pytest.approx(np.sort(res.hourly["grid_import_kwh"])[::-1])
    finally:
        for fig in figures.values():
            plt.close(fig)


@pytest.mark.slow
def test_a_bad_day_is_one_line_naming_the_option_and_range(two_days: Path, tmp_path: Path):
    before = sorted(p.stat().st_mtime_ns for p in (two_days / "figures").iterdir())
    proc = cli("report", str(two_days), "--day", "3")
    assert proc.returncode == 2
    assert proc.stderr == "gridledger report: --day 3: outside the run, which has days 1..2\n"
    assert sorted(p.stat().st_mtime_ns for p in (two_days / "figures").iterdir()) == before
    # `run` checks --day against the scenario's days before it runs; nothing is written
    out = tmp_path / "never"
    proc = cli("run", "--hours", "48", "--day", "2016-06-01", "--out", str(out))
    assert proc.returncode == 2 and not out.exists()
    assert proc.stderr == (
        "gridledger run: --day 2016-06-01: this run has no dates (its scenario sets no start); "
        "give a day number, the run has days 1..2\n"
    )


def test_progress_bar_shows_the_simulated_day_and_hour(capsys: pytest.CaptureFixture[str]):
    run_scenario(Scenario(start_hour=22, hours=3), progress=True)
    err = capsys.readouterr().err
    # the hour being run: 22:00 and 23:00 of day 1, then midnight of day 2 until the end
    assert "day 1 22:00:   0%" in err and "day 1 23:00:  33%" in err
    assert "day 2 00:00:  67%" in err and "day 2 00:00: 100%" in err
