"""The ledger: every mined transaction and decoded event as tidy pandas frames.

`Ledger.attach(chain)` subscribes to a chain's mined results; `Ledger.watch(contract)` makes its
events decodable. The model sets `ledger.t` (market hour) and optionally `ledger.phase` before
each phase; every row records them. Frames:

* `gas()` -- one row per transaction: chain, contract, operation, sender, agent, gas_used, block,
  block_hash, tx_hash, t, phase, status, nonce, gas_limit, to (feeds Results.gas / the paper's
  Fig. 3),
* `events(name=None)` -- one row per decoded event (its arguments as columns),
* `trades()`, `settlements()`, `feedback()`, `reputations()`, `incentives()`, `funding()`.

`chain_capacity(gas_per_hour)` compares the gas a market hour needs with a consortium chain's
budget (block gas limit / block period, e.g. 30M gas per 5 s).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from gridledger.chain import ChainBackend, TxResult
from gridledger.market.contracts import DeployedContract, Event

__all__ = [
    "GAS_COLUMNS",
    "ChainCapacity",
    "Ledger",
    "chain_capacity",
]

GAS_COLUMNS = [
    "chain", "contract", "operation", "sender", "agent", "gas_used", "block", "block_hash",
    "tx_hash", "t", "phase", "status", "nonce", "gas_limit", "to",
]  # fmt: skip
EVENT_BASE_COLUMNS = [
    "chain", "contract", "address", "event", "block", "block_hash", "tx_hash", "log_index", "t",
    "phase",
]  # fmt: skip
FUNDING_OPERATIONS = ("fund_gas", "fund_tokens")


class Ledger:
    """Collects mined transactions and their decoded events across chains."""

    def __init__(self) -> None:
        self.t: int | None = None
        self.phase: str = ""
        self._tx_rows: list[tuple[Any, ...]] = []  # GAS_COLUMNS order
        self._event_rows: list[dict[str, Any]] = []
        self._contracts: dict[tuple[str, str], DeployedContract] = {}
        self._chains: list[ChainBackend] = []

    # ---- wiring ----
    def attach(self, chain: ChainBackend) -> Ledger:
        """Record every result `chain.mine()` produces from now on."""
        if any(c is chain for c in self._chains):
            return self
        self._chains.append(chain)
        chain.add_listener(self.record)
        return self

    def watch(self, *contracts: DeployedContract) -> Ledger:
        """Decode the events of these contracts (logs of unwatched addresses are skipped)."""
        for c in contracts:
            self._contracts[(c.chain.name, c.address)] = c
        return self

    # ---- recording ----
    def record(self, results: Iterable[TxResult]) -> None:
        """Add mined results (called by the chains; may be called directly).

        Transactions a dev node dropped unmined (block -1, see RpcChain) are not on chain and
        are left out."""
        for r in results:
            if r.block_number < 0:
                continue
            self._tx_rows.append(  # a tuple in GAS_COLUMNS order: a third of a dict's memory
                (
                    r.chain,
                    r.contract or "native",
                    r.function,
                    r.sender,
                    r.agent,
                    r.gas_used,
                    r.block_number,
                    r.block_hash,
                    r.tx_hash,
                    self.t,
                    self.phase,
                    r.status,
                    r.nonce,
                    r.gas_limit,
                    r.contract_address or "",
                )
            )
            for contract in {self._contracts.get((r.chain, lg.address)) for lg in r.logs} - {None}:
                assert contract is not None
                for ev in contract.decode_logs(r):
                    self._event_rows.append(self._event_row(ev))

    def _event_row(self, ev: Event) -> dict[str, Any]:
        row: dict[str, Any] = {
            "chain": ev.chain,
            "contract": ev.contract,
            "address": ev.address,
            "event": ev.name,
            "block": ev.block_number,
            "block_hash": ev.block_hash,
            "tx_hash": ev.tx_hash,
            "log_index": ev.log_index,
            "t": self.t,
            "phase": self.phase,
        }
        for k, v in ev.args.items():  # an event's own `t` (market hour) wins over the ledger's
            row[k] = v.hex() if isinstance(v, bytes) else v
        return row

    # ---- frames ----
    @property
    def n_tx(self) -> int:
        """Mined transactions recorded so far."""
        return len(self._tx_rows)

    def gas(self, start: int = 0, stop: int | None = None) -> pd.DataFrame:
        """One row per mined transaction (columns GAS_COLUMNS), rows start..stop-1."""
        df = pd.DataFrame(self._tx_rows[start:stop], columns=GAS_COLUMNS)
        return df.astype({"gas_used": "int64", "block": "int64", "status": "int64"})

    @property
    def n_events(self) -> int:
        """Decoded events recorded so far (a `start` for the frames of later events)."""
        return len(self._event_rows)

    def events(
        self, name: str | None = None, contract: str | None = None, *, start: int = 0
    ) -> pd.DataFrame:
        """Decoded events (from the `start`-th on), optionally of one event name and/or contract
        label. A long run's hourly checks pass `start` so each hour reads only its own events."""
        rows = [
            r
            for r in self._event_rows[start:]
            if (name is None or r["event"] == name)
            and (contract is None or r["contract"] == contract)
        ]
        if not rows:
            return pd.DataFrame(columns=EVENT_BASE_COLUMNS)
        return pd.DataFrame(rows)

    def _named(
        self, name: str, rename: Mapping[str, str] | None = None, start: int = 0
    ) -> pd.DataFrame:
        df = self.events(name, start=start)
        for old, new in (rename or {}).items():
            if old not in df.columns:
                continue
            # LETB names the seller `seller`, RETB `rep`: one ledger over both markets must
            # merge them into one column, never hold two columns of the same name.
            df[new] = df.pop(old) if new not in df.columns else df[new].combine_first(df.pop(old))
        return df.reset_index(drop=True)

    def trades(self, start: int = 0) -> pd.DataFrame:
        """Trade events of LETB (seller) and RETB (rep -> seller): buyer, seller, e_wh, price."""
        return self._named("Trade", {"rep": "seller"}, start)

    def settlements(self, start: int = 0) -> pd.DataFrame:
        return self._named("Settled", {"rep": "seller"}, start)

    def feedback(self, start: int = 0) -> pd.DataFrame:
        return self._named("Rated", {"rep": "seller"}, start)

    def reputations(self) -> pd.DataFrame:
        """Reputation of each seller after each rating: chain, contract, seller, t, reputation."""
        df = self.feedback()
        cols = ["chain", "contract", "seller", "t", "block", "reputation"]
        if df.empty:
            return pd.DataFrame(columns=cols)
        return df[cols].reset_index(drop=True)

    def incentives(self, start: int = 0) -> pd.DataFrame:
        return self._named("IncentiveMinted", {"rep": "seller"}, start)

    def funding(self) -> pd.DataFrame:
        """Set-up funding transactions (gas coin and tokens) recorded as such."""
        df = self.gas()
        return df[df["operation"].isin(FUNDING_OPERATIONS)].reset_index(drop=True)

    def gas_per_hour(self, chain: str | None = None) -> pd.Series:
        """Total gas used per market hour t (set-up rows with t=None are left out)."""
        df = self.gas()
        if chain is not None:
            df = df[df["chain"] == chain]
        df = df[df["t"].notna()]
        return df.groupby("t")["gas_used"].sum().astype("int64")


@dataclass(frozen=True)
class ChainCapacity:
    """How much of a consortium chain's hourly gas budget the market needs."""

    block_gas_limit: int
    block_period_s: float
    budget_gas_per_hour: float
    peak_gas_per_hour: int
    mean_gas_per_hour: float
    peak_utilisation: float
    mean_utilisation: float
    max_markets_at_peak: float
    """How many copies of this market (areas/feeders) one chain could carry at peak."""

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.__dict__.items()}


def chain_capacity(
    gas: pd.DataFrame | pd.Series | Iterable[int],
    *,
    chain: str | None = None,
    block_gas_limit: int = 30_000_000,
    block_period_s: float = 5.0,
) -> ChainCapacity:
    """Gas needed per market hour vs the budget `block_gas_limit * 3600 / block_period_s`.

    `gas` is either gas per hour (Series/iterable) or a gas frame with columns `t`, `gas_used`
    (and `chain`: pass `chain=` to look at one ledger, since each chain has its own budget);
    rows without an hour (set-up) are left out.
    """
    if block_gas_limit <= 0:
        raise ValueError(f"block_gas_limit must be > 0, got {block_gas_limit}")
    if block_period_s <= 0:
        raise ValueError(f"block_period_s must be > 0, got {block_period_s}")
    if isinstance(gas, pd.DataFrame):
        missing = {"t", "gas_used"} - set(gas.columns)
        if missing:
            raise ValueError(f"chain_capacity: gas frame lacks columns {sorted(missing)}")
        if chain is not None:
            gas = gas[gas["chain"] == chain]
        gas = gas[gas["t"].notna()].groupby("t")["gas_used"].sum()
    elif chain is not None:
        raise ValueError("chain_capacity: chain= needs a gas frame with a 'chain' column")
    values = [int(v) for v in (gas.to_numpy() if isinstance(gas, pd.Series) else gas)]
    budget = block_gas_limit * 3600.0 / block_period_s
    peak = max(values, default=0)
    mean = sum(values) / len(values) if values else 0.0
    return ChainCapacity(
        block_gas_limit=block_gas_limit,
        block_period_s=block_period_s,
        budget_gas_per_hour=budget,
        peak_gas_per_hour=peak,
        mean_gas_per_hour=mean,
        peak_utilisation=peak / budget,
        mean_utilisation=mean / budget,
        max_markets_at_peak=budget / peak if peak else float("inf"),
    )
