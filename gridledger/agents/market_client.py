"""Agents' view of the market contracts: transaction builders and event decoding.

Each agent builds `TxRequest`s here and signs them with its own `Signer` (market/chain.py); the
model only batches one phase's signed transactions per chain with `send_many` (one block per
phase). ABIs come from the compiled artifacts (`gridledger.contracts.load_artifact`) — nothing is
hard-coded. Reads use the contracts' public view functions only.

Units follow gridledger/contracts/README.md: energy in Wh, prices in token base units per Wh
(1 $/MWh = 10**12), money in token base units (18 decimals, 1 token = 1 USD).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_utils import keccak, to_checksum_address
from web3 import Web3

from gridledger.contracts import load_artifact
from gridledger.market.chain import ChainBackend, TxRequest, TxResult

BASE_UNITS_PER_USD = 10**18
PRICE_UNITS_PER_USD_PER_MWH = 10**12

_W3 = Web3()


def price_to_chain(price_usd_per_mwh: float) -> int:
    """$/MWh -> token base units per Wh (interfaces.md: round(p * 1e12))."""
    return round(price_usd_per_mwh * PRICE_UNITS_PER_USD_PER_MWH)


def price_from_chain(price: int) -> float:
    return price / PRICE_UNITS_PER_USD_PER_MWH


def usd_from_chain(amount: int) -> float:
    return amount / BASE_UNITS_PER_USD


@cache
def _contract(name: str) -> Any:
    art = load_artifact(name)
    return _W3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])


@cache
def _event_topics(name: str) -> dict[bytes, str]:
    """topic0 -> event name for contract `name`."""
    out = {}
    for item in load_artifact(name)["abi"]:
        if item.get("type") != "event":
            continue
        types = ",".join(_canonical_type(i) for i in item["inputs"])
        out[keccak(text=f"{item['name']}({types})")] = item["name"]
    return out


def _canonical_type(inp: dict[str, Any]) -> str:
    t = inp["type"]
    if t.startswith("tuple"):
        inner = ",".join(_canonical_type(c) for c in inp["components"])
        return f"({inner}){t[5:]}"
    return t


@dataclass(frozen=True)
class Deployed:
    """A deployed contract: its artifact name, address and chain."""

    name: str
    address: str
    chain: ChainBackend
    label: str

    def tx(self, function: str, *args: Any, gas: int | None = None) -> TxRequest:
        """TxRequest calling `function(*args)` (labelled with contract and function for gas)."""
        data = _contract(self.name).encode_abi(function, args=list(args))
        return TxRequest(
            to=self.address,
            data=bytes.fromhex(data[2:]),
            gas=gas,
            contract=self.label,
            function=function,
        )

    def call(self, function: str, *args: Any) -> Any:
        """Public view function `function(*args)`, decoded (tuple for multiple outputs)."""
        c = _contract(self.name)
        data = bytes.fromhex(c.encode_abi(function, args=list(args))[2:])
        raw = self.chain.call(self.address, data)
        fn = c.get_function_by_name(function)
        types = [_canonical_type(o) for o in fn.abi["outputs"]]
        values = _W3.codec.decode(types, bytes(raw))
        return values[0] if len(values) == 1 else values

    def events(self, result: TxResult) -> list[tuple[str, dict[str, Any]]]:
        """(event name, args) of this contract's logs in a mined transaction, in log order."""
        out = []
        topics = _event_topics(self.name)
        c = _contract(self.name)
        for log in result.logs:
            if to_checksum_address(log.address) != self.address or not log.topics:
                continue
            name = topics.get(bytes(log.topics[0]))
            if name is None:
                continue
            entry = {
                "address": self.address,
                "topics": [bytes(x) for x in log.topics],
                "data": bytes(log.data),
                "logIndex": log.log_index,
                "transactionIndex": 0,
                "transactionHash": bytes.fromhex(result.tx_hash[2:]),
                "blockHash": bytes.fromhex(result.block_hash[2:]),
                "blockNumber": result.block_number,
            }
            ev = getattr(c.events, name)().process_log(entry)
            out.append((name, dict(ev["args"])))
        return out


def deploy_request(name: str, *args: Any, label: str | None = None) -> TxRequest:
    """TxRequest creating contract `name` with constructor `args`."""
    c = _contract(name)
    data = c.constructor(*args).data_in_transaction
    return TxRequest(
        to=None,
        data=bytes.fromhex(data[2:]),
        gas=8_000_000,
        contract=label or name,
        function="deploy",
    )
