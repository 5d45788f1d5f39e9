"""Issue 18, everyday needs of the command line, on real runs: `--out` checked before the run,
`--force`, `--chain` syntax, one-line errors and exit codes, `--version`, readable result files,
`--format csv`, `--figure-format`, `gridledger compare`."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from gridledger.chain.jsonrpc import RPC_TIMEOUT_ENV
from gridledger.cli import EXIT_CODES, chain_spec, main
from gridledger.compare import COMPARE_FIGURES
from gridledger.results import FRAMES, Results
from gridledger.scenario import Scenario

ROOT = Path(__file__).resolve().parents[2]
# two midday hours: both markets trade, the RETB stable window is open
MIDDAY = Scenario(start_hour=10, hours=2)


# as root, permission bits bind only without CAP_DAC_OVERRIDE: drop it (util-linux setpriv)
AS_USER = (
    ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"] if os.geteuid() == 0 else []
)


def cli(
    *args: str, bits_bind: bool = False, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`gridledger ARGS` in a fresh interpreter (this checkout's code); `bits_bind`: file
    permission bits apply even when the tests run as root; `env_extra`: more variables."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.run(
        [*(AS_USER if bits_bind else []), sys.executable, "-m", "gridledger.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )


@functools.cache
def startup_s() -> float:
    """Seconds `gridledger --version` takes here (interpreter and imports; on a busy machine)."""
    start = time.monotonic()
    assert cli("--version").returncode == 0
    return time.monotonic() - start


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two real runs through `gridledger run`: the midday scenario for 2 and for 3 hours, the
    first with CSV and SVG/PDF figures, written under umask 002."""
    base = tmp_path_factory.mktemp("runs")
    scenario = base / "midday.toml"
    scenario.write_text(MIDDAY.to_toml())
    old_umask = os.umask(0o002)
    try:
        common = ["run", "--scenario", str(scenario), "--no-progress"]
        extra = ["--format", "csv", "--figure-format", "png,svg,pdf"]
        assert main([*common, "--out", str(base / "two"), *extra]) == 0
        assert main([*common, "--hours", "3", "--out", str(base / "three")]) == 0
    finally:
        os.umask(old_umask)
    return {"two": base / "two", "three": base / "three", "scenario": scenario}


# --- `--out` checked before the run ------------------------------------------------------------


def test_out_is_a_file_fails_in_seconds_with_one_line(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    start = time.monotonic()
    proc = cli("run", "--hours", "2", "--out", str(target), "--no-progress")
    elapsed = time.monotonic() - start
    assert proc.returncode == 2
    assert one_line(proc.stderr) == f"gridledger run: --out {target}: is a file, not a folder"
    assert elapsed < max(15.0, 2 * startup_s()), elapsed  # start-up only, not a 2-hour run
    assert target.read_text() == "keep me"
    proc = cli("run", "--hours", "2", "--out", str(target / "sub"), "--no-progress")
    assert proc.returncode == 2
    assert "lies under the file" in one_line(proc.stderr)


def test_read_only_folder_refused_before_the_run(tmp_path: Path) -> None:
    """A folder the user cannot write into (the folder itself, or its parent for a new one)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    for out in (locked, locked / "new"):
        start = time.monotonic()
        proc = cli("run", "--hours", "2", "--out", str(out), "--no-progress", bits_bind=True)
        assert proc.returncode == 2, proc.stderr
        line = one_line(proc.stderr)
        assert line.startswith(f"gridledger run: --out {out}: cannot write into {locked}"), line
        assert "Permission denied" in line
        assert time.monotonic() - start < max(15.0, 2 * startup_s())
    assert not any(locked.iterdir())


@pytest.mark.slow
def test_report_into_a_read_only_results_folder(runs: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(runs["three"], folder)
    (folder / "figures").chmod(0o555)
    folder.chmod(0o555)
    try:
        proc = cli("report", str(folder), bits_bind=True)
    finally:
        folder.chmod(0o755)
        (folder / "figures").chmod(0o755)
    assert proc.returncode == 2
    assert one_line(proc.stderr).startswith(
        f"gridledger report: results folder {folder}: cannot write into {folder} (Permission"
    )


@pytest.mark.slow
def test_results_of_another_scenario_refused_unless_force(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "day"
    common = ["run", "--scenario", str(runs["scenario"]), "--no-progress", "--out", str(out)]
    assert main(common) == 0
    run_id = json.loads((out / "summary.json").read_text())["run_id"]
    capsys.readouterr()
    # another scenario (3 hours instead of 2): refused before the run, the folder untouched
    assert main([*common, "--hours", "3"]) == 2
    err = capsys.readouterr().err
    assert one_line(err) == (
        f"gridledger run: --out {out}: holds the results of another scenario (hours 2 -> 3); "
        "choose another --out or pass --force to overwrite"
    )
    assert json.loads((out / "summary.json").read_text())["run_id"] == run_id
    # the same scenario again (e.g. `make run` twice): overwritten without --force
    assert main(common) == 0
    assert json.loads((out / "summary.json").read_text())["run_id"] != run_id
    # --force: overwritten by the other scenario; CSV and SVG files of the older run removed
    assert main([*common, "--format", "csv", "--figure-format", "svg"]) == 0
    assert (out / "hourly.csv").is_file() and (out / "figures" / "fig7_user_price.svg").is_file()
    assert main([*common, "--hours", "3", "--force"]) == 0
    assert len(Results.load(out).hourly) == 3
    assert not list(out.glob("*.csv")) and not list(out.glob("figures/*.svg"))
    assert len(list(out.glob("figures/*.png"))) == 5


def test_folder_with_other_files_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    (tmp_path / "thesis.tex").write_text("x")
    assert main(["run", "--hours", "2", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "not a gridledger results folder" in one_line(capsys.readouterr().err)


# --- argument errors: one line, exit 2; --version; exit codes documented ------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # the reason is parse_chain_spec's (gridledger/chain/specs.py); it names the value
        (["run", "--chain", "foo"], "gridledger run: error: argument --chain: "),
        (["run", "--chain", "ftp://a,ftp://b"], "'ftp://a'"),
        (["run", "--figure-format", "gif"], "argument --figure-format: 'gif'"),
        (["run", "--hours", "x"], "argument --hours: invalid int value"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], expected: str) -> None:
    proc = cli(*args)
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert expected in line and line.startswith("gridledger"), line
    assert "Traceback" not in proc.stderr


def test_bad_rpc_timeout_is_refused_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "never"
    nodes = "http://127.0.0.1:1,http://127.0.0.1:2"  # not reached: the check comes first
    proc = cli("run", "--chain", nodes, "--out", str(out), env_extra={RPC_TIMEOUT_ENV: "soon"})
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert "GRIDLEDGER_RPC_TIMEOUT_S must be a positive number of seconds, got 'soon'" in line
    assert not out.exists()
    # the embedded chains use no node: the variable is not read
    assert chain_spec("embedded") == "embedded"


def test_chain_type_accepts_what_parse_chain_spec_accepts() -> None:
    for spec in ("embedded", "http://127.0.0.1:8545,http://127.0.0.1:8546"):
        assert chain_spec(spec) == spec


def test_version_and_exit_codes_in_readme() -> None:
    from gridledger import __version__

    proc = cli("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"gridledger {__version__}"
    readme = (ROOT / "README.md").read_text()
    for code, meaning in EXIT_CODES.items():
        assert f"| {code} | {meaning} |" in readme


# --- what a run writes ---------------------------------------------------------------------------


@pytest.mark.slow
def test_result_files_follow_the_umask(runs: dict[str, Path]) -> None:
    written = [*runs["two"].glob("*.parquet"), *runs["two"].glob("*.csv")]
    written += [runs["two"] / "summary.json", runs["two"] / "scenario.toml"]
    for path in written:
        assert path.stat().st_mode & 0o777 == 0o664, path  # 0666 minus umask 002
    figure = runs["two"] / "figures" / "fig6_grid_demand.png"
    assert figure.stat().st_mode & 0o777 == 0o664


@pytest.mark.slow
def test_csv_beside_parquet_and_figure_formats(runs: dict[str, Path]) -> None:
    res = Results.load(runs["two"])
    for name in FRAMES:
        csv = pd.read_csv(runs["two"] / f"{name}.csv", index_col=0)
        frame = getattr(res, name)
        assert len(csv) == len(frame) and list(csv.columns) == [str(c) for c in frame.columns]
    hourly = pd.read_csv(runs["two"] / "hourly.csv", index_col=0)
    assert hourly["grid_import_kwh"].to_numpy() == pytest.approx(res.hourly["grid_import_kwh"])
    figures = runs["two"] / "figures"
    for stem in ("fig3_gas_per_operation", "fig7_user_price"):
        assert (figures / f"{stem}.svg").read_text()[:200].count("<svg") == 1
        assert (figures / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
        assert (figures / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
    assert not list((runs["three"]).glob("*.csv"))  # parquet only by default


# --- gridledger compare --------------------------------------------------------------------------


@pytest.mark.slow
def test_compare_kpi_table_and_overlaid_figures(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    proc = cli("compare", str(runs["two"]), str(runs["three"]), "--out", str(out),
               "--figure-format", "png,svg")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "kpis.csv", index_col="run")
    assert list(table.index) == ["two", "three"]
    assert list(table["hours"]) == [2, 3]
    for label in ("two", "three"):
        summary = json.loads((runs[label] / "summary.json").read_text())
        assert table.loc[label, "cost_saving_pct"] == pytest.approx(summary["cost_saving_pct"])
        assert table.loc[label, "tx_count"] == summary["tx_count"]
    assert table.loc["three", "differs"] == "hours 2 -> 3"
    assert "cost saving %" in proc.stdout and "three" in proc.stdout
    for name, draw in COMPARE_FIGURES.items():
        assert (out / f"{name}.png").stat().st_size > 10_000
        assert (out / f"{name}.svg").read_text()[:200].count("<svg") == 1
        loaded = {label: Results.load(runs[label]) for label in ("two", "three")}
        legend = [t.get_text() for t in draw(loaded).axes[0].get_legend().get_texts()]
        assert legend == ["two", "two baseline", "three", "three baseline"]


def test_compare_missing_folder_one_line(tmp_path: Path) -> None:
    proc = cli("compare", str(tmp_path / "nowhere"), str(tmp_path), "--out", str(tmp_path / "c"))
    assert proc.returncode == 2
    assert "summary.json: missing" in one_line(proc.stderr)
    assert not (tmp_path / "c").exists()
