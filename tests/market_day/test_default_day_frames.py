"""Regression guard: the default day's hourly, trades and agents frames equal a stored copy.

The copy in tests/data/default_day/ was written by scripts/store-default-day.py from the code
before the chain layer moved into gridledger/chain/; a restructuring must keep every value (tx
hashes and block numbers included: they are deterministic on the embedded chain). A change meant
to alter the day regenerates the copy with that script and says so in its commit.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from gridledger.runner import run_scenario

REFERENCE_DIR = Path(__file__).resolve().parent.parent / "data" / "default_day"


def test_default_day_equals_stored_frames() -> None:
    results = run_scenario(progress=False)
    for name in ("hourly", "trades", "agents"):
        stored = pd.read_parquet(REFERENCE_DIR / f"{name}.parquet")
        pd.testing.assert_frame_equal(getattr(results, name), stored, check_exact=True, obj=name)
