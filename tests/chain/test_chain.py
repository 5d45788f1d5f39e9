"""The chain layer on every backend: in-process py-evm and revm, anvil processes over HTTP.

Every test runs on each backend (fixture `chains`: py-evm, revm, anvil): real EVM, real
signatures, real gas, real HTTP.
"""

from __future__ import annotations

import pytest
from eth_abi import decode
from eth_utils import keccak

from gridledger.chain import (
    DEFAULT_CHAIN_IDS,
    CallReverted,
    ChainBackend,
    ChainIdMismatchError,
    EmbeddedChain,
    InsufficientFundsError,
    NonceError,
    OutOfGasError,
    RpcChain,
    Signer,
    TransactionReverted,
    TxRequest,
    raw_tx_chain_id,
    send_many,
)
from gridledger.chain.accounts import derive_account
from gridledger.market.contracts import MAX_UINT256, EnergyToken
from gridledger.market.ledger import GAS_COLUMNS, Ledger

TOKEN = 10**18


def deploy_probe(signer: Signer, artifact: dict) -> str:
    code = bytes.fromhex(artifact["bytecode"].removeprefix("0x"))
    res = signer.transact(TxRequest(None, code, gas=1_000_000, contract="Probe", function="deploy"))
    assert res.contract_address is not None
    return res.contract_address


def users_on(chain: ChainBackend, n: int, role: str = "user") -> list[Signer]:
    signers = [chain.signer(derive_account(7, role, i), f"{role}{i}") for i in range(n)]
    chain.fund([s.address for s in signers], 10**19)
    return signers


def test_chain_ids_are_distinct_and_seen_by_the_evm(chains, probe_artifact):
    for name, chain in chains.items():
        assert chain.chain_id == DEFAULT_CHAIN_IDS[name]
        s = chain.signer(derive_account(7, "admin", 0), "admin")
        chain.fund([s.address], 10**19)
        probe = deploy_probe(s, probe_artifact)
        (cid,) = decode(["uint256"], chain.call(probe, keccak(text="chain_id()")[:4]))
        assert cid == DEFAULT_CHAIN_IDS[name]


def test_embedded_web3_reports_its_chain_id():
    chain = EmbeddedChain(4242, "x")
    assert chain.w3.eth.chain_id == 4242
    assert chain.w3.eth.get_balance(chain.faucet.address) == chain.balance(chain.faucet.address)


def test_deploy_transact_and_decode_energy_token(letb, admin):
    token = EnergyToken.deploy(admin, 1_000 * TOKEN)
    assert token.total_supply() == 1_000 * TOKEN
    assert token.balance_of(admin.address) == 1_000 * TOKEN
    (user,) = users_on(letb, 1)
    res = admin.transact(token.transfer(user.address, 25 * TOKEN))
    assert res.ok and res.gas_used > 21_000
    (ev,) = token.decode_logs(res)
    assert ev.name == "Transfer"
    assert ev.args == {"sender": admin.address, "receiver": user.address, "value": 25 * TOKEN}
    assert ev.block_number == res.block_number == letb.block_number()
    user.transact(token.approve(admin.address))
    assert token.allowance(user.address, admin.address) == MAX_UINT256
    assert token.balance_of(user.address) == 25 * TOKEN


def test_a_batch_is_one_block_and_blocks_link_hour_by_hour(letb, admin):
    token = EnergyToken.deploy(admin, 1_000 * TOKEN)
    users = users_on(letb, 6)
    send_many([(admin, token.transfer(u.address, 10 * TOKEN)) for u in users])
    ledger = Ledger().attach(letb)
    ledger.watch(token)
    hashes = []
    for t in range(3):
        ledger.t = t
        before = letb.block_number()
        batch = [
            (u, token.transfer(users[(i + 1) % 6].address, TOKEN)) for i, u in enumerate(users)
        ]
        results = send_many(batch)
        assert {r.block_number for r in results} == {before + 1}
        block = letb.get_block(before + 1)
        assert block["tx_count"] == len(batch)
        assert block["hash"] == results[0].block_hash
        if hashes:
            assert block["parent_hash"] == hashes[-1]
        hashes.append(block["hash"])
    gas = ledger.gas()
    assert list(gas.columns) == GAS_COLUMNS
    assert len(gas) == 18
    assert gas.groupby("t")["block"].nunique().tolist() == [1, 1, 1]
    assert (gas["operation"] == "transfer").all() and (gas["contract"] == "EnergyToken").all()
    assert ledger.gas_per_hour().tolist() == [int(gas[gas.t == t].gas_used.sum()) for t in range(3)]
    assert len(ledger.events("Transfer")) == 18
    # every agent's token balance is back where it started (ring of transfers)
    assert all(token.balance_of(u.address) == 10 * TOKEN for u in users)


def test_transaction_replayed_on_the_other_chain_is_rejected(chains, probe_artifact):
    letb, retb = chains["letb"], chains["retb"]
    account = derive_account(7, "user", 0)
    a, b = letb.signer(account, "user0"), retb.signer(account, "user0")
    letb.fund([account.address], 10**19)
    retb.fund([account.address], 10**19)
    to = derive_account(7, "user", 1).address
    ptx = a.sign(TxRequest(to, b"", gas=21_000, value=12345, function="pay"))
    assert raw_tx_chain_id(ptx.raw) == letb.chain_id
    nonce_before = retb.nonce(account.address)
    with pytest.raises(ChainIdMismatchError, match=str(letb.chain_id)):
        retb.submit(ptx)
    if isinstance(retb, RpcChain):  # the node's own EIP-155 check, mapped to the same error
        with pytest.raises(ChainIdMismatchError):
            retb._submit(ptx)
    retb.mine()
    assert retb.nonce(account.address) == nonce_before
    assert retb.balance(to) == 0
    # the same transaction is fine on its own chain
    letb.submit(ptx)
    (res,) = letb.mine()
    assert res.ok and letb.balance(to) == 12345
    assert b.next_nonce == 0


def test_revert_carries_reason_agent_contract_function(letb, admin):
    token = EnergyToken.deploy(admin, 1_000 * TOKEN)
    (user,) = users_on(letb, 1)
    ledger = Ledger().attach(letb)
    with pytest.raises(TransactionReverted) as info:
        user.transact(token.transfer(admin.address, 5 * TOKEN))
    err = info.value
    assert err.reason == "insufficient balance"
    assert (err.agent, err.contract, err.function) == ("user0", "EnergyToken", "transfer")
    assert err.chain == "letb" and err.tx_hash.startswith("0x")
    # it was mined (status 0, gas paid) and recorded; the nonce moved on
    (row,) = ledger.gas().itertuples()
    assert row.status == 0 and row.gas_used > 21_000 and row.tx_hash == err.tx_hash
    assert letb.nonce(user.address) == 1 == user.next_nonce
    with pytest.raises(CallReverted, match="insufficient balance") as call_info:
        token.call("transfer", admin.address, 5 * TOKEN, sender=user.address)
    assert call_info.value.function == "transfer"


def test_batch_with_one_revert_mines_the_rest(letb, admin):
    token = EnergyToken.deploy(admin, 1_000 * TOKEN)
    users = users_on(letb, 3)
    batch = [(admin, token.transfer(u.address, TOKEN)) for u in users]
    batch.insert(1, (users[0], token.transfer(admin.address, 10**30)))
    results = send_many(batch, raise_on_error=False)
    assert [r.ok for r in results] == [True, False, True, True]
    assert isinstance(results[1].error, TransactionReverted)
    assert len({r.block_number for r in results}) == 1
    assert [token.balance_of(u.address) for u in users] == [TOKEN] * 3
    with pytest.raises(TransactionReverted, match="insufficient balance"):
        send_many([(users[1], token.transfer(admin.address, 10**30))])


def test_out_of_gas_is_named(letb, admin, probe_artifact):
    probe = deploy_probe(admin, probe_artifact)
    data = keccak(text="burn(uint256)")[:4] + (2000).to_bytes(32, "big")
    with pytest.raises(OutOfGasError) as info:
        admin.transact(TxRequest(probe, data, gas=80_000, contract="Probe", function="burn"))
    assert info.value.gas_limit == 80_000 and info.value.function == "burn"
    token = EnergyToken.deploy(admin, TOKEN)
    with pytest.raises(OutOfGasError):
        admin.transact(token.tx("transfer", admin.address, 1, gas=23_000))


def test_wrong_nonce_is_named_and_the_signer_recovers(letb, admin):
    token = EnergyToken.deploy(admin, 1_000 * TOKEN)
    (user,) = users_on(letb, 1)
    n = letb.nonce(admin.address)
    with pytest.raises(NonceError):  # too low: refused on submission by both backends
        admin.send(token.transfer(user.address, TOKEN), nonce=n - 1)
    with pytest.raises(NonceError):  # a gap: refused (embedded) or dropped at mining (anvil)
        ptx = admin.send(token.transfer(user.address, TOKEN), nonce=n + 5)
        letb.mine()
        assert ptx.result is not None
        ptx.result.raise_for_error()
    res = admin.transact(token.transfer(user.address, TOKEN))
    assert res.ok and res.nonce == n
    assert token.balance_of(user.address) == TOKEN


def test_unfunded_sender_is_refused(letb, admin):
    token = EnergyToken.deploy(admin, TOKEN)
    broke = letb.signer(derive_account(7, "broke", 0), "broke")
    with pytest.raises(InsufficientFundsError):
        broke.send(token.transfer(admin.address, 0))
    letb.mine()
    assert letb.nonce(broke.address) == 0


def test_funding_is_recorded(letb):
    ledger = Ledger().attach(letb)
    users = [derive_account(7, "user", i).address for i in range(4)]
    letb.fund(users, 3 * 10**18)
    assert all(letb.balance(u) == 3 * 10**18 for u in users)
    fund = ledger.funding()
    assert len(fund) == 4 and set(fund["operation"]) == {"fund_gas"}
    assert set(fund["contract"]) == {"native"} and fund["block"].nunique() == 1
