"""A small two-market world on the real EVM for the reliability tests.

`World` deploys, on the chains it is given, an EnergyToken per chain, one LETB area and one RETB
zone, funds and registers producers, users, REPs (plus an unregistered stranger) with keys from
`derive_account`, and records everything in a `Ledger`. `World.check()` runs every invariant of
`gridledger.market.invariants` over the chain state and the ledger since set-up.
Backends: the in-process engines 'pyevm' and 'revm', and 'anvil' (two anvil processes started
here).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from eth_utils import keccak

from gridledger.chain import (
    DEFAULT_CHAIN_IDS,
    ChainBackend,
    RpcChain,
    Signer,
    TxResult,
    make_chain,
    send_many,
)
from gridledger.chain.accounts import derive_account
from gridledger.chain.nodes import AnvilNode, start_anvil
from gridledger.market import invariants as inv
from gridledger.market.contracts import (
    LETB,
    RETB,
    EnergyToken,
    MarketContract,
    fund_agents,
    price_to_base_units_per_wh,
)
from gridledger.market.ledger import Ledger

USD = 10**18
REP0 = 400
"""Initial reputation of a fresh identity (contracts/README.md suggests 400 with rt 500..800)."""
FUND_UNITS = 100 * USD
PRODUCER_BUS0, USER_BUS0 = 20, 30
REP_BUSES = (53, 19)
RETB_PARAMS = dict(log_base_k=10, scale_wh=1_000_000, stable_ref_hours=24)
price = price_to_base_units_per_wh
BACKENDS = ["pyevm", "revm", pytest.param("anvil", marks=pytest.mark.anvil)]


@dataclass(eq=False)
class Party:
    """One agent: a key and a Signer on each chain it uses."""

    name: str
    signers: dict[str, Signer] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return next(iter(self.signers.values())).address

    def on(self, market: str) -> Signer:
        return self.signers[market]


class World:
    """Token + LETB (market 'letb') + RETB (market 'retb') on `chains`, participants registered.

    `chains` maps 'letb' and 'retb' to backends (the same object for a one-chain world: both
    markets then share one token). `bond_units` is the registration bond of both markets.
    """

    def __init__(
        self,
        chains: dict[str, ChainBackend],
        *,
        seed: int = 1,
        n_producers: int = 3,
        n_users: int = 3,
        n_reps: int = 2,
        bond_units: int = 0,
        initial_reputation: int = REP0,
    ) -> None:
        self.chains = chains
        self.seed = seed
        self.bond_units = bond_units
        self.ledger = Ledger()
        for c in {id(c): c for c in chains.values()}.values():
            self.ledger.attach(c)
        self.ledger.phase = "setup"

        def party(role: str, i: int, markets: tuple[str, ...]) -> Party:
            acct = derive_account(seed, role, i)
            name = f"{role}{i}"
            per_chain: dict[int, Signer] = {}  # one Signer (one nonce counter) per chain
            for m in markets:
                per_chain.setdefault(id(chains[m]), chains[m].signer(acct, name))
            return Party(name, {m: per_chain[id(chains[m])] for m in markets})

        both = ("letb", "retb")
        staff = ("admin", "operator", "tdno")
        self.admin, self.operator, self.tdno = (party(r, 0, both) for r in staff)
        self.producers = [party("producer", i, ("letb",)) for i in range(n_producers)]
        self.users = [party("user", i, both) for i in range(n_users)]
        self.reps = [party("rep", i, ("retb",)) for i in range(n_reps)]
        self.stranger = party("stranger", 0, both)
        self.tokens: dict[str, EnergyToken] = {}
        token_by_chain: dict[int, EnergyToken] = {}
        for m in both:
            chain, admin = chains[m], self.admin.on(m)
            if id(chain) not in token_by_chain:
                chain.fund([admin.address], 10**21)
                token_by_chain[id(chain)] = EnergyToken.deploy(admin, 10**9 * USD)
            self.tokens[m] = token_by_chain[id(chain)]
        ops = (self.operator.address, self.tdno.address)
        self.letb = LETB.deploy(
            self.admin.on("letb"), self.tokens["letb"].address, 1, *ops, initial_reputation,
            bond_units,
        )  # fmt: skip
        self.retb = RETB.deploy(
            self.admin.on("retb"), self.tokens["retb"].address, 1, *ops, initial_reputation,
            bond_units, *RETB_PARAMS.values(),
        )  # fmt: skip
        self.markets: dict[str, MarketContract] = {"letb": self.letb, "retb": self.retb}
        self.extra_parties: dict[str, list[Party]] = {"letb": [], "retb": []}
        self.extra_buses: dict[str, int] = {}
        self.ledger.watch(*set(self.tokens.values()), self.letb, self.retb)
        for m, market in self.markets.items():
            token, admin = self.tokens[m], self.admin.on(m)
            members = self.members(m)
            fund_agents(token, admin, [p.address for p in (self.operator, self.tdno)],
                        gas_wei=10**19, token_units=0)  # fmt: skip
            fund_agents(token, admin, [p.address for p in members], gas_wei=10**19,
                        token_units=FUND_UNITS)  # fmt: skip
            setup = [(admin, token.transfer(market.address, 1, op="escrow_seed"))]
            if m == "retb":
                setup.append((admin, token.set_minter(market.address)))
            setup += [(p.on(m), token.approve(market.address)) for p in members]
            send_many(setup)
            send_many(
                [
                    (
                        self.operator.on(m),
                        market.register(p.address, keccak(text=p.name), bus, role),
                    )
                    for p, bus, role in self.registrations(m)
                ]
            )
        self.ledger.phase = ""
        self.start = self.token_states()

    # ---- who is where ----
    def members(self, market: str) -> list[Party]:
        """Parties funded on `market`'s chain (registered ones and the stranger)."""
        sellers = self.producers if market == "letb" else self.reps
        return [*sellers, *self.users, self.stranger]

    def registrations(self, market: str) -> list[tuple[Party, int, int]]:
        """(party, bus, role mask) registered on `market` at set-up."""
        if market == "letb":
            sellers = [(p, PRODUCER_BUS0 + i, 1) for i, p in enumerate(self.producers)]
        else:
            sellers = [(p, REP_BUSES[i % 2], 1) for i, p in enumerate(self.reps)]
        return sellers + [(u, USER_BUS0 + i, 2) for i, u in enumerate(self.users)]

    def bus_of(self, party: Party) -> int:
        if party.name in self.extra_buses:
            return self.extra_buses[party.name]
        for m in ("letb", "retb"):
            for p, bus, _ in self.registrations(m):
                if p is party:
                    return bus
        raise KeyError(party.name)

    def accounts(self, market: str) -> list[str]:
        """Every address whose token balance the invariants watch on `market`'s chain."""
        parties = [self.admin, self.operator, self.tdno, *self.members(market)]
        extra = [p.address for p in self.extra_parties.get(market, [])]
        token = self.tokens[market]
        markets = [c.address for m, c in self.markets.items() if self.tokens[m] is token]
        return [p.address for p in parties] + extra + markets

    def add_identity(
        self,
        market: str,
        role: str,
        index: int,
        bus: int,
        role_mask: int = 1,
        fund_units: int = FUND_UNITS,
        commitment: bytes | None = None,
    ) -> Party:
        """A new participant after set-up (e.g. a sybil): funded by the admin, approves the
        market and is registered by the operator (paying the bond, if any)."""
        acct = derive_account(self.seed, role, index)
        name = f"{role}{index}"
        p = Party(name, {market: self.chains[market].signer(acct, name)})
        if self.chains["letb"] is self.chains["retb"]:
            p.signers = dict.fromkeys(self.markets, p.signers[market])
        m = self.markets[market]
        fund_agents(self.tokens[market], self.admin.on(market), [p.address], gas_wei=10**19,
                    token_units=fund_units)  # fmt: skip
        p.on(market).transact(self.tokens[market].approve(m.address))
        ident = commitment if commitment is not None else keccak(text=name)
        self.operator.on(market).transact(m.register(p.address, ident, bus, role_mask))
        self.extra_parties[market].append(p)
        self.extra_buses[name] = bus
        return p

    # ---- market helpers ----
    def open_hour(self, t: int, cap_usd_per_mwh: float = 90, floor_usd_per_mwh: float = 30) -> None:
        """Operator opens hour t on both markets with one cap for every seller bus."""
        self.ledger.t = t
        items = []
        for m, market in self.markets.items():
            buses = sorted({b for _, b, role in self.registrations(m) if role & 1})
            buses += [self.bus_of(p) for p in self.extra_parties.get(m, [])]
            items.append(
                (
                    self.operator.on(m),
                    market.open_hour(t, price(floor_usd_per_mwh), buses,
                                     [price(cap_usd_per_mwh)] * len(buses)),
                )
            )  # fmt: skip
        send_many(items)

    def letb_request_rows(self, result: TxResult) -> tuple[int, list[dict]]:
        """(nonce, fills) of a LETB request from its Trade events, in index order."""
        rows = sorted(
            (e.args for e in self.letb.decode_logs(result) if e.name == "Trade"),
            key=lambda a: a["index"],
        )
        return (rows[0]["nonce"] if rows else 0), rows

    @staticmethod
    def retb_trade(market: RETB, result: TxResult) -> dict:
        (ev,) = [e.args for e in market.decode_logs(result) if e.name == "Trade"]
        return dict(ev)

    # ---- invariants ----
    def token_states(self) -> dict[str, inv.TokenState]:
        """Token state per market (read once per token: both markets may share one)."""
        by_token: dict[int, inv.TokenState] = {}
        for m in self.markets:
            tok = self.tokens[m]
            if id(tok) not in by_token:
                by_token[id(tok)] = inv.read_token_state(tok, self.accounts(m))
        return {m: by_token[id(self.tokens[m])] for m in self.markets}

    def seller_parties(self, market: str) -> list[Party]:
        return (self.producers if market == "letb" else self.reps) + self.extra_parties[market]

    def read_state(self) -> tuple[dict[str, inv.TokenState], dict[str, int]]:
        """Token state per market and every seller's reputation ('market:name' -> value)."""
        reps = {}
        for m in self.markets:
            sellers = self.seller_parties(m)
            values = self.markets[m].call("reputations_of", [p.address for p in sellers])
            reps.update({f"{m}:{p.name}": int(r) for p, r in zip(sellers, values, strict=True)})
        return self.token_states(), reps

    def violations(self) -> list[inv.Violation]:
        """Every invariant from the end of set-up to now."""
        led = self.ledger
        now, reps = self.read_state()
        transfers, gas = led.events("Transfer"), led.gas()
        approvals, incentives = led.events("Approval"), led.incentives()
        requests = self.requests = inv.request_book(led.trades(), led.settlements())
        out: list[inv.Violation] = []
        seen_tokens: set[int] = set()
        for m in self.markets:
            if id(self.tokens[m]) in seen_tokens:
                continue
            seen_tokens.add(id(self.tokens[m]))
            before, after = self.start[m], now[m]
            minted = inv.minted_between(incentives, after.chain, before.block + 1, after.block)
            out += inv.check_supply(before, after, minted)
            out += inv.check_balance_changes(
                before, after, transfers, gas,
                markets=[c.address for c in self.markets.values()],
                approvals=approvals, incentives=incentives,
                token_address=self.tokens[m].address,
            )  # fmt: skip
        escrow = {(self.chains[m].name, c.address): now[m].balances[c.address]
                  for m, c in self.markets.items()}  # fmt: skip
        bonds = {k: self.bond_units for k in escrow}
        kept = inv.kept_by_rule(led.events("Registered"), bonds)
        credits = inv.credit_totals(
            led.events("Credited"), led.events("CreditUsed"), led.events("Withdrawn")
        )
        out += inv.check_escrow(escrow, requests, kept, credits)
        out += inv.check_settlements(requests)
        out += inv.check_feedback(led.feedback(), requests)
        out += inv.check_reputations(reps)
        return out

    def check(self, where: str = "") -> None:
        inv.raise_violations(self.violations(), where)


def fresh_chains(backend: str, nodes: list[AnvilNode]) -> dict[str, ChainBackend]:
    """Both ledgers on `backend` ('pyevm', 'revm', or 'anvil' on the given running nodes)."""
    if backend != "anvil":
        return {k: make_chain(backend, k, cid) for k, cid in DEFAULT_CHAIN_IDS.items()}
    return {
        k: RpcChain(n.url, k, expected_chain_id=cid)
        for (k, cid), n in zip(DEFAULT_CHAIN_IDS.items(), nodes, strict=True)
    }


@pytest.fixture(scope="module")
def anvil_nodes() -> Iterator[list[AnvilNode]]:
    """Two anvil processes (LETB and RETB chain ids) shared by a module's tests; each test
    deploys its own contracts with keys from its own seed."""
    nodes: list[AnvilNode] = []
    try:
        for cid in DEFAULT_CHAIN_IDS.values():
            nodes.append(start_anvil(cid))
        yield nodes
    finally:
        for n in nodes:
            n.stop()


@pytest.fixture(params=BACKENDS)
def chains(request: pytest.FixtureRequest) -> Iterator[dict[str, ChainBackend]]:
    """{'letb': chain, 'retb': chain} on the embedded backend or on anvil processes."""
    nodes = request.getfixturevalue("anvil_nodes") if request.param == "anvil" else []
    out = fresh_chains(request.param, nodes)
    yield out
    for c in out.values():
        c.close()


_seeds = iter(range(1000, 10**6))


@pytest.fixture
def world(chains: dict[str, ChainBackend]) -> World:
    """A fresh world (new keys per test, so anvil nodes can be shared within a module)."""
    return World(chains, seed=next(_seeds))
