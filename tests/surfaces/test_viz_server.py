"""The offline asset cache matches what the installed Solara requests; viz refuses an empty one."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import solara

from gridledger.viz_server import (
    ALL_SPECS,
    CACHE_ENV,
    CORE_SPECS,
    AssetError,
    add_viz_parser,
    default_cache_dir,
    missing_specs,
    solara_command,
    solara_environment,
)

SOLARA_DIR = Path(solara.__file__).parent
# files whose CDN urls the page can request with ipyvue < 2 (the vuetify3 app is for ipyvue 3)
SOURCES = (
    "server/templates/solara.html.j2",
    "widgets/vue/gridlayout.vue",
    "widgets/vue/vegalite.vue",
    "components/markdown.py",
)
CDN_URL = re.compile(r"(?:\{\{cdn\}\}|getCdn\(\)\})/((?:@[\w.-]+/)?[\w.-]+@[^/{}$]+)/")


def requested_specs() -> set[str]:
    """package@version specs the installed Solara puts into its CDN urls (vue 2 page)."""
    specs: set[str] = set()
    for rel in SOURCES:
        text = (SOLARA_DIR / rel).read_text()
        specs |= {m for m in CDN_URL.findall(text) if "vuetify3" not in m}
    from solara.server import settings

    specs.add(settings.assets.fontawesome_path.strip("/").split("/")[0])
    return specs


def test_specs_cover_every_url_solara_requests() -> None:
    specs = requested_specs()
    assert "@widgetti/solara-vuetify-app@10.1.1" in specs  # the scan itself works
    assert "requirejs@2.3.6" in specs
    assert specs <= set(ALL_SPECS), f"not fetched: {specs - set(ALL_SPECS)}"


def test_filled_cache_holds_the_files_the_page_loads(solara_cache_dir: Path) -> None:
    assert missing_specs(solara_cache_dir, ALL_SPECS) == []
    app = solara_cache_dir / "@widgetti/solara-vuetify-app@10.1.1/dist"
    for name in ("main8.css", "fonts.css", "solara-vuetify-app8.min.js"):
        assert (app / name).stat().st_size > 1000, name
    assert (solara_cache_dir / "requirejs@2.3.6/require.js").is_file()
    assert (solara_cache_dir / "font-awesome@4.5.0/css/font-awesome.min.css").is_file()
    grid = solara_cache_dir / "@widgetti/vue-grid-layout@2.3.13-alpha.2/dist/vue-grid-layout.umd.js"
    assert grid.is_file()
    # fonts referenced by the css are in the package too
    css = (app / "fonts.css").read_text()
    fonts = set(re.findall(r"url\(([^)?#]+)", css))
    assert fonts, "fonts.css references no font files"
    for font in fonts:
        assert (app / font.strip("'\"")).is_file(), font


def test_environment_points_solara_at_the_cache(solara_cache_dir: Path) -> None:
    env = solara_environment({CACHE_ENV: str(solara_cache_dir), "PATH": "/usr/bin"})
    assert env[CACHE_ENV] == str(solara_cache_dir)
    assert env["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] == "False"
    assert env["PATH"] == "/usr/bin"
    kept = solara_environment(
        {CACHE_ENV: str(solara_cache_dir), "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "True"}
    )
    assert kept["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] == "True"  # an explicit choice is kept


def test_default_cache_is_in_the_project_when_unset() -> None:
    assert default_cache_dir({}) == Path(__file__).resolve().parents[2] / ".tools/solara-assets"


def test_empty_cache_is_refused_naming_folder_and_packages(tmp_path: Path) -> None:
    (tmp_path / "requirejs@2.3.6").mkdir()  # an empty folder does not count
    with pytest.raises(AssetError) as err:
        solara_environment({CACHE_ENV: str(tmp_path)})
    msg = str(err.value)
    assert str(tmp_path) in msg
    for spec in CORE_SPECS:
        assert spec in msg
    assert "scripts/solara-assets" in msg


def test_viz_parser_and_command() -> None:
    parser = argparse.ArgumentParser(prog="gridledger")
    add_viz_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["viz", "--port", "9123"])
    assert (args.host, args.port, args.open) == ("127.0.0.1", 9123, False)
    assert callable(args.func)
    cmd = solara_command(host=args.host, port=args.port)
    assert cmd[1:5] == ["-m", "solara", "run", "gridledger.app"]
    assert cmd[cmd.index("--port") + 1] == "9123"
    assert "--production" in cmd and "--no-open" in cmd


def run_viz(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    gridledger = Path(sys.executable).with_name("gridledger")
    return subprocess.run(
        [str(gridledger), "viz", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_viz_command_refuses_an_empty_cache(tmp_path: Path) -> None:
    proc = run_viz("--port", "1", env={**os.environ, CACHE_ENV: str(tmp_path)})
    assert proc.returncode == 2
    assert "Solara's offline assets are missing" in proc.stderr and str(tmp_path) in proc.stderr


def test_viz_command_refuses_a_bad_scenario(tmp_path: Path, solara_cache_dir: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("prosumer_share = 2.0\n")
    proc = run_viz("--scenario", str(bad), env={**os.environ, CACHE_ENV: str(solara_cache_dir)})
    assert proc.returncode == 2
    assert "prosumer_share" in proc.stderr
