"""Acceptance of the revm engine: the default day on revm (the default embedded engine) gives
the same hourly, trades, agents and gas frames as on py-evm -- the same signed transactions
(same hashes), the same gas per transaction, the same results. Only block hashes differ
(gridledger/chain/revm.py hashes its own header format)."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from gridledger import EnergyMarketModel, Results, Scenario
from gridledger.chain.revm import RevmChain

pytestmark = pytest.mark.slow


def test_default_day_on_revm_equals_the_day_on_py_evm(day: tuple[EnergyMarketModel, Results]):
    model, on_revm = day
    assert all(isinstance(c, RevmChain) for c in model.chains.values())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        on_pyevm = EnergyMarketModel(Scenario(), chain="pyevm").run()
    for frame in ("hourly", "trades", "agents", "gas"):
        a, b = getattr(on_revm, frame), getattr(on_pyevm, frame)
        assert len(a) > 0, frame
        same = [c for c in a.columns if c != "block_hash"]
        pd.testing.assert_frame_equal(a[same], b[same], obj=frame)
    assert (on_revm.gas["block_hash"] != on_pyevm.gas["block_hash"]).all()


@pytest.mark.anvil
def test_crowded_hours_on_anvil_equal_the_embedded_chain():
    """At 5 households per bus a phase holds hundreds of transactions per block; requests and
    feedback are first-come-first-served, so anvil must execute them in submission order as
    revm does. When a phase went to anvil as one JSON-RPC batch (out of order past 64 calls),
    these 10 hours differed: offer gas from t = 0 and two reputations at t = 9 (on the day
    before the evening-night dispatch: fills from t = 9 on; docs/block-order.md)."""
    from gridledger.chain.nodes import start_anvil

    sc = Scenario().replace(households_per_bus=5, hours=10)
    embedded = EnergyMarketModel(sc).run()
    with (
        start_anvil(sc.letb_chain_id) as letb,
        start_anvil(sc.retb_chain_id) as retb,
    ):
        on_anvil = EnergyMarketModel(sc, chain=f"{letb.url},{retb.url}").run()
    assert embedded.trades["t"].nunique() >= 3
    for frame in ("hourly", "trades", "agents"):
        a, b = getattr(embedded, frame), getattr(on_anvil, frame)
        same = [c for c in a.columns if c not in ("tx_hash", "block")]
        pd.testing.assert_frame_equal(a[same], b[same], obj=frame)
    # the market hours' transactions, in the same order, with the same gas (set-up differs:
    # the faucets are different accounts)
    gas = ["t", "phase", "sender", "operation", "gas_used", "status"]
    a, b = (r.gas[r.gas["t"] >= 0][gas].reset_index(drop=True) for r in (embedded, on_anvil))
    pd.testing.assert_frame_equal(a, b, obj="gas")
