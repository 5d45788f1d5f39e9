"""Keccak-256 at C speed: pysha3 (~2 us per hash) when installed, else eth_utils' (~15 us).

Signing (gridledger/market/chain.py) and decoding (gridledger/market/rawtx.py) hash every
transaction two or three times; at thousands of transactions per second this matters."""

from __future__ import annotations

__all__ = ["keccak"]

try:
    from sha3 import keccak_256 as _keccak_256

    def keccak(data: bytes) -> bytes:
        """Keccak-256 of `data`."""
        return _keccak_256(data).digest()

except ImportError:  # pragma: no cover - pysha3 is optional
    from eth_utils import keccak
