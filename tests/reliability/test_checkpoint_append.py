"""Checkpoints append each hour's rows instead of rewriting the run's frames (issue 13): what a
partial folder loads equals the model's frames at that hour, each part holds one hour's rows, and
`Results.save` consolidates the folder."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from gridledger import EnergyMarketModel, Results, Scenario
from gridledger.results import APPENDED_FRAMES, PARTS_DIR, part_path

SC = Scenario().replace(hours=3, start_hour=11)


def test_checkpoint_parts_hold_each_hour_once(tmp_path):
    out = tmp_path / "run"
    model = EnergyMarketModel(SC, checkpoint_dir=out)
    setup_rows = pq.read_metadata(part_path(out, "gas", 0)).num_rows
    assert setup_rows == model.ledger.n_tx > 0
    seen = []

    def check(row: dict[str, Any]) -> None:
        t = row["t"]
        saved, now = Results.load(out), model.results()
        pd.testing.assert_frame_equal(saved.hourly, now.hourly)
        for name in APPENDED_FRAMES:
            pd.testing.assert_frame_equal(getattr(saved, name), getattr(now, name), obj=name)
        assert saved.summary["hours"] == t + 1
        assert saved.summary["complete"] is (t == SC.hours - 1)
        # part t + 1 holds hour t's transactions, nothing earlier
        part = pq.read_table(part_path(out, "gas", t + 1)).to_pandas()
        assert len(part) == (now.gas["t"] == t).sum() and set(part["t"]) == {t}
        seen.append(t)

    final = model.run(check)
    assert seen == list(range(SC.hours))
    final.save(out)  # whole frames; the parts are superseded
    assert not (out / PARTS_DIR).exists()
    saved = Results.load(out)
    assert saved.summary["complete"] is True
    for name in ("hourly", *APPENDED_FRAMES):
        pd.testing.assert_frame_equal(getattr(saved, name), getattr(final, name), obj=name)


def test_fresh_run_drops_parts_of_an_earlier_run(tmp_path):
    out = tmp_path / "run"
    stale = part_path(out, "gas", 7)
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"not parquet")
    model = EnergyMarketModel(SC.replace(hours=1), checkpoint_dir=out)
    assert not stale.exists()
    assert Results.load(out).summary["hours"] == 0
    model.run()
    assert Results.load(out).summary["complete"] is True
