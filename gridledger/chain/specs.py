"""Chain specs: the `--chain` value -> the two ledgers' backends (embedded engines or node URLs)."""

from __future__ import annotations

from gridledger.chain.backend import CHAIN_NAMES, DEFAULT_CHAIN_IDS, ChainBackend
from gridledger.chain.pyevm import EmbeddedChain
from gridledger.chain.rpc import RpcChain

EMBEDDED_ENGINES = ("pyevm", "revm")
"""In-process engines: py-evm through eth-tester (EmbeddedChain), revm (RevmChain)."""
DEFAULT_EMBEDDED_ENGINE = "revm"
"""The engine `--chain embedded` (the default) runs on."""
IN_PROCESS_SPECS = ("embedded", *EMBEDDED_ENGINES)


def make_chain(spec: str, name: str, chain_id: int) -> ChainBackend:
    """'revm' -> RevmChain, 'pyevm' -> EmbeddedChain, 'embedded' -> the default engine of the
    two (DEFAULT_EMBEDDED_ENGINE); an http(s) URL -> RpcChain checked for `chain_id`."""
    engine = DEFAULT_EMBEDDED_ENGINE if spec == "embedded" else spec
    if engine == "pyevm":
        return EmbeddedChain(chain_id, name)
    if engine == "revm":
        from gridledger.chain.revm import RevmChain  # imports this module

        return RevmChain(chain_id, name)
    if spec.startswith(("http://", "https://")):
        return RpcChain(spec, name, expected_chain_id=chain_id)
    raise ValueError(
        f"chain spec must be one of {IN_PROCESS_SPECS} or an http(s):// URL, got {spec!r}"
    )


def parse_chain_spec(spec: str) -> dict[str, str]:
    """The `--chain` value -> {'letb': spec, 'retb': spec}.

    Accepted: 'embedded', 'revm' or 'pyevm' (two in-process chains; 'embedded' is the default
    engine, DEFAULT_EMBEDDED_ENGINE); 'URL_LETB,URL_RETB' (what `gridledger node`
    prints, e.g. 'http://127.0.0.1:8545,http://127.0.0.1:8546'); 'letb=URL,retb=URL'.
    """
    spec = spec.strip()
    if spec in IN_PROCESS_SPECS:
        return dict.fromkeys(CHAIN_NAMES, spec)
    parts = [p.strip() for p in spec.split(",") if p.strip()]
    if len(parts) != len(CHAIN_NAMES):
        raise ValueError(
            f"--chain must be 'embedded', 'revm', 'pyevm' or two URLs 'URL_LETB,URL_RETB' (one "
            f"node per chain, "
            f"e.g. from `gridledger node`), got {spec!r}"
        )
    if all("=" in p for p in parts):
        named = dict(p.split("=", 1) for p in parts)
        if set(named) != set(CHAIN_NAMES):
            raise ValueError(f"--chain names must be {CHAIN_NAMES}, got {sorted(named)}")
        out = {k: named[k].strip() for k in CHAIN_NAMES}
    else:
        out = dict(zip(CHAIN_NAMES, parts, strict=True))
    for k, url in out.items():
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"--chain: {k} URL must start with http:// or https://, got {url!r}")
    if out["letb"] == out["retb"]:
        raise ValueError(f"--chain: LETB and RETB need two different nodes, got {url!r} twice")
    return out


def make_chains(
    spec: str = "embedded", chain_ids: dict[str, int] | None = None
) -> dict[str, ChainBackend]:
    """Both ledgers from a `--chain` value: {'letb': ChainBackend, 'retb': ChainBackend}.

    RPC nodes must report the expected chain ids (default DEFAULT_CHAIN_IDS).
    """
    ids = dict(DEFAULT_CHAIN_IDS if chain_ids is None else chain_ids)
    if ids.get("letb") == ids.get("retb"):
        raise ValueError(f"chain ids of LETB and RETB must differ, got {ids}")
    return {k: make_chain(s, k, ids[k]) for k, s in parse_chain_spec(spec).items()}
