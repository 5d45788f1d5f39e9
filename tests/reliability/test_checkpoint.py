"""Checkpoints on the embedded chains: written after set-up and every hour, partial results
marked as such, and what cannot be resumed (an embedded run, a missing or malformed checkpoint)
named. Node-down and resume on real anvil processes: test_node_down.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gridledger import EnergyMarketModel, Results, Scenario
from gridledger.checkpoint import CHECKPOINT_FILE, CheckpointError, load_checkpoint

SC = Scenario().replace(hours=2, start_hour=16)


@pytest.mark.slow  # 3-7 s: a model run
def test_embedded_run_checkpoints_every_hour_but_cannot_resume(tmp_path):
    out = tmp_path / "run"
    sc = SC
    model = EnergyMarketModel(sc, checkpoint_dir=out)
    ckpt = load_checkpoint(out)  # set-up is checkpointed too
    assert ckpt.last_completed_hour == -1 and set(ckpt.setup_blocks) == {"letb", "retb"}
    seen = []

    def check(row: dict[str, Any]) -> None:
        saved = Results.load(out)
        seen.append((load_checkpoint(out).last_completed_hour, saved.summary["hours"]))
        assert saved.summary["complete"] is (row["t"] == sc.hours - 1)

    model.run(check)
    assert seen == [(0, 1), (1, 2)]
    with pytest.raises(CheckpointError, match="embedded-chain run cannot be resumed"):
        EnergyMarketModel.resume(out)
    with pytest.raises(CheckpointError, match=r"checkpoint\.json: missing"):
        EnergyMarketModel.resume(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(format=99), "field 'format' = 99"),
        (lambda d: d.pop("start_blocks"), "missing or malformed field"),
        (lambda d: d.update(last_completed_hour=5), "0 hour block records for last .* hour 5"),
    ],
)
def test_bad_checkpoint_files_are_named(tmp_path: Path, change: Any, message: str) -> None:
    ckpt = {
        "format": 1,
        "chain": "http://127.0.0.1:1,http://127.0.0.1:2",
        "last_completed_hour": -1,
        "start_blocks": {"letb": {"number": 0, "hash": "0x00"}},
        "setup_blocks": {},
        "hour_blocks": [],
        "nonces": {},
        "scenario": SC.to_dict(),
    }
    assert load_checkpoint_from(tmp_path, ckpt).scenario == SC
    change(ckpt)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint_from(tmp_path, ckpt)
    (tmp_path / CHECKPOINT_FILE).write_text("{not json")
    with pytest.raises(CheckpointError, match=r"checkpoint\.json: not valid JSON"):
        load_checkpoint(tmp_path)


def load_checkpoint_from(folder: Path, data: dict[str, Any]) -> Any:
    (folder / CHECKPOINT_FILE).write_text(json.dumps(data))
    return load_checkpoint(folder)
