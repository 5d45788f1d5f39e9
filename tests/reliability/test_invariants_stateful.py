"""Random sequences of agent actions, valid and invalid, against EnergyToken + LETB + RETB on one
embedded chain; every invariant of gridledger.market.invariants is checked after every step.

The machine keeps its own small model of what must happen (which requests are open, settled,
rated; which offers were posted this hour; allowances between parties) and demands that each
action succeeds or reverts with one of the contract's documented reasons for it. One deployment
serves all examples (module-level, built on first use): each example starts from the state the
previous one left after its teardown settled every open request, and the token invariants are
measured from the example's first block.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from gridledger.chain import EmbeddedChain, Signer, TransactionReverted, TxRequest
from gridledger.contracts.build import compile_source
from gridledger.market import invariants as inv
from gridledger.market.clearing import RepOffer, ineligibility, update_reputation
from gridledger.market.contracts import MAX_UINT256, DeployedContract

from .conftest import USD, Party, World, price

CAPS_USD = (60, 90, 120)
FLOORS_USD = (20, 30, 40)
NO_FUNDS = frozenset({"insufficient balance"})
"""A buyer who gave its tokens away cannot pay into escrow: an acceptable LETB refusal when
its tokens and credit could not pay its whole demand at the hour's cap."""
RT = st.integers(0, 500).map(lambda rt: 1001 if rt == 500 else rt)
"""Users' thresholds: mostly around the initial reputation 400, sometimes out of range."""
MOSTLY = st.sampled_from([True, True, True, False])
"""Mostly the right party (TDNO settles, buyer rates), sometimes someone else."""
_HOURS = itertools.count()
"""Market hours increase across examples (the shared deployment refuses an older hour)."""


PROBE_SOURCE = """
#pragma version ^0.4.0
interface Token:
    def balances_of(accounts: DynArray[address, 256]) -> DynArray[uint256, 256]: view
    def totalSupply() -> uint256: view
interface Market:
    def reputations_of(accounts: DynArray[address, 256]) -> DynArray[uint256, 256]: view

@external
@view
def snapshot(
    token: address, accounts: DynArray[address, 256], letb: address,
    producers: DynArray[address, 256], retb: address, reps: DynArray[address, 256]
) -> (uint256, DynArray[uint256, 256], DynArray[uint256, 256], DynArray[uint256, 256]):
    return (
        staticcall Token(token).totalSupply(),
        staticcall Token(token).balances_of(accounts),
        staticcall Market(letb).reputations_of(producers),
        staticcall Market(retb).reputations_of(reps),
    )
"""


class OneChainWorld(World):
    """The world on one chain, read through one view call per step (a read-only probe contract
    calling the token's and markets' own views): the same values, a quarter of the calls."""

    def __init__(self) -> None:
        chain = EmbeddedChain(31499, "market")
        super().__init__({"letb": chain, "retb": chain}, seed=4242)
        out = compile_source(PROBE_SOURCE)
        code = bytes.fromhex(out["bytecode"].removeprefix("0x"))
        res = self.admin.on("letb").transact(TxRequest(to=None, data=code, gas=3_000_000))
        self.probe = DeployedContract(chain, res.contract_address, artifact="Probe", abi=out["abi"])

    def read_state(self) -> tuple[dict[str, inv.TokenState], dict[str, int]]:
        chain, tok = self.chains["letb"], self.tokens["letb"]
        accounts = list(dict.fromkeys(self.accounts("letb")))
        sellers = {m: self.seller_parties(m) for m in self.markets}
        block = chain.block_number()
        supply, balances, r_letb, r_retb = self.probe.call(
            "snapshot", tok.address, accounts, self.letb.address,
            [p.address for p in sellers["letb"]], self.retb.address,
            [p.address for p in sellers["retb"]], block=block,
        )  # fmt: skip
        state = inv.TokenState(
            chain.name, block, int(supply), dict(zip(accounts, map(int, balances), strict=True))
        )
        reps = {f"letb:{p.name}": int(r) for p, r in zip(sellers["letb"], r_letb, strict=True)}
        reps |= {f"retb:{p.name}": int(r) for p, r in zip(sellers["retb"], r_retb, strict=True)}
        return dict.fromkeys(self.markets, state), reps


_WORLD: list[OneChainWorld] = []
# ~30-60 s: 15 examples of up to 25 steps, all checks per step; a failing example's shrinking
# can take minutes (pytest-timeout's alarm inside an example only starts another shrink step)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def shared_world() -> OneChainWorld:
    """One LETB + RETB + token deployment on one embedded chain for the whole module."""
    if not _WORLD:
        _WORLD.append(OneChainWorld())
    return _WORLD[0]


@pytest.fixture(autouse=True, scope="module")
def _deployed() -> None:
    """Deploy before hypothesis starts timing examples."""
    shared_world()


@dataclass
class Hour:
    t: int
    cap: int
    floor: int
    offered: set[str] = field(default_factory=set)


class MarketMachine(RuleBasedStateMachine):
    """Agents act at random; the contracts must keep every invariant."""

    def __init__(self) -> None:
        super().__init__()
        self.w = shared_world()
        self.parties: list[Party] = [
            self.w.admin, self.w.operator, self.w.tdno, *self.w.producers, *self.w.users,
            *self.w.reps, self.w.stranger,
        ]  # fmt: skip
        self.hour: Hour | None = None
        self.open_letb: dict[str, tuple[int, int, list[dict]]] = {}  # buyer -> nonce, t, fills
        self.ratable_letb: dict[str, tuple[int, int, list[dict]]] = {}
        self.open_retb: dict[str, dict] = {}  # buyer -> trade
        self.ratable_retb: dict[str, tuple[dict, int]] = {}  # buyer -> trade, delivered
        self.rated: set[tuple[str, str, int]] = set()  # market, buyer, nonce
        self.allowance: dict[tuple[str, str], int] = {}
        self.rep_book: dict[str, RepOffer] = {}  # REP address -> its current RETB offer
        self.steps = 0

    # ---- helpers ----
    def party(self, i: int) -> Party:
        return self.parties[i % len(self.parties)]

    def signer(self, p: Party) -> Signer:
        return next(iter(p.signers.values()))  # one chain: one Signer (nonce counter) per party

    def attempt(
        self, p: Party, req: TxRequest, allowed: set[str], may: frozenset[str] = frozenset()
    ):
        """Send; an empty `allowed` demands success, otherwise a revert with one of `allowed`;
        a revert with one of `may` is acceptable either way. Returns the result or None."""
        try:
            res = self.signer(p).transact(req)
        except TransactionReverted as exc:
            if exc.reason in may:
                return None
            assert exc.reason in allowed, (
                f"{req.contract}.{req.function} by {p.name} reverted {exc.reason!r}, "
                f"expected {'success' if not allowed else sorted(allowed)}"
            )
            return None
        assert not allowed, (
            f"{req.contract}.{req.function} by {p.name} succeeded, expected a revert with "
            f"{sorted(allowed)}"
        )
        return res

    # ---- set-up of an example ----
    @initialize(
        letb_offers=st.lists(st.tuples(st.integers(1, 3000), st.integers(30, 90)),
                             min_size=3, max_size=3),
        retb_offers=st.lists(st.tuples(st.integers(1000, 5000), st.integers(30, 90),
                                       st.integers(2, 4)), min_size=2, max_size=2),
    )  # fmt: skip
    def start(self, letb_offers: list, retb_offers: list) -> None:
        """Each example starts in an open hour (cap 90, floor 30 $/MWh) with a valid offer of
        every producer and REP, so that requests, settlements and ratings happen early."""
        self.w.start, reps = self.w.read_state()
        self.open_hour(90, 30)
        h = self.hour
        assert h is not None
        for p, (e_wh, usd) in zip(self.w.producers, letb_offers, strict=True):
            self.attempt(p, self.w.letb.post_offer(h.t, e_wh, price(usd)), set())
            h.offered.add(p.address)
        for r, (cap_wh, usd, hours) in zip(self.w.reps, retb_offers, strict=True):
            req = self.w.retb.post_offer(h.t, h.t, h.t + hours, cap_wh, price(usd), 24)
            self.attempt(r, req, set())
            # the REP's reputation as the previous examples left it; from here on the model's own
            rep0 = reps[f"retb:{r.name}"]
            self.rep_book[r.address] = RepOffer(
                r.address, h.t, h.t + hours, cap_wh, price(usd), rep0, 24
            )

    # ---- market hours and offers ----
    @rule(cap=st.sampled_from(CAPS_USD), floor=st.sampled_from(FLOORS_USD))
    def open_hour(self, cap: int, floor: int) -> None:
        t = next(_HOURS)
        self.w.open_hour(t, cap, floor)
        self.hour = Hour(t, price(cap), price(floor))

    @precondition(lambda self: self.hour is not None)
    @rule(i=st.integers(0, 2), e_wh=st.integers(1, 3000), usd=st.integers(10, 130))
    def post_letb_offer(self, i: int, e_wh: int, usd: int) -> None:
        p, h = self.w.producers[i], self.hour
        assert h is not None
        pr = price(usd)
        allowed = set()
        if p.address in h.offered:
            allowed.add("offer already posted this hour")
        if pr > h.cap:
            allowed.add("price above DLMP cap")
        if pr < h.floor:
            allowed.add("price below feed-in floor")
        if self.attempt(p, self.w.letb.post_offer(h.t, e_wh, pr), allowed) is not None:
            h.offered.add(p.address)

    @precondition(lambda self: self.hour is not None)
    @rule(i=st.integers(0, 1), cap_wh=st.integers(1, 5000), usd=st.integers(10, 130),
          hours=st.integers(1, 4), stable=st.integers(0, 48))  # fmt: skip
    def post_retb_offer(self, i: int, cap_wh: int, usd: int, hours: int, stable: int) -> None:
        p, h = self.w.reps[i], self.hour
        assert h is not None
        pr = price(usd)
        allowed = set()
        if pr > h.cap:
            allowed.add("price above DLMP cap")
        if pr < h.floor:
            allowed.add("price below feed-in floor")
        req = self.w.retb.post_offer(h.t, h.t, h.t + hours, cap_wh, pr, stable)
        if self.attempt(p, req, allowed) is not None:
            old = self.rep_book[p.address]
            self.rep_book[p.address] = RepOffer(
                p.address, h.t, h.t + hours, cap_wh, pr, old.reputation, stable
            )

    # ---- requests ----
    @precondition(lambda self: self.hour is not None)
    @rule(i=st.integers(0, 2), demand=st.integers(1, 4000), rt=RT)
    def letb_request(self, i: int, demand: int, rt: int) -> None:
        u, h = self.w.users[i], self.hour
        assert h is not None
        allowed = set()
        if rt > inv.REP_MAX:
            allowed.add("threshold out of range")
        if u.address in self.open_letb:
            allowed.add("previous request not settled")
        tok = self.w.tokens["letb"]
        funds = tok.balance_of(u.address) + self.w.letb.credit_of(u.address)
        may = NO_FUNDS if funds < demand * h.cap else frozenset()  # cap: the dearest fill
        res = self.attempt(u, self.w.letb.request(h.t, demand, rt), allowed, may)
        if res is None:
            return
        nonce, fills = self.w.letb_request_rows(res)
        assert sum(f["e_wh"] for f in fills) <= demand
        assert all(f["price"] <= h.cap for f in fills)
        if fills:
            self.open_letb[u.address] = (nonce, h.t, fills)
            self.ratable_letb.pop(u.address, None)  # a new matched request ends rating the old

    @rule(i=st.integers(0, 2))
    def letb_withdraw(self, i: int) -> None:
        """A user pulls its LETB refund credit (the escrow invariant counts credits)."""
        u = self.w.users[i]
        credit = self.w.letb.credit_of(u.address)
        self.attempt(u, self.w.letb.withdraw(), set() if credit > 0 else {"no credit"})
        assert self.w.letb.credit_of(u.address) == 0

    @precondition(lambda self: self.hour is not None)
    @rule(i=st.integers(0, 2), j=st.integers(0, 1), shortage=st.integers(1, 2500),
          rt=RT, hours=st.integers(1, 2))  # fmt: skip
    def retb_request(self, i: int, j: int, shortage: int, rt: int, hours: int) -> None:
        u, rep, h = self.w.users[i], self.w.reps[j], self.hour
        assert h is not None
        offer = self.rep_book[rep.address]
        balance = self.w.tokens["retb"].balance_of(u.address)
        # the contract's checks in its order; the first that fails is the revert reason
        reasons = [
            "threshold out of range" if rt > inv.REP_MAX else None,
            "previous request not settled" if u.address in self.open_retb else None,
            ineligibility(offer, u.address, shortage, h.t, h.t + hours, rt),
            "insufficient balance" if balance < shortage * offer.price else None,
        ]
        must = next(({r} for r in reasons if r is not None), set())
        event(f"RETB request: {next(iter(must), 'success')}")
        req = self.w.retb.request(h.t, shortage, h.t, h.t + hours, rt, rep.address)
        res = self.attempt(u, req, must)
        if res is not None:
            trade = World.retb_trade(self.w.retb, res)
            assert trade["e_wh"] == shortage and trade["rep"] == rep.address
            assert trade["price"] == offer.price
            left = offer.remaining_wh - shortage
            self.rep_book[rep.address] = dataclasses.replace(offer, remaining_wh=left)
            self.open_retb[u.address] = trade
            self.ratable_retb.pop(u.address, None)

    # ---- settlement (incl. over-confirmation and wrong senders) ----
    @precondition(lambda self: self.open_letb)
    @rule(data=st.data(), by_tdno=MOSTLY)
    def settle_letb(self, data: st.DataObject, by_tdno: bool) -> None:
        buyer = data.draw(st.sampled_from(sorted(self.open_letb)))
        nonce, t, fills = self.open_letb[buyer]
        delivered = [data.draw(st.integers(0, f["e_wh"] + 2)) for f in fills]
        sender = self.w.tdno if by_tdno else self.party(data.draw(st.integers(0, 20)))
        allowed = set()
        if sender is not self.w.tdno:
            allowed.add("unauthorised: tdno only")
        if any(d > f["e_wh"] for d, f in zip(delivered, fills, strict=True)):
            allowed.add("delivered above schedule")
        if self.attempt(sender, self.w.letb.settle(buyer, nonce, t, fills, delivered), allowed):
            del self.open_letb[buyer]
            self.ratable_letb[buyer] = (nonce, t, fills)

    @precondition(lambda self: self.open_retb)
    @rule(data=st.data(), by_tdno=MOSTLY)
    def settle_retb(self, data: st.DataObject, by_tdno: bool) -> None:
        buyer = data.draw(st.sampled_from(sorted(self.open_retb)))
        trade = self.open_retb[buyer]
        delivered = data.draw(st.integers(0, trade["e_wh"] + 2))
        sender = self.w.tdno if by_tdno else self.party(data.draw(st.integers(0, 20)))
        allowed = set()
        if sender is not self.w.tdno:
            allowed.add("unauthorised: tdno only")
        if delivered > trade["e_wh"]:
            allowed.add("delivered above schedule")
        if self.attempt(sender, self.w.retb.settle(trade, delivered), allowed):
            del self.open_retb[buyer]
            self.ratable_retb[buyer] = (trade, delivered)

    # ---- feedback by the buyer, strangers, twice, before settlement ----
    @precondition(lambda self: self.ratable_letb or self.open_letb)
    @rule(data=st.data(), by_buyer=MOSTLY, score=st.integers(0, 6))
    def feedback_letb(self, data: st.DataObject, by_buyer: bool, score: int) -> None:
        pool = {**self.open_letb, **self.ratable_letb}
        if self.ratable_letb and data.draw(MOSTLY):
            pool = dict(self.ratable_letb)
        buyer = data.draw(st.sampled_from(sorted(pool)))
        nonce, t, fills = pool[buyer]
        rater = self._rater(buyer, by_buyer, data)
        allowed = set()
        if rater.address != buyer:
            allowed.add("only the buyer may rate")
        if buyer in self.open_letb:
            allowed.add("request not settled")
        if ("letb", buyer, nonce) in self.rated:
            allowed.add("already rated")
        if score > 5:
            allowed.add("score out of range")
        req = self.w.letb.feedback(buyer, nonce, t, fills, [score] * len(fills))
        if self.attempt(rater, req, allowed):
            self.rated.add(("letb", buyer, nonce))

    @precondition(lambda self: self.ratable_retb or self.open_retb)
    @rule(data=st.data(), by_buyer=MOSTLY, score=st.integers(0, 6))
    def feedback_retb(self, data: st.DataObject, by_buyer: bool, score: int) -> None:
        pool = {**{b: (tr, tr["e_wh"]) for b, tr in self.open_retb.items()}, **self.ratable_retb}
        if self.ratable_retb and data.draw(MOSTLY):
            pool = dict(self.ratable_retb)
        buyer = data.draw(st.sampled_from(sorted(pool)))
        trade, delivered = pool[buyer]
        rater = self._rater(buyer, by_buyer, data)
        allowed = set()
        if rater.address != buyer:
            allowed.add("only the buyer may rate")
        if buyer in self.open_retb:
            allowed |= {"request not settled", "unknown request"}
        if ("retb", buyer, trade["nonce"]) in self.rated:
            allowed.add("already rated")
        if score > 5:
            allowed.add("score out of range")
        if self.attempt(rater, self.w.retb.feedback(trade, delivered, score), allowed):
            self.rated.add(("retb", buyer, trade["nonce"]))
            offer = self.rep_book[trade["rep"]]
            r = update_reputation(offer.reputation, score)
            self.rep_book[trade["rep"]] = dataclasses.replace(offer, reputation=r)

    def _rater(self, buyer: str, by_buyer: bool, data: st.DataObject) -> Party:
        if by_buyer:
            return next(p for p in self.parties if p.address == buyer)
        return self.party(data.draw(st.integers(0, 20)))

    # ---- role calls by the wrong party ----
    @rule(data=st.data(), what=st.sampled_from(["open_hour", "register", "set_tdno", "mint",
                                                "set_minter", "set_operator"]))  # fmt: skip
    def unauthorised_call(self, data: st.DataObject, what: str) -> None:
        w = self.w
        market = data.draw(st.sampled_from([w.letb, w.retb]))
        tok = w.tokens["letb"]
        staff = {
            "open_hour": (w.operator, w.admin), "register": (w.operator, w.admin),
            "set_tdno": (w.admin,), "set_operator": (w.admin,), "set_minter": (w.admin,),
            "mint": (),
        }[what]  # fmt: skip
        outsiders = [p for p in self.parties if p not in staff]
        p = data.draw(st.sampled_from(outsiders))
        req, reason = {
            "open_hour": (market.open_hour(10**4, price(30), [20], [price(90)]),
                          "unauthorised: operator only"),
            "register": (market.register(p.address, b"\x02" * 32, 20, 3),
                         "unauthorised: operator only"),
            "set_tdno": (market.set_tdno(p.address), "unauthorised: admin only"),
            "set_operator": (market.set_operator(p.address), "unauthorised: admin only"),
            "set_minter": (tok.set_minter(p.address), "unauthorised: admin only"),
            "mint": (tok.mint(p.address, 10**30), "unauthorised: minter only"),
        }[what]  # fmt: skip
        self.attempt(p, req, {reason})

    # ---- plain token moves: transfer, approve, transferFrom ----
    @rule(kind=st.sampled_from(["transfer", "approve", "transfer_from"]),
          i=st.integers(0, 20), j=st.integers(0, 20), k=st.integers(0, 20),
          amount=st.integers(0, 150 * USD))  # fmt: skip
    def token_action(self, kind: str, i: int, j: int, k: int, amount: int) -> None:
        a, b, c = self.party(i), self.party(j), self.party(k)
        tok = self.w.tokens["letb"]
        if kind == "transfer":
            allowed = {"insufficient balance"} if amount > tok.balance_of(a.address) else set()
            self.attempt(a, tok.transfer(b.address, amount), allowed)
        elif kind == "approve":
            self.attempt(a, tok.approve(b.address, amount), set())
            self.allowance[(a.address, b.address)] = amount
        else:  # b spends a's tokens, sending them to c
            allowed = set()
            if self.allowance.get((a.address, b.address), 0) < amount:
                allowed.add("insufficient allowance")
            if tok.balance_of(a.address) < amount:
                allowed.add("insufficient balance")
            if self.attempt(b, tok.transfer_from(a.address, c.address, amount), allowed):
                left = self.allowance.get((a.address, b.address), 0)
                if amount and left != MAX_UINT256:
                    self.allowance[(a.address, b.address)] = left - amount

    # ---- invariants after every step ----
    @invariant()
    def chain_invariants(self) -> None:
        """All invariants of World.check, then: the open requests on chain are the model's."""
        self.w.check(f"after step {self.steps}")
        self.steps += 1
        book = self.w.requests
        open_on_chain = {(r.address, r.buyer) for r in book.itertuples() if not r.settled}
        mine = {(self.w.letb.address, b) for b in self.open_letb} | {
            (self.w.retb.address, b) for b in self.open_retb
        }
        assert open_on_chain == mine
        on_chain = self.w.read_state()[1]
        assert {f"retb:{p.name}": self.rep_book[p.address].reputation for p in self.w.reps} == {
            k: v for k, v in on_chain.items() if k.startswith("retb:")
        }

    def teardown(self) -> None:
        """Settle every open request in full, so the next example starts with empty escrows."""
        w = self.w
        for buyer, (nonce, t, fills) in self.open_letb.items():
            w.tdno.on("letb").transact(
                w.letb.settle(buyer, nonce, t, fills, [f["e_wh"] for f in fills])
            )
        for trade in self.open_retb.values():
            w.tdno.on("retb").transact(w.retb.settle(trade, trade["e_wh"]))
        # allowances between parties would carry over into the next example's model: reset
        tok = w.tokens["letb"]
        for (owner, spender), a in self.allowance.items():
            if a:
                p = next(x for x in self.parties if x.address == owner)
                self.signer(p).transact(tok.approve(spender, 0))
        w.check("after teardown")


MarketMachine.TestCase.settings = settings(
    max_examples=15,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestMarketInvariants = MarketMachine.TestCase
