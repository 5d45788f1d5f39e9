"""EnergyMarketModel: the market day as a Mesa model; one step = one market hour.

Set-up builds the world from a Scenario: the feeder, the day's profiles (one seed, independent
streams), users (one per load bus or household), local producers (prosumers' PV + battery), REPs,
the grid, the network operator and the TDNO; two chains (LETB consortium chain, RETB chain) with
EnergyToken, one LETB per area and one RETB; every agent's key, gas, tokens, approvals and
registrations. The operator prices the day (OPF, DLMP per bus and hour).

Each step runs the phases of DESIGN.md "One market hour" in order, each phase one block per
chain (agents sign their own transactions; the model batches a phase with `send_many`):
1 operator opens the hour with the DLMP caps, 2 producers and REPs post offers, 3 users request on
LETB, 4 shortages go to RETB with the operator's ranking hint, 5 the grid covers the rest,
6 TDNO meters (faults, forecast error, AC power flow) and settles, 7 users rate their trades
(reputation, incentives), 8 conservation checks and the DataCollector.

The baseline of the same scenario (no trading: users' metered demand all from the grid at the
tariff; rooftop PV self-consumed behind the meter, its surplus exported; batteries idle; REP output
exported) is computed beside it every hour, so every "before/after" sits in one row.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import mesa
import numpy as np
import pandas as pd
from eth_utils import keccak

from gridledger.agents.grid import GridAgent
from gridledger.agents.operator import NetworkOperator, derive_letb_areas
from gridledger.agents.producer import LocalProducer
from gridledger.agents.rep import RepAgent
from gridledger.agents.tdno import TDNO, pro_rata
from gridledger.agents.user import UserAgent, ev_profile_kw, meter_score
from gridledger.market.accounts import derive_account
from gridledger.market.chain import (
    ChainBackend,
    Signer,
    TxRequest,
    TxResult,
    make_chains,
    send_many,
)
from gridledger.market.contracts import (
    BASE_UNITS_PER_USD,
    LETB,
    RETB,
    DeployedContract,
    EnergyToken,
    MarketContract,
    price_from_base_units_per_wh,
    usd_from_base_units,
)
from gridledger.market.contracts import (
    price_to_base_units_per_wh as price_to_chain,
)
from gridledger.market.ledger import Ledger
from gridledger.network import profiles
from gridledger.network.devices import Storage, ZIPLoad
from gridledger.network.feeder import Feeder, load_feeder
from gridledger.network.opf import OPFResult, solve_opf
from gridledger.network.powerflow import PowerFlowResult, run_power_flow
from gridledger.results import Results
from gridledger.scenario import Scenario

MAX_SCORE = 5
STREAMS = ("load", "pv", "price", "prosumers", "rt", "faults", "forecast", "ev", "order")


class ConservationError(RuntimeError):
    """Energy or token accounting does not balance in an hour; names the hour and the party."""


class MarketSetupError(RuntimeError):
    """The world cannot be built from the scenario (names the field or party at fault)."""


def _commitment(seed: int, role: str, index: int) -> bytes:
    """Identity commitment: a hash, no personal data."""
    return keccak(text=f"gridledger/identity/{seed}/{role}/{index}")


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
        seqs = np.random.SeedSequence(sc.seed).spawn(len(STREAMS))
        self._rngs = {n: np.random.default_rng(s) for n, s in zip(STREAMS, seqs, strict=True)}
        self._seqs = dict(zip(STREAMS, seqs, strict=True))
        self.hourly_rows: list[dict[str, Any]] = []
        self.trade_rows: list[dict[str, Any]] = []
        self.ledger = Ledger()
        self.ledger.t = -1  # set-up transactions (deploy, funding, registration) have t = -1
        self.ledger.phase = "setup"
        self.agent_rows: list[dict[str, Any]] = []
        self.last_opf: OPFResult | None = None
        self.last_power_flow: PowerFlowResult | None = None
        self._build_network()
        self._build_profiles()
        self._build_agents()
        self.timing["python_s"] += time.perf_counter() - t0
        self._price_day()
        self._setup_chains(chain)
        self.datacollector = mesa.DataCollector(
            model_reporters={k: _hour_value(k) for k in MODEL_VARS},
            agent_reporters={
                "role": "role",
                "bus": "bus",
                "cost_usd": "cost_usd",
                "soc": lambda a: getattr(a, "soc", None),
                "reputation": lambda a: getattr(a, "reputation", None),
            },
        )
        self.running = sc.hours > 0

    # ==========================================================================================
    # set-up
    def _build_network(self) -> None:
        sc = self.params
        feeder = load_feeder(sc.feeder)
        if not sc.include_feeder_pv and feeder.buses["pv_kw"].any():
            feeder = feeder.with_pv({int(b): 0.0 for b in feeder.buses.index})
        self.feeder: Feeder = feeder
        for plant in sc.rep_plants:
            if plant.bus not in feeder.buses.index:
                raise MarketSetupError(
                    f"scenario field 'rep_plants': bus {plant.bus} is not on feeder {feeder.name}"
                )
        self.area_of_bus = derive_letb_areas(feeder, sc.letb_areas, sc.letb_area_roots)
        self.n_areas = len(set(self.area_of_bus.values()))
        self.zip = ZIPLoad(
            z_p=sc.zip_z, i_p=sc.zip_i, p_p=sc.zip_p, z_q=sc.zip_z, i_q=sc.zip_i, p_q=sc.zip_p
        )

    def _build_profiles(self) -> None:
        sc = self.params
        n = sc.start_hour + sc.hours  # profiles are indexed from clock hour 0; slice the run
        sl = slice(sc.start_hour, n)
        shape_kw = dict(
            base=sc.load_base_fraction,
            peak_hours=sc.load_peak_hours,
            peak_heights=sc.load_peak_heights,
            peak_widths_h=sc.load_peak_widths_h,
        )
        self.clock_hours = (np.arange(n) % 24)[sl]
        self.feeder_load_shape = profiles.load_shape(n, **shape_kw)[sl]
        self._load_shape_args = (n, sl, shape_kw)
        self.pv_shape = profiles.pv_shape(
            n,
            rng=self._rngs["pv"],
            sunrise_h=sc.pv_sunrise_h,
            sunset_h=sc.pv_sunset_h,
            cloudiness=sc.pv_cloudiness,
        )[sl]
        self.tariff = profiles.tou_tariff(
            n,
            offpeak_usd_per_mwh=sc.tariff_offpeak_usd_per_mwh,
            midpeak_usd_per_mwh=sc.tariff_midpeak_usd_per_mwh,
            onpeak_usd_per_mwh=sc.tariff_onpeak_usd_per_mwh,
            onpeak=sc.tariff_onpeak_periods,
            midpeak=sc.tariff_midpeak_periods,
        )[sl]
        self.wholesale = profiles.wholesale_price(
            n,
            rng=self._rngs["price"],
            load=profiles.load_shape(n, **shape_kw),
            base_usd_per_mwh=sc.wholesale_base_usd_per_mwh,
            slope_usd_per_mwh=sc.wholesale_slope_usd_per_mwh,
            noise_usd_per_mwh=sc.wholesale_noise_usd_per_mwh,
        )[sl]
        self.fit = float(sc.feed_in_tariff_usd_per_mwh)

    def _build_agents(self) -> None:
        sc = self.params
        n, sl, shape_kw = self._load_shape_args
        buses = self.feeder.buses
        load_buses = [int(b) for b in buses.index if buses.at[b, "p_kw"] > 0]
        households = [(b, k) for b in load_buses for k in range(sc.households_per_bus)]
        hh_seqs = self._seqs["load"].spawn(len(households))
        n_pros = round(sc.prosumer_share * len(households))
        pros = set(
            self._rngs["prosumers"].choice(len(households), size=n_pros, replace=False).tolist()
        )
        n_ev = round(sc.ev_share * len(households))
        evs = set(self._rngs["ev"].choice(len(households), size=n_ev, replace=False).tolist())
        spread = sc.reliability_threshold_spread
        rts = np.clip(
            sc.reliability_threshold
            + self._rngs["rt"].integers(-spread, spread + 1, size=len(households)),
            0,
            1000,
        )
        ev_kw = ev_profile_kw(
            sc.hours,
            self.clock_hours,
            sc.ev_energy_kwh,
            sc.ev_window_start_h,
            sc.ev_window_end_h,
            sc.dt_h,
        )
        self.users: list[UserAgent] = []
        self.producers: list[LocalProducer] = []
        for i, (bus, _k) in enumerate(households):
            peak_p = float(buses.at[bus, "p_kw"]) / sc.households_per_bus
            peak_q = float(buses.at[bus, "q_kvar"]) / sc.households_per_bus
            shape = profiles.load_shape(
                n,
                rng=np.random.default_rng(hh_seqs[i]),
                noise=sc.load_variability,
                **shape_kw,
            )[sl]
            pv_kw = (
                sc.rooftop_pv_kw_per_peak_kw * peak_p * self.pv_shape
                if i in pros
                else np.zeros(sc.hours)
            )
            user = UserAgent(
                self,
                bus=bus,
                area=self.area_of_bus[bus],
                index=i,
                load_kw=peak_p * shape,
                q_kvar=peak_q * shape,
                self_pv_kw=pv_kw,
                ev_kw=ev_kw if i in evs else np.zeros(sc.hours),
                reliability_threshold=int(rts[i]),
            )
            self.users.append(user)
            if i in pros:
                pv_nameplate = sc.rooftop_pv_kw_per_peak_kw * peak_p
                cap = sc.battery_kwh_per_pv_kw * pv_nameplate
                storage = Storage(
                    bus=bus,
                    e_max_kwh=max(sc.battery_soc_max * cap, 1e-9),
                    e_min_kwh=sc.battery_soc_min * cap,
                    e_init_kwh=sc.battery_soc_initial * cap,
                    p_ch_max_kw=sc.battery_c_rate * cap,
                    p_dis_max_kw=sc.battery_c_rate * cap,
                    eta_ch=sc.battery_eta_charge,
                    eta_dis=sc.battery_eta_discharge,
                )
                prod = LocalProducer(
                    self,
                    bus=bus,
                    area=self.area_of_bus[bus],
                    index=len(self.producers),
                    pv_surplus_kw=user.pv_surplus_kw,
                    storage=storage,
                    capacity_kwh=max(cap, 1e-9),
                )
                prod.household = user
                self.producers.append(prod)
        err = self._rngs["forecast"].standard_normal((len(sc.rep_plants), sc.hours))
        self.reps: list[RepAgent] = []
        for j, plant in enumerate(sc.rep_plants):
            forecast = plant.p_kw * self.pv_shape
            actual = forecast * np.clip(1.0 + sc.forecast_error_std * err[j], 0.0, None)
            self.reps.append(
                RepAgent(
                    self,
                    bus=plant.bus,
                    index=j,
                    nameplate_kw=plant.p_kw,
                    forecast_kw=forecast,
                    actual_kw=actual,
                    stable_fraction=sc.rep_stable_fraction,
                )
            )
        sub = int(self.feeder.substation_bus)
        self.grid = GridAgent(self, bus=sub)
        self.operator = NetworkOperator(self, feeder=self.feeder)
        self.tdno = TDNO(self, bus=sub)
        # faults: pre-drawn per (hour, seller) so they do not depend on the trading path
        n_sellers = len(self.producers) + len(self.reps)
        self._faults = self._rngs["faults"].random((sc.hours, n_sellers)) < sc.fault_rate

    # ---------------------------------------------------------------------------------------
    def _bus_sum(self, agents: Sequence[Any], attr: str) -> pd.DataFrame:
        """Hour × bus frame summing a per-agent hourly array."""
        buses = self.feeder.buses.index
        out = np.zeros((self.params.hours, len(buses)))
        pos = {int(b): i for i, b in enumerate(buses)}
        for a in agents:
            out[:, pos[a.bus]] += getattr(a, attr)
        return pd.DataFrame(out, index=pd.RangeIndex(self.params.hours, name="hour"), columns=buses)

    def _opf_inputs(self, hours: slice | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Forecast net loads: users' metered demand, REP forecasts as negative loads."""
        p = self._bus_sum(self.users, "demand_kw")
        q = self._bus_sum(self.users, "q_kvar")
        for r in self.reps:
            p[r.bus] -= r.forecast_kw
        if hours is not None:
            p, q = p.iloc[hours], q.iloc[hours]
        return p, q

    def _solve_opf(self, p: pd.DataFrame, q: pd.DataFrame, price: np.ndarray) -> OPFResult:
        sc = self.params
        pv = None
        if sc.include_feeder_pv:
            nameplate = self.feeder.buses["pv_kw"].to_numpy()
            pv = pd.DataFrame(
                np.outer(self.pv_shape[p.index.to_numpy()], nameplate),
                index=p.index,
                columns=self.feeder.buses.index,
            )
        t0 = time.perf_counter()
        res = solve_opf(
            self.feeder,
            p,
            q,
            price_usd_per_mwh=price,
            pv_kw=pv,
            include_pv=sc.include_feeder_pv,
            v_min_pu=sc.v_min_pu,
            v_max_pu=sc.v_max_pu,
            dt_h=sc.dt_h,
        )
        self.timing["opf_s"] += time.perf_counter() - t0
        return res

    def _price_day(self) -> None:
        """Operator: day-ahead OPF -> DLMP per bus and hour (the caps); producers plan."""
        sc = self.params
        p, q = self._opf_inputs()
        if sc.opf_mode == "day_ahead":
            res = self._solve_opf(p, q, self.wholesale)
            self.day_ahead = res
            self.operator.dlmp = res.dlmp_usd_per_mwh.copy()
            self.operator.dlmp.index = pd.RangeIndex(sc.hours)
            plan = self.operator.dlmp
        else:
            self.day_ahead = None
            self.operator.dlmp = pd.DataFrame(
                np.nan, index=pd.RangeIndex(sc.hours), columns=self.feeder.buses.index
            )
            # producers plan on the expected price: wholesale at their bus
            plan = pd.DataFrame(
                np.repeat(self.wholesale[:, None], len(self.feeder.buses), axis=1),
                columns=self.feeder.buses.index,
            )
        for prod in self.producers:
            prod.plan_day(plan[prod.bus].to_numpy(), sc.producer_strategy, sc.producer_peak_hours)

    # ---------------------------------------------------------------------------------------
    def _setup_chains(self, spec: str) -> None:
        sc = self.params
        t0 = time.perf_counter()
        self.chains: dict[str, ChainBackend] = make_chains(
            spec, {"letb": sc.letb_chain_id, "retb": sc.retb_chain_id}
        )
        for ch in self.chains.values():
            self.ledger.attach(ch)
        seed = sc.seed
        acct = {
            "admin": derive_account(seed, "admin", 0),
            "operator": derive_account(seed, "operator", 0),
            "tdno": derive_account(seed, "tdno", 0),
        }
        self.signers: dict[tuple[str, str], Signer] = {}

        def signer(agent_key: str, account: Any, chain: str) -> Signer:
            s = self.chains[chain].signer(account, agent=agent_key)
            self.signers[(agent_key, chain)] = s
            return s

        for role, a in acct.items():
            for ch in self.chains:
                signer(role, a, ch)
        for u in self.users:
            u.account = derive_account(seed, "user", u.index)
            u.letb_signer = signer(f"user{u.index}", u.account, "letb")
            u.retb_signer = signer(f"user{u.index}", u.account, "retb")
        for p in self.producers:
            p.account = derive_account(seed, "producer", p.index)
            p.signer = signer(f"producer{p.index}", p.account, "letb")
        for r in self.reps:
            r.account = derive_account(seed, "rep", r.index)
            r.signer = signer(f"rep{r.index}", r.account, "retb")
        self.operator.account, self.tdno.account = acct["operator"], acct["tdno"]
        # gas for everyone (native coin from each chain's faucet)
        gas_wei = 10**21
        for ch_name, ch in self.chains.items():
            addrs = [acct[k].address for k in acct]
            if ch_name == "letb":
                addrs += [p.account.address for p in self.producers]
            else:
                addrs += [r.account.address for r in self.reps]
            addrs += [u.account.address for u in self.users]
            ch.fund(addrs, gas_wei)
        # deploy: token per chain, LETB per area, RETB zone
        user_units = round(sc.user_initial_usd * BASE_UNITS_PER_USD)
        bond = round(sc.registration_bond_usd * BASE_UNITS_PER_USD)
        n_participants = len(self.users) + len(self.producers) + len(self.reps)
        supply = (user_units + bond * 2) * (n_participants + 1) + 10 * BASE_UNITS_PER_USD
        admin = {c: self.signers[("admin", c)] for c in self.chains}
        res = send_many([(admin[c], EnergyToken.deploy_request(supply)) for c in self.chains])
        self.tokens = {
            c: EnergyToken.at_result(self.chains[c], r)
            for c, r in zip(self.chains, res, strict=True)
        }
        op, td = acct["operator"].address, acct["tdno"].address
        reqs = [
            (
                admin["letb"],
                LETB.deploy_request(
                    self.tokens["letb"].address,
                    a,
                    op,
                    td,
                    sc.initial_reputation,
                    bond,
                ),
            )
            for a in range(self.n_areas)
        ]
        reqs.append(
            (
                admin["retb"],
                RETB.deploy_request(
                    self.tokens["retb"].address,
                    0,
                    op,
                    td,
                    sc.initial_reputation,
                    bond,
                    sc.incentive_log_base,
                    round(sc.incentive_scale_kwh * 1000),
                    sc.incentive_stable_ref_hours,
                ),
            )
        )
        res = send_many(reqs)
        self.letb = [LETB.at_result(self.chains["letb"], r) for r in res[:-1]]
        self.retb = RETB.at_result(self.chains["retb"], res[-1])
        # minter, escrow seeds, token grants
        reqs = [(admin["retb"], self.tokens["retb"].set_minter(self.retb.address, True))]
        reqs += [(admin["letb"], self.tokens["letb"].transfer(m.address, 1)) for m in self.letb]
        reqs.append((admin["retb"], self.tokens["retb"].transfer(self.retb.address, 1)))
        for u in self.users:
            for c in self.chains:
                reqs.append(
                    (admin[c], self.tokens[c].transfer(u.account.address, user_units + bond))
                )
        if bond:
            for p in self.producers:
                reqs.append((admin["letb"], self.tokens["letb"].transfer(p.account.address, bond)))
            for r in self.reps:
                reqs.append((admin["retb"], self.tokens["retb"].transfer(r.account.address, bond)))
        send_many(reqs)
        # approvals (each participant signs its own)
        reqs = []
        for u in self.users:
            reqs.append(
                (
                    u.letb_signer,
                    self.tokens["letb"].approve(self.letb[u.area].address),
                )
            )
            reqs.append((u.retb_signer, self.tokens["retb"].approve(self.retb.address)))
        if bond:
            for p in self.producers:
                reqs.append(
                    (
                        p.signer,
                        self.tokens["letb"].approve(self.letb[p.area].address),
                    )
                )
            for r in self.reps:
                reqs.append((r.signer, self.tokens["retb"].approve(self.retb.address)))
        send_many(reqs)
        # registration by the operator (it knows each meter's bus)
        ops = {c: self.signers[("operator", c)] for c in self.chains}
        reqs = []
        for p in self.producers:
            reqs.append(
                (
                    ops["letb"],
                    self.letb[p.area].register(
                        p.account.address,
                        _commitment(seed, "producer", p.index),
                        p.bus,
                        1,
                    ),
                )
            )
        for r in self.reps:
            reqs.append(
                (
                    ops["retb"],
                    self.retb.register(
                        r.account.address, _commitment(seed, "rep", r.index), r.bus, 1
                    ),
                )
            )
        for u in self.users:
            com = _commitment(seed, "user", u.index)
            reqs.append((ops["letb"], self.letb[u.area].register(u.account.address, com, u.bus, 2)))
            reqs.append((ops["retb"], self.retb.register(u.account.address, com, u.bus, 2)))
        res = send_many(reqs)
        for p, r in zip(self.producers, res[: len(self.producers)], strict=True):
            ev = _event(self.letb[p.area], r, "Registered")
            p.producer_id = int(ev["producer_id"])
            p.reputation = sc.initial_reputation
        for r in self.reps:
            r.reputation = sc.initial_reputation
        self._supply = {c: self.tokens[c].total_supply() for c in self.chains}
        self.timing["chain_s"] += time.perf_counter() - t0

    def _send(self, phase: str, items: list[tuple[Signer, TxRequest]]) -> list[TxResult]:
        """One phase = one batch = one block per chain involved (reverts raise, named)."""
        self.ledger.phase = phase
        t0 = time.perf_counter()
        out = send_many(items) if items else []
        self.timing["chain_s"] += time.perf_counter() - t0
        for r in out:
            self._hour_gas[r.chain] += r.gas_used
        self._hour_tx += len(out)
        return out

    def _view(self, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            self.timing["chain_s"] += time.perf_counter() - t0

    # ==========================================================================================
    # one market hour
    def step(self) -> None:
        sc = self.params
        if self.t >= sc.hours:
            self.running = False
            return
        t = self.t
        t_start = time.perf_counter()
        chain0, opf0 = self.timing["chain_s"], self.timing["opf_s"]
        self.ledger.t = t
        self._hour_gas = {c: 0 for c in self.chains}
        self._hour_tx = 0
        for a in (*self.users, self.grid):
            a.reset_hour()
        caps = self._phase1_operator(t)
        offers = self._phase2_offers(t, caps)
        letb_req = self._phase3_letb(t)
        retb_trades = self._phase4_retb(t)
        self._phase5_grid(t)
        metered = self._phase6_tdno(t, letb_req, retb_trades)
        minted = self._phase7_feedback(t, letb_req, retb_trades, metered)
        row = self._phase8_record(t, offers, minted)
        self.t += 1
        self.timing["python_s"] += (
            (time.perf_counter() - t_start)
            - (self.timing["chain_s"] - chain0)
            - (self.timing["opf_s"] - opf0)
        )
        self.hour = row
        self.datacollector.collect(self)
        self._record_agents(t)
        if self.t >= sc.hours:
            self.running = False

    # --- 1 ----------------------------------------------------------------------------------
    def _phase1_operator(self, t: int) -> pd.Series:
        sc = self.params
        if sc.opf_mode == "hourly":
            p, q = self._opf_inputs(slice(t, t + 1))
            res = self._solve_opf(p, q, self.wholesale[t : t + 1])
            self.operator.dlmp.loc[t] = res.dlmp_usd_per_mwh.iloc[0].to_numpy()
            self.last_opf = res
        else:
            self.last_opf = self.day_ahead
        caps = self.operator.caps(t)
        fit = price_to_chain(self.fit)
        items = []
        ops = {c: self.signers[("operator", c)] for c in self.chains}
        for a, m in enumerate(self.letb):
            buses = sorted({p.bus for p in self.producers if p.area == a})
            buses = [b for b in buses if price_to_chain(caps[b]) >= fit]
            items.append(
                (
                    ops["letb"],
                    m.open_hour(t, fit, buses, [price_to_chain(caps[b]) for b in buses]),
                )
            )
        buses = sorted({r.bus for r in self.reps})
        buses = [b for b in buses if price_to_chain(caps[b]) >= fit]
        items.append(
            (
                ops["retb"],
                self.retb.open_hour(t, fit, buses, [price_to_chain(caps[b]) for b in buses]),
            )
        )
        self._send("open_hour", items)
        return caps

    # --- 2 ----------------------------------------------------------------------------------
    def _phase2_offers(self, t: int, caps: pd.Series) -> dict[str, float]:
        sc = self.params
        fit = self.fit
        items: list[tuple[Signer, TxRequest]] = []
        by_area: dict[int, list[LocalProducer]] = defaultdict(list)
        for p in self.producers:
            offer = p.make_offer(t, float(caps[p.bus]), fit, sc.producer_price_fraction, sc.dt_h)
            if offer is not None:
                p.offer_price = price_to_chain(offer.price_usd_per_mwh)
                by_area[p.area].append(p)
        offered_wh = 0
        for _a, prods in sorted(by_area.items()):
            # insertion hints computed off chain: post in price order, each after the previous
            prods.sort(key=lambda p: (p.offer_price, p.producer_id))
            prev = 0
            for p in prods:
                m = self.letb[p.area]
                items.append((p.signer, m.post_offer(t, p.offer.e_wh, p.offer_price, prev)))
                prev = p.producer_id
                offered_wh += p.offer.e_wh
        rep_wh = 0
        for r in self.reps:
            post = r.make_post(t, float(caps[r.bus]), fit, sc.rep_price_fraction, sc.dt_h)
            if post is not None:
                items.append(
                    (
                        r.signer,
                        self.retb.post_offer(
                            t,
                            t,
                            post.window_end,
                            post.capacity_wh,
                            price_to_chain(post.price_usd_per_mwh),
                            post.stable_hours,
                        ),
                    )
                )
                rep_wh += post.capacity_wh
        self._send("post_offer", items)
        return {"offered_local_kwh": offered_wh / 1000.0, "offered_renewable_kwh": rep_wh / 1000.0}

    # --- 3 ----------------------------------------------------------------------------------
    def _phase3_letb(self, t: int) -> dict[int, dict[str, Any]]:
        sc = self.params
        order = list(self.users)
        self.random.shuffle(order)
        items, who = [], []
        for u in order:
            u.m_wh = u.demand_wh(t, sc.dt_h)
            if u.m_wh > 0:
                items.append((u.letb_signer, self.letb[u.area].request(t, u.m_wh, u.rt)))
                who.append(u)
        self._user_order = order
        results = self._send("letb_request", items)
        out: dict[int, dict[str, Any]] = {}
        for u, res in zip(who, results, strict=True):
            fills, req = [], None
            for name, ev in _events(self.letb[u.area], res):
                if name == "Trade":
                    fills.append(ev)
                elif name == "Requested":
                    req = ev
            assert req is not None, "LETB request without Requested event"
            u.local_wh = int(req["filled_wh"])
            if fills:
                fills.sort(key=lambda e: e["index"])
                out[u.unique_id] = {
                    "user": u,
                    "nonce": int(req["nonce"]),
                    "fills": fills,
                    "tx": res,
                }
        return out

    # --- 4 ----------------------------------------------------------------------------------
    def _phase4_retb(self, t: int) -> dict[int, dict[str, Any]]:
        live = []
        for r in self.reps:
            if r.post is None:
                continue
            o = self._view(lambda r=r: self.retb.rep_offer(r.account.address))
            r.reputation = int(o["reputation"])
            live.append(
                {
                    "rep": r,
                    "price": int(o["price"]),
                    "remaining": int(o["remaining_wh"]),
                    "start": int(o["start"]),
                    "end": int(o["end"]),
                    "reputation": int(o["reputation"]),
                }
            )
        items, who = [], []
        for u in self._user_order:
            u.shortage_wh = u.m_wh - u.local_wh
            if u.shortage_wh <= 0 or not live:
                continue
            eligible = [
                o
                for o in live
                if o["start"] <= t
                and t + 1 <= o["end"]
                and o["remaining"] >= u.shortage_wh
                and o["reputation"] >= u.rt
            ]
            if not eligible:
                continue
            ranking = self.operator.rank_reps(
                t,
                u.bus,
                [
                    (i, o["rep"].bus, price_from_base_units_per_wh(o["price"]))
                    for i, o in enumerate(eligible)
                ],
            )
            best = eligible[ranking[0]]
            best["remaining"] -= u.shortage_wh
            items.append(
                (
                    u.retb_signer,
                    self.retb.request(
                        t, u.shortage_wh, t, t + 1, u.rt, best["rep"].account.address
                    ),
                )
            )
            who.append(u)
        results = self._send("retb_request", items)
        out: dict[int, dict[str, Any]] = {}
        reps_by_addr = {r.account.address: r for r in self.reps}
        for u, res in zip(who, results, strict=True):
            trade = _event(self.retb, res, "Trade")
            u.renewable_wh = int(trade["e_wh"])
            rep = reps_by_addr[trade["rep"]]
            rep.sold_wh += u.renewable_wh
            out[u.unique_id] = {"user": u, "trade": trade, "rep": rep, "tx": res}
        return out

    # --- 5 ----------------------------------------------------------------------------------
    def _phase5_grid(self, t: int) -> None:
        tariff = float(self.tariff[t])
        for u in self.users:
            rest = u.m_wh - u.local_wh - u.renewable_wh
            if rest < 0:
                raise ConservationError(
                    f"hour {t}: user {u.unique_id} at bus {u.bus} bought {-rest} Wh more than "
                    "its demand on the markets"
                )
            self.grid.sell(u, rest, tariff)

    # --- 6 ----------------------------------------------------------------------------------
    def _phase6_tdno(
        self, t: int, letb_req: dict[int, dict[str, Any]], retb_trades: dict[int, dict[str, Any]]
    ) -> dict[str, Any]:
        sc = self.params
        faults = self._faults[t]
        # what each producer sold, trade by trade
        prod_by_addr = {p.account.address: p for p in self.producers}
        sold: dict[str, list[tuple[int, int, int]]] = defaultdict(list)  # seller -> (uid, i, e)
        for uid, req in letb_req.items():
            for i, f in enumerate(req["fills"]):
                sold[f["seller"]].append((uid, i, int(f["e_wh"])))
        delivered_letb: dict[int, list[int]] = {
            uid: [0] * len(req["fills"]) for uid, req in letb_req.items()
        }
        for p in self.producers:
            trades = sold.get(p.account.address, [])
            p.sold_wh = sum(e for _, _, e in trades)
            fault = sc.fault_delivery_fraction if faults[p.index] else None
            deliverable = p.deliverable_wh(fault)
            split = pro_rata(deliverable, [e for _, _, e in trades])
            for (uid, i, _e), d in zip(trades, split, strict=True):
                delivered_letb[uid][i] = d
            p.settle(sum(split), sc.dt_h)
        unknown = set(sold) - set(prod_by_addr)
        if unknown:
            raise ConservationError(f"hour {t}: LETB trades by unknown sellers {sorted(unknown)}")
        delivered_retb: dict[int, int] = {}
        n_prod = len(self.producers)
        for r in self.reps:
            trades = [
                (uid, int(x["trade"]["e_wh"])) for uid, x in retb_trades.items() if x["rep"] is r
            ]
            produced = r.produced_wh(t, sc.dt_h)
            deliverable = min(r.sold_wh, produced)
            if faults[n_prod + r.index]:
                deliverable = int(deliverable * sc.fault_delivery_fraction)
            split = pro_rata(deliverable, [e for _, e in trades])
            for (uid, _e), d in zip(trades, split, strict=True):
                delivered_retb[uid] = d
            r.settle(t, sum(split), sc.dt_h)
        # TDNO confirms on chain -> escrow pays producers, refunds buyers
        td = {c: self.signers[("tdno", c)] for c in self.chains}
        items = []
        letb_keys = list(letb_req)
        for uid in letb_keys:
            req = letb_req[uid]
            u = req["user"]
            items.append(
                (
                    td["letb"],
                    self.letb[u.area].settle(
                        u.account.address,
                        req["nonce"],
                        t,
                        req["fills"],
                        delivered_letb[uid],
                    ),
                )
            )
        retb_keys = list(retb_trades)
        for uid in retb_keys:
            items.append(
                (
                    td["retb"],
                    self.retb.settle(retb_trades[uid]["trade"], delivered_retb[uid]),
                )
            )
        results = self._send("settle", items)
        tariff = float(self.tariff[t])
        for k, (uid, res) in enumerate(zip(letb_keys + retb_keys, results, strict=True)):
            is_letb = k < len(letb_keys)
            u = (letb_req if is_letb else retb_trades)[uid]["user"]
            market = self.letb[u.area] if is_letb else self.retb
            ev = _event(market, res, "Settled")
            paid = usd_from_base_units(int(ev["paid"]))
            if is_letb:
                d = sum(delivered_letb[uid])
                u.local_usd += paid
                short = u.local_wh - d
                u.local_wh = d
            else:
                d = delivered_retb[uid]
                u.renewable_usd += paid
                short = u.renewable_wh - d
                u.renewable_wh = d
            if short > 0:  # balancing: the grid makes up what was not delivered
                self.grid.sell(u, short, tariff)
        # producers' exports and REP exports are bought by the grid at the feed-in tariff
        for p in self.producers:
            p.revenue_hour_usd = self.grid.buy_export(p.exported_kwh, self.fit)
        for r in self.reps:
            self.grid.buy_export(r.exported_kwh, self.fit)
        self._power_flows(t)
        return {"letb": delivered_letb, "retb": delivered_retb}

    def _power_flows(self, t: int) -> None:
        """AC power flow of the metered hour (trading) and of the baseline."""
        t0 = time.perf_counter()
        buses = self.feeder.buses.index
        p_load = pd.Series(0.0, index=buses)
        q_load = pd.Series(0.0, index=buses)
        pv_self = pd.Series(0.0, index=buses)
        for u in self.users:
            p_load[u.bus] += u.load_kw[t] + u.ev_kw[t]
            q_load[u.bus] += u.q_kvar[t]
            pv_self[u.bus] += u.self_pv_kw[t]
        rep_out = pd.Series(0.0, index=buses)
        for r in self.reps:
            rep_out[r.bus] += r.actual_kw[t]
        batt = pd.Series(0.0, index=buses)
        for p in self.producers:
            batt[p.bus] += p.battery_power_kw(self.params.dt_h)
        if self.params.include_feeder_pv:
            rep_out += self.feeder.buses["pv_kw"] * self.pv_shape[t]
        kw = dict(include_pv=True, zip=self.zip)
        # battery discharge is an injection, charging a load (constant power both)
        self.last_power_flow = run_power_flow(
            self.feeder, p_load, q_load, pv_kw=pv_self + rep_out + batt, **kw
        )
        self.last_power_flow_baseline = run_power_flow(
            self.feeder, p_load, q_load, pv_kw=pv_self + rep_out, **kw
        )
        self.timing["power_flow_s"] += time.perf_counter() - t0

    # --- 7 ----------------------------------------------------------------------------------
    def _phase7_feedback(
        self,
        t: int,
        letb_req: dict[int, dict[str, Any]],
        retb_trades: dict[int, dict[str, Any]],
        metered: dict[str, Any],
    ) -> int:
        """Stage 4: smart meters rate each trade; returns the incentive base units minted."""
        sc = self.params
        items = []
        keys: list[tuple[str, int]] = []
        for uid, req in letb_req.items():
            u = req["user"]
            scores = [
                meter_score(int(f["e_wh"]), d, sc.feedback_tolerance, MAX_SCORE)
                for f, d in zip(req["fills"], metered["letb"][uid], strict=True)
            ]
            req["scores"] = scores
            items.append(
                (
                    u.letb_signer,
                    self.letb[u.area].feedback(
                        u.account.address, req["nonce"], t, req["fills"], scores
                    ),
                )
            )
            keys.append(("letb", uid))
        for uid, x in retb_trades.items():
            u = x["user"]
            d = metered["retb"][uid]
            x["score"] = meter_score(int(x["trade"]["e_wh"]), d, sc.feedback_tolerance, MAX_SCORE)
            items.append((u.retb_signer, self.retb.feedback(x["trade"], d, x["score"])))
            keys.append(("retb", uid))
        results = self._send("feedback", items)
        minted_units = 0
        prod_by_addr = {p.account.address: p for p in self.producers}
        rep_by_addr = {r.account.address: r for r in self.reps}
        for (kind, uid), res in zip(keys, results, strict=True):
            if kind == "letb":
                req = letb_req[uid]
                u = req["user"]
                for name, ev in _events(self.letb[u.area], res):
                    if name == "Rated":
                        prod_by_addr[ev["seller"]].reputation = int(ev["reputation"])
                self._trade_rows_letb(t, req, metered["letb"][uid])
            else:
                x = retb_trades[uid]
                incentive = 0
                for name, ev in _events(self.retb, res):
                    if name == "Rated":
                        rep_by_addr[ev["rep"]].reputation = int(ev["reputation"])
                    elif name == "IncentiveMinted":
                        incentive = int(ev["incentive"])
                minted_units += incentive
                x["rep"].incentive_usd += usd_from_base_units(incentive)
                self._trade_row_retb(t, x, metered["retb"][uid], incentive)
        return minted_units

    def _trade_rows_letb(self, t: int, req: dict[str, Any], delivered: list[int]) -> None:
        u = req["user"]
        res: TxResult = req["tx"]
        for f, d, s in zip(req["fills"], delivered, req["scores"], strict=True):
            self.trade_rows.append(
                {
                    "t": t,
                    "chain": "letb",
                    "area": u.area,
                    "buyer": u.account.address,
                    "buyer_id": u.unique_id,
                    "seller": f["seller"],
                    "producer_id": int(f["producer_id"]),
                    "nonce": req["nonce"],
                    "index": int(f["index"]),
                    "e_wh": int(f["e_wh"]),
                    "price": int(f["price"]),
                    "price_usd_per_mwh": price_from_base_units_per_wh(int(f["price"])),
                    "delivered_wh": int(d),
                    "feedback": int(s),
                    "incentive_usd": 0.0,
                    "tx_hash": res.tx_hash,
                    "block": res.block_number,
                }
            )

    def _trade_row_retb(self, t: int, x: dict[str, Any], delivered: int, incentive: int) -> None:
        u, tr, res = x["user"], x["trade"], x["tx"]
        self.trade_rows.append(
            {
                "t": t,
                "chain": "retb",
                "area": -1,
                "buyer": u.account.address,
                "buyer_id": u.unique_id,
                "seller": tr["rep"],
                "producer_id": x["rep"].index,
                "nonce": int(tr["nonce"]),
                "index": 0,
                "e_wh": int(tr["e_wh"]),
                "price": int(tr["price"]),
                "price_usd_per_mwh": price_from_base_units_per_wh(int(tr["price"])),
                "delivered_wh": int(delivered),
                "feedback": int(x["score"]),
                "incentive_usd": usd_from_base_units(incentive),
                "tx_hash": res.tx_hash,
                "block": res.block_number,
            }
        )

    # --- 8 ----------------------------------------------------------------------------------
    def _phase8_record(self, t: int, offers: dict[str, float], minted_units: int) -> dict[str, Any]:
        sc = self.params
        tariff = float(self.tariff[t])
        demand = local = ren = grid = 0
        cost = cost_b = 0.0
        for u in self.users:
            if u.m_wh != u.local_wh + u.renewable_wh + u.grid_wh:
                raise ConservationError(
                    f"hour {t}: user {u.unique_id} at bus {u.bus}: demand {u.m_wh} Wh != local "
                    f"{u.local_wh} + renewable {u.renewable_wh} + grid {u.grid_wh} Wh"
                )
            u.hour_cost_usd = u.local_usd + u.renewable_usd + u.grid_usd
            u.hour_cost_usd_baseline = u.m_wh * tariff / 1e6
            u.cost_usd += u.hour_cost_usd
            u.cost_usd_baseline += u.hour_cost_usd_baseline
            demand += u.m_wh
            local += u.local_wh
            ren += u.renewable_wh
            grid += u.grid_wh
            cost += u.hour_cost_usd
            cost_b += u.hour_cost_usd_baseline
        # tokens: supply change == minted incentives; escrow back to its seed after settlement
        t0 = time.perf_counter()
        supply = {c: self.tokens[c].total_supply() for c in self.chains}
        escrow = [self.tokens["letb"].balance_of(m.address) for m in self.letb]
        escrow.append(self.tokens["retb"].balance_of(self.retb.address))
        self.timing["chain_s"] += time.perf_counter() - t0
        if supply["letb"] != self._supply["letb"]:
            raise ConservationError(
                f"hour {t}: LETB-chain token supply changed by "
                f"{supply['letb'] - self._supply['letb']} base units (no minting allowed there)"
            )
        d_supply = supply["retb"] - self._supply["retb"]
        if d_supply != minted_units:
            raise ConservationError(
                f"hour {t}: RETB-chain token supply changed by {d_supply} base units but "
                f"{minted_units} were minted as incentives"
            )
        self._supply = supply
        bond_units = round(sc.registration_bond_usd * BASE_UNITS_PER_USD)
        seeds = [1 + bond_units * self._registrations(m) for m in (*self.letb, self.retb)]
        bad = [i for i, (e, s) in enumerate(zip(escrow, seeds, strict=True)) if e != s]
        if bad:
            raise ConservationError(
                f"hour {t}: escrow of market(s) {bad} holds {[escrow[i] for i in bad]} base "
                f"units after settlement, expected {[seeds[i] for i in bad]}"
            )
        pf, pfb = self.last_power_flow, self.last_power_flow_baseline
        charge = sum(p.charge_kwh for p in self.producers)
        discharge = sum(p.discharge_kwh for p in self.producers)
        dlmp = self.operator.caps(t)
        opf = self.last_opf
        row = {
            "t": t,
            "clock_hour": int(self.clock_hours[t]),
            "demand_kwh": demand / 1000.0,
            "local_kwh": local / 1000.0,
            "renewable_kwh": ren / 1000.0,
            "grid_import_kwh": grid / 1000.0,
            "deficiency_kwh": (demand - local) / 1000.0,
            "demand_kwh_baseline": demand / 1000.0,
            "local_kwh_baseline": 0.0,
            "renewable_kwh_baseline": 0.0,
            "grid_import_kwh_baseline": demand / 1000.0,
            "user_cost_usd": cost,
            "user_cost_usd_baseline": cost_b,
            "user_price_usd_per_mwh": cost / demand * 1e6 if demand else tariff,
            "user_price_usd_per_mwh_baseline": tariff,
            "tariff_usd_per_mwh": tariff,
            "wholesale_usd_per_mwh": float(self.wholesale[t]),
            "dlmp_mean_usd_per_mwh": float(dlmp.mean()),
            "dlmp_max_usd_per_mwh": float(dlmp.max()),
            "rooftop_pv_kwh": float(sum(u.self_pv_kw[t] for u in self.users)) * sc.dt_h,
            "rep_pv_kwh": float(sum(r.actual_kw[t] for r in self.reps)) * sc.dt_h,
            "rep_forecast_kwh": float(sum(r.forecast_kw[t] for r in self.reps)) * sc.dt_h,
            "battery_charge_kwh": charge,
            "battery_discharge_kwh": discharge,
            "battery_power_kw": (discharge - charge) / sc.dt_h,
            "battery_energy_kwh": float(sum(p.e_kwh for p in self.producers)),
            "exported_kwh": self.grid.hour_bought_kwh,
            **offers,
            "incentives_usd": usd_from_base_units(minted_units),
            "p_substation_kw": pf.p_substation_kw,
            "p_substation_kw_baseline": pfb.p_substation_kw,
            "loss_kw": pf.loss_kw,
            "loss_kw_baseline": pfb.loss_kw,
            "v_min_pu": float(pf.v_pu.min()),
            "v_max_pu": float(pf.v_pu.max()),
            "opf_max_relaxation_gap": float(
                opf.exactness.gap_by_hour.iloc[0 if sc.opf_mode == "hourly" else t]
            ),
            "opf_max_v_error_pu": float(
                opf.exactness.v_error_by_hour.iloc[0 if sc.opf_mode == "hourly" else t]
            ),
            "tx_count": self._hour_tx,
            "gas_used": int(sum(self._hour_gas.values())),
            "gas_used_letb": int(self._hour_gas["letb"]),
            "gas_used_retb": int(self._hour_gas["retb"]),
        }
        self.hourly_rows.append(row)
        return row

    @property
    def gas_rows(self) -> pd.DataFrame:
        """One row per mined transaction so far (the Ledger's gas frame; set-up rows t = -1)."""
        return self.ledger.gas()

    def _registrations(self, market: MarketContract) -> int:
        if market is self.retb:
            return len(self.reps) + len(self.users)
        a = self.letb.index(market)
        return sum(1 for p in self.producers if p.area == a) + sum(
            1 for u in self.users if u.area == a
        )

    def _record_agents(self, t: int) -> None:
        for a in self.agents:
            self.agent_rows.append(
                {
                    "t": t,
                    "agent_id": a.unique_id,
                    "role": a.role,
                    "bus": int(a.bus),
                    "area": int(getattr(a, "area", -1)),
                    "soc": float(a.soc) if hasattr(a, "soc") else np.nan,
                    "reputation": float(a.reputation)
                    if getattr(a, "reputation", None) is not None
                    else np.nan,
                    "cost_usd": float(a.cost_usd),
                    "cost_usd_baseline": float(getattr(a, "cost_usd_baseline", np.nan)),
                }
            )

    # ==========================================================================================
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
            summary=self.summary(hourly, gas),
            scenario=self.params,
        )

    def summary(self, hourly: pd.DataFrame, gas: pd.DataFrame) -> dict[str, Any]:
        sc = self.params
        if hourly.empty:
            return {"hours": 0}
        cost = float(hourly["user_cost_usd"].sum())
        cost_b = float(hourly["user_cost_usd_baseline"].sum())
        grid = float(hourly["grid_import_kwh"].sum())
        grid_b = float(hourly["grid_import_kwh_baseline"].sum())
        ops = gas[gas["t"] >= 0]
        by_op = {
            f"{c}.{o}": {
                "count": len(g),
                "mean": float(g["gas_used"].mean()),
                "max": int(g["gas_used"].max()),
            }
            for (c, o), g in ops.groupby(["contract", "operation"])
        }
        budget_per_hour = sc.chain_block_gas_limit * 3600.0 / sc.chain_block_period_s
        cap_used = {
            c: float(hourly[f"gas_used_{c}"].max() / budget_per_hour * 100.0)
            for c in ("letb", "retb")
        }
        return {
            "hours": len(hourly),
            "seed": sc.seed,
            "chain": self.chain_spec,
            "users": len(self.users),
            "producers": len(self.producers),
            "reps": len(self.reps),
            "letb_areas": self.n_areas,
            "demand_kwh": float(hourly["demand_kwh"].sum()),
            "local_kwh": float(hourly["local_kwh"].sum()),
            "renewable_kwh": float(hourly["renewable_kwh"].sum()),
            "grid_import_kwh": grid,
            "grid_import_kwh_baseline": grid_b,
            "grid_energy_saved_kwh": grid_b - grid,
            "grid_energy_saved_pct": 100.0 * (grid_b - grid) / grid_b if grid_b else 0.0,
            "user_cost_usd": cost,
            "user_cost_usd_baseline": cost_b,
            "cost_saving_usd": cost_b - cost,
            "cost_saving_pct": 100.0 * (cost_b - cost) / cost_b if cost_b else 0.0,
            "incentives_usd": float(hourly["incentives_usd"].sum()),
            "trades": len(self.trade_rows),
            "tx_count": len(ops),
            "total_gas": int(ops["gas_used"].sum()),
            "gas_by_operation": by_op,
            "chain_capacity_used_pct": cap_used,
            "chain_budget": {
                "block_gas_limit": sc.chain_block_gas_limit,
                "block_period_s": sc.chain_block_period_s,
            },
            "opf_mode": sc.opf_mode,
            "opf_max_relaxation_gap": float(hourly["opf_max_relaxation_gap"].max()),
            "opf_max_v_error_pu": float(hourly["opf_max_v_error_pu"].max()),
            "v_min_pu": float(hourly["v_min_pu"].min()),
            "v_max_pu": float(hourly["v_max_pu"].max()),
            "timing_s": {k: float(v) for k, v in self.timing.items()},
        }


MODEL_VARS = (
    "grid_import_kwh",
    "grid_import_kwh_baseline",
    "user_price_usd_per_mwh",
    "user_price_usd_per_mwh_baseline",
    "local_kwh",
    "renewable_kwh",
    "demand_kwh",
    "tx_count",
    "gas_used",
    "battery_power_kw",
    "dlmp_mean_usd_per_mwh",
    "incentives_usd",
    "v_min_pu",
    "v_max_pu",
)
TRADE_COLUMNS = (
    "t",
    "chain",
    "area",
    "buyer",
    "buyer_id",
    "seller",
    "producer_id",
    "nonce",
    "index",
    "e_wh",
    "price",
    "price_usd_per_mwh",
    "delivered_wh",
    "feedback",
    "incentive_usd",
    "tx_hash",
    "block",
)
AGENT_COLUMNS = (
    "t",
    "agent_id",
    "role",
    "bus",
    "area",
    "soc",
    "reputation",
    "cost_usd",
    "cost_usd_baseline",
)


def _hour_value(key: str) -> Callable[[EnergyMarketModel], Any]:
    return lambda m: m.hour.get(key) if getattr(m, "hour", None) else None


def _events(contract: DeployedContract, result: TxResult) -> list[tuple[str, dict[str, Any]]]:
    """(event name, args) of the contract's logs in a mined result, in log order."""
    return [(e.name, e.args) for e in contract.decode_logs(result)]


def _event(contract: DeployedContract, result: TxResult, name: str) -> dict[str, Any]:
    """Arguments of the one event `name` the contract emitted in a mined result."""
    found = [e.args for e in contract.decode_logs(result) if e.name == name]
    if len(found) != 1:
        raise ConservationError(
            f"{contract.label} transaction {result.tx_hash} emitted {len(found)} {name} events, "
            "expected exactly one"
        )
    return found[0]


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
