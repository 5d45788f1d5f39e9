"""Tree index arrays of a radial feeder (parent, sweep order, path and subtree incidence).

Built once per `Feeder` (gridledger/network/feeder.py) and kept as numpy/scipy arrays so that
the power flow and the OPF are vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from gridledger.network.feeder_tables import FeederDataError

__all__ = ["Topology"]


@dataclass(frozen=True, eq=False)
class Topology:
    """Index arrays of a radial feeder; position i refers to `bus_ids[i]`."""

    bus_ids: np.ndarray  # (n,) bus numbers in table order
    pos: dict[int, int]  # bus number -> position
    root: int  # position of the substation
    parent: np.ndarray  # (n,) parent position, -1 at the root
    line_of_bus: np.ndarray  # (n,) row of the line feeding the bus, -1 at the root
    line_from: np.ndarray  # (m,) parent-side bus position of each line
    line_to: np.ndarray  # (m,) child-side bus position of each line
    order: np.ndarray  # (n,) positions in breadth-first order from the root
    depth: np.ndarray  # (n,) hops to the root

    @classmethod
    def build(
        cls, buses: pd.DataFrame, lines: pd.DataFrame, root_bus: int, line_file: str, bus_file: str
    ) -> Topology:
        bus_ids = buses.index.to_numpy(dtype=np.int64)
        n = len(bus_ids)
        pos = {int(b): i for i, b in enumerate(bus_ids)}
        rows = lines.attrs.get("rows", np.arange(1, len(lines) + 1))
        a = np.array([pos[int(b)] for b in lines.from_bus], dtype=np.int64)
        b = np.array([pos[int(b)] for b in lines.to_bus], dtype=np.int64)
        adj: list[list[tuple[int, int]]] = [[] for _ in range(n)]
        for k, (i, j) in enumerate(zip(a, b, strict=True)):
            adj[i].append((j, k))
            adj[j].append((i, k))
        root = pos[root_bus]
        parent = np.full(n, -1, dtype=np.int64)
        line_of_bus = np.full(n, -1, dtype=np.int64)
        depth = np.full(n, -1, dtype=np.int64)
        depth[root] = 0
        order = [root]
        used = np.zeros(len(lines), dtype=bool)
        head = 0
        while head < len(order):
            i = order[head]
            head += 1
            for j, k in adj[i]:
                if used[k]:
                    continue
                used[k] = True
                if depth[j] >= 0:
                    raise FeederDataError(
                        f"line {bus_ids[a[k]]}-{bus_ids[b[k]]} closes a loop; the feeder must "
                        "be radial (one tree rooted at the substation)",
                        file=line_file,
                        row=int(rows[k]),
                        field="to_bus",
                    )
                depth[j] = depth[i] + 1
                parent[j] = i
                line_of_bus[j] = k
                order.append(j)
        unreached = np.flatnonzero(depth < 0)
        if len(unreached):
            brows = buses.attrs.get("rows", np.arange(1, n + 1))
            first = int(unreached[0])
            raise FeederDataError(
                f"bus {bus_ids[first]} is not connected to the substation bus {root_bus} "
                f"({len(unreached)} disconnected bus(es): {bus_ids[unreached][:10].tolist()})",
                file=bus_file,
                row=int(brows[first]),
                field="bus",
            )
        # orient every line parent -> child
        flipped = parent[b] != a
        line_from = np.where(flipped, b, a)
        line_to = np.where(flipped, a, b)
        return cls(
            bus_ids=bus_ids,
            pos=pos,
            root=root,
            parent=parent,
            line_of_bus=line_of_bus,
            line_from=line_from,
            line_to=line_to,
            order=np.array(order, dtype=np.int64),
            depth=depth,
        )

    @cached_property
    def ancestor(self) -> sp.csr_matrix:
        """A[i, k] = 1 if bus i lies on the path from bus k to the root (i == k included).

        A @ x sums x over each subtree (backward sweep); A.T @ y sums y along each path to
        the root (forward sweep)."""
        n = len(self.bus_ids)
        rows, cols = [], []
        for k in range(n):
            i = k
            while i >= 0:
                rows.append(i)
                cols.append(k)
                i = self.parent[i]
        return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))

    @cached_property
    def incidence(self) -> sp.csr_matrix:
        """C[i, k] = +1 if line k ends at bus i, -1 if it starts at bus i (n × m)."""
        n, m = len(self.bus_ids), len(self.line_from)
        rows = np.concatenate([self.line_to, self.line_from])
        cols = np.concatenate([np.arange(m), np.arange(m)])
        vals = np.concatenate([np.ones(m), -np.ones(m)])
        return sp.csr_matrix((vals, (rows, cols)), shape=(n, m))

    def positions(self, buses: Any) -> np.ndarray:
        return np.array([self.pos[int(b)] for b in buses], dtype=np.int64)
