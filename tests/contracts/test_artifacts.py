"""Artifacts ship with the package and match their sources and the installed compiler."""

import pytest
import vyper

from gridledger.contracts import CONTRACT_NAMES, ArtifactNotFoundError, load_artifact
from gridledger.contracts.build import compile_contract, contract_sources, expected_fingerprint


def test_every_contract_source_has_an_artifact() -> None:
    assert sorted(p.stem for p in contract_sources()) == sorted(CONTRACT_NAMES)


@pytest.mark.parametrize("source", contract_sources(), ids=lambda p: p.stem)
def test_artifact_is_fresh(source) -> None:
    """Fails when a source or module changed (or vyper changed) without a rebuild."""
    art = load_artifact(source.stem)
    want = expected_fingerprint(source)
    stale = {k: (art.get(k), v) for k, v in want.items() if art.get(k) != v}
    assert not stale, (
        f"artifact {source.stem}.json is stale ({sorted(stale)}); "
        "run `python -m gridledger.contracts.build`"
    )
    assert art["compiler_version"] == vyper.__version__
    assert art["bytecode"].startswith("0x") and len(art["bytecode"]) > 100
    assert any(entry.get("type") == "function" for entry in art["abi"])


def test_rebuilt_bytecode_equals_shipped_one() -> None:
    source = next(p for p in contract_sources() if p.stem == "EnergyToken")
    assert compile_contract(source)["bytecode"] == load_artifact("EnergyToken")["bytecode"]


def test_unknown_artifact_is_named() -> None:
    with pytest.raises(ArtifactNotFoundError, match="'Nope'"):
        load_artifact("Nope")
