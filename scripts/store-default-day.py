#!/usr/bin/env python3
"""Store the default day's hourly, trades and agents frames as the regression guard's reference.

Writes tests/data/default_day/{hourly,trades,agents}.parquet from `run_scenario()` on the
embedded chain (the default scenario and seed); tests/market_day/test_default_day_frames.py
asserts a fresh run equals them exactly.

Regenerate ONLY when a change is meant to alter the default day's numbers (a new market rule,
scenario default, contract or dispatch change) and say so in that commit's message; a
restructuring must leave the stored frames untouched. Run from the repository root:
    PYTHONPATH=$PWD .venv/bin/python scripts/store-default-day.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "default_day"
FRAMES = ("hourly", "trades", "agents")


def default_day_frames() -> dict[str, pd.DataFrame]:
    """The default day's guarded frames, from one `run_scenario()` on the embedded chain."""
    from gridledger.runner import run_scenario

    results = run_scenario(progress=False)
    return {name: getattr(results, name) for name in FRAMES}


def main() -> int:
    REFERENCE_DIR.mkdir(parents=True, exist_ok=True)
    for name, frame in default_day_frames().items():
        path = REFERENCE_DIR / f"{name}.parquet"
        frame.to_parquet(path)
        print(f"{path}: {len(frame)} rows x {frame.shape[1]} columns")
    return 0


if __name__ == "__main__":
    sys.exit(main())
