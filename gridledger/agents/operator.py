"""NetworkOperator: market areas, the OPF that prices every bus, DLMP caps, REP ranking.

- Areas: the LETB areas are cut along the feeder's main laterals (`derive_letb_areas`): the
  operator picks subtree roots whose subtree load is closest to an equal share of what is left,
  one area at a time; the rest of the tree (with the substation) is the last area.
- Prices: `solve_opf` (network/opf, SOCP DistFlow + Clarabel) on the forecast net loads (users'
  metered demand, REP forecasts as negative loads), at the substation energy price. "day_ahead"
  solves the whole horizon once; "hourly" re-solves each hour. The P-DLMP of each bus is its cap
  on both chains for that hour.
- Ranking: for a RETB request from a user at bus b, eligible REPs are ordered by delivered cost
  C_d · DLMP(b) / DLMP(rep bus) (the loss-adjusted cost of moving the energy to b), lowest first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import mesa
import numpy as np
import pandas as pd

from gridledger.day.pricing import price_hour
from gridledger.market.contracts import price_to_base_units_per_wh as to_chain
from gridledger.network.feeder import Feeder


class AreaError(ValueError):
    """LETB areas cannot be formed as asked (names the scenario field at fault)."""


def _subtree_loads(
    children: Mapping[int, Sequence[int]], load: Mapping[int, float], root: int, cut: set[int]
) -> dict[int, float]:
    """Load of every subtree under `root`, not counting subtrees already cut off."""
    out: dict[int, float] = {}
    order = [root]
    for bus in order:
        order.extend(c for c in children.get(bus, ()) if c not in cut)
    for bus in reversed(order):
        out[bus] = load.get(bus, 0.0) + sum(out[c] for c in children.get(bus, ()) if c not in cut)
    return out


def derive_letb_areas(feeder: Feeder, n_areas: int, roots: Sequence[int] = ()) -> dict[int, int]:
    """Map every bus to an area index 0..n-1 by cutting the feeder tree along its laterals.

    With explicit `roots`, area k is the subtree of roots[k] (minus deeper roots' subtrees) and
    the remaining buses join the area of the substation side, index len(roots). Otherwise the
    n−1 roots are chosen greedily: each cut takes the subtree whose load is closest to an equal
    share of the load not yet assigned.
    """
    children = {int(k): tuple(int(c) for c in v) for k, v in feeder.children.items()}
    load = {int(b): float(p) for b, p in feeder.buses["p_kw"].items()}
    sub = int(feeder.substation_bus)
    if roots:
        for r in roots:
            if r not in load:
                raise AreaError(f"letb_area_roots: bus {r} is not on feeder {feeder.name}")
            if r == sub:
                raise AreaError("letb_area_roots: the substation cannot root an area")
        cut_roots = list(roots)
    else:
        cut_roots = []
        cut: set[int] = set()
        for k in range(n_areas - 1):
            sub_loads = _subtree_loads(children, load, sub, cut)
            remaining = sub_loads[sub]
            target = remaining / (n_areas - k)
            candidates = [(abs(v - target), b) for b, v in sub_loads.items() if b != sub and v > 0]
            if not candidates:
                raise AreaError(f"letb_areas = {n_areas}: feeder has too few loaded subtrees")
            _, best = min(candidates)
            cut_roots.append(best)
            cut.add(best)
    area: dict[int, int] = {}
    root_index = {r: i for i, r in enumerate(cut_roots)}
    rest = len(cut_roots)
    stack = [(sub, rest)]
    while stack:
        bus, a = stack.pop()
        a = root_index.get(bus, a)
        area[bus] = a
        stack.extend((c, a) for c in children.get(bus, ()))
    # renumber so that areas are 0..n-1 ordered by their smallest bus
    first = {}
    for bus in sorted(area):
        first.setdefault(area[bus], len(first))
    return {bus: first[a] for bus, a in area.items()}


def delivered_cost(price_usd_per_mwh: float, dlmp_user: float, dlmp_rep: float) -> float:
    """Loss-adjusted cost of REP energy delivered at the user's bus ($/MWh)."""
    if dlmp_rep <= 0:
        return price_usd_per_mwh
    return price_usd_per_mwh * dlmp_user / dlmp_rep


class NetworkOperator(mesa.Agent):
    """Holds the DLMP table (hour × bus), posts the caps, ranks REPs for RETB requests."""

    role = "operator"

    def __init__(self, model: mesa.Model, *, feeder: Feeder) -> None:
        super().__init__(model)
        self.feeder = feeder
        self.dlmp: pd.DataFrame | None = None  # hour × bus, $/MWh
        self._dlmp = np.zeros((0, 0))
        self._pos = dict(feeder.topology.pos)
        self.bus = int(feeder.substation_bus)
        self.cost_usd = 0.0

    def set_dlmp(self, dlmp: pd.DataFrame) -> None:
        """The table of DLMPs ($/MWh), hour × bus (NaN for hours not priced yet)."""
        self.dlmp = dlmp
        self._dlmp = dlmp.to_numpy(dtype=float, copy=True)

    def set_dlmp_hour(self, t: int, dlmp_by_position: np.ndarray) -> None:
        """DLMPs of hour t (one per bus, in feeder table order) from an hourly OPF."""
        self._dlmp[t] = dlmp_by_position
        assert self.dlmp is not None
        self.dlmp.iloc[t] = dlmp_by_position

    def price_at(self, t: int, bus: int) -> float:
        """DLMP of `bus` in hour t ($/MWh)."""
        return float(self._dlmp[t, self._pos[bus]])

    def rank_reps(
        self, t: int, user_bus: int, posts: Sequence[tuple[int, int, float]]
    ) -> list[int]:
        """Order REP indices (index, bus, price) by delivered cost at `user_bus`, lowest first."""
        at_user = self.price_at(t, user_bus)
        keyed = [
            (delivered_cost(price, at_user, self.price_at(t, bus)), idx)
            for idx, bus, price in posts
        ]
        return [idx for _, idx in sorted(keyed)]

    def price_hour(self, t: int) -> dict[int, float]:
        """Stage 1: price hour t (the day-ahead OPF, or this hour's re-solve: day/pricing.py)
        and return every bus's DLMP cap ($/MWh); the model keeps the OPF as `last_opf`."""
        model: Any = self.model
        model.last_opf = price_hour(model, t)
        return self.caps(t)

    def open_caps(
        self, seller_buses: Iterable[int], caps: Mapping[int, float], fit_usd_per_mwh: float
    ) -> tuple[list[int], list[int]]:
        """The buses a market opens this hour and their caps in base units per Wh: the sellers'
        buses, sorted, without those whose cap is below the feed-in floor (nobody can sell
        there: the contract would refuse every price)."""
        fit = to_chain(fit_usd_per_mwh)
        buses = [b for b in sorted(set(seller_buses)) if to_chain(caps[b]) >= fit]
        return buses, [to_chain(caps[b]) for b in buses]

    def caps(self, t: int) -> dict[int, float]:
        """DLMP cap of every bus in hour t ($/MWh), by bus number."""
        row = self._dlmp[t]
        return {int(b): float(row[i]) for b, i in self._pos.items()}
