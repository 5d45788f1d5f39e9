"""Compile the Vyper sources of this package into JSON artifacts.

`python -m gridledger.contracts.build` compiles every contract source (``<Name>.vy`` with an
upper-case first letter; lower-case ``*.vy`` files are modules imported by contracts) into
``artifacts/<Name>.json`` with its ABI, deployment bytecode, compiler version, EVM version
(the fork it is compiled for, gridledger.contracts.EVM_VERSION) and the SHA-256 of
the contract source and of every module it may import, so stale artifacts can be detected.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import vyper
from vyper.compiler.input_bundle import FilesystemInputBundle
from vyper.compiler.settings import Settings

from gridledger.contracts import EVM_VERSION

CONTRACTS_DIR = Path(__file__).resolve().parent
ARTIFACTS_DIR = CONTRACTS_DIR / "artifacts"


class BuildError(RuntimeError):
    """A contract source failed to compile; the message names the source file."""


def contract_sources(folder: Path = CONTRACTS_DIR) -> list[Path]:
    """Contract sources (upper-case file names), sorted by name."""
    return sorted(p for p in folder.glob("*.vy") if p.stem[:1].isupper())


def module_sources(folder: Path = CONTRACTS_DIR) -> list[Path]:
    """Module sources (lower-case file names) that contracts may import, sorted by name."""
    return sorted(p for p in folder.glob("*.vy") if not p.stem[:1].isupper())


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


_IMPORT = re.compile(r"^\s*(?:import|from)\s+([A-Za-z_]\w*)", re.MULTILINE)


def imported_modules(source: Path) -> list[Path]:
    """Local module sources `source` imports, directly or through other modules, sorted."""
    local = {p.stem: p for p in module_sources(source.parent)}
    found: dict[str, Path] = {}
    todo = [source]
    while todo:
        for name in _IMPORT.findall(todo.pop().read_text()):
            if name in local and name not in found:
                found[name] = local[name]
                todo.append(local[name])
    return sorted(found.values())


def expected_fingerprint(source: Path, evm_version: str = EVM_VERSION) -> dict[str, object]:
    """Fields an artifact of `source` must carry to be up to date (compiled for
    `evm_version`, the fork every backend runs: gridledger.contracts.EVM_VERSION)."""
    return {
        "compiler_version": vyper.__version__,
        "evm_version": evm_version,
        "source_sha256": sha256_of(source),
        "modules_sha256": {p.name: sha256_of(p) for p in imported_modules(source)},
    }


def compile_source(text: str, evm_version: str = EVM_VERSION) -> dict[str, object]:
    """ABI and bytecode of Vyper source `text` compiled for `evm_version` (throwaway contracts
    of tests and probes must run on the same fork as the artifacts)."""
    out = vyper.compile_code(
        text, settings=Settings(evm_version=evm_version), output_formats=["abi", "bytecode"]
    )
    return {"abi": out["abi"], "bytecode": out["bytecode"]}


def compile_contract(source: Path, evm_version: str = EVM_VERSION) -> dict[str, object]:
    """Compile one contract source for `evm_version` into its artifact dictionary."""
    bundle = FilesystemInputBundle([source.parent])
    file_input = bundle.load_file(source.name)
    try:
        out = vyper.compile_from_file_input(
            file_input,
            input_bundle=bundle,
            settings=Settings(evm_version=evm_version),
            output_formats=["abi", "bytecode"],
        )
    except Exception as exc:  # vyper raises many exception types; re-raise naming the file
        raise BuildError(f"{source.name}: {exc}") from exc
    return {
        "name": source.stem,
        "source_path": f"gridledger/contracts/{source.name}",
        **expected_fingerprint(source, evm_version),
        "abi": out["abi"],
        "bytecode": out["bytecode"],
    }


def build(
    names: list[str] | None = None,
    out_dir: Path = ARTIFACTS_DIR,
    evm_version: str = EVM_VERSION,
) -> list[Path]:
    """Compile the named contracts (default: all) for `evm_version` and write their artifacts;
    returns the paths."""
    sources = contract_sources()
    if names:
        known = {p.stem: p for p in sources}
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise BuildError(f"unknown contract(s) {unknown}; known: {sorted(known)}")
        sources = [known[n] for n in names]
    artifacts = [
        (src, compile_contract(src, evm_version)) for src in sources
    ]  # compile all before writing
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for src, artifact in artifacts:
        path = out_dir / f"{src.stem}.json"
        path.write_text(json.dumps(artifact, indent=1, sort_keys=True) + "\n")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: build the contracts named in argv (default all)."""
    args = sys.argv[1:] if argv is None else argv
    try:
        written = build(args or None)
    except BuildError as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path.relative_to(CONTRACTS_DIR.parent.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
