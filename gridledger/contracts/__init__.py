"""Vyper sources of the gridledger market contracts and their compiled artifacts.

`load_artifact(name)` returns the compiled artifact (dict with ``abi``, ``bytecode``,
``compiler_version``, ``source_sha256``, ...) of EnergyToken, LETB or RETB. The ABI contract is
documented in this package's README.md.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

CONTRACT_NAMES = ("DoubleAuction", "EnergyToken", "LETB", "RETB")
EVM_VERSION = "shanghai"
"""The EVM fork every backend runs and the contracts are compiled for (Vyper's `evm_version`).

One name read by the contract build (artifacts record it), the embedded py-evm chain (its VM
class), anvil (`--hardfork`) and the connect preflight (the probe of the fork's opcodes). The
oldest fork that keeps every gas bound in gas_bounds.py: measured in README "Nodes and forks"."""


class ArtifactNotFoundError(LookupError):
    """No compiled artifact with that contract name ships with the package."""


@cache
def _load(name: str) -> str:
    ref = resources.files(__name__) / "artifacts" / f"{name}.json"
    if not ref.is_file():
        raise ArtifactNotFoundError(
            f"no artifact for contract {name!r}; known: {list(CONTRACT_NAMES)} "
            "(run `python -m gridledger.contracts.build`)"
        )
    return ref.read_text()


def load_artifact(name: str) -> dict[str, Any]:
    """Compiled artifact of contract `name` (a fresh dict each call)."""
    return json.loads(_load(name))


__all__ = ["CONTRACT_NAMES", "EVM_VERSION", "ArtifactNotFoundError", "load_artifact"]
