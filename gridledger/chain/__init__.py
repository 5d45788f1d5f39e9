"""The chain layer: everything between an agent's signed transaction and a mined block.

Public names are exported here; import them as `from gridledger.chain import RpcChain`.
Modules: `errors`; `tx` (transaction types, signing, `Signer`, `send_many`); `backend`
(`ChainBackend`); one module per backend: `pyevm` (`EmbeddedChain`), `rpc` (`RpcChain`; its
JSON-RPC plumbing in `jsonrpc`, receipts in `rpc_receipts`), `revm` (+ `revm_state`,
`revm_web3`, `rawtx`, `codec`: the default in-process engine); `specs` (`make_chain`,
`parse_chain_spec`, `make_chains`); `nodes` (anvil/Hardhat processes); `preflight` (node
checks); `replay` (resume after a node restart); `accounts` (seed-derived keys). `RevmChain`,
the node processes and `check_node` are loaded on first use: revm's bindings and the contract
wrappers that preflight needs are not imported with the package.
"""

from __future__ import annotations

import importlib
from typing import Any

from gridledger.chain.accounts import derive_account
from gridledger.chain.backend import (
    CALL_GAS,
    CHAIN_NAMES,
    DEFAULT_CHAIN_IDS,
    DEV_BLOCK_GAS_LIMIT,
    FUND_TXS_PER_BLOCK,
    ChainBackend,
)
from gridledger.chain.errors import (
    BlockOrderError,
    CallReverted,
    ChainConnectionError,
    ChainError,
    ChainIdMismatchError,
    InsufficientFundsError,
    InvalidSignatureError,
    NodeDownError,
    NonceError,
    OutOfGasError,
    PreflightError,
    ReceiptTimeoutError,
    ResumeConflictError,
    RpcError,
    TransactionFailed,
    TransactionRejected,
    TransactionReverted,
    WrongChainIdError,
    decode_revert_reason,
)
from gridledger.chain.jsonrpc import RPC_BATCH_MAX_BYTES, RPC_BATCH_MAX_CALLS, rpc_batches
from gridledger.chain.pyevm import (
    EmbeddedChain,
    embedded_vm_class,
)
from gridledger.chain.rpc import (
    ANVIL_DEV_KEY,
    RPC_SUBMIT_MAX_CALLS,
    RpcChain,
)
from gridledger.chain.specs import (
    DEFAULT_EMBEDDED_ENGINE,
    EMBEDDED_ENGINES,
    IN_PROCESS_SPECS,
    make_chain,
    make_chains,
    parse_chain_spec,
)
from gridledger.chain.tx import (
    DEFAULT_GAS_LIMIT,
    DEFAULT_PRIORITY_FEE_WEI,
    Log,
    PendingTx,
    Signer,
    TxRequest,
    TxResult,
    iter_results,
    raw_tx_chain_id,
    send_many,
    sign_eip1559,
)

_LAZY = {
    "RevmChain": "gridledger.chain.revm",
    "AnvilNode": "gridledger.chain.nodes",
    "start_anvil": "gridledger.chain.nodes",
    "start_hardhat": "gridledger.chain.nodes",
    "check_node": "gridledger.chain.preflight",
}


def __getattr__(name: str) -> Any:
    """Load the names in `_LAZY` from their modules on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gridledger.chain' has no attribute {name!r}")


__all__ = [
    "ANVIL_DEV_KEY",
    "CALL_GAS",
    "CHAIN_NAMES",
    "DEFAULT_CHAIN_IDS",
    "DEFAULT_EMBEDDED_ENGINE",
    "DEFAULT_GAS_LIMIT",
    "DEFAULT_PRIORITY_FEE_WEI",
    "DEV_BLOCK_GAS_LIMIT",
    "EMBEDDED_ENGINES",
    "FUND_TXS_PER_BLOCK",
    "IN_PROCESS_SPECS",
    "RPC_BATCH_MAX_BYTES",
    "RPC_BATCH_MAX_CALLS",
    "RPC_SUBMIT_MAX_CALLS",
    "BlockOrderError",
    "CallReverted",
    "ChainBackend",
    "ChainConnectionError",
    "ChainError",
    "ChainIdMismatchError",
    "EmbeddedChain",
    "InsufficientFundsError",
    "InvalidSignatureError",
    "Log",
    "NodeDownError",
    "NonceError",
    "OutOfGasError",
    "PendingTx",
    "PreflightError",
    "ReceiptTimeoutError",
    "ResumeConflictError",
    "RpcChain",
    "RpcError",
    "Signer",
    "TransactionFailed",
    "TransactionRejected",
    "TransactionReverted",
    "TxRequest",
    "TxResult",
    "WrongChainIdError",
    "decode_revert_reason",
    "derive_account",
    "embedded_vm_class",
    "iter_results",
    "make_chain",
    "make_chains",
    "parse_chain_spec",
    "raw_tx_chain_id",
    "rpc_batches",
    "send_many",
    "sign_eip1559",
    *_LAZY,
]
