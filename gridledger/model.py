"""EnergyMarketModel: the market day as a Mesa model; one step = one market hour.

Set-up builds the world from a Scenario (gridledger/day/world.py: feeder, profiles, users, local
producers, REPs, grid, network operator, TDNO), prices the day (day/pricing.py: OPF -> DLMP per
bus and hour) and sets up the two chains (day/chains.py: EnergyToken per chain, one LETB per
area, one RETB; every agent's key, gas, tokens, approvals and registrations).

Each step runs the phases of DESIGN.md "One market hour" in order, each phase one block per
chain (agents sign their own transactions; the model batches a phase with `send_many`):
1 operator opens the hour with the DLMP caps, 2 producers and REPs post offers, 3 users request on
LETB, 4 shortages go to RETB with the operator's ranking hint, 5 the grid covers the rest
(day/phases.py); 6 TDNO meters (faults, forecast error, AC power flow) and settles, 7 users rate
their trades (reputation, incentives) (day/settlement.py); 8 conservation checks
(day/conservation.py), the hour's row and the DataCollector (day/kpis.py).

The baseline of the same scenario (no trading: users' metered demand all from the grid at the
tariff; rooftop PV self-consumed behind the meter, its surplus exported; batteries idle; REP output
exported) is computed beside it every hour, so every "before/after" sits in one row.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import mesa
import pandas as pd

from gridledger.day import attacks
from gridledger.day.chains import setup_chains
from gridledger.day.conservation import ConservationError
from gridledger.day.invariant_checks import (
    InvariantError,
    check_hour_invariants,
    start_invariants,
)
from gridledger.day.kpis import (
    AGENT_COLUMNS,
    MODEL_VARS,
    TRADE_COLUMNS,
    hour_value,
    record_agents,
    record_hour,
    summary,
)
from gridledger.day.phases import (
    phase1_operator,
    phase2_offers,
    phase3_letb,
    phase4_retb,
    phase5_grid,
)
from gridledger.day.pricing import price_day
from gridledger.day.settlement import phase6_tdno, phase7_feedback
from gridledger.day.world import MarketSetupError, build_world
from gridledger.market.ledger import Ledger
from gridledger.network.opf import OPFResult
from gridledger.network.powerflow import PowerFlowResult
from gridledger.results import Results
from gridledger.scenario import Scenario

__all__ = [
    "ConservationError",
    "EnergyMarketModel",
    "InvariantError",
    "MarketSetupError",
    "run_scenario",
]


class EnergyMarketModel(mesa.Model):
    """The market day (see module docstring). `model.params` is the gridledger Scenario."""

    def __init__(
        self,
        scenario: Scenario | Any | None = None,
        *,
        chain: str = "embedded",
        seed: int | None = None,
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
        self.chain_spec = chain
        self.timing: dict[str, float] = defaultdict(float)
        t0 = time.perf_counter()
        self.hourly_rows: list[dict[str, Any]] = []
        self.trade_rows: list[dict[str, Any]] = []
        self.ledger = Ledger()
        self.ledger.t = -1  # set-up transactions (deploy, funding, registration) have t = -1
        self.ledger.phase = "setup"
        self.agent_rows: list[dict[str, Any]] = []
        self.last_opf: OPFResult | None = None
        self.last_power_flow: PowerFlowResult | None = None
        self.hour: dict[str, Any] = {}
        self.hour_gas: dict[str, int] = {}
        self.hour_tx = 0
        build_world(self)
        # energy price at the substation in the operator's OPF (Scenario.dlmp_reference)
        self.reference_price = self.tariff if sc.dlmp_reference == "tariff" else self.wholesale
        self.timing["python_s"] += time.perf_counter() - t0
        price_day(self)
        setup_chains(self, chain)
        attacks.register_sybils(self)
        attacks.start_balances(self)
        start_invariants(self)
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
        caps = phase1_operator(self, t)
        offers = phase2_offers(self, t, caps)
        letb_req = phase3_letb(self, t)
        retb_trades = phase4_retb(self, t)
        phase5_grid(self, t)
        metered = phase6_tdno(self, t, letb_req, retb_trades)
        minted = phase7_feedback(self, t, letb_req, retb_trades, metered)
        attacks.record_hour(self, t)
        check_hour_invariants(self, t)
        row = record_hour(self, t, offers, minted)
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

    def run(self, progress: Callable[[dict[str, Any]], None] | None = None) -> Results:
        while self.running:
            self.step()
            if progress is not None:
                progress(self.hour)
        return self.results()

    def results(self) -> Results:
        """Tidy frames of the hours run so far plus the summary KPIs."""
        hourly = pd.DataFrame(self.hourly_rows)
        if not hourly.empty:
            hourly = hourly.set_index("t", drop=False)
            hourly.index.name = None
        trades = pd.DataFrame(self.trade_rows, columns=TRADE_COLUMNS)
        gas = self.gas_rows
        agents = pd.DataFrame(self.agent_rows, columns=AGENT_COLUMNS)
        return Results(
            hourly=hourly,
            trades=trades,
            gas=gas,
            agents=agents,
            summary=summary(self, hourly, gas),
            scenario=self.params,
        )

    @property
    def gas_rows(self) -> pd.DataFrame:
        """One row per mined transaction so far (the Ledger's gas frame; set-up rows t = -1)."""
        return self.ledger.gas()


def run_scenario(
    scenario: Scenario | None = None,
    *,
    chain: str = "embedded",
    seed: int | None = None,
    progress: bool | Callable[[dict[str, Any]], None] = True,
) -> Results:
    """Run a whole scenario and return its Results (progress bar on stderr if `progress`)."""
    model = EnergyMarketModel(scenario or Scenario(), chain=chain, seed=seed)
    if callable(progress):
        return model.run(progress)
    if not progress:
        return model.run()
    from tqdm import tqdm

    with tqdm(total=model.params.hours, unit="h", desc="market day") as bar:

        def tick(row: dict[str, Any]) -> None:
            bar.set_postfix(tx=row["tx_count"], grid_kwh=f"{row['grid_import_kwh']:.0f}")
            bar.update(1)

        return model.run(tick)
