"""Signed raw transactions -> decoded fields and the sender recovered from the signature.

What a node does with `eth_sendRawTransaction` bytes before anything executes: decode the
envelope (EIP-1559 type 2, or legacy with an EIP-155 chain id), check the signature's ranges
(r, s in 1..n-1, s in the lower half per EIP-2, y parity 0/1), recover the signing key with
libsecp256k1 (coincurve) and derive the sender address. Used by the in-process revm chain
(gridledger/chain/revm.py); intrinsic gas follows the rules the other backends use
(EIP-2028 calldata, EIP-3860 initcode words, EIP-2930 access lists; EIP-7623's calldata floor
from Prague on, applied by revm.py only if the fork is Prague).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import coincurve
import rlp

from gridledger.chain.codec import keccak, rlp_prefix
from gridledger.chain.errors import InvalidSignatureError, TransactionRejected

__all__ = [
    "DecodedTx",
    "InvalidSignatureError",
    "InvalidTransactionError",
    "calldata_floor_gas",
    "decode_raw_tx",
    "intrinsic_gas",
]

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
TX_BASE_GAS = 21_000
CREATE_GAS = 32_000
INITCODE_WORD_GAS = 2
ACCESS_LIST_ADDRESS_GAS = 2_400
ACCESS_LIST_KEY_GAS = 1_900
FLOOR_GAS_PER_TOKEN = 10  # EIP-7623 (Prague)


class InvalidTransactionError(TransactionRejected):
    """The raw bytes are not a well-formed EIP-1559 or legacy transaction."""


@dataclass(frozen=True)
class DecodedTx:
    """A decoded signed transaction; `to` is None for a contract creation."""

    tx_type: int
    chain_id: int | None
    nonce: int
    max_priority_fee_per_gas: int
    max_fee_per_gas: int
    gas: int
    to: str | None
    value: int
    data: bytes
    access_list: tuple[tuple[str, tuple[int, ...]], ...]
    sender: str
    tx_hash: str

    def effective_gas_price(self, base_fee: int) -> int:
        """Price per gas the sender pays in a block with `base_fee` (EIP-1559)."""
        return min(self.max_fee_per_gas, base_fee + self.max_priority_fee_per_gas)


def _int(b: Any, what: str) -> int:
    if not isinstance(b, bytes) or (len(b) > 1 and b[0] == 0) or len(b) > 32:
        raise InvalidTransactionError(f"raw transaction: field {what} is not a canonical integer")
    return int.from_bytes(b, "big")


def _item_end(buf: bytes, pos: int) -> int:
    """End offset of the (already validated) RLP item starting at `pos`."""
    b = buf[pos]
    if b < 0x80:
        return pos + 1
    if b < 0xB8:
        return pos + 1 + b - 0x80
    if 0xC0 <= b < 0xF8:
        return pos + 1 + b - 0xC0
    n = b - (0xB7 if b < 0xC0 else 0xF7)
    return pos + 1 + n + int.from_bytes(buf[pos + 1 : pos + 1 + n], "big")


def _list_prefix(raw: bytes, start: int, n_items: int, extra: bytes = b"") -> bytes:
    """RLP of the list of the first `n_items` items of the list at `start` (plus the encoded
    items `extra`): the signing payload, cut from the signed bytes instead of re-encoded."""
    b = raw[start]
    pos = start + 1 + (b - 0xF7 if b >= 0xF8 else 0)
    first = pos
    for _ in range(n_items):
        pos = _item_end(raw, pos)
    payload = raw[first:pos] + extra
    return rlp_prefix(0xC0, len(payload)) + payload


def _ints(fields: list[Any], names: tuple[str, ...]) -> list[int]:
    return [_int(f, n) for f, n in zip(fields, names, strict=True)]


def _to(b: Any) -> str | None:
    if b == b"":
        return None
    if not isinstance(b, bytes) or len(b) != 20:
        raise InvalidTransactionError("raw transaction: 'to' is neither empty nor 20 bytes")
    return "0x" + b.hex()


def _access_list(items: Any) -> tuple[tuple[str, tuple[int, ...]], ...]:
    out = []
    for item in items:
        if not isinstance(item, list) or len(item) != 2 or len(item[0]) != 20:
            raise InvalidTransactionError("raw transaction: malformed access list")
        keys = tuple(int.from_bytes(k, "big") for k in item[1] if len(k) == 32)
        if len(keys) != len(item[1]):
            raise InvalidTransactionError("raw transaction: access list key is not 32 bytes")
        out.append(("0x" + item[0].hex(), keys))
    return tuple(out)


def _recover(msg_hash: bytes, y_parity: int, r: int, s: int) -> str:
    if y_parity not in (0, 1):
        raise InvalidSignatureError(f"signature y parity must be 0 or 1, got {y_parity}")
    if not 0 < r < SECP256K1_N or not 0 < s <= SECP256K1_N // 2:
        raise InvalidSignatureError("signature r/s out of range (EIP-2 requires s <= n/2)")
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([y_parity])
    try:
        pub = coincurve.PublicKey.from_signature_and_message(sig, msg_hash, hasher=None)
    except Exception as exc:
        raise InvalidSignatureError(f"signature recovers no public key: {exc}") from exc
    return "0x" + keccak(pub.format(compressed=False)[1:])[-20:].hex()


def decode_raw_tx(raw: bytes) -> DecodedTx:
    """Decode a signed EIP-1559 or legacy transaction and recover its sender.

    Raises InvalidTransactionError (malformed, unsupported type) or InvalidSignatureError."""
    raw = bytes(raw)
    if not raw:
        raise InvalidTransactionError("empty raw transaction")
    try:
        fields = rlp.decode(raw[1:] if raw[0] <= 0x7F else raw)
    except Exception as exc:
        raise InvalidTransactionError(f"raw transaction is not RLP: {exc}") from exc
    if not isinstance(fields, list):
        raise InvalidTransactionError("raw transaction is not an RLP list")
    if raw[0] == 0x02:
        if len(fields) != 12:
            raise InvalidTransactionError(f"EIP-1559 transaction has {len(fields)} fields, not 12")
        names = ("chain_id", "nonce", "max_priority_fee", "max_fee", "gas")
        chain_id, nonce, tip, max_fee, gas = _ints(fields[:5], names)
        to, value, data = _to(fields[5]), _int(fields[6], "value"), fields[7]
        access = _access_list(fields[8])
        sighash = keccak(b"\x02" + _list_prefix(raw, 1, 9))
        y, r, s = _ints(fields[9:], ("y_parity", "r", "s"))
        tx_type = 2
    elif raw[0] > 0x7F:
        if len(fields) != 9:
            raise InvalidTransactionError(f"legacy transaction has {len(fields)} fields, not 9")
        nonce, price, gas = _ints(fields[:3], ("nonce", "gas_price", "gas"))
        to, value, data = _to(fields[3]), _int(fields[4], "value"), fields[5]
        v, r, s = _ints(fields[6:], ("v", "r", "s"))
        if v in (27, 28):  # pre-EIP-155: valid on any chain, which a node here refuses
            chain_id, y = None, v - 27
            sighash = keccak(_list_prefix(raw, 0, 6))
        else:
            chain_id, y = (v - 35) // 2, (v - 35) % 2
            sighash = keccak(_list_prefix(raw, 0, 6, rlp.encode(chain_id) + b"\x80\x80"))
        tip, max_fee, access, tx_type = price, price, (), 0
    else:
        raise InvalidTransactionError(
            f"transaction type {raw[0]} is not supported (EIP-1559 type 2 and legacy only)"
        )
    if not isinstance(data, bytes):
        raise InvalidTransactionError("raw transaction: data is not a byte string")
    if tip > max_fee:
        raise InvalidTransactionError(f"max priority fee {tip} exceeds max fee {max_fee}")
    return DecodedTx(
        tx_type=tx_type,
        chain_id=chain_id,
        nonce=nonce,
        max_priority_fee_per_gas=tip,
        max_fee_per_gas=max_fee,
        gas=gas,
        to=to,
        value=value,
        data=data,
        access_list=access,
        sender=_recover(sighash, y, r, s),
        tx_hash="0x" + keccak(raw).hex(),
    )


def _tokens(data: bytes) -> int:
    zeros = data.count(0)
    return zeros + 4 * (len(data) - zeros)


def intrinsic_gas(tx: DecodedTx) -> int:
    """Gas charged before execution: base, calldata, creation + initcode words, access list."""
    gas = TX_BASE_GAS + 4 * _tokens(tx.data)
    if tx.to is None:
        gas += CREATE_GAS + INITCODE_WORD_GAS * ((len(tx.data) + 31) // 32)
    for _, keys in tx.access_list:
        gas += ACCESS_LIST_ADDRESS_GAS + ACCESS_LIST_KEY_GAS * len(keys)
    return gas


def calldata_floor_gas(tx: DecodedTx) -> int:
    """EIP-7623 (Prague): the least gas a transaction is charged, from its calldata."""
    return TX_BASE_GAS + FLOOR_GAS_PER_TOKEN * _tokens(tx.data)
