"""A web3.py provider over a RevmChain: the JSON-RPC reads web3 needs, answered in-process.

Lets web3's own ABI machinery (contract calls, receipts, event decoding) run against the revm
chain, as `EmbeddedChain.w3` does for py-evm -- used by tests that check the model's results
independently of gridledger's wrappers. Read-only: transactions go through `Signer`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from web3 import Web3
from web3.providers.base import BaseProvider

from gridledger.chain.errors import CallReverted

if TYPE_CHECKING:
    from gridledger.chain.revm import RevmChain

__all__ = ["RevmProvider", "UnsupportedMethodError", "revm_web3"]

EMPTY_BLOOM = "0x" + "00" * 256


class UnsupportedMethodError(NotImplementedError):
    """web3 asked for a JSON-RPC method this provider does not answer (named in the message)."""


def _block_param(params: list[Any], i: int) -> int | str:
    tag = params[i] if len(params) > i else "latest"
    return int(tag, 16) if isinstance(tag, str) and tag.startswith("0x") else tag


class RevmProvider(BaseProvider):
    """Answers eth_chainId, eth_blockNumber, eth_call, eth_getBalance, eth_getCode,
    eth_getTransactionCount, eth_getBlockByNumber and eth_getTransactionReceipt."""

    def __init__(self, chain: RevmChain) -> None:
        super().__init__()
        self.chain = chain

    def is_connected(self, show_traceback: bool = False) -> bool:
        return True

    def make_request(self, method: Any, params: Any) -> Any:
        handler = getattr(self, f"_{method}", None)
        if handler is None:
            raise UnsupportedMethodError(f"RevmProvider does not answer {method!r}")
        try:
            return {"jsonrpc": "2.0", "id": 0, "result": handler(list(params))}
        except CallReverted as exc:  # web3 raises ContractLogicError with geth's message
            message = f"execution reverted: {exc.reason}" if exc.reason else "execution reverted"
            error = {"code": 3, "message": message}
            return {"jsonrpc": "2.0", "id": 0, "error": error}

    def _eth_chainId(self, params: list[Any]) -> str:
        return hex(self.chain.chain_id)

    def _eth_blockNumber(self, params: list[Any]) -> str:
        return hex(self.chain.block_number())

    def _eth_getBalance(self, params: list[Any]) -> str:
        return hex(self.chain.balance(params[0], _block_param(params, 1)))

    def _eth_getTransactionCount(self, params: list[Any]) -> str:
        return hex(self.chain.nonce(params[0], _block_param(params, 1)))

    def _eth_getCode(self, params: list[Any]) -> str:
        return "0x" + self.chain.code(params[0], _block_param(params, 1)).hex()

    def _eth_call(self, params: list[Any]) -> str:
        tx = params[0]
        data = bytes.fromhex(str(tx.get("data") or tx.get("input") or "0x")[2:])
        value = int(tx.get("value", "0x0"), 16)
        block = _block_param(params, 1)
        if not tx.get("to"):
            return "0x" + self.chain.call_create(data, sender=tx.get("from"), value=value).hex()
        out = self.chain.call(tx["to"], data, sender=tx.get("from"), block=block, value=value)
        return "0x" + out.hex()

    def _eth_getBlockByNumber(self, params: list[Any]) -> dict[str, Any]:
        b = self.chain.get_block(_block_param(params, 0))
        hashes = [h for h, m in self.chain.mined.items() if m.result.block_number == b["number"]]
        return {
            "number": hex(b["number"]),
            "hash": b["hash"],
            "parentHash": b["parent_hash"],
            "gasUsed": hex(b["gas_used"]),
            "gasLimit": hex(b["gas_limit"]),
            "timestamp": hex(b["timestamp"]),
            "transactions": hashes,
            "logsBloom": EMPTY_BLOOM,
        }

    def _eth_getTransactionReceipt(self, params: list[Any]) -> dict[str, Any] | None:
        m = self.chain.mined.get(params[0])
        if m is None:
            return None
        r, blk = m.result, hex(m.result.block_number)
        return {
            "transactionHash": r.tx_hash,
            "transactionIndex": hex(m.index),
            "blockHash": r.block_hash,
            "blockNumber": blk,
            "from": r.sender,
            "to": m.tx.to,
            "gasUsed": hex(r.gas_used),
            "cumulativeGasUsed": hex(r.gas_used),  # not tracked per block position
            "effectiveGasPrice": hex(m.price),
            "contractAddress": r.contract_address,
            "status": hex(r.status),
            "type": hex(m.tx.tx_type),
            "logsBloom": EMPTY_BLOOM,
            "logs": [
                {
                    "address": lg.address,
                    "topics": ["0x" + t.hex() for t in lg.topics],
                    "data": "0x" + lg.data.hex(),
                    "logIndex": hex(lg.log_index),
                    "blockNumber": blk,
                    "blockHash": r.block_hash,
                    "transactionHash": r.tx_hash,
                    "transactionIndex": hex(m.index),
                    "removed": False,
                }
                for lg in r.logs
            ],
        }


def revm_web3(chain: RevmChain) -> Web3:
    """A Web3 over `chain` (web3's default middleware: attribute dicts, validation)."""
    return Web3(RevmProvider(chain))
