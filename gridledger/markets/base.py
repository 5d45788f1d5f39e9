"""The market plug-in interface: what one trading mechanism implements, and the typed records
its steps hand each other.

A *market* is one mechanism on one chain (`Market.chain`): the paper's local book (LETB, one
contract per area), its renewable zone (RETB), or a mechanism of your own. A scenario's
`market_mechanism` names the markets that run, in order (`gridledger/markets/__init__.py:
MECHANISMS`); the hour loop (`EnergyMarketModel._hour`, docs/markets.md) calls every market at
every step and sends what the markets return as ONE block per chain per step, so mechanisms on
the same chain share blocks and a transaction's order inside its block is its order in the
returned list.

How a step works: a market method returns the step's transactions as `(Signer, TxRequest)`
pairs signed by the agents themselves (`agent.signer`, `user.letb_signer`, the operator's and
TDNO's signers in `world.signers`); the loop sends them and hands the mined `TxResult`s back, in
the same order, to the matching `*_done` / reading method. Nothing here sends a transaction.

One market hour, as the loop runs it (Phase names the step in the gas frame):
1. `open_hour(hour)`                 Phase.OPEN_HOUR   operator's caps on chain
2. `offers(hour)` -> rounds          Phase.POST_OFFER  one block per round (all markets' round r)
3. `requests(hour)` -> `fills(...)`  market.request_phase, market by market in mechanism order:
                                     a later market sees what earlier ones filled (a user's
                                     shortage goes on to the next market)
4. (the grid covers the rest, off chain)
5. the TDNO meters `sellers()` against the fills (agents/tdno.py), then
   `settle(hour, deliveries)` -> `settled(...)`            Phase.SETTLE
6. users rate: `feedback(hour, ratings)` -> `rated(...)`   Phase.FEEDBACK
7. `expected_escrow()` is checked against the chain; `hour_columns()` joins the hour's row;
   every Rating becomes a row of Results.trades (`trade_row`).

Units are in the names: energy in integer Wh (`e_wh`), on-chain prices in token base units per
Wh (`price_base_units_per_wh`; 1 $/MWh = 10**12, market/contracts.py), money in token base
units (18 decimals, 1 token = 1 USD), hours as market-hour indexes (`t`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from gridledger.day.chains import SELLER_SEED_UNITS
from gridledger.market.contracts import (
    price_from_base_units_per_wh,
    usd_from_base_units,
    usd_to_base_units,
)
from gridledger.markets.phases import Phase

if TYPE_CHECKING:
    from gridledger.agents.operator import NetworkOperator
    from gridledger.agents.producer import LocalProducer
    from gridledger.agents.rep import RepAgent
    from gridledger.agents.tdno import TDNO
    from gridledger.agents.user import UserAgent
    from gridledger.chain import ChainBackend, Signer, TxRequest, TxResult
    from gridledger.market.contracts import DeployedContract, EnergyToken
    from gridledger.scenario import Scenario

__all__ = [
    "Delivery",
    "EnergyKind",
    "Fill",
    "Market",
    "MarketHour",
    "Offer",
    "Rating",
    "Request",
    "Settlement",
    "SignedTx",
    "World",
    "trade_row",
]

SignedTx = tuple["Signer", "TxRequest"]
"""A transaction an agent signs with its own key: (its signer on the market's chain, the call)."""

EnergyKind = Literal["local", "renewable"]
"""Which of a user's balances a market's energy counts in (UserAgent.local_wh / renewable_wh,
Results.hourly local_kwh / renewable_kwh)."""


class World(Protocol):
    """What a market reads from the model (EnergyMarketModel declares these in model.py).

    Set-up fills `chains`, `tokens`, `signers` before `Market.deploy` is called."""

    params: Scenario
    users: list[UserAgent]
    producers: list[LocalProducer]
    reps: list[RepAgent]
    operator: NetworkOperator
    tdno: TDNO
    n_areas: int
    """LETB areas (agents' `area`: 0..n_areas-1)."""
    chains: dict[str, ChainBackend]
    tokens: dict[str, EnergyToken]
    signers: dict[tuple[str, str], Signer]
    """(agent key, chain) -> signer; agent keys 'admin', 'operator', 'tdno', 'user3', ..."""
    extra_registrations: dict[int, int]
    """Sybil identities registered per LETB area (day/attacks.py)."""
    letb_credit_units: dict[str, int]
    """Each LETB user's refund credit held in its area's contract (address -> base units)."""


# --------------------------------------------------------------------------------------------
# Typed records of one hour
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketHour:
    """What every market sees of hour t when it opens (built once by the hour loop)."""

    t: int
    caps_usd_per_mwh: Mapping[int, float]
    """The DLMP cap of every bus this hour (the operator's OPF), by bus number."""
    tariff_usd_per_mwh: float
    """The grid's time-of-use tariff: every buyer's alternative."""
    fit_usd_per_mwh: float
    """The feed-in tariff: every seller's alternative, the floor of every on-chain price."""
    dt_h: float
    buyers: tuple[UserAgent, ...]
    """The hour's seeded request order (drawn once per hour; a market sends its requests in it,
    so a node's block holds them in the same order on every backend)."""


@dataclass(frozen=True)
class Offer:
    """A seller's offer for one hour as the market posted it."""

    market: str
    seller_id: int
    """The seller agent's unique_id."""
    seller: str
    """The seller's address."""
    bus: int
    """The seller's feeder bus (the operator ranks offers by delivered cost at the buyer's)."""
    e_wh: int
    """Energy offered (or still available, as a market tracks it through the hour)."""
    price_base_units_per_wh: int
    window_start_t: int
    window_end_t: int
    """The hours [start, end) the offer may serve (LETB: [t, t+1))."""
    reputation: int = 0
    """The seller's reputation as last rated on chain (0..1000)."""


@dataclass(frozen=True)
class Request:
    """A user's demand sent to one market."""

    market: str
    buyer_id: int
    e_wh: int
    rt: int
    """Reliability threshold: the least seller reputation the user accepts (0..1000)."""
    window_start_t: int
    window_end_t: int
    seller: str | None = None
    """The seller the user chose (RETB: the operator's ranking hint), None = the market picks."""


@dataclass(frozen=True)
class Fill:
    """One trade a market made: `e_wh` from `seller` to `buyer` at a price, in request `nonce`.

    `event` holds the contract's own Trade event arguments: the market passes them back to its
    settle and feedback calls, which check them against the chain's record."""

    market: str
    chain: str
    area: int
    """The LETB area of the trade (-1: a market without areas)."""
    buyer_id: int
    buyer: str
    seller_id: int
    """The seller's index in the market (LETB producer_id on chain, RETB plant index)."""
    seller: str
    nonce: int
    index: int
    """The fill's position in its request (0 for one-fill requests)."""
    e_wh: int
    price_base_units_per_wh: int
    tx_hash: str
    block: int
    event: Mapping[str, Any]


@dataclass(frozen=True)
class Delivery:
    """What the TDNO metered for one fill (delivered_wh <= fill.e_wh)."""

    fill: Fill
    delivered_wh: int


@dataclass(frozen=True)
class Settlement:
    """One request settled on chain: what the buyer paid and how much energy it got."""

    market: str
    buyer_id: int
    paid_base_units: int
    delivered_wh: int
    credit_base_units: int | None = None
    """The buyer's refund credit left in the contract after settling (None: no credit event)."""


@dataclass(frozen=True)
class Rating:
    """A user's smart-meter score of one fill (0..MAX_SCORE, agents/user.py)."""

    fill: Fill
    delivered_wh: int
    score: int


# --------------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------------


class Market(ABC):
    """One trading mechanism on one chain; see the module docstring for the hour it runs in.

    To add one: subclass, set the class attributes, implement the abstract methods, add it to
    `MARKETS` and a mechanism to `MECHANISMS` (gridledger/markets/__init__.py). Keep the
    Python reference of your clearing rule beside the contract (market/clearing.py) and test
    them against each other. Methods with a default need no override.
    """

    name: ClassVar[str]
    """Registry key, also the `market` field of the records this market makes."""
    chain: ClassVar[str]
    """The chain it runs on: 'letb' (the consortium chain) or 'retb'."""
    kind: ClassVar[EnergyKind]
    request_phase: ClassVar[Phase]
    """The gas-frame phase of its requests (Phase.LETB_REQUEST for a local market)."""
    mints_incentives: ClassVar[bool] = False
    """True: set-up makes its contracts minters of the chain's token (RETB's incentives)."""

    def __init__(self, world: World) -> None:
        self.world = world

    def signer(self, role: str) -> Signer:
        """The signer of 'admin', 'operator' or 'tdno' on this market's chain."""
        return self.world.signers[(role, self.chain)]

    # ---- set-up (t = -1; each list is one block per chain together with the other markets) --
    @abstractmethod
    def deploy(self) -> list[SignedTx]:
        """Creation transactions of the market's contracts (signed by `signers['admin', ...]`)."""

    @abstractmethod
    def deployed(self, results: Sequence[TxResult]) -> None:
        """Wrap the contracts created by `deploy()`'s transactions (same order)."""

    @abstractmethod
    def contracts(self) -> Sequence[DeployedContract]:
        """The deployed contracts (the ledger decodes their events; invariants read them)."""

    def grants(self) -> list[SignedTx]:
        """Set-up token transfers the contracts need (escrow seeds), after the minter rights
        (`mints_incentives`)."""
        return []

    def seller_grants(self) -> list[SignedTx]:
        """Tokens the market's sellers need before trading: each of `sellers()` gets the
        registration bond plus SELLER_SEED_UNITS (day/chains.py) from the chain's admin."""
        token = self.world.tokens[self.chain]
        grant = usd_to_base_units(self.world.params.registration_bond_usd) + SELLER_SEED_UNITS
        admin = self.signer("admin")
        return [(admin, token.transfer(s.account.address, grant)) for s in self.sellers()]

    def approvals(self) -> list[SignedTx]:
        """Participants' token approvals of the market's contracts (each signs its own)."""
        return []

    def registrations(self) -> list[SignedTx]:
        """The operator's registration of every participant (identity commitment, bus, role)."""
        return []

    def registered(self, results: Sequence[TxResult]) -> None:
        """Read what registration assigned (seller ids, starting reputations)."""
        return None

    # ---- the hour ------------------------------------------------------------------------
    @abstractmethod
    def open_hour(self, hour: MarketHour) -> list[SignedTx]:
        """The operator opens the hour on every contract: feed-in floor and the DLMP caps of
        the buses whose sellers may trade (a cap below the floor: nobody sells there)."""

    @abstractmethod
    def offers(self, hour: MarketHour) -> list[list[SignedTx]]:
        """Post the offers the sellers decided (before this call the loop asks every seller
        of `sellers()`, in any order, to `decide_offer(hour)`). One list per block ("round");
        round r of every market shares block r; [] for an hour without offers."""

    @abstractmethod
    def requests(self, hour: MarketHour) -> list[SignedTx]:
        """Users decide what to request (ask the agents, in `hour.buyers` order); one block per
        chain. A market that clears after collecting its bids (a call auction) appends the
        operator's clearing call at the end: a block executes in submission order."""

    @abstractmethod
    def fills(self, hour: MarketHour, results: Sequence[TxResult]) -> list[Fill]:
        """The trades the requests made, read from the contract's events, in request order.
        The loop credits each fill to its buyer's `kind` balance and seller."""

    @abstractmethod
    def sellers(self) -> Sequence[Any]:
        """Agents selling on this market. Each hour the loop asks each one to `decide_offer`;
        the TDNO meters each one, in this order (`metered_wh`, `settle_delivery`, `export_to`:
        agents/producer.py, agents/rep.py)."""

    @abstractmethod
    def settle(self, hour: MarketHour, deliveries: Sequence[Delivery]) -> list[SignedTx]:
        """The TDNO's settlement calls for the metered fills (signed by signers['tdno', chain])."""

    @abstractmethod
    def settled(self, hour: MarketHour, results: Sequence[TxResult]) -> list[Settlement]:
        """One Settlement per request, in the order of the fills; raise ConservationError
        (day/conservation.py) for a request not settled, settled twice, or unknown."""

    @abstractmethod
    def feedback(self, hour: MarketHour, ratings: Sequence[Rating]) -> list[SignedTx]:
        """Users' rating calls (each signs its own)."""

    @abstractmethod
    def rated(self, hour: MarketHour, results: Sequence[TxResult]) -> list[int]:
        """Move the sellers' reputations from the Rated events; return the incentive minted per
        rating (token base units, 0 where none), in the order of the ratings."""

    @abstractmethod
    def expected_escrow(self) -> dict[str, int]:
        """What each of the market's contracts must hold after settlement (address -> base
        units: seed + bonds + whatever the contract keeps for users, e.g. LETB credits)."""

    def hour_columns(self) -> dict[str, float]:
        """Columns this market adds to the hour's row of Results.hourly (e.g. offered kWh)."""
        return {}


def trade_row(t: int, rating: Rating, incentive_base_units: int) -> dict[str, Any]:
    """A row of Results.trades (day/kpis.py TRADE_COLUMNS) for one rated fill."""
    f = rating.fill
    return {
        "t": t,
        "chain": f.chain,
        "area": f.area,
        "buyer": f.buyer,
        "buyer_id": f.buyer_id,
        "seller": f.seller,
        "producer_id": f.seller_id,
        "nonce": f.nonce,
        "index": f.index,
        "e_wh": f.e_wh,
        "price": f.price_base_units_per_wh,
        "price_usd_per_mwh": price_from_base_units_per_wh(f.price_base_units_per_wh),
        "delivered_wh": rating.delivered_wh,
        "feedback": rating.score,
        "incentive_usd": usd_from_base_units(incentive_base_units),
        "tx_hash": f.tx_hash,
        "block": f.block,
    }
