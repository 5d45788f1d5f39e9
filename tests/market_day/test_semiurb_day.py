"""A day of 1-MVLV-semiurb-all-0-sw (issue 16's acceptance): 8,772 loads, each a user agent
signing its own transactions, 110 LV grids as LETB areas, on the embedded engine and on anvil.

Tens of minutes on a shared 2-core machine: marked `bench`, which `make test` leaves out
(`PYTEST_ARGS` in the Makefile); run it with `pytest -m bench tests/market_day/test_semiurb_day.py`.
Its measurements are benchmarks/bench_grids.py's `semiurb_day` part."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gridledger import EnergyMarketModel, Scenario
from gridledger.chain import DEFAULT_CHAIN_IDS, ChainBackend, RpcChain
from gridledger.chain.nodes import start_anvil

SCENARIO = (
    Path(__file__).resolve().parents[2] / "gridledger" / "scenarios" / "mvlv_semiurb_day.toml"
)


RPC_TIMEOUT_S = 600.0
"""Per request: anvil mines and answers for set-up blocks of ~9,000 registrations, on 2 cores
shared with other jobs; RpcChain's default 30 s timed out there."""


@pytest.fixture(params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def chain(request: pytest.FixtureRequest) -> Iterator[str | dict[str, ChainBackend]]:
    if request.param == "embedded":
        yield "embedded"
        return
    nodes = [start_anvil(cid) for cid in DEFAULT_CHAIN_IDS.values()]
    try:
        yield {
            k: RpcChain(n.url, k, expected_chain_id=cid, timeout_s=RPC_TIMEOUT_S)
            for (k, cid), n in zip(DEFAULT_CHAIN_IDS.items(), nodes, strict=True)
        }
    finally:
        for n in nodes:
            n.stop()


@pytest.mark.slow
@pytest.mark.bench
@pytest.mark.timeout(7200)
def test_semiurb_all_day_every_load_signs_its_own(chain: str | dict[str, ChainBackend]) -> None:
    model = EnergyMarketModel(Scenario.from_toml(SCENARIO), chain=chain)
    g = model.grid_data
    assert len(model.users) == len(g.loads) == 8772
    assert min(u.bus for u in model.users) >= 1  # bus 0 of the net is feeder bus 1
    assert len(model.letb) == 111  # 110 LV grids + the MV loads' area
    r = model.run()
    keys = {u.account.address for u in model.users}
    assert len(keys) == len(model.users)
    requests = r.gas[r.gas["operation"] == "request"]
    assert set(requests["sender"]) <= keys | {p.account.address for p in model.producers}
    assert requests["sender"].nunique() > 1000
    chains = r.trades.groupby("chain").size()
    assert chains["letb"] > 0 and chains["retb"] > 0
    assert r.summary["complete"]
