"""Fixtures of the chain-layer tests: both ledgers on each backend (the in-process engines
py-evm and revm, anvil processes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gridledger.chain import DEFAULT_CHAIN_IDS, ChainBackend, RpcChain, Signer, make_chain
from gridledger.chain.accounts import derive_account
from gridledger.chain.nodes import AnvilNode, start_anvil
from gridledger.contracts.build import compile_source

BACKENDS = ["pyevm", "revm", pytest.param("anvil", marks=pytest.mark.anvil)]

PROBE_SOURCE = """
#pragma version ^0.4.0
x: public(uint256)

@external
@view
def chain_id() -> uint256:
    return chain.id

@external
def burn(n: uint256):
    for i: uint256 in range(n, bound=100000):
        self.x = i + 1
"""


@pytest.fixture(scope="session")
def probe_artifact() -> dict:
    """A throwaway contract (CHAINID opcode, gas burner) compiled in-process."""
    return compile_source(PROBE_SOURCE)


@pytest.fixture(params=BACKENDS)
def chains(request: pytest.FixtureRequest) -> Iterator[dict[str, ChainBackend]]:
    """{'letb': chain, 'retb': chain} with the default (distinct) chain ids."""
    if request.param != "anvil":
        yield {k: make_chain(request.param, k, cid) for k, cid in DEFAULT_CHAIN_IDS.items()}
        return
    nodes: list[AnvilNode] = []
    out: dict[str, ChainBackend] = {}
    try:
        for k, cid in DEFAULT_CHAIN_IDS.items():
            nodes.append(start_anvil(cid))
            out[k] = RpcChain(nodes[-1].url, k, expected_chain_id=cid)
        yield out
    finally:
        for c in out.values():
            c.close()
        for n in nodes:
            n.stop()


@pytest.fixture
def letb(chains: dict[str, ChainBackend]) -> ChainBackend:
    return chains["letb"]


@pytest.fixture
def admin(letb: ChainBackend) -> Signer:
    """Funded admin signer on the LETB chain."""
    s = letb.signer(derive_account(7, "admin", 0), "admin")
    letb.fund([s.address], 10**20)
    return s
