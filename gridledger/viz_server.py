"""Serve the Solara page offline: the asset cache (which npm packages, where), environment, CLI.

Solara's server proxies the JS/CSS its page needs from a CDN (jsdelivr) under
``/_solara/cdn/<path>`` and serves every file it has in ``SOLARA_ASSETS_PROXY_CACHE_DIR/<path>``,
where ``<path>`` is ``<package>@<version-or-range>/<file inside the package>``
(solara/server/cdn_helper.py). Without internet the proxy cannot fetch, so the cache folder must
already hold, for every package spec the page asks for, the content of ``npm pack <spec>`` at
``<cache>/<spec>/``.

``fill_cache`` does that with npm (run once by ``make``, through ``scripts/solara-assets``);
``solara_environment`` gives the environment Solara is started with; ``serve`` starts the page
(``gridledger viz``, registered in the CLI by ``add_viz_parser``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path

# The specs exactly as solara 1.x (ipywidgets 8, ipyvue < 2) writes them into its URLs.
# Versions: solara/server/templates/solara.html.j2, solara/server/settings.py (font-awesome),
# solara/widgets/vue/gridlayout.vue, solara/widgets/vue/vegalite.vue,
# solara/components/markdown.py. Ranges (vega@5) are resolved by npm like the CDN resolves them.
CORE_SPECS: tuple[str, ...] = (
    "@widgetti/solara-vuetify-app@10.1.1",  # page shell, vuetify, fonts
    "requirejs@2.3.6",  # module loader for widgets
    "font-awesome@4.5.0",  # icons (SOLARA_ASSETS_FONTAWESOME_PATH)
    "@widgetti/vue-grid-layout@2.3.13-alpha.2",  # solara.GridDraggable (SolaraViz's layout)
)
OPTIONAL_SPECS: tuple[str, ...] = (
    "vega@5",  # solara.FigureAltair (mesa's altair backend)
    "vega-lite@5",
    "vega-embed@6",
    "katex@0.16.9",  # solara.Markdown loads katex and mermaid on every mount
    "mermaid@10.8.0",
)
ALL_SPECS: tuple[str, ...] = CORE_SPECS + OPTIONAL_SPECS

CACHE_ENV = "SOLARA_ASSETS_PROXY_CACHE_DIR"
TELEMETRY_ENV = "SOLARA_TELEMETRY_MIXPANEL_ENABLE"
PROJECT_CACHE = Path(".tools") / "solara-assets"


class AssetError(RuntimeError):
    """npm failed, returned a tarball that cannot be unpacked, or the cache lacks a package."""


def project_root() -> Path:
    """The source checkout holding this package (with an editable install, ``.tools/`` is there)."""
    return Path(__file__).resolve().parent.parent


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$SOLARA_ASSETS_PROXY_CACHE_DIR`` if set, else ``<project>/.tools/solara-assets``."""
    env = os.environ if environ is None else environ
    if env.get(CACHE_ENV):
        return Path(env[CACHE_ENV]).expanduser().resolve()
    return project_root() / PROJECT_CACHE


def missing_specs(cache_dir: Path, specs: tuple[str, ...] = CORE_SPECS) -> list[str]:
    """The package specs of ``specs`` that are not unpacked in ``cache_dir``."""
    return [s for s in specs if not (cache_dir / s).is_dir() or not any((cache_dir / s).iterdir())]


def solara_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` with Solara's asset cache and telemetry set (kept when already set).

    Raises AssetError naming the cache folder and the missing packages if the cache is not filled.
    """
    env = dict(os.environ if environ is None else environ)
    cache_dir = default_cache_dir(env)
    missing = missing_specs(cache_dir)
    if missing:
        raise AssetError(
            f"Solara's offline assets are missing in {cache_dir} ({', '.join(missing)}); "
            f"fill the folder with `python scripts/solara-assets {cache_dir}` (needs npm) "
            f"or point {CACHE_ENV} at a filled one"
        )
    env[CACHE_ENV] = str(cache_dir)
    env.setdefault(TELEMETRY_ENV, "False")
    return env


def npm_pack(spec: str, workdir: Path) -> Path:
    """Download the tarball of ``spec`` with ``npm pack`` into ``workdir``; return its path."""
    npm = shutil.which("npm")
    if npm is None:
        raise AssetError("npm not found on PATH (needed to fetch Solara's assets for offline use)")
    proc = subprocess.run(
        [npm, "pack", spec, "--json", "--silent", "--pack-destination", str(workdir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise AssetError(f"npm pack {spec} failed: {proc.stderr.strip()[-2000:]}")
    tarballs = sorted(workdir.glob("*.tgz"))
    if len(tarballs) != 1:
        raise AssetError(f"npm pack {spec}: expected one tarball, got {proc.stdout[:500]!r}")
    try:
        json.loads(proc.stdout)[0]["filename"]
    except (json.JSONDecodeError, LookupError, TypeError) as exc:
        raise AssetError(f"npm pack {spec}: unexpected output {proc.stdout[:500]!r}") from exc
    return tarballs[0]


def unpack(tarball: Path, dest: Path) -> None:
    """Extract ``tarball`` into ``dest``, dropping its top folder (``package/``)."""
    with tarfile.open(tarball, "r:gz") as tar:
        members = []
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if len(parts) < 2 or not (member.isfile() or member.isdir()):
                continue
            member.name = str(Path(*parts[1:]))
            members.append(member)
        if not members:
            raise AssetError(f"{tarball.name} contains no files")
        tar.extractall(dest, members=members, filter="data")


def fetch(spec: str, cache_dir: Path) -> bool:
    """Make ``cache_dir/spec`` hold the package's content; return False if it already did.

    The package is unpacked in a temporary folder and renamed into place, so an interrupted run
    never leaves a half-filled package that would later be taken as complete.
    """
    dest = cache_dir / spec
    if not missing_specs(cache_dir, (spec,)):
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".solara-assets-", dir=cache_dir) as tmp:
        tmp_path = Path(tmp)
        tarball = npm_pack(spec, tmp_path)
        staging = tmp_path / "unpacked"
        unpack(tarball, staging)
        if dest.exists():  # an empty folder
            dest.rmdir()
        os.replace(staging, dest)
    return True


def fill_cache(cache_dir: Path, specs: tuple[str, ...] = ALL_SPECS) -> dict[str, bool]:
    """Fetch every spec of ``specs`` missing in ``cache_dir``; return spec -> fetched now."""
    cache_dir = cache_dir.resolve()
    cache_dir.mkdir(parents=True, exist_ok=True)
    return {spec: fetch(spec, cache_dir) for spec in specs}


# --- starting the page ---------------------------------------------------------------------------

SCENARIO_ENV = "GRIDLEDGER_VIZ_SCENARIO"
"""Scenario TOML file the page's sessions start from (set by ``gridledger viz --scenario``)."""
APP_REF = "gridledger.app"
"""What ``solara run`` serves: the module whose ``Page`` component is the browser page."""


def solara_command(
    *, host: str = "127.0.0.1", port: int = 8765, open_browser: bool = False
) -> list[str]:
    """The ``solara run`` command line that serves the page in production mode."""
    cmd = [sys.executable, "-m", "solara", "run", APP_REF, "--host", host, "--port", str(port)]
    cmd += ["--production"]
    if not open_browser:
        cmd.append("--no-open")
    return cmd


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    open_browser: bool = False,
    scenario: Path | None = None,
) -> int:
    """Serve the page: replace this process by the Solara server (returns only on Windows).

    The server gets `solara_environment()`, so the offline asset cache and telemetry settings
    hold whatever the caller's environment was; signals (Ctrl-C, SIGTERM) reach it directly.
    ``scenario``: a Scenario TOML file the page's sessions start from (default: the paper's day).
    """
    env = solara_environment()
    if scenario is not None:
        env[SCENARIO_ENV] = str(Path(scenario).resolve())
    cmd = solara_command(host=host, port=port, open_browser=open_browser)
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execve(cmd[0], cmd, env)
    return subprocess.run(cmd, env=env, check=False).returncode  # pragma: no cover


def viz_main(args: argparse.Namespace) -> int:
    """``gridledger viz``: serve the browser page."""
    from gridledger.scenario import Scenario, ScenarioError

    try:
        if args.scenario is not None:
            Scenario.from_toml(args.scenario)  # a bad file fails here, not in the browser
        return serve(host=args.host, port=args.port, open_browser=args.open, scenario=args.scenario)
    except (AssetError, ScenarioError) as exc:
        print(f"gridledger viz: {exc}", file=sys.stderr)
        return 2


def add_viz_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``gridledger viz [--host H] [--port N] [--open]`` (sets ``func=viz_main``)."""
    parser = subparsers.add_parser(
        "viz",
        help="serve the Mesa/Solara browser page of the market model",
        description=(
            "Serve the interactive page (feeder with DLMPs, time series, controls) with Solara. "
            f"Assets come from the offline cache ${CACHE_ENV} (default <project>/{PROJECT_CACHE})."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (default 8765)")
    parser.add_argument("--open", action="store_true", help="open a web browser on the page")
    parser.add_argument(
        "--scenario", type=Path, default=None, help="scenario TOML the sessions start from"
    )
    parser.set_defaults(func=viz_main)
    return parser
