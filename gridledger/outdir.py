"""Checking a run's output folder before the run, so a bad `--out` never loses a finished run.

`check_output_folder(out, scenario, force=...)` raises OutputFolderError (one line naming the
folder and the reason) when the folder

- is a file, or lies under a file;
- cannot be written (probed by creating and removing a temporary file, which also catches
  read-only mounts and the root user, for whom permission bits do not apply);
- holds the results of a run of another scenario (its `scenario.toml` differs) or other files
  (not a gridledger results folder), unless `force`.

A folder holding the results of the *same* scenario is overwritten without `--force`: running a
command again (e.g. `make run` twice) reproduces its own results. See README "Command line".
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from gridledger.results import SCENARIO_FILE, SUMMARY_FILE
from gridledger.scenario import Scenario, ScenarioError

RUN_MARKERS = (SUMMARY_FILE, SCENARIO_FILE, "checkpoint.json")
"""Files whose presence marks a folder written by `gridledger run` (complete or checkpointed)."""


class OutputFolderError(ValueError):
    """The output folder cannot take this run's results; the message names folder and reason."""


def _nearest_existing(path: Path) -> Path:
    """`path` or its closest ancestor that exists."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()  # pragma: no cover (a relative path's ancestors end at '.')


def check_writable(out: Path, *, name: str = "--out") -> None:
    """Raise OutputFolderError unless `out` is, or can be created as, a writable folder
    (`name`: how the message calls it)."""
    existing = _nearest_existing(out.absolute())
    if not existing.is_dir():
        where = "is a file" if existing == out.absolute() else f"lies under the file {existing}"
        raise OutputFolderError(f"{name} {out}: {where}, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".gridledger-probe-"):
            pass
    except OSError as exc:
        raise OutputFolderError(
            f"{name} {out}: cannot write into {existing} ({exc.strerror or exc})"
        ) from exc


def scenario_differences(old: Scenario, new: Scenario) -> list[str]:
    """Fields in which two scenarios differ, as 'name old -> new' (rep_plants shortened)."""
    a, b = old.to_dict(), new.to_dict()
    out = []
    for key in a:
        if a[key] != b[key]:
            shown = ("...", "...") if key == "rep_plants" else (a[key], b[key])
            out.append(f"{key} {shown[0]} -> {shown[1]}")
    return out


def check_output_folder(out: Path, scenario: Scenario, *, force: bool = False) -> None:
    """Raise OutputFolderError if `out` cannot or should not take the results of `scenario`."""
    check_writable(out)
    if not out.is_dir() or not any(out.iterdir()) or force:
        return
    advice = "choose another --out or pass --force to overwrite"
    if not any((out / name).is_file() for name in RUN_MARKERS):
        raise OutputFolderError(
            f"--out {out}: not empty and not a gridledger results folder; {advice}"
        )
    try:
        old = Scenario.from_toml(out / SCENARIO_FILE)
    except ScenarioError:
        raise OutputFolderError(
            f"--out {out}: holds results whose scenario.toml is missing or unreadable; {advice}"
        ) from None
    diff = scenario_differences(old, scenario)
    if diff:
        shown = "; ".join(diff[:3]) + (f"; {len(diff) - 3} more" if len(diff) > 3 else "")
        raise OutputFolderError(
            f"--out {out}: holds the results of another scenario ({shown}); {advice}"
        )


__all__ = ["OutputFolderError", "check_output_folder", "check_writable", "scenario_differences"]
