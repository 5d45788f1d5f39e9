"""What a node's receipts say: RpcChain's results, why a transaction failed or was left out."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import rlp
from eth_utils import to_checksum_address

from gridledger.chain.errors import (
    ChainConnectionError,
    InsufficientFundsError,
    NonceError,
    RpcError,
    TransactionRejected,
    decode_revert_reason,
)
from gridledger.chain.tx import Log, PendingTx, TxResult, _failure

if TYPE_CHECKING:
    from gridledger.chain.rpc import RpcChain


def unmined_error(chain: RpcChain, p: PendingTx) -> TransactionRejected:
    """Why a dev node left a transaction out of its block: the sender could not pay for it
    (anvil accepts a transaction its sender can pay now, then skips it in a block where the
    sender's earlier transactions spent the balance) or a nonce gap."""
    label = dict(agent=p.agent, contract=p.contract, function=p.function)
    fields = rlp.decode(bytes(p.raw)[1:])
    max_fee, value = int.from_bytes(fields[3], "big"), int.from_bytes(fields[6], "big")
    cost = value + p.gas_limit * max_fee
    with contextlib.suppress(RpcError):
        if chain.nonce(p.sender, "latest") == p.nonce:
            have = chain.balance(p.sender, "latest")
            if have < cost:
                return InsufficientFundsError(
                    f"tx {p.tx_hash} (nonce {p.nonce}) was not mined: its sender holds {have} "
                    f"wei, the transaction may cost {cost}; dropped",
                    **label,
                )
    return NonceError(
        f"tx {p.tx_hash} with nonce {p.nonce} was not mined (nonce gap); dropped", **label
    )


def receipt_result(chain: RpcChain, p: PendingTx, r: dict[str, Any]) -> TxResult:
    """The TxResult of a node's receipt `r` for `p`; a failed one carries why (`error`)."""
    logs = tuple(
        Log(
            address=to_checksum_address(lg["address"]),
            topics=tuple(bytes.fromhex(t[2:]) for t in lg["topics"]),
            data=bytes.fromhex(lg["data"][2:]),
            log_index=int(lg["logIndex"], 16),
        )
        for lg in r.get("logs", [])
    )
    res = p.to_result(
        chain.name,
        block_number=int(r["blockNumber"], 16),
        block_hash=r["blockHash"],
        gas_used=int(r["gasUsed"], 16),
        status=int(r.get("status", "0x1"), 16),
        logs=logs,
        contract_address=(
            to_checksum_address(r["contractAddress"]) if r.get("contractAddress") else None
        ),
    )
    if res.status == 0:
        oog, reason = failure_reason(chain, p, res)
        res.error = _failure(chain.name, p, out_of_gas=oog, reason=reason)
    return res


def failure_reason(chain: RpcChain, p: PendingTx, res: TxResult) -> tuple[bool, str]:
    """(used_all_gas, reason) of a mined failed tx from its receipt and the node's trace: a
    tx that used its whole gas limit ran out of gas or hit an invalid opcode (never an empty
    revert); else the revert reason from the trace, or from replaying it with eth_call."""
    cause = ""
    with contextlib.suppress(RpcError, ChainConnectionError, AttributeError):
        tr = chain.request("debug_traceTransaction", [p.tx_hash, {"tracer": "callTracer"}])
        cause = str(tr.get("error", ""))
        if res.gas_used < p.gas_limit and "revert" in cause.lower():
            out = tr.get("output") or "0x"
            return False, decode_revert_reason(bytes.fromhex(out[2:]))
    if res.gas_used >= p.gas_limit:
        low = cause.lower()
        if "opcode" in low or "notactivated" in low or "invalid" in low:
            cause = f"invalid opcode ({cause}): the node's fork lacks an opcode"
        elif "gas" in low:
            cause = "out of gas"
        return True, cause
    tx = {"from": p.sender, "data": "0x", "gas": hex(p.gas_limit)}
    try:
        raw_tx = chain.request("eth_getTransactionByHash", [p.tx_hash])
        tx.update(to=raw_tx.get("to"), data=raw_tx.get("input", "0x"), value=raw_tx["value"])
        chain.request("eth_call", [tx, hex(res.block_number - 1)])
    except RpcError as exc:
        return False, exc.revert_reason()
    return False, ""
