"""Agents' own keys, derived reproducibly from the scenario seed.

`derive_account(seed, role, index)` hashes a domain-separated label into a secp256k1 private
key, so the same scenario seed gives every agent the same address on every run and machine.
These keys are for simulation only: anyone who knows the seed knows them.
"""

from __future__ import annotations

import re

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

__all__ = ["SECP256K1_N", "derive_account", "derive_key"]

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_ROLE = re.compile(r"^[A-Za-z0-9_.-]+$")


def derive_key(seed: int, role: str, index: int) -> bytes:
    """32-byte private key for (seed, role, index); see `derive_account`."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"derive_account: seed must be an integer >= 0, got {seed!r}")
    if not isinstance(role, str) or not _ROLE.match(role):
        raise ValueError(
            f"derive_account: role must be a non-empty name of letters, digits, '_', '.', '-'; "
            f"got {role!r}"
        )
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"derive_account: index must be an integer >= 0, got {index!r}")
    label = f"gridledger/v1/{seed}/{role}/{index}".encode()
    key = keccak(label)
    while not 0 < int.from_bytes(key, "big") < SECP256K1_N:  # ~2**-128 chance per round
        key = keccak(key)
    return key


def derive_account(seed: int, role: str, index: int) -> LocalAccount:
    """The account of agent number `index` with `role` (e.g. 'user', 'producer', 'rep',
    'operator', 'tdno', 'admin') in a scenario with `seed`: same inputs, same key."""
    return Account.from_key(derive_key(seed, role, index))
