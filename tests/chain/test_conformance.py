"""Backend conformance: what a node checks and returns, the same on py-evm, revm and anvil.

Complements test_chain.py (which also runs on every backend): signatures, legacy EIP-155
transactions, intrinsic gas, fees, receipts' raw logs, past-block reads, replays; and that
revm charges exactly py-evm's gas on the same signed transactions.
"""

from __future__ import annotations

import itertools

import pytest
import rlp
from eth_abi import encode
from eth_utils import keccak

from gridledger.chain import (
    DEFAULT_CHAIN_IDS,
    ChainBackend,
    ChainIdMismatchError,
    EmbeddedChain,
    InvalidSignatureError,
    NonceError,
    PendingTx,
    RpcChain,
    Signer,
    TransactionRejected,
    TxRequest,
    make_chain,
    send_many,
)
from gridledger.chain.accounts import derive_account
from gridledger.chain.rawtx import SECP256K1_N
from gridledger.chain.revm import COINBASE, RevmChain
from gridledger.market.contracts import EnergyToken

TOKEN = 10**18
TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")


def pending(chain: ChainBackend, raw: bytes, sender: str, nonce: int, gas: int) -> PendingTx:
    """A hand-made signed transaction, tracked like the Signer's."""
    return PendingTx(chain.name, "0x" + keccak(raw).hex(), raw, sender, "hand", "", "pay",
                     nonce, gas)  # fmt: skip


def resigned(raw: bytes, **fields: int) -> bytes:
    """An EIP-1559 raw transaction with some signature fields replaced (y_parity, r, s)."""
    items = rlp.decode(raw[1:])
    for name, value in fields.items():
        items[{"y_parity": 9, "r": 10, "s": 11}[name]] = value
    return b"\x02" + rlp.encode(items)


@pytest.mark.parametrize(("fields", "anvil_error"), [
    ({"r": 0}, InvalidSignatureError),
    ({"y_parity": 2}, TransactionRejected),  # anvil cannot even decode it
])  # fmt: skip
def test_a_bad_signature_is_refused_before_execution(letb, admin, fields, anvil_error):
    to = derive_account(7, "user", 1).address
    ptx = admin.sign(TxRequest(to, b"", gas=21_000, value=1, function="pay"))
    bad = pending(letb, resigned(ptx.raw, **fields), admin.address, ptx.nonce, 21_000)
    with pytest.raises(anvil_error if isinstance(letb, RpcChain) else InvalidSignatureError):
        letb.submit(bad)
    letb.mine()
    assert letb.balance(to) == 0 and letb.nonce(admin.address) == ptx.nonce


def test_a_high_s_signature_is_refused_or_recovers_an_unfunded_sender(letb, admin):
    """EIP-2: s above n/2 is invalid (py-evm, revm); a node that reads it recovers some other
    key, which has no funds. Either way nothing moves."""
    to = derive_account(7, "user", 1).address
    ptx = admin.sign(TxRequest(to, b"", gas=21_000, value=1, function="pay"))
    (s,) = [int.from_bytes(rlp.decode(ptx.raw[1:])[11], "big")]
    raw = resigned(ptx.raw, s=SECP256K1_N - s)
    with pytest.raises(TransactionRejected):
        letb.submit(pending(letb, raw, admin.address, ptx.nonce, 21_000))
    letb.mine()
    assert letb.balance(to) == 0 and letb.nonce(admin.address) == ptx.nonce


def test_a_legacy_eip155_transaction_is_accepted_and_a_pre155_one_refused(letb, admin):
    to = derive_account(7, "user", 2).address
    tx = {"nonce": admin.next_nonce, "gasPrice": 2 * letb.fee_caps()[0], "gas": 21_000,
          "to": to, "value": 777, "data": b"", "chainId": letb.chain_id}  # fmt: skip
    raw = bytes(admin.account.sign_transaction(tx).raw_transaction)
    letb.submit(pending(letb, raw, admin.address, tx["nonce"], 21_000))
    (res,) = letb.mine()
    assert res.ok and res.gas_used == 21_000 and letb.balance(to) == 777
    admin.resync()
    # without a chain id (v = 27/28) it would be valid on every chain: refused
    fields = [admin.next_nonce, tx["gasPrice"], 21_000, bytes.fromhex(to[2:]), 1, b""]
    unsigned = keccak(rlp.encode(fields))
    sig = admin._key.sign_recoverable(unsigned, hasher=None)
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big")
    pre155 = rlp.encode([*fields, 27 + sig[64], r, s])
    with pytest.raises(ChainIdMismatchError):
        letb.submit(pending(letb, pre155, admin.address, admin.next_nonce, 21_000))


def test_gas_below_the_intrinsic_cost_is_refused(letb, admin):
    to = derive_account(7, "user", 3).address
    with pytest.raises(TransactionRejected):
        admin.send(TxRequest(to, b"", gas=20_999, value=1, function="pay"))
    letb.mine()
    assert letb.balance(to) == 0


def test_fees_base_fee_burnt_tip_to_the_coinbase(letb, admin):
    """The sender pays gas used x (base fee + tip) + value; on the in-process engines the
    coinbase (eth-tester's, the zero address) receives exactly gas used x tip."""
    to = derive_account(7, "user", 4).address
    before, cb_before = letb.balance(admin.address), letb.balance(COINBASE)
    base_fee, (max_fee, tip) = letb.base_fee(), letb.fee_caps()
    res = admin.transact(TxRequest(to, b"", gas=50_000, value=10**15, function="pay"))
    paid = before - letb.balance(admin.address) - 10**15
    assert res.gas_used == 21_000 and paid % res.gas_used == 0
    price = paid // res.gas_used
    assert tip <= price <= max_fee
    if not isinstance(letb, RpcChain):  # anvil's next base fee and coinbase are its own
        assert price == base_fee + tip
        assert letb.balance(COINBASE) - cb_before == res.gas_used * tip


def test_receipt_logs_carry_address_topics_data_and_block_wide_indexes(letb, admin):
    token = EnergyToken.deploy(admin, 1_000 * TOKEN)
    users = [letb.signer(derive_account(7, "user", i), f"user{i}") for i in range(3)]
    results = send_many([(admin, token.transfer(u.address, (i + 1) * TOKEN))
                         for i, u in enumerate(users)])  # fmt: skip
    assert [lg.log_index for r in results for lg in r.logs] == [0, 1, 2]
    for i, (r, u) in enumerate(zip(results, users, strict=True)):
        (lg,) = r.logs
        assert lg.address == token.address
        assert lg.topics[0] == TRANSFER_TOPIC and len(lg.topics) == 3
        assert lg.topics[2][-20:].hex() == u.address[2:].lower()
        assert lg.data == ((i + 1) * TOKEN).to_bytes(32, "big")
        assert r.block_hash == letb.get_block(r.block_number)["hash"]


def test_blocks_are_numbered_timed_and_hash_linked(letb, admin):
    first = letb.block_number()
    for _ in range(3):
        letb.mine()
    blocks = [letb.get_block(n) for n in range(first, first + 4)]
    assert [b["number"] for b in blocks] == list(range(first, first + 4))
    for parent, child in itertools.pairwise(blocks):
        assert child["parent_hash"] == parent["hash"] != child["hash"]
        assert child["timestamp"] >= parent["timestamp"] and child["tx_count"] == 0
    assert letb.get_block("latest") == blocks[-1]
    with pytest.raises(ValueError, match="block"):
        letb.get_block(first + 10)


def test_reads_at_past_blocks(letb, admin):
    token = EnergyToken.deploy(admin, 1_000 * TOKEN)
    (user,) = [letb.signer(derive_account(7, "user", 5), "user5")]
    admin.transact(token.transfer(user.address, 5 * TOKEN))
    b1 = letb.block_number()
    letb.fund([user.address], 10**18)
    admin.transact(token.transfer(user.address, 2 * TOKEN))
    b2 = letb.block_number()
    assert token.balance_of(user.address, block=b1) == 5 * TOKEN
    assert token.balance_of(user.address, block=b2) == 7 * TOKEN
    assert token.balance_of(user.address) == 7 * TOKEN
    balance_of = keccak(text="balanceOf(address)")[:4] + encode(["address"], [user.address])
    assert letb.call(token.address, balance_of, block=b1 - 2) == b""  # before the deployment
    assert letb.balance(user.address, b1) == 0 and letb.balance(user.address, b2) == 10**18
    n = letb.nonce(admin.address, "latest")
    assert letb.nonce(admin.address, b1) == n - 1
    # a pending transaction is seen at 'pending' only
    admin.send(token.transfer(user.address, TOKEN))
    assert letb.nonce(admin.address, "pending") == n + 1
    assert letb.nonce(admin.address, "latest") == n
    assert token.balance_of(user.address) == 7 * TOKEN
    letb.mine()
    assert token.balance_of(user.address) == 8 * TOKEN


def test_a_letb_tx_on_retb_moves_nothing_and_its_replay_hits_a_spent_nonce(chains):
    letb, retb = chains["letb"], chains["retb"]
    account = derive_account(7, "user", 9)
    for c in (letb, retb):
        c.fund([account.address], 10**19)
    to = derive_account(7, "user", 10).address
    req = TxRequest(to, b"", gas=21_000, value=5, function="pay")
    ptx = letb.signer(account, "user9").sign(req)
    state = (retb.balance(account.address), retb.nonce(account.address), retb.balance(to))
    with pytest.raises(ChainIdMismatchError):
        retb.submit(ptx)
    assert retb.pending == []
    retb.mine()
    assert retb.get_block()["tx_count"] == 0
    assert (retb.balance(account.address), retb.nonce(account.address), retb.balance(to)) == state
    letb.submit(ptx)
    (res,) = letb.mine()
    assert res.ok and letb.balance(to) == 5
    with pytest.raises(NonceError):  # the same signed bytes again: its nonce is spent
        letb.submit(ptx)
    letb.mine()
    assert letb.balance(to) == 5


def workload(chain: ChainBackend) -> list[tuple]:
    """The same signed transactions (same keys, nonces, fee caps): deploy, transfers, a revert
    and an out-of-gas; every result's gas, status, hash and logs, and the base fees."""
    admin = Signer(derive_account(3, "admin", 0), chain, "admin")
    users = [Signer(derive_account(3, "user", i), chain, f"user{i}") for i in range(4)]
    chain.fund([admin.address] + [u.address for u in users], 10**19)
    token = EnergyToken.deploy(admin, 10**6 * TOKEN)
    out = []
    for t in range(3):
        batch = [(admin, token.transfer(u.address, (t + 1) * TOKEN)) for u in users]
        batch += [(u, token.transfer(users[0].address, TOKEN // 3)) for u in users[1:]]
        batch += [(users[1], token.transfer(admin.address, 10**30))]  # reverts
        batch += [(users[2], token.tx("transfer", admin.address, 1, gas=23_000))]  # out of gas
        out += [(r.gas_used, r.status, r.tx_hash, r.logs, type(r.error).__name__)
                for r in send_many(batch, raise_on_error=False)]  # fmt: skip
        out.append(("base fee", chain.base_fee(), chain.balance(admin.address)))
    return out


def test_revm_charges_exactly_py_evms_gas_on_the_same_transactions():
    cid = DEFAULT_CHAIN_IDS["letb"]
    pyevm, revm = make_chain("pyevm", "letb", cid), make_chain("revm", "letb", cid)
    assert isinstance(pyevm, EmbeddedChain) and isinstance(revm, RevmChain)
    a, b = workload(pyevm), workload(revm)
    assert {x[-1] for x in a} >= {"TransactionReverted", "OutOfGasError", "NoneType"}
    assert a == b
