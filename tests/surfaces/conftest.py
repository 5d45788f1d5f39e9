"""Fixtures for the user-facing surfaces: a real Solara server process and headless chromium."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridledger.viz_server import CORE_SPECS, default_cache_dir, missing_specs

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# a CDN address that refuses connections: a file missing from the offline cache fails the
# request (and so the test) instead of being fetched from the internet
UNREACHABLE_CDN = "http://127.0.0.1:9/npm/"
# the page's starting scenario in the browser test: six midday hours in which both markets trade
# (PV plants on RETB; batteries on LETB under "price_peak" -- the default "evening_night" sells
# only in hours without PV surplus, none of 10:00-13:00) and fields without a control, which
# Reset must keep
VIZ_SCENARIO = 'start_hour = 10\nhours = 6\nletb_areas = 2\nproducer_strategy = "price_peak"\n'


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """A server started as a child process; `url` answers once `wait_ready` returned."""

    def __init__(self, cmd: list[str], env: dict[str, str], url: str, log: Path) -> None:
        self.url = url
        self.log = log
        self._log_fh = log.open("wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log_fh, stderr=subprocess.STDOUT)

    def wait_ready(self, path: str = "/readyz", timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        self.stop()
        pytest.fail(f"server not ready after {timeout_s} s:\n{self.tail()}")

    def stop(self) -> bool:
        """Ctrl-C (SIGINT: the server shuts down), SIGKILL only if it hangs.

        Returns True if the server stopped by itself within 20 s.
        """
        clean = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                clean = False
                self.proc.kill()
                self.proc.wait()
        self._log_fh.close()
        return clean

    def tail(self, n_chars: int = 6000) -> str:
        if not self._log_fh.closed:
            self._log_fh.flush()
        return self.log.read_text(errors="replace")[-n_chars:]


@pytest.fixture(scope="session")
def solara_cache_dir() -> Path:
    """The filled offline asset cache (``make test`` fills it with scripts/solara-assets)."""
    cache = default_cache_dir()
    missing = missing_specs(cache, CORE_SPECS)
    if missing:
        pytest.fail(
            f"Solara asset cache {cache} lacks {missing}; run `make tools` "
            f"(or `.venv/bin/python scripts/solara-assets {cache}`)"
        )
    return cache


@pytest.fixture(scope="session")
def offline_env(solara_cache_dir: Path) -> dict[str, str]:
    """Environment for a Solara server that can only use the offline cache."""
    env = dict(os.environ)
    env["SOLARA_ASSETS_PROXY_CACHE_DIR"] = str(solara_cache_dir)
    env["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] = "False"
    env["SOLARA_ASSETS_CDN"] = UNREACHABLE_CDN
    return env


@pytest.fixture(scope="module")
def viz_server(offline_env: dict[str, str], tmp_path_factory) -> Iterator[ServerProcess]:
    """`gridledger viz --scenario VIZ_SCENARIO` on a free 127.0.0.1 port, stopped after the
    module's tests."""
    port = free_port()
    folder = tmp_path_factory.mktemp("viz")
    scenario = folder / "scenario.toml"
    scenario.write_text(VIZ_SCENARIO)
    gridledger = Path(sys.executable).with_name("gridledger")  # the console script users run
    cmd = [str(gridledger), "viz", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--scenario", str(scenario)]
    log = folder / "server.log"
    server = ServerProcess(cmd, offline_env, f"http://127.0.0.1:{port}", log)
    server.wait_ready()
    yield server
    assert server.stop(), f"server ignored Ctrl-C:\n{server.tail()}"


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium driven by playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing; run scripts/install-chromium (make test does)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
