"""Pure parts of the chain layer: key derivation, signing, --chain parsing, capacity estimate."""

from __future__ import annotations

import coincurve
import pandas as pd
import pytest
import rlp
from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st

from gridledger.chain import (
    DEFAULT_CHAIN_IDS,
    DEFAULT_EMBEDDED_ENGINE,
    EmbeddedChain,
    make_chain,
    make_chains,
    parse_chain_spec,
    raw_tx_chain_id,
    sign_eip1559,
)
from gridledger.chain.accounts import derive_account
from gridledger.chain.codec import rlp_list
from gridledger.chain.revm import RevmChain
from gridledger.market.ledger import chain_capacity


def test_derived_accounts_are_reproducible_and_distinct():
    a = derive_account(42, "user", 3)
    assert a.address == derive_account(42, "user", 3).address
    assert a.key == derive_account(42, "user", 3).key
    variants = [(43, "user", 3), (42, "producer", 3), (42, "user", 4), (42, "user", 30)]
    others = {derive_account(s, r, i).address for s, r, i in variants}
    assert a.address not in others and len(others) == 4
    # pinned: a change of the derivation would silently change every scenario's addresses
    assert derive_account(0, "admin", 0).address == PINNED_ADMIN_0


PINNED_ADMIN_0 = "0x7437EFe4a34d91e6a3F5655f1f5A6a30675b11bC"  # keccak("gridledger/v1/0/admin/0")


@pytest.mark.parametrize(
    ("args", "field"),
    [((-1, "user", 0), "seed"), ((1.5, "user", 0), "seed"), ((1, "", 0), "role"),
     ((1, "a/b", 0), "role"), ((1, "user", -2), "index"), ((True, "user", 0), "seed")],
)  # fmt: skip
def test_bad_derivation_inputs_are_named(args, field):
    with pytest.raises(ValueError, match=field):
        derive_account(*args)


def test_chain_spec_forms():
    for spec in ("embedded", "revm", "pyevm"):
        assert parse_chain_spec(f" {spec} ") == {"letb": spec, "retb": spec}
    urls = {"letb": "http://127.0.0.1:8545", "retb": "http://127.0.0.1:8546"}
    assert parse_chain_spec("http://127.0.0.1:8545,http://127.0.0.1:8546") == urls
    assert parse_chain_spec("retb=http://127.0.0.1:8546, letb=http://127.0.0.1:8545") == urls


@pytest.mark.parametrize(
    "spec",
    ["http://127.0.0.1:8545", "ws://a,ws://b", "x=http://a,y=http://b", "http://a,http://a", ""],
)
def test_bad_chain_specs_are_refused(spec):
    with pytest.raises(ValueError, match="--chain"):
        parse_chain_spec(spec)


def test_make_chains_embedded_gives_two_chains_with_distinct_ids():
    engines = {"pyevm": EmbeddedChain, "revm": RevmChain}
    for spec in ("embedded", *engines):
        chains = make_chains(spec)
        assert {k: c.chain_id for k, c in chains.items()} == DEFAULT_CHAIN_IDS
        cls = engines[DEFAULT_EMBEDDED_ENGINE if spec == "embedded" else spec]
        assert all(type(c) is cls for c in chains.values())
    with pytest.raises(ValueError, match="chain spec"):
        make_chain("anvil", "letb", 1)
    with pytest.raises(ValueError, match="must differ"):
        make_chains("embedded", {"letb": 5, "retb": 5})


def test_chain_capacity():
    cap = chain_capacity([3_000_000, 6_000_000], block_gas_limit=30_000_000, block_period_s=5.0)
    assert cap.budget_gas_per_hour == 30_000_000 * 720
    assert cap.peak_gas_per_hour == 6_000_000
    assert cap.peak_utilisation == pytest.approx(6e6 / 21.6e9)
    assert cap.mean_utilisation == pytest.approx(4.5e6 / 21.6e9)
    assert cap.max_markets_at_peak == pytest.approx(3600.0)
    assert set(cap.as_dict()) >= {"peak_utilisation", "budget_gas_per_hour"}
    with pytest.raises(ValueError, match="block_period_s"):
        chain_capacity([1], block_period_s=0)
    frame = pd.DataFrame(
        {"chain": ["letb", "letb", "retb", "letb"], "t": [None, 0, 0, 1],
         "gas_used": [10**9, 2_000_000, 7_000_000, 4_000_000]}
    )  # fmt: skip
    letb = chain_capacity(frame, chain="letb")
    assert (letb.peak_gas_per_hour, letb.mean_gas_per_hour) == (4_000_000, 3_000_000)
    assert chain_capacity(frame).peak_gas_per_hour == 9_000_000
    with pytest.raises(ValueError, match="gas_used"):
        chain_capacity(frame.drop(columns="gas_used"))


@pytest.mark.parametrize(
    ("chain_id", "nonce", "to", "value", "data"),
    [
        (31401, 0, derive_account(5, "user", 1).address, 0, bytes.fromhex("a9059cbb") + bytes(64)),
        (31402, 7, derive_account(5, "user", 2).address, 10**18, b""),
        (1, 2**40, None, 0, bytes(range(256)) * 3),  # contract creation
    ],
)
def test_fast_signing_is_byte_identical_to_eth_account(chain_id, nonce, to, value, data):
    account = derive_account(5, "user", 0)
    fields = dict(nonce=nonce, gas=123_456, maxFeePerGas=3 * 10**9 + 1, maxPriorityFeePerGas=10**9)
    ref_tx = dict(type=2, chainId=chain_id, value=value, data=data, **fields)
    if to is not None:
        ref_tx["to"] = to
    ref = account.sign_transaction(ref_tx)
    to_b = b"" if to is None else bytes.fromhex(to[2:])
    raw, tx_hash = sign_eip1559(
        coincurve.PrivateKey(bytes(account.key)), chain_id, nonce, 10**9, 3 * 10**9 + 1,
        123_456, to_b, value, data,
    )  # fmt: skip
    assert raw == bytes(ref.raw_transaction)
    assert tx_hash == bytes(ref.hash)
    assert Account.recover_transaction(raw) == account.address
    assert raw_tx_chain_id(raw) == chain_id


RLP_ITEMS = st.one_of(st.integers(0, 2**256), st.binary(max_size=80), st.just([]))


@given(st.lists(RLP_ITEMS, max_size=12))
def test_fast_rlp_is_byte_identical_to_pyrlp(items):
    assert rlp_list(items) == rlp.encode(items)
