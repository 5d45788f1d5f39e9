"""Keccak-256 and RLP at the speed per-transaction work needs.

Signing (gridledger/chain/tx.py) and decoding (gridledger/chain/rawtx.py) hash and
encode every transaction several times; at thousands of transactions per second the generic
libraries dominate. `keccak` uses pysha3 (~2 us per hash; eth_utils' pycryptodome backend
takes ~15 us) and `rlp_list` encodes a flat list of integers and byte strings (plus empty
lists) byte-identically to `rlp.encode`, at a fifth of its cost. `checksum_address` caches
EIP-55 checksumming (~30 us of keccak each), which a run repeats for the same few thousand
agents' addresses in every log and event.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from eth_utils import to_checksum_address

__all__ = ["checksum_address", "keccak", "rlp_list", "rlp_prefix"]

checksum_address = functools.lru_cache(maxsize=1 << 16)(to_checksum_address)
"""EIP-55 checksummed form of a hex address (cached)."""

try:
    from sha3 import keccak_256 as _keccak_256

    def keccak(data: bytes) -> bytes:
        """Keccak-256 of `data`."""
        return _keccak_256(data).digest()

except ImportError:  # pragma: no cover - pysha3 is optional
    from eth_utils import keccak


def rlp_prefix(offset: int, length: int) -> bytes:
    """RLP header of a string (offset 0x80) or list (0xC0) payload of `length` bytes."""
    if length < 56:
        return bytes([offset + length])
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([offset + 55 + len(size)]) + size


def _item(x: int | bytes | list) -> bytes:
    if isinstance(x, list):
        if x:
            raise ValueError("rlp_list encodes only empty nested lists")
        return b"\xc0"
    b = x.to_bytes((x.bit_length() + 7) // 8, "big") if isinstance(x, int) else bytes(x)
    if len(b) == 1 and b[0] < 0x80:
        return b
    return rlp_prefix(0x80, len(b)) + b


def rlp_list(items: Sequence[int | bytes | list]) -> bytes:
    """RLP of a list of non-negative integers, byte strings and empty lists."""
    payload = b"".join(map(_item, items))
    return rlp_prefix(0xC0, len(payload)) + payload
