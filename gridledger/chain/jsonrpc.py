"""JSON-RPC plumbing of RpcChain: the request timeout, batch limits, batch splitting, and
reading nodes' error texts."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from typing import Any

from gridledger.chain.errors import (
    ChainIdMismatchError,
    InsufficientFundsError,
    InvalidSignatureError,
    NonceError,
    TransactionRejected,
)

RPC_TIMEOUT_ENV = "GRIDLEDGER_RPC_TIMEOUT_S"
DEFAULT_RPC_TIMEOUT_S = 30.0


def rpc_timeout_s() -> float:
    """Seconds a node may take to answer one request: env GRIDLEDGER_RPC_TIMEOUT_S, else 30.

    A node that is busy, not down, can need more: anvil mining the set-up blocks of
    1-MVLV-semiurb-all (~9,000 registrations each) did not answer within 30 s; 600 worked
    (docs/real-grids.md). Raises ValueError naming the variable for a value that is not a
    positive number."""
    raw = os.environ.get(RPC_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_RPC_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{RPC_TIMEOUT_ENV} must be a positive number of seconds, got {raw!r}")
    return value


RPC_BATCH_MAX_CALLS = 1_000
"""Calls per JSON-RPC batch request at most (geth's default BatchRequestLimit)."""
RPC_BATCH_MAX_BYTES = 1 << 20
"""Bytes of one batch request's body at most: anvil 1.7.1 refuses a body over 2 MiB with
'Invalid request' (a phase of ~3,400 signed requests is ~3.5 MB), geth's limit is 5 MB."""


def rpc_batches(
    payload: list[dict[str, Any]], max_calls: int = RPC_BATCH_MAX_CALLS
) -> Iterator[list[dict[str, Any]]]:
    """Split a JSON-RPC batch into requests of at most `max_calls` calls and
    RPC_BATCH_MAX_BYTES bytes (a single larger call goes alone), in order."""
    part: list[dict[str, Any]] = []
    size = 2  # the brackets
    for call in payload:
        n = len(json.dumps(call)) + 2  # ", " between calls
        if part and (len(part) == max_calls or size + n > RPC_BATCH_MAX_BYTES):
            yield part
            part, size = [], 2
        part.append(call)
        size += n
    if part:
        yield part


def lost_reason(exc: Exception) -> str:
    """Short cause of a lost connection (requests nests the OS error deep in its message)."""
    text = str(exc)
    for key, label in (
        ("refused", "connection refused"),
        ("reset", "connection reset"),
        ("timed out", "timed out"),
        ("RemoteDisconnected", "connection closed by the node"),
        ("aborted", "connection aborted"),
    ):
        if key in text:
            return label
    return f"{type(exc).__name__}: {text[:200]}"


def rejection_class(message: str) -> type[TransactionRejected] | None:
    """The TransactionRejected subclass a node's error message names (None: none of them)."""
    m = message.lower()
    if "chain id" in m or "chainid" in m or "chain_id" in m:
        return ChainIdMismatchError
    if "signature" in m or "recover the signer" in m:
        return InvalidSignatureError
    if "nonce" in m:
        return NonceError
    if "insufficient funds" in m or "lack of funds" in m or "insufficient balance" in m:
        return InsufficientFundsError
    return None
