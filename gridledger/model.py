"""EnergyMarketModel: the market day as a Mesa model; one step = one market hour.

Set-up builds the world from a Scenario (day/world.py: feeder, profiles, the agents), prices
the day (day/pricing.py: OPF -> DLMP per bus and hour) and sets up the two chains (day/chains.py:
keys, gas, an EnergyToken per chain, then each market's contracts and registrations).

Each step is one market hour, `_hour` (docs/markets.md; the loop: gridledger/markets/hour.py):
at each step of `markets.Phase` it asks every market of the scenario's mechanism
(gridledger/markets/) for the transactions its agents decide and sign and sends them as one
block per chain; then the checks (day/conservation.py, day/invariant_checks.py), the hour's row
and the DataCollector (day/kpis.py).

Node down mid-run (issue 7, scenario 8): a chain's node that stops answering raises
`NodeDownError` naming the chain, its URL, the interrupted hour and phase and the last completed
hour. With `checkpoint_dir` the model saves the results of every completed hour and a checkpoint
(gridledger/checkpoint.py; the model's side: gridledger/resume.py);
`EnergyMarketModel.resume(dir)` / `run_scenario(resume=dir)` rebuild the model from it and
re-execute the run against the surviving chains, serving every transaction the chains already
hold instead of sending it again (gridledger/chain/replay.py).

The baseline of the same scenario (no trading: users' metered demand all from the grid at the
tariff; rooftop PV self-consumed behind the meter, its surplus exported; batteries idle; REP output
exported) is computed beside it every hour, so every "before/after" sits in one row.

One call runs a whole scenario with a progress bar: `run_scenario`, gridledger/runner.py
(importable from here too).
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mesa
import pandas as pd

from gridledger.agents.user import UserAgent
from gridledger.chain import (
    ChainBackend,
    ChainConnectionError,
    NodeDownError,
    ResumeConflictError,
    make_chains,
)
from gridledger.checkpoint import (
    BlockRef,
    Checkpoint,
    block_ref,
    chain_spec_of,
    check_replayed_hour,
    remove_checkpoint,
    write_checkpoint,
)
from gridledger.day import attacks
from gridledger.day.chains import (
    assign_accounts,
    deploy_and_register,
    preflight_chains,
)
from gridledger.day.conservation import ConservationError
from gridledger.day.invariant_checks import (
    InvariantError,
    start_invariants,
)
from gridledger.day.kpis import (
    AGENT_COLUMNS,
    MODEL_VARS,
    TRADE_COLUMNS,
    RunTotals,
    hour_value,
    record_agents,
    summary,
)
from gridledger.day.pricing import price_day
from gridledger.day.world import MarketSetupError, build_world
from gridledger.market.ledger import Ledger
from gridledger.markets import Market, Phase, markets_of
from gridledger.markets.hour import run_hour
from gridledger.markets.letb import LETB, LocalBook
from gridledger.markets.retb import RETB, RenewableZone
from gridledger.network import OPFResult
from gridledger.network.powerflow import PowerFlowResult
from gridledger.results import Results, hourly_frame
from gridledger.resume import finish_replay, node_down, resume_model, resume_summary, save_hour
from gridledger.scenario import Scenario

if TYPE_CHECKING:
    import numpy as np
    from eth_account.signers.local import LocalAccount

    from gridledger.agents.grid import GridAgent
    from gridledger.agents.operator import NetworkOperator
    from gridledger.agents.producer import LocalProducer
    from gridledger.agents.rep import RepAgent
    from gridledger.agents.tdno import TDNO
    from gridledger.agents.user import UserAgent
    from gridledger.chain import Signer
    from gridledger.checkpoint import ResultsJournal
    from gridledger.market.contracts import DeployedContract, EnergyToken
    from gridledger.market.invariants import TokenState
    from gridledger.network import HourlyOPF
    from gridledger.network.devices import ZIPLoad
    from gridledger.network.feeder import Feeder
    from gridledger.network.grid_data import GridData

__all__ = [
    "ConservationError",
    "EnergyMarketModel",
    "InvariantError",
    "MarketSetupError",
    "NodeDownError",
    "ResumeConflictError",
]


class EnergyMarketModel(mesa.Model):
    """The market day (see module docstring). `model.params` is the gridledger Scenario.

    `chain`: 'embedded', 'URL_LETB,URL_RETB', or ready chains {'letb': ..., 'retb': ...}.
    `checkpoint_dir`: save the results and a checkpoint after set-up and every completed hour.
    `log`: called with one line per chain once the preflight passed (chain/preflight.py).

    Everything a model holds is declared below (Mesa adds `agents`, `rng`, `running`, `steps`);
    `__init__` assigns each from the builder that makes it, and the hour's phases update the
    per-hour part.
    """

    # --- the run
    params: Scenario  # every parameter of the run (Mesa's name for them)
    t: int  # next market hour to run, 0..params.hours
    stage: Phase  # step running now (markets/phases.py), for NodeDownError
    timing: dict[str, float]  # wall seconds by part: python_s, chain_s, opf_s, checkpoint_s, ...
    checkpoint_dir: Path | None  # results + checkpoint.json after set-up and every hour
    checkpoint_times_s: list[float]  # wall seconds of each checkpoint written
    results_journal: ResultsJournal | None  # appends result parts there (checkpoint.py)
    resumed_from: Checkpoint | None  # the checkpoint a resumed run re-executes
    resume_info: dict[str, Any]  # what the resume found: chains' re-mined hours
    # --- the markets of the scenario's mechanism (gridledger/markets/), in hour order
    markets: list[Market]  # the plug-ins; `local_contracts`, `letb`, `retb` find contracts
    act_random: random.Random  # shuffles order-free acts, apart from Mesa's `random`
    # --- the world (day/world.py: World = random streams, Network, Profiles, Population)
    rngs: dict[str, np.random.Generator]  # one independent stream per part (world.STREAMS)
    seqs: dict[str, np.random.SeedSequence]  # their seed sequences
    feeder: Feeder  # the feeder (its own PV removed unless Scenario.include_feeder_pv)
    area_of_bus: dict[int, int]  # bus -> LETB area
    n_areas: int  # LETB areas, one LETB contract each
    zip: ZIPLoad  # households' ZIP load model (power flow)
    grid_data: GridData | None  # a real grid's converted tables (None on a bundled feeder)
    hour_index: pd.DatetimeIndex | None  # calendar time of each market hour (Scenario.start)
    clock_hours: np.ndarray  # clock hour of each market hour
    pv_shape: np.ndarray  # PV output per kW nameplate, per market hour
    tariff: np.ndarray  # retail ToU tariff per market hour, USD/MWh
    wholesale: np.ndarray  # wholesale price at the substation per market hour, USD/MWh
    fit: float  # feed-in tariff, USD/MWh
    reference_price: np.ndarray  # substation energy price of the OPF (Scenario.dlmp_reference)
    users: list[UserAgent]  # one per household
    producers: list[LocalProducer]  # prosumers' PV + battery, selling on LETB
    reps: list[RepAgent]  # renewable energy producers, selling on RETB
    grid: GridAgent  # supplier of last resort
    operator: NetworkOperator  # prices the hours, opens the markets
    tdno: TDNO  # meters and settles
    faults: np.ndarray  # hour x seller (producers, then REPs): delivery faulty
    # --- adversaries (day/attacks.py, day/refusals.py)
    cheaters: list[LocalProducer]  # producers that under-deliver on purpose
    sybils: list[dict[str, Any]]  # the first cheater's fresh identities
    extra_registrations: dict[int, int]  # LETB area -> sybil registrations (escrow bonds)
    sybil_switch_hours: list[int]  # hours a cheater switched to a fresh identity
    attack_hours: list[dict[str, Any]]  # per hour and cheater: sold, delivered, reputation
    cheater_main: dict[int, str]  # cheater's producer index -> its own address
    cheater_balance0: dict[str, int]  # adversaries' LETB token balance after set-up
    refusal_rows: list[dict[str, Any]]  # forbidden actions tried after the run (probe_refusals)
    # --- pricing (day/pricing.py: DayPricing, price_hour)
    opf_p: pd.DataFrame  # forecast net active load, hour x bus, kW
    opf_q: pd.DataFrame  # forecast reactive load, hour x bus, kvar
    opf_mode: str  # "day_ahead" or "hourly" (also after an infeasible day-ahead OPF)
    day_ahead: OPFResult | None  # the day-ahead OPF
    hourly_opf: HourlyOPF | None  # the compiled one-hour OPF ("hourly" mode)
    opf_failures: list[dict[str, object]]  # infeasible OPFs and the rule applied
    last_opf: OPFResult | None  # the current hour's OPF result
    # --- the chains (day/chains.py: Accounts; deploy_and_register sets tokens ... token_supply)
    chains: dict[str, ChainBackend]  # "letb", "retb" -> ledger
    chain_spec: str  # how to reach the chains again (a resume)
    chain_start: dict[str, BlockRef]  # each chain's head before set-up
    chain_setup: dict[str, BlockRef]  # ... after set-up
    hour_blocks: list[dict[str, BlockRef]]  # ... after each hour (checkpointed runs)
    signers: dict[tuple[str, str], Signer]  # (agent key, chain) -> signer
    admin_account: LocalAccount  # deploys contracts, grants tokens
    gas_budgets: dict[str, dict[str, int]]  # chain -> address -> wei funded at set-up
    preflight: list[str]  # one line per chain: node checks and faucet
    tokens: dict[str, EnergyToken]  # chain -> token
    token_supply: dict[str, int]  # chain -> token supply at the last conservation check
    invariant_state: dict[str, TokenState]  # chain -> token state at the last invariant check
    invariant_events_from: int  # ledger event count at that check: the next reads only newer
    letb_credit_units: dict[str, int]  # user address -> refund credit held in its LETB
    ledger: Ledger  # every mined transaction and decoded event
    # --- the current hour (the loop in `_hour`, markets/)
    hour: dict[str, Any]  # the last completed hour's row
    hour_gas: dict[str, int]  # chain -> gas used this hour
    hour_tx: int  # transactions sent this hour
    offer_blocks: int  # blocks of this hour's offers (offer rounds)
    last_power_flow: PowerFlowResult | None  # this hour's AC power flow with trading
    last_power_flow_baseline: PowerFlowResult | None  # ... without trading
    # --- results so far (day/kpis.py)
    hourly_rows: list[dict[str, Any]]  # one per hour
    trade_rows: list[dict[str, Any]]  # one per fill
    agent_rows: list[tuple[Any, ...]]  # one per agent and hour, AGENT_COLUMNS order
    datacollector: mesa.DataCollector  # Mesa's record of the same hours

    def __init__(
        self,
        scenario: Scenario | Any | None = None,
        *,
        chain: str | Mapping[str, ChainBackend] = "embedded",
        seed: int | None = None,
        checkpoint_dir: str | Path | None = None,
        log: Callable[[str], None] | None = None,
        _resume: Checkpoint | None = None,
        **overrides: Any,
    ) -> None:
        # SolaraViz's Reset passes mesa's own Scenario object: ignore anything not ours
        sc = scenario if isinstance(scenario, Scenario) else Scenario()
        if seed is not None:
            overrides["seed"] = int(seed)
        if overrides:
            sc = sc.replace(**overrides)
        super().__init__(rng=sc.seed)
        self.params = sc
        self.t = 0
        self.stage: Phase = Phase.SETUP
        """The step running (NodeDownError names it)."""
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.resumed_from = _resume
        self.resume_info: dict[str, Any] = {"remined_hours": {}}
        self.timing: dict[str, float] = defaultdict(float)
        t0 = self._wall_t0 = time.perf_counter()
        self.checkpoint_times_s: list[float] = []
        self.hourly_rows: list[dict[str, Any]] = []
        self.trade_rows: list[dict[str, Any]] = []
        self.ledger = Ledger()
        self.ledger.t = -1  # set-up transactions (deploy, funding, registration) have t = -1
        self.ledger.phase = Phase.SETUP.value
        self.agent_rows: list[tuple[Any, ...]] = []
        self.last_opf: OPFResult | None = None
        self.last_power_flow: PowerFlowResult | None = None
        self.last_power_flow_baseline: PowerFlowResult | None = None
        self.hour: dict[str, Any] = {}
        self.hour_gas: dict[str, int] = {}
        self.hour_tx = 0
        self.last_power_flow_baseline = None
        self.results_journal = None
        self.refusal_rows = []
        self.offer_blocks = 0  # blocks of the current hour's offers (offer rounds)
        self.letb_credit_units: dict[str, int] = {}
        """Each LETB user's refund credit inside its area's contract (address -> base units):
        settle credits undelivered value, the next request spends it (markets/letb.py)."""
        # the scenario's market mechanism: its markets, in the order the hour runs them (an
        # unknown mechanism is refused here, before any work)
        self.markets: list[Market] = [
            cls(self) for cls in markets_of(getattr(sc, "market_mechanism", "paper"))
        ]
        self.act_random = random.Random(f"gridledger/act-order/{sc.seed}")
        """Shuffles the agents of order-free acts (markets/hour.py: `any_order`), apart from
        `self.random`."""
        world = build_world(self)  # day/world.py
        self.rngs, self.seqs = world.rngs, world.seqs
        net, prof, pop = world.network, world.profiles, world.population
        self.feeder = net.feeder
        self.area_of_bus = net.area_of_bus
        self.n_areas = net.n_areas
        self.zip = net.zip
        self.grid_data = net.grid_data
        self.hour_index = prof.hour_index
        self.clock_hours = prof.clock_hours
        self.pv_shape = prof.pv_shape
        self.tariff = prof.tariff
        self.wholesale = prof.wholesale
        self.fit = prof.fit
        self.users = pop.users
        self.producers = pop.producers
        self.reps = pop.reps
        self.grid = pop.grid
        self.operator = pop.operator
        self.tdno = pop.tdno
        self.faults = pop.faults
        self.cheaters = attacks.mark_cheaters(sc, self.producers)
        self.attack_hours = []
        self.sybil_switch_hours = []
        # energy price at the substation in the operator's OPF (Scenario.dlmp_reference)
        self.reference_price = self.tariff if sc.dlmp_reference == "tariff" else self.wholesale
        self.timing["python_s"] += time.perf_counter() - t0
        pricing = price_day(self)
        self.opf_p = pricing.opf_p
        self.opf_q = pricing.opf_q
        self.opf_mode = pricing.opf_mode
        self.day_ahead = pricing.day_ahead
        self.hourly_opf = pricing.hourly_opf
        self.opf_failures = pricing.opf_failures
        chains = (
            make_chains(chain, {"letb": sc.letb_chain_id, "retb": sc.retb_chain_id})
            if isinstance(chain, str)
            else dict(chain)
        )
        self.chain_spec = chain_spec_of(chains) if not isinstance(chain, str) else chain
        # where each chain stood before set-up: a resume checks it is the same chain
        self.chain_start: dict[str, BlockRef] = {c: block_ref(ch) for c, ch in chains.items()}
        self.chain_setup: dict[str, BlockRef] = {}  # filled when set-up is complete
        self.hour_blocks: list[dict[str, BlockRef]] = []
        self.chains = chains
        # keys, budgets and the preflight (chain ids were checked at connect): a node that
        # cannot run the day is refused here, before any transaction and any file
        accounts = assign_accounts(self, chains)
        self.signers = accounts.signers
        self.admin_account = accounts.admin
        self.gas_budgets = accounts.gas_budgets
        self.preflight = preflight_chains(self)
        for line in self.preflight if log else ():
            log(line)
        started = self.checkpoint_dir is not None and _resume is None
        if started:
            # before the first transaction: a run whose node dies in set-up can resume too
            write_checkpoint(self, self.checkpoint_dir, results=False)
        try:
            deploy_and_register(self)
            self.sybils, self.extra_registrations = attacks.register_sybils(self)
            self.cheater_main, self.cheater_balance0 = attacks.start_balances(self)
            self.invariant_state = start_invariants(self)
            self.invariant_events_from = self.ledger.n_events  # the hourly checks read from here
            self.chain_setup = {c: block_ref(ch) for c, ch in self.chains.items()}
        except ChainConnectionError as exc:
            raise node_down(self, exc, None) from exc
        except Exception:
            if started:  # not resumable: leave no checkpoint that `report`/`--resume` refuse
                remove_checkpoint(self.checkpoint_dir)
            raise
        if _resume is not None:
            check_replayed_hour(self, -1, _resume)
        self.datacollector = mesa.DataCollector(
            model_reporters={k: hour_value(k) for k in MODEL_VARS},
            agent_reporters={
                "role": "role",
                "bus": "bus",
                "cost_usd": "cost_usd",
                "soc": lambda a: getattr(a, "soc", None),
                "reputation": lambda a: getattr(a, "reputation", None),
            },
        )
        self.running = sc.hours > 0
        if self.checkpoint_dir is not None and _resume is None:
            save_hour(self)

    @classmethod
    def resume(cls, folder: str | Path, *, chain: str | None = None) -> EnergyMarketModel:
        """Rebuild an interrupted run from `folder/checkpoint.json` against its chains.

        `chain` gives the nodes' URLs if they came back elsewhere (default: the saved ones).
        Set-up and the completed hours are re-executed deterministically with the chains'
        mined transactions served, not sent (no nonce is used twice); `run()` then continues
        from the interrupted hour and keeps checkpointing into `folder`. Raises CheckpointError
        (no usable checkpoint), ResumeConflictError (a chain contradicts the checkpoint),
        NodeDownError (a node is still down). The glue: gridledger/resume.py."""
        return resume_model(cls, folder, chain)

    # ======================================================================================
    def step(self) -> None:
        sc = self.params
        if self.t >= sc.hours:
            self.running = False
            return
        t = self.t
        t_start = time.perf_counter()
        chain0, opf0 = self.timing["chain_s"], self.timing["opf_s"]
        self.ledger.t = t
        self.hour_gas = {c: 0 for c in self.chains}
        self.hour_tx = 0
        for a in (*self.users, self.grid):
            a.reset_hour()
        try:
            row = self._hour(t)
        except ChainConnectionError as exc:
            raise node_down(self, exc, t) from exc
        self.t += 1
        self.timing["python_s"] += (
            (time.perf_counter() - t_start)
            - (self.timing["chain_s"] - chain0)
            - (self.timing["opf_s"] - opf0)
        )
        self.hour = row
        self.datacollector.collect(self)
        record_agents(self, t)
        if self.t >= sc.hours:
            self.running = False
            finish_replay(self)
        save_hour(self)

    def _hour(self, t: int) -> dict[str, Any]:
        """One market hour (docs/markets.md): the generic loop over the scenario's markets,
        gridledger/markets/hour.py; `self.stage` names the step running (NodeDownError)."""
        return run_hour(self, t)

    def market(self, cls: type[Market]) -> Market | None:
        """The running market of class `cls` (or a subclass), None if the mechanism has none."""
        return next((m for m in self.markets if isinstance(m, cls)), None)

    @property
    def local_contracts(self) -> list[DeployedContract]:
        """The local market's contract per area, whatever its mechanism (LETB under "paper",
        DoubleAuction under "double_auction"); [] if the mechanism has no local market."""
        m = self.market(LocalBook)
        return list(m.contracts()) if m is not None else []

    @property
    def letb(self) -> list[LETB]:
        """The paper's LETB contracts, one per area; [] if the mechanism's local market is
        another (the double auction's contracts: `local_contracts`)."""
        return [c for c in self.local_contracts if isinstance(c, LETB)]

    @property
    def retb(self) -> RETB | None:
        """The RETB zone contract (None if the mechanism has no RETB market)."""
        m = self.market(RenewableZone)
        return m.contracts()[0] if m is not None else None

    def run(self, progress: Callable[[dict[str, Any]], None] | None = None) -> Results:
        while self.running:
            self.step()
            if progress is not None:
                progress(self.hour)
        return self.results()

    def results(self) -> Results:
        """Tidy frames of the hours run so far plus the summary KPIs."""
        hourly = hourly_frame(self.hourly_rows)
        trades = pd.DataFrame(self.trade_rows, columns=TRADE_COLUMNS)
        gas = self.gas_rows
        agents = pd.DataFrame(self.agent_rows, columns=AGENT_COLUMNS)
        return Results(
            hourly=hourly,
            trades=trades,
            gas=gas,
            agents=agents,
            summary=self.summary_kpis(RunTotals.of(hourly, gas), trades),
            scenario=self.params,
        )

    def summary_kpis(self, totals: RunTotals, trades: pd.DataFrame | None = None) -> dict[str, Any]:
        """The summary KPIs of the hours run so far (`totals` of the hourly and gas frames)."""
        self.timing["wall_s"] = time.perf_counter() - self._wall_t0  # set-up + hours so far
        kpis = summary(self, totals, trades)
        # a checkpoint's results are partial: say how many of the planned hours they hold
        kpis["hours"] = totals.hours
        kpis["hours_planned"] = self.params.hours
        kpis["complete"] = totals.hours >= self.params.hours
        if self.resumed_from is not None:
            kpis["resumed"] = resume_summary(self)
        return kpis

    @property
    def gas_rows(self) -> pd.DataFrame:
        """One row per mined transaction so far (the Ledger's gas frame; set-up rows t = -1)."""
        return self.ledger.gas()
