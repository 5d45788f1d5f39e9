"""Acceptance of the revm engine: the default day on revm (the default embedded engine) gives
the same hourly, trades, agents and gas frames as on py-evm -- the same signed transactions
(same hashes), the same gas per transaction, the same results. Only block hashes differ
(gridledger/market/revm_chain.py hashes its own header format)."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from gridledger import EnergyMarketModel, Results, Scenario
from gridledger.market.revm_chain import RevmChain

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
