"""Sweeps run the real model: a LocalCluster of 2 worker processes gives the serial results, a
rerun on an existing Dask cluster (scheduler and worker processes started from the shell) runs
only what is missing, `gridledger batch` works from the shell, and mesa.batch_run works."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mesa
import pandas as pd
import pytest

from gridledger import EnergyMarketModel
from gridledger.batch import (
    RUNS_DIR,
    SUMMARY_FILE,
    Sweep,
    SweepRunError,
    finished_run_ids,
    load_hourly,
    load_runs,
    run_sweep,
)

from .conftest import ServerProcess, free_port

pytestmark = pytest.mark.slow

SWEEP_TOML = """
name = "tiny"
hours = 2
seeds = [1, 2]
hourly = true
[fixed]
start_hour = 10            # midday: PV, batteries, LETB and RETB all trade
[grid]
fault_rate = [0.0, 0.5]
"""


def comparable(rows: pd.DataFrame) -> pd.DataFrame:
    """Everything but wall-clock timings, in run order."""
    timing = [c for c in rows.columns if c == "wall_s" or c.startswith("timing_s.")]
    return rows.drop(columns=timing).reset_index(drop=True)


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sweep") / "tiny.toml"
    path.write_text(SWEEP_TOML)
    return path


@pytest.fixture(scope="module")
def serial_out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serial")


@pytest.fixture(scope="module")
def serial_rows(sweep_file: Path, serial_out: Path) -> pd.DataFrame:
    return run_sweep(Sweep.from_toml(sweep_file), serial_out, serial=True, progress=False)


@pytest.fixture
def dask_cluster(tmp_path: Path):
    """An existing Dask cluster: `dask scheduler` and `dask worker` processes on 127.0.0.1."""
    dask = str(Path(sys.executable).with_name("dask"))
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = ServerProcess(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        dict(os.environ), address, tmp_path / "scheduler.log",
    )  # fmt: skip
    worker = ServerProcess(
        [dask, "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
        dict(os.environ), address, tmp_path / "worker.log",
    )  # fmt: skip
    yield address
    worker.stop()
    scheduler.stop()


def test_serial_sweep_has_one_row_per_run_with_kpis(serial_rows: pd.DataFrame) -> None:
    assert len(serial_rows) == 4
    assert list(serial_rows["seed"]) == [1, 2, 1, 2]
    assert list(serial_rows["fault_rate"]) == [0.0, 0.0, 0.5, 0.5]
    for kpi in ("cost_saving_pct", "grid_energy_saved_kwh", "total_gas", "tx_count"):
        assert serial_rows[kpi].notna().all(), kpi
    assert (serial_rows["hours"] == 2).all()
    assert (serial_rows["total_gas"] > 0).all()
    # the seed matters, so the runs really differ
    assert serial_rows["demand_kwh"].nunique() == 2


def test_hourly_frames_are_kept_per_run(serial_rows: pd.DataFrame, serial_out: Path) -> None:
    hourly = load_hourly(serial_out)
    assert len(hourly) == 4 * 2
    assert set(hourly["run_id"]) == set(serial_rows["run_id"])
    by_run = hourly.groupby("run_id")["demand_kwh"].sum()
    for row in serial_rows.itertuples():
        assert by_run[row.run_id] == pytest.approx(row.demand_kwh)


def test_local_cluster_gives_the_serial_results_and_resumes(
    sweep_file: Path, serial_rows: pd.DataFrame, tmp_path: Path, dask_cluster: str
) -> None:
    sweep = Sweep.from_toml(sweep_file)
    rows = run_sweep(sweep, tmp_path, workers=2, progress=False)
    pd.testing.assert_frame_equal(comparable(rows), comparable(serial_rows))
    assert (tmp_path / SUMMARY_FILE).is_file()

    # a crash after three runs: the fourth run's file is gone; a rerun runs only that one
    runs = sweep.runs()
    (tmp_path / RUNS_DIR / f"{runs[2].run_id}.parquet").unlink()
    kept = {r.run_id: (tmp_path / RUNS_DIR / f"{r.run_id}.parquet").stat().st_mtime_ns
            for r in runs if r.run_id != runs[2].run_id}  # fmt: skip
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("gridledger")), "batch", str(sweep_file),
         "--out", str(tmp_path), "--scheduler", dask_cluster, "--no-progress"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "4 runs" in proc.stdout
    assert "cost_saving_pct" in proc.stdout and "fault_rate" in proc.stdout  # KPIs per grid point
    assert "Receive client connection" in (tmp_path / "scheduler.log").read_text()
    for run_id, mtime in kept.items():  # finished runs were not run again
        assert (tmp_path / RUNS_DIR / f"{run_id}.parquet").stat().st_mtime_ns == mtime
    assert finished_run_ids(tmp_path) == {r.run_id for r in runs}
    pd.testing.assert_frame_equal(comparable(load_runs(tmp_path, sweep)), comparable(serial_rows))


def test_cli_names_a_bad_sweep(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[grid]\nprosumer_shar = [0.1]\n")
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("gridledger")), "batch", str(bad), "--serial"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "grid.prosumer_shar" in proc.stderr


def test_mesa_batch_run_takes_the_models_keyword_parameters() -> None:
    results = mesa.batch_run(
        EnergyMarketModel,
        parameters={"hours": 1, "start_hour": 11, "prosumer_share": [0.2, 0.8]},
        rng=[3],
        max_steps=5,
        number_processes=1,
        display_progress=False,
    )
    frame = pd.DataFrame(results)
    model_rows = frame.drop_duplicates("RunId")
    assert sorted(model_rows["prosumer_share"]) == [0.2, 0.8]
    assert (model_rows["Step"] == 1).all()
    assert (model_rows["seed"] == 3).all()
    assert model_rows["local_kwh"].notna().all()
    # more prosumers: more producer agents in the agent rows
    producers = frame[frame["role"] == "producer"].groupby("prosumer_share")["AgentID"].nunique()
    assert producers[0.8] > producers[0.2]


def test_a_failing_run_is_named_and_the_others_are_kept(tmp_path: Path) -> None:
    # a plant on a bus the feeder does not have passes the scenario check but not the model's
    sweep = Sweep.from_dict(
        {
            "hours": 1,
            "seeds": [1],
            "fixed": {"start_hour": 11},
            "grid": {"rep_plants": [[{"bus": 53, "p_kw": 1000.0}], [{"bus": 999, "p_kw": 50.0}]]},
        }
    )
    good, bad = sweep.runs()
    with pytest.raises(SweepRunError) as err:
        run_sweep(sweep, tmp_path, serial=True, progress=False)
    assert list(err.value.failures) == [bad.run_id]
    assert "999" in str(err.value) and bad.run_id in str(err.value)
    assert finished_run_ids(tmp_path) == {good.run_id}
    saved = load_runs(tmp_path)
    assert saved.loc[0, "rep_plants"] == '[{"bus": 53, "p_kw": 1000.0}]'
    with pytest.raises(SweepRunError) as again:  # a rerun retries only the failed run
        run_sweep(sweep, tmp_path, serial=True, progress=False)
    assert list(again.value.failures) == [bad.run_id]
