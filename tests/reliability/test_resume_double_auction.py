"""A run of the double auction (`market_mechanism = "double_auction"`, markets/double_auction.py)
checkpointed on two real anvil processes, interrupted after its first hour and resumed with
`EnergyMarketModel.resume`, ends with exactly the uninterrupted run's frames, trades, summary
and token balances, as the paper's mechanism does (test_node_down.py).

The scenario: 3 hours from 16:00 with a non-delivering producer and a registration bond: the
auction trades in every hour (renewable trades in hour 0 too), bids escrow tokens and clearing
and settlement credit refunds, so a replayed hour must read the state of its own blocks. Two
interruptions: the LETB node killed after hour 1's bids are mined and before the operator's
clear (the clear is then sent by the resumed run), and the run's own process stopped after
hour 1's clear is mined (the resumed run reads the clearing's events from the chain).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gridledger import EnergyMarketModel, Results, Scenario
from gridledger.chain import NodeDownError
from gridledger.checkpoint import load_checkpoint

from .resume_world import (
    Nodes,
    assert_no_double_spend,
    assert_resumed_at,
    assert_same_run,
    kill_when,
    reference_run,
)

pytestmark = [pytest.mark.anvil, pytest.mark.slow]  # 2-4 s each + 1 s reference: anvil runs

SC = Scenario(market_mechanism="double_auction").replace(
    hours=3, start_hour=16, cheat_producers=1, registration_bond_usd=1.0
)
STOP_HOUR = 1
"""The hour in which the run stops; hour 0 is checkpointed."""


def stop_run() -> None:
    raise KeyboardInterrupt


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    """The same scenario run without interruption on two fresh anvil processes."""
    ref = reference_run(SC)
    local = ref["results"].trades.query("chain == 'letb'")
    assert set(local["t"]) == set(range(SC.hours)), "the auction trades every hour"
    return ref


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    with Nodes(tmp_path, SC) as n:
        yield n


@pytest.mark.parametrize(
    ("stage", "interrupt", "stopped"),
    [
        ("post_offer", lambda n: n.crash("letb"), NodeDownError),
        ("letb_request", lambda n: stop_run(), KeyboardInterrupt),
    ],
    ids=["node-killed-before-clear", "run-stopped-after-clear"],
)
def test_an_interrupted_auction_run_resumes_to_the_uninterrupted_run(
    nodes: Nodes,
    tmp_path: Path,
    reference: dict[str, Any],
    stage: str,
    interrupt: Callable[[Nodes], None],
    stopped: type[BaseException],
) -> None:
    out = tmp_path / "run"
    model = EnergyMarketModel(SC, chain=nodes.spec, checkpoint_dir=out)
    kill_when(model, STOP_HOUR, stage, lambda: interrupt(nodes))
    with pytest.raises(stopped):
        model.run()
    ref = reference["results"]
    assert load_checkpoint(out).last_completed_hour == STOP_HOUR - 1
    saved = Results.load(out)
    assert saved.summary["hours"] == STOP_HOUR and saved.summary["complete"] is False
    pd.testing.assert_frame_equal(saved.hourly, ref.hourly.iloc[:STOP_HOUR])
    if stopped is NodeDownError:
        nodes.start("letb")  # back from its persisted chain
    model = EnergyMarketModel.resume(out)
    assert [m.name for m in model.markets] == ["double_auction", "retb"]
    res = model.run()
    assert_same_run(res, ref)
    assert_no_double_spend(model, res, reference)
    assert_resumed_at(res, STOP_HOUR)
    final = Results.load(out)
    assert load_checkpoint(out).complete and final.summary["complete"] is True
    pd.testing.assert_frame_equal(final.hourly, ref.hourly)
    pd.testing.assert_frame_equal(final.trades, res.trades)
