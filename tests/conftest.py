"""Shared by every test folder: waiting for a subprocess's output with a deadline that fires.

A blocking ``readline()`` in a loop that checks a deadline between lines never returns from a
silent process; here a daemon thread reads the pipe and the test waits on a queue with a
timeout, so a hung node fails its test instead of holding CI (pytest-timeout, configured in
pyproject.toml, is the backstop for everything else)."""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections.abc import Callable

import pytest


class NoLineError(AssertionError):
    """The process printed no line containing the expected text in time, or exited first."""


def wait_for_line(proc: subprocess.Popen[str], needle: str, timeout_s: float) -> str:
    """The first line of `proc`'s stdout (a text pipe) that contains `needle`; raises
    NoLineError after `timeout_s` seconds or when the process closes its stdout first. The
    pipe is drained by a daemon thread for the rest of the process's life."""
    if proc.stdout is None:
        raise ValueError("proc: stdout must be a pipe (stdout=subprocess.PIPE, text=True)")
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise NoLineError(f"no line with {needle!r} within {timeout_s} s") from None
        if line is None:
            raise NoLineError(f"process exited ({proc.wait()}) before printing {needle!r}")
        if needle in line:
            return line


@pytest.fixture
def line_waiter() -> Callable[[subprocess.Popen[str], str, float], str]:
    """`wait_for_line` for tests in any folder (a fixture, so no cross-folder import)."""
    return wait_for_line
