"""Acceptance: the default day end to end on the embedded chains (revm) with the real OPF solver.

The day itself runs once per session (fixture `day` in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from web3.logs import DISCARD

from gridledger import EnergyMarketModel, Results, Scenario, run_scenario
from gridledger.cli import main
from gridledger.contracts import load_artifact
from gridledger.report import FIGURES, write_figures

pytestmark = pytest.mark.slow


def test_day_runs_and_conserves(day: tuple[EnergyMarketModel, Results]) -> None:
    model, r = day
    h = r.hourly
    assert len(h) == 24 and not model.running
    # conservation is enforced inside every step (ConservationError); re-check from the frames
    np.testing.assert_allclose(
        h["demand_kwh"], h["local_kwh"] + h["renewable_kwh"] + h["grid_import_kwh"], atol=1e-9
    )
    assert (r.trades["delivered_wh"] <= r.trades["e_wh"]).all()
    assert r.summary["opf_max_relaxation_gap"] <= 1e-6
    assert r.summary["opf_max_v_error_pu"] <= 1e-6
    assert len(r.trades) > 100 and set(r.trades["chain"]) == {"letb", "retb"}


def test_every_trade_matches_an_event_on_chain(day: tuple[EnergyMarketModel, Results]) -> None:
    model, r = day
    # Trade events are emitted by `request` only (contracts/README.md): fetch the receipt of every
    # request transaction the ledger recorded and decode its logs with web3's own ABI decoder,
    # independent of the model's wrappers
    for chain_name, contract in (("letb", "LETB"), ("retb", "RETB")):
        w3 = model.chains[chain_name].w3
        trade_event = w3.eth.contract(abi=load_artifact(contract)["abi"]).events.Trade()
        gas = r.gas[(r.gas["chain"] == chain_name) & (r.gas["operation"] == "request")]
        trades = r.trades[r.trades["chain"] == chain_name]
        assert set(trades["tx_hash"]) <= set(gas["tx_hash"])
        events = {}
        for tx_hash in gas["tx_hash"]:
            receipt = w3.eth.get_transaction_receipt(tx_hash)
            for ev in trade_event.process_receipt(receipt, errors=DISCARD):
                a = ev["args"]
                seller = a["seller"] if contract == "LETB" else a["rep"]
                index = a["index"] if contract == "LETB" else 0
                events[(tx_hash, a["buyer"], seller, a["nonce"], index)] = (a["e_wh"], a["price"])
        assert len(events) == len(trades)
        for row in trades.itertuples():
            key = (row.tx_hash, row.buyer, row.seller, row.nonce, row.index)
            assert events[key] == (row.e_wh, row.price)


def test_results_save_load_and_figures(day: tuple[EnergyMarketModel, Results], tmp_path: Path):
    _, r = day
    r.save(tmp_path)
    back = Results.load(tmp_path)
    assert back.equals(r)
    paths = write_figures(back, tmp_path / "figures")
    assert [p.name for p in paths] == [f"{n}.png" for n in FIGURES]
    assert all(p.stat().st_size > 10_000 for p in paths)
    assert main(["report", str(tmp_path)]) == 0


def test_same_seed_bit_identical_different_seed_differs() -> None:
    a = run_scenario(Scenario(hours=2, start_hour=10), progress=False)
    b = run_scenario(Scenario(hours=2, start_hour=10), progress=False)
    c = run_scenario(Scenario(hours=2, start_hour=10), seed=7, progress=False)
    for name in ("hourly", "trades", "agents"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    cols = ["gas_used", "block", "chain", "contract", "operation", "t"]
    pd.testing.assert_frame_equal(a.gas[cols], b.gas[cols])
    assert not np.allclose(a.hourly["demand_kwh"], c.hourly["demand_kwh"])
    assert not np.allclose(a.hourly["rep_pv_kwh"], c.hourly["rep_pv_kwh"])


def test_cli_bad_scenario_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("prosumer_share = 3\n")
    assert main(["run", "--scenario", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "prosumer_share" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
