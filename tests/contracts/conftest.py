"""Fixtures for the contract tests: one real EVM per test module and engine (py-evm via
eth-tester; revm through RevmChain) with the token, one LETB and one RETB deployed and
participants registered; every test starts from a snapshot of that state and is reverted
afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.exceptions import TransactionFailed
from web3 import EthereumTesterProvider, Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from gridledger.chain import Signer, TransactionReverted, TxRequest, embedded_vm_class
from gridledger.chain.accounts import derive_account
from gridledger.chain.revm import RevmChain
from gridledger.contracts import EVM_VERSION, load_artifact

ENGINES = ["pyevm", "revm"]
TX_GAS = 5_000_000
DEPLOY_GAS = 20_000_000
USD = 10**18
PER_MWH = 10**12  # token base units per Wh for 1 $/MWh
N_ACCOUNTS = 30


class Reverted(AssertionError):
    """A transaction reverted; `reason` is the contract's revert string."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


REVERT_ERRORS = (TransactionFailed, ContractLogicError)
"""What a reverted eth_call raises: eth-tester's provider (py-evm), web3's (revm, nodes)."""


def _reason(exc: Exception) -> str:
    text = str(exc.args[0]) if exc.args else str(exc)
    return text.removeprefix("execution reverted: ")


@dataclass
class Chain:
    """A real in-process EVM with unlocked accounts; transactions mined one per block."""

    tester: EthereumTester
    w3: Web3
    accounts: list[str]
    gas_log: list[tuple[str, int]] = field(default_factory=list)

    @classmethod
    def fresh(cls, n_accounts: int = N_ACCOUNTS, engine: str = "pyevm") -> Chain:
        """A new chain on `engine` ('pyevm' or 'revm') with `n_accounts` funded accounts."""
        if engine == "revm":
            return RevmTestChain.fresh_revm(n_accounts)
        genesis = PyEVMBackend.generate_genesis_state(num_accounts=n_accounts)
        fork = ((0, embedded_vm_class(EVM_VERSION)),)  # the fork every backend runs
        tester = EthereumTester(PyEVMBackend(genesis_state=genesis, vm_configuration=fork))
        w3 = Web3(EthereumTesterProvider(tester))
        accounts = list(w3.eth.accounts)
        w3.eth.default_account = accounts[0]  # calls need no sender guess (slow with many keys)
        return cls(tester, w3, accounts)

    def deploy(self, name: str, *args: Any, sender: str | None = None) -> Contract:
        art = load_artifact(name)
        factory = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        tx = factory.constructor(*args).transact({"from": sender or self.accounts[0]})
        receipt = self.w3.eth.get_transaction_receipt(tx)
        assert receipt.status == 1, f"deploying {name} failed"
        return self.w3.eth.contract(address=receipt.contractAddress, abi=art["abi"])

    def _submit(self, call: Any, sender: str) -> Any:
        """Straight to eth-tester (web3's transaction building costs ~25 % per transaction
        here); returns the transaction hash."""
        return self.tester.send_transaction(
            {
                "from": sender,
                "to": call.address,
                "gas": TX_GAS,
                "value": 0,
                "data": call._encode_transaction_data(),
            }
        )

    def send(self, call: Any, sender: str, label: str | None = None) -> Any:
        """Send a contract call as `sender`; returns the receipt or raises Reverted(reason)."""
        tx = self._submit(call, sender)
        receipt = self.w3.eth.get_transaction_receipt(tx)
        if receipt.status != 1:
            try:
                call.call({"from": sender})
            except Exception as exc:  # the replay names the revert reason
                raise Reverted(_reason(exc)) from None
            raise Reverted("reverted without reason")
        if label:
            self.gas_log.append((label, receipt.gasUsed))
        return receipt

    def send_quiet(self, call: Any, sender: str) -> None:
        """Like `send` when the receipt is not needed (skips web3's receipt formatting)."""
        tx = self._submit(call, sender)
        if self.tester.get_transaction_receipt(tx)["status"] != 1:
            self.send(call, sender)  # replays the call to raise Reverted with the reason

    def snapshot(self) -> int:
        return self.tester.take_snapshot()

    def revert(self, snap: int) -> None:
        self.tester.revert_to_snapshot(snap)


@dataclass
class RevmTestChain(Chain):
    """The same interface on a RevmChain: every transaction signed by its sender's key and
    mined in its own block (as eth-tester's auto-mining does); reads through `chain.w3`."""

    chain: Any = None
    signers: dict[str, Signer] = field(default_factory=dict)

    @classmethod
    def fresh_revm(cls, n_accounts: int) -> RevmTestChain:
        chain = RevmChain(131_277, "contracts")
        keys = [derive_account(5, "acct", i) for i in range(n_accounts)]
        signers = [Signer(k, chain, f"acct{i}") for i, k in enumerate(keys)]
        chain.fund([s.address for s in signers], 10**21)
        out = cls(None, chain.w3, [s.address for s in signers], chain=chain)  # type: ignore[arg-type]
        out.signers = {s.address: s for s in signers}
        out.w3.eth.default_account = out.accounts[0]
        return out

    def _mine(self, to: str | None, data: bytes, sender: str, gas: int = TX_GAS) -> Any:
        ptx = self.signers[sender].send(TxRequest(to, data, gas=gas))
        self.chain.mine()
        return ptx.result

    def deploy(self, name: str, *args: Any, sender: str | None = None) -> Contract:
        art = load_artifact(name)
        ctor = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(*args)
        data = bytes.fromhex(ctor.data_in_transaction[2:])
        res = self._mine(None, data, sender or self.accounts[0], DEPLOY_GAS)
        assert res.ok, f"deploying {name} failed: {res.error}"
        return self.w3.eth.contract(address=res.contract_address, abi=art["abi"])

    def send(self, call: Any, sender: str, label: str | None = None) -> Any:
        res = self._mine(call.address, bytes.fromhex(call._encode_transaction_data()[2:]), sender)
        if isinstance(res.error, TransactionReverted):
            raise Reverted(res.error.reason or "reverted without reason")
        res.raise_for_error()
        if label:
            self.gas_log.append((label, res.gas_used))
        return self.w3.eth.get_transaction_receipt(res.tx_hash)

    def send_quiet(self, call: Any, sender: str) -> None:
        res = self._mine(call.address, bytes.fromhex(call._encode_transaction_data()[2:]), sender)
        if isinstance(res.error, TransactionReverted):
            raise Reverted(res.error.reason or "reverted without reason")
        res.raise_for_error()

    def snapshot(self) -> str:  # type: ignore[override]  # a block hash, as eth-tester's
        return self.chain.get_block()["hash"]

    def revert(self, snap: str) -> None:  # type: ignore[override]
        self.chain.revert_to(snap)
        for s in self.signers.values():
            s.resync()


def revert_reason(chain: Chain, call: Any, sender: str) -> str:
    """The revert reason of `call` executed by `sender` on the EVM at the latest block
    (eth_call: the same execution a mined transaction gets, without mining it)."""
    try:
        call.call({"from": sender})
    except REVERT_ERRORS as exc:
        return _reason(exc)
    raise AssertionError("call did not revert")


def deploy_revert_reason(chain: Chain, name: str, *args: Any) -> str:
    """The revert reason of deploying contract `name` with constructor `args` (eth_call of the
    creation code: the same execution a mined deployment gets)."""
    art = load_artifact(name)
    ctor = chain.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"]).constructor(*args)
    try:
        chain.w3.eth.call({"from": chain.accounts[0], "data": ctor.data_in_transaction})
    except REVERT_ERRORS as exc:
        return _reason(exc)
    raise AssertionError(f"deploying {name} did not revert")


@dataclass
class Market:
    """Deployed contracts and named participants (see `deploy_market`)."""

    chain: Chain
    token: Contract
    letb: Contract
    retb: Contract
    admin: str
    operator: str
    tdno: str
    producers: list[str]
    consumers: list[str]
    reps: list[str]
    prosumer: str
    outsider: str
    buses: dict[str, int]
    params: dict[str, int]


LETB_BOND = 0
LETB_MAX_FILLS = 16  # the contract's MAX_FILLS: no cap below the contract's own bound
INITIAL_REP = 400
RETB_PARAMS = {"log_base_k": 10, "scale_wh": 1_000_000, "stable_ref_hours": 24}


def commitment(account: str) -> bytes:
    return Web3.keccak(text=f"identity:{account}")


def deploy_market(
    chain: Chain,
    n_producers: int = 6,
    n_consumers: int = 5,
    n_reps: int = 2,
    letb_max_fills: int = LETB_MAX_FILLS,
) -> Market:
    """Token + LETB (at most `letb_max_fills` fills per request) + RETB, roles set, everyone
    funded, approved and registered."""
    acc = chain.accounts
    admin, operator, tdno = acc[0], acc[1], acc[2]
    producers = acc[3 : 3 + n_producers]
    consumers = acc[3 + n_producers : 3 + n_producers + n_consumers]
    k = 3 + n_producers + n_consumers
    reps = acc[k : k + n_reps]
    prosumer, outsider = acc[k + n_reps], acc[k + n_reps + 1]
    token = chain.deploy("EnergyToken", 10**12 * USD, sender=admin)
    letb = chain.deploy(
        "LETB", token.address, 1, operator, tdno, INITIAL_REP, LETB_BOND, letb_max_fills
    )
    retb = chain.deploy(
        "RETB",
        token.address,
        1,
        operator,
        tdno,
        INITIAL_REP,
        0,
        RETB_PARAMS["log_base_k"],
        RETB_PARAMS["scale_wh"],
        RETB_PARAMS["stable_ref_hours"],
    )
    chain.send(token.functions.set_minter(retb.address, True), admin)
    for market in (letb, retb):
        chain.send(token.functions.transfer(market.address, 1), admin)
    buses: dict[str, int] = {}
    for i, who in enumerate([*producers, *consumers, *reps, prosumer, outsider]):
        buses[who] = 10 + i
        chain.send(token.functions.transfer(who, 10**6 * USD), admin)
        for market in (letb, retb):
            chain.send(
                token.functions.approve(market.address, 2**256 - 1), who, "EnergyToken.approve"
            )
    for who in producers:
        chain.send(
            letb.functions.register(who, commitment(who), buses[who], 1),
            operator,
            "LETB.register producer",
        )
    for who in consumers:
        for market in (letb, retb):
            label = f"{'LETB' if market is letb else 'RETB'}.register consumer"
            chain.send(
                market.functions.register(who, commitment(who), buses[who], 2), operator, label
            )
    chain.send(
        letb.functions.register(prosumer, commitment(prosumer), buses[prosumer], 3), operator
    )
    for who in reps:
        chain.send(
            retb.functions.register(who, commitment(who), buses[who], 1),
            operator,
            "RETB.register REP",
        )
    return Market(
        chain,
        token,
        letb,
        retb,
        admin,
        operator,
        tdno,
        producers,
        consumers,
        reps,
        prosumer,
        outsider,
        buses,
        {"initial_rep": INITIAL_REP, **RETB_PARAMS},
    )


def add_letb(m: Market, max_fills: int, area_id: int = 2) -> Contract:
    """One more LETB on the market's chain with cap `max_fills`: escrow seed, the consumers' and
    the prosumer's approvals, and the market's producers, consumers and prosumer registered in
    deploy_market's order (so producer ids match m.letb's). Use it as `replace(m, letb=...)`."""
    chain = m.chain
    letb = chain.deploy(
        "LETB", m.token.address, area_id, m.operator, m.tdno, INITIAL_REP, LETB_BOND, max_fills
    )
    chain.send_quiet(m.token.functions.transfer(letb.address, 1), m.admin)
    for who in (*m.consumers, m.prosumer):
        chain.send_quiet(m.token.functions.approve(letb.address, 2**256 - 1), who)
    members = [(p, 1) for p in m.producers] + [(c, 2) for c in m.consumers] + [(m.prosumer, 3)]
    for who, role in members:
        call = letb.functions.register(who, commitment(who), m.buses[who], role)
        chain.send_quiet(call, m.operator)
    return letb


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """The EVM the module's chain runs on ('pyevm' or 'revm')."""
    return request.param


@pytest.fixture(scope="module")
def chain(engine: str) -> Chain:
    return Chain.fresh(engine=engine)


@pytest.fixture(scope="module")
def market_base_state(chain: Chain) -> tuple[Market, int]:
    market = deploy_market(chain)
    return market, chain.snapshot()


@pytest.fixture
def market(market_base_state: tuple[Market, int]) -> Iterator[Market]:
    """The deployed market, reverted to its pristine state after the test."""
    m, snap = market_base_state
    m.chain.revert(snap)
    yield m
    m.chain.revert(snap)


# ----- helpers shared by the LETB/RETB tests ------------------------------------------------

FLOOR = 20 * PER_MWH
CAP = 200 * PER_MWH


def open_hour(m: Market, t: int, contract: Contract | None = None, cap: int = CAP) -> Any:
    """Operator opens hour t on LETB and RETB (or one contract) with one cap for every bus."""
    buses = sorted(set(m.buses.values()))
    receipt = None
    for c in (contract,) if contract is not None else (m.letb, m.retb):
        call = c.functions.open_hour(t, FLOOR, buses, [cap] * len(buses))
        receipt = m.chain.send(call, m.operator)
    return receipt


def post(m: Market, producer: str, t: int, e_wh: int, price: int) -> Any:
    """Producer posts an LETB offer with the hint from the contract's own view."""
    hint = m.letb.functions.hint_for(price).call()
    return m.chain.send(m.letb.functions.post_offer(t, e_wh, price, hint), producer)


def fills_of(m: Market, receipt: Any) -> list[tuple[int, str, int, int]]:
    """The (producer_id, seller, e_wh, price) tuples of a request's Trade events, in order."""
    events = m.letb.events.Trade().process_receipt(receipt, errors=DISCARD)
    assert [e.args.index for e in events] == list(range(len(events)))
    return [(e.args.producer_id, e.args.seller, e.args.e_wh, e.args.price) for e in events]


def balance(m: Market, who: str) -> int:
    return m.token.functions.balanceOf(who).call()


# ----- a day at the default scenario's size, for gas figures ------------------------------------


def gas_day(m: Market, hours: int, seed: int = 7) -> list[tuple[str, int]]:
    """Run `hours` market hours on LETB and RETB at the default scenario's size (the market's
    producers each offer 1-3 kWh, consumers each buy 0.3-3 kWh locally, so a request fills 1-3
    offers, then a 1-5 kWh shortage from a REP) with settlement and feedback, and at the end
    each consumer withdraws its LETB refund credit; returns the
    (operation label, gas_used) of every transaction, first hours included."""
    import random

    rng = random.Random(seed)
    chain = m.chain
    start = len(chain.gas_log)
    sellers = [*m.producers, m.prosumer]
    letb_buses = sorted({m.buses[p] for p in sellers})
    retb_buses = sorted({m.buses[r] for r in m.reps})
    for t in range(hours):
        first = " (first hour)" if t == 0 else ""
        for c, buses, name in ((m.letb, letb_buses, "LETB"), (m.retb, retb_buses, "RETB")):
            call = c.functions.open_hour(t, FLOOR, buses, [CAP] * len(buses))
            chain.send(call, m.operator, f"{name}.open_hour {len(buses)} buses{first}")
        for p in m.producers:
            price = rng.randrange(30, 150) * PER_MWH
            hint = m.letb.functions.hint_for(price).call()
            call = m.letb.functions.post_offer(t, rng.randrange(1000, 3000), price, hint)
            chain.send(call, p, "LETB.post_offer")
        matched = []
        for u in m.consumers:
            receipt = chain.send(m.letb.functions.request(t, rng.randrange(300, 3000), 0), u)
            fills = fills_of(m, receipt)
            chain.gas_log.append((f"LETB.request {len(fills)} fills", receipt.gasUsed))
            if fills:
                nonce = m.letb.functions.account_state(u).call()[1]
                matched.append((u, nonce, fills))
        for u, nonce, fills in matched:
            delivered = [f[2] * rng.randrange(90, 101) // 100 for f in fills]
            call = m.letb.functions.settle(u, nonce, t, fills, delivered)
            chain.send(call, m.tdno, f"LETB.settle {len(fills)} fills")
            scores = [rng.randrange(3, 6) for _ in fills]
            call = m.letb.functions.feedback(u, nonce, t, fills, scores)
            chain.send(call, u, f"LETB.feedback {len(fills)} fills")
        if t == 0:
            for r in m.reps:
                call = m.retb.functions.post_offer(t, t, 24, 10**8, 90 * PER_MWH, 500)
                chain.send(call, r, "RETB.post_offer")
        for i, u in enumerate(m.consumers):
            rep = m.reps[(i + t) % len(m.reps)]
            call = m.retb.functions.request(t, rng.randrange(1000, 5000), t, t + 1, 0, rep)
            receipt = chain.send(call, u, "RETB.request")
            ev = m.retb.events.Trade().process_receipt(receipt, errors=DISCARD)[0].args
            trade = (ev.buyer, ev.nonce, ev.t, ev.start, ev.end, ev.rep, ev.e_wh, ev.price,
                     ev.stable_hours)  # fmt: skip
            delivered = ev.e_wh * rng.randrange(90, 101) // 100
            chain.send(m.retb.functions.settle(trade, delivered), m.tdno, "RETB.settle")
            call = m.retb.functions.feedback(trade, delivered, rng.randrange(3, 6))
            chain.send(call, u, "RETB.feedback (incentive minted)")
    for u in m.consumers:  # end of the day: each consumer pulls its LETB refund credit
        if m.letb.functions.credit_of(u).call() > 0:
            chain.send(m.letb.functions.withdraw(), u, "LETB.withdraw")
    return chain.gas_log[start:]


# Seller buses of the default scenario's largest LETB area (Scenario(): 3 areas of 25, 15 and 16
# buses; prosumers at half the load buses, so 9, 6 and 6 buses get a cap each hour).
DEFAULT_AREA_SELLER_BUSES = (3, 7, 8, 10, 14, 16, 18, 22, 25)


def default_area_open_hours(m: Market, hours: int) -> list[int]:
    """gas_used of `hours` LETB.open_hour calls with caps for DEFAULT_AREA_SELLER_BUSES (realistic
    caps: ~6 non-zero calldata bytes each), from the market's next hour on."""
    buses = list(DEFAULT_AREA_SELLER_BUSES)
    caps = [(45 + 3 * i) * PER_MWH + 123_456_789 for i in range(len(buses))]
    try:
        first = m.letb.functions.current_hour().call() + 1
    except Exception:  # no hour open yet
        first = 0
    out = []
    for t in range(first, first + hours):
        receipt = m.chain.send(m.letb.functions.open_hour(t, FLOOR, buses, caps), m.operator)
        out.append(receipt.gasUsed)
    return out
