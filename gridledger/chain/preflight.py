"""Connect-time checks of a node, before any transaction: can it run this simulation at all?

`check_node(chain)` asks a JSON-RPC node (`RpcChain`) what the run will need of it and raises a
named `PreflightError` (one line: chain, URL, what failed, what to do) for the first check that
fails; the chain id is checked earlier, when `RpcChain` connects (`WrongChainIdError`), and the
faucet by gridledger/day/funding.py (`FaucetTooSmallError`), which knows the run's budgets.

1. call gas: an `eth_call` with CALL_GAS = 2^24 gas (EIP-7825's cap) is served
   (`CallGasCapError`; a node whose RPC gas cap or block gas limit is lower refuses every view);
2. fork: the node runs the opcodes of the fork the contracts are built for
   (gridledger.contracts.EVM_VERSION) -- a probe's creation code executed by `eth_call`
   (`ForkTooOldError`; on an older fork the deploy would burn all its gas on an invalid opcode);
3. block gas limit: the largest transaction the run sends fits one block (`BlockGasLimitError`).
Embedded chains run EVM_VERSION by construction; only check 3 applies to them.
"""

from __future__ import annotations

from dataclasses import dataclass

from gridledger.chain.backend import CALL_GAS, ChainBackend
from gridledger.chain.errors import PreflightError, RpcError
from gridledger.chain.rpc import RpcChain
from gridledger.contracts import EVM_VERSION
from gridledger.market.clearing import MAX_BATCH
from gridledger.market.contracts import (
    DEPLOY_GAS_LIMIT,
    GAS_LIMITS,
    MAX_BATCH_FILLS,
    SETTLE_FILL_GAS_LIMIT,
    SETTLE_ITEM_GAS_LIMIT,
)

__all__ = [
    "FORK_PROBES",
    "LARGEST_TX_GAS",
    "BlockGasLimitError",
    "CallGasCapError",
    "ForkTooOldError",
    "NodeReport",
    "check_node",
]

LARGEST_TX_GAS = max(
    DEPLOY_GAS_LIMIT,
    *GAS_LIMITS.values(),
    SETTLE_ITEM_GAS_LIMIT * MAX_BATCH + SETTLE_FILL_GAS_LIMIT * MAX_BATCH_FILLS,
)
"""Gas limit of the largest transaction a run sends (a contract deployment, 10M)."""

_SHANGHAI = bytes.fromhex("60015f5260205ff3")
# PUSH1 1, PUSH0, MSTORE, PUSH1 32, PUSH0, RETURN: returns the word 1 (PUSH0 is Shanghai's)
_CANCUN = bytes.fromhex("60015f5d5f5c5f5260205f60205e")
_CANCUN += bytes.fromhex("60206020f3")
# PUSH1 1, PUSH0, TSTORE, PUSH0, TLOAD, PUSH0, MSTORE, then MCOPY(32, 0, 32), RETURN(32, 32):
# returns the word 1 only if TSTORE/TLOAD and MCOPY (Cancun's) run
FORK_PROBES: dict[str, bytes] = {"shanghai": _SHANGHAI, "cancun": _CANCUN, "prague": _CANCUN}
"""Creation code run by eth_call that returns the word 1 on a node with the fork's opcodes
(Vyper's prague target uses no opcode beyond Cancun's)."""
_ONE = (1).to_bytes(32, "big")
_NO_CODE = "0x00000000000000000000000000000000000000ff"  # an address with no code: a cheap call


class CallGasCapError(PreflightError):
    """The node refuses an eth_call with CALL_GAS (2^24) gas."""


class ForkTooOldError(PreflightError):
    """The node does not run the opcodes of the fork the contracts are built for."""


class BlockGasLimitError(PreflightError):
    """The node's block gas limit is below the run's largest transaction."""


@dataclass(frozen=True)
class NodeReport:
    """What the preflight found on one chain (printed before set-up)."""

    chain: str
    url: str
    chain_id: int
    client: str
    block_gas_limit: int
    mines_on_demand: bool

    def line(self) -> str:
        how = "on demand" if self.mines_on_demand else "waits for the node's blocks"
        return (
            f"chain {self.chain!r} ({self.url or 'embedded'}): {self.client}, chain id "
            f"{self.chain_id}, fork {EVM_VERSION} ok, block gas limit {self.block_gas_limit:,}, "
            f"mining: {how}"
        )


def _eth_call(chain: RpcChain, tx: dict[str, str]) -> bytes:
    out = chain.request("eth_call", [tx, "latest"])
    return bytes.fromhex(str(out)[2:])


def _message(exc: RpcError) -> str:
    e = exc.error if isinstance(exc.error, dict) else {}
    return str(e.get("message", exc.error))[:200]


def check_call_gas(chain: RpcChain, gas: int = CALL_GAS) -> None:
    """CallGasCapError unless the node serves an eth_call with `gas` (every call's CALL_GAS)."""
    try:
        _eth_call(chain, {"to": _NO_CODE, "data": "0x", "gas": hex(gas)})
    except RpcError as exc:
        raise CallGasCapError(
            f"the node refuses an eth_call with {gas:,} gas (the project's calls carry "
            f"{CALL_GAS:,}, EIP-7825's cap): {_message(exc)}",
            chain=chain.name,
            url=chain.url,
            advice=f"allow calls of {CALL_GAS:,} gas (geth/Besu: --rpc.gascap / "
            f"--rpc-gas-cap >= {CALL_GAS}; block gas limit >= {CALL_GAS:,})",
        ) from exc


def check_fork(chain: RpcChain, evm_version: str = EVM_VERSION) -> None:
    """ForkTooOldError unless the node runs `evm_version`'s opcodes (the probe returns 1)."""
    probe = FORK_PROBES[evm_version]
    try:
        out = _eth_call(chain, {"data": "0x" + probe.hex(), "gas": hex(100_000)})
        failure = "" if out == _ONE else f"the probe returned 0x{out.hex()}"
    except RpcError as exc:
        failure = _message(exc)
    if failure:
        raise ForkTooOldError(
            f"the node does not run the {evm_version} fork's opcodes the contracts use ({failure})",
            chain=chain.name,
            url=chain.url,
            advice=f"run the node at {evm_version} or later (anvil --hardfork {evm_version}; "
            f"Besu/geth genesis: {evm_version}Time), or rebuild the contracts for an older fork "
            "(gridledger.contracts.EVM_VERSION)",
        )


def check_block_gas(chain: ChainBackend) -> int:
    """BlockGasLimitError unless the latest block's gas limit holds LARGEST_TX_GAS; the limit."""
    limit = int(chain.get_block("latest")["gas_limit"])
    if limit < LARGEST_TX_GAS:
        raise BlockGasLimitError(
            f"block gas limit {limit:,} is below the run's largest transaction "
            f"({LARGEST_TX_GAS:,} gas, a contract deployment)",
            chain=chain.name,
            url=getattr(chain, "url", ""),
            advice=f"raise the block gas limit to {LARGEST_TX_GAS:,} or more (anvil --gas-limit; "
            "genesis gasLimit / the validators' target)",
        )
    return limit


def check_node(chain: ChainBackend) -> NodeReport:
    """Run the checks on one chain (RPC: call gas, fork, block gas; embedded: block gas)."""
    if isinstance(chain, RpcChain):
        check_call_gas(chain)
        check_fork(chain)
    limit = check_block_gas(chain)
    return NodeReport(
        chain=chain.name,
        url=getattr(chain, "url", ""),
        chain_id=chain.chain_id,
        client=getattr(chain, "client_version", type(chain).__name__),
        block_gas_limit=limit,
        mines_on_demand=bool(getattr(chain, "dev", True)),
    )
