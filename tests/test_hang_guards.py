"""A hung process fails its test in bounded time: the output wait of tests/conftest.py fires on
a silent process, and pytest-timeout (pyproject.toml) fails a test blocked in readline()."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

SILENT = [sys.executable, "-c", "import time; time.sleep(20)"]


def test_wait_for_line_fires_on_a_silent_process(line_waiter) -> None:
    proc = subprocess.Popen(SILENT, stdout=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        with pytest.raises(AssertionError, match=r"^no line with 'ready' within 0.5 s$") as info:
            line_waiter(proc, "ready", 0.5)
        assert type(info.value).__name__ == "NoLineError"
        assert time.monotonic() - t0 < 5
    finally:
        proc.kill()
        proc.wait()


def test_wait_for_line_names_an_early_exit_and_finds_the_line(line_waiter) -> None:
    code = "print('starting'); print('node ready on 8545', flush=True)"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert line_waiter(proc, "ready", 30) == "node ready on 8545\n"
    proc = subprocess.Popen([sys.executable, "-c", "pass"], stdout=subprocess.PIPE, text=True)
    with pytest.raises(AssertionError, match=r"^process exited \(0\) before printing 'ready'$"):
        line_waiter(proc, "ready", 30)


def test_pytest_timeout_fails_a_test_blocked_in_readline(tmp_path: Path) -> None:
    """The old pattern (a deadline checked between blocking readline() calls) on a silent
    process: pytest-timeout fails the test after its timeout instead of waiting forever."""
    (tmp_path / "test_hang.py").write_text(
        "import subprocess, sys, time\n"
        "def test_hang():\n"
        f"    proc = subprocess.Popen({SILENT!r}, stdout=subprocess.PIPE, text=True)\n"
        "    deadline = time.monotonic() + 1\n"
        "    while 'ready' not in proc.stdout.readline():\n"
        "        assert time.monotonic() < deadline\n"
    )
    t0 = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "timeout=2",
         str(tmp_path / "test_hang.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout
    assert "Failed: Timeout (>2.0s) from pytest-timeout" in run.stdout, run.stdout
    assert time.monotonic() - t0 < 60


def test_every_test_here_has_the_configured_timeout(pytestconfig: pytest.Config) -> None:
    assert float(pytestconfig.getini("timeout")) == 300
