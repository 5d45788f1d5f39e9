"""A pandapower net's topology as the converter (gridledger/network/pandapower_grid.py) sees it.

Out-of-service elements are dropped, closed bus-bus switches fuse their buses, open line/trafo
switches open that end of their branch; the fused graph, parallel branches counted once, must
be one tree rooted at the single in-service ext_grid -- else `GridTopologyError` naming a loop's
buses or the count of islanded buses and an example (the net's own bus numbers). The per-unit
values, element checks and tables are the converter's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse import csgraph

__all__ = ["GridTopologyError", "NetTopology", "in_service", "radial_topology"]


class GridTopologyError(ValueError):
    """The net is not one radial tree below its external grid (meshed or islanded)."""


@dataclass(frozen=True)
class NetTopology:
    """A radial net's buses and branches after fusing and opening (pandapower bus numbers)."""

    rep: pd.Series  # in-service bus -> its fused group's bus (the ext_grid bus, else the smallest)
    branches: pd.DataFrame  # kind, element, a, b, a_open, b_open, ra, rb (the ends' fused buses)
    root_bus: int  # the ext_grid's bus
    nodes: np.ndarray  # the fused buses, sorted


def in_service(df: pd.DataFrame) -> pd.DataFrame:
    """The in-service rows of a pandapower element table (all rows if it has no flag)."""
    return df[df["in_service"].astype(bool)] if "in_service" in df.columns else df


def radial_topology(net: Any, label: str) -> NetTopology:
    """Fuse, open and merge; check the tree (`label` names the net in errors). Raises
    GridTopologyError if the net is not one tree below a single in-service ext_grid."""
    bus = in_service(net.bus)
    bus_ids = bus.index.to_numpy(dtype=np.int64)
    pos = pd.Series(np.arange(len(bus_ids)), index=bus_ids)
    eg = in_service(net.ext_grid)
    eg = eg[eg.bus.isin(bus_ids)]
    if len(eg) != 1:
        raise GridTopologyError(
            f"{label}: need exactly one in-service ext_grid (the substation), found {len(eg)}"
        )
    root_bus = int(eg.bus.iloc[0])
    n = len(bus_ids)
    # closed bus-bus switches fuse their buses (representative: the ext_grid bus, else the
    # smallest bus number of the group)
    sw = net.switch
    bb = sw[(sw.et == "b") & sw.closed.astype(bool)]
    bb = bb[bb.bus.isin(bus_ids) & bb.element.isin(bus_ids)]
    g = sp.coo_matrix(
        (np.ones(len(bb)), (pos[bb.bus].to_numpy(), pos[bb.element].to_numpy())), shape=(n, n)
    )
    _, comp = csgraph.connected_components(g, directed=False)
    rep_of_comp = pd.Series(bus_ids).groupby(comp).min()
    rep_of_comp[comp[pos[root_bus]]] = root_bus
    rep = pd.Series(rep_of_comp.loc[comp].to_numpy(), index=bus_ids, name="feeder_bus")

    # branches: lines and 2-winding trafos with both buses in service
    open_sw = sw[(sw.et.isin(["l", "t"])) & ~sw.closed.astype(bool)]
    rows = []
    for kind, df, a_col, b_col, et in (
        ("line", net.line, "from_bus", "to_bus", "l"),
        ("trafo", net.trafo, "hv_bus", "lv_bus", "t"),
    ):
        d = in_service(df)
        d = d[d[a_col].isin(bus_ids) & d[b_col].isin(bus_ids)]
        o = open_sw[open_sw.et == et]
        opened = set(zip(o.element.astype(int), o.bus.astype(int), strict=True))
        idx = d.index.to_numpy(dtype=np.int64)
        a = d[a_col].to_numpy(dtype=np.int64)
        b = d[b_col].to_numpy(dtype=np.int64)
        rows.append(
            pd.DataFrame(
                {
                    "kind": kind,
                    "element": idx,
                    "a": a,
                    "b": b,
                    "a_open": [(int(i), int(x)) in opened for i, x in zip(idx, a, strict=True)],
                    "b_open": [(int(i), int(x)) in opened for i, x in zip(idx, b, strict=True)],
                }
            )
        )
    br = pd.concat([r for r in rows if len(r)] or rows[:1], ignore_index=True)
    br = br.astype({"a": np.int64, "b": np.int64, "a_open": bool, "b_open": bool})
    br["ra"] = rep.loc[br.a].to_numpy()
    br["rb"] = rep.loc[br.b].to_numpy()
    series = br[~br.a_open & ~br.b_open & (br.ra != br.rb)]
    # tree check on the fused graph, parallel branches counted once
    nodes = np.unique(rep.to_numpy())
    npos = pd.Series(np.arange(len(nodes)), index=nodes)
    lo = np.minimum(series.ra, series.rb).to_numpy()
    hi = np.maximum(series.ra, series.rb).to_numpy()
    pairs = np.unique(np.stack([lo, hi], axis=1), axis=0) if len(series) else np.zeros((0, 2))
    pairs = pairs.astype(np.int64)
    m = len(nodes)
    adj = sp.coo_matrix(
        (np.ones(len(pairs)), (npos[pairs[:, 0]].to_numpy(), npos[pairs[:, 1]].to_numpy())),
        shape=(m, m),
    ).tocsr()
    root = int(npos[root_bus])
    order, pred = csgraph.breadth_first_order(adj, root, directed=False)
    if len(order) < m:
        reached = np.zeros(m, dtype=bool)
        reached[order] = True
        island = nodes[~reached]
        ex = int(island[0])
        name = net.bus.name.get(ex, "") if "name" in net.bus.columns else ""
        raise GridTopologyError(
            f"{label}: {len(island)} bus(es) are not connected to the external grid at bus "
            f"{root_bus}, e.g. bus {ex}{f' ({name})' if name else ''}; close a switch or take "
            "them out of service"
        )
    if len(pairs) > m - 1:
        pa, pb = npos[pairs[:, 0]].to_numpy(), npos[pairs[:, 1]].to_numpy()
        k = int(np.flatnonzero((pred[pb] != pa) & (pred[pa] != pb))[0])
        raise GridTopologyError(
            f"{label}: meshed — a loop through buses {_loop(pred, pa[k], pb[k], nodes)}; "
            "the feeder model needs a radial net (open a switch in the loop)"
        )
    return NetTopology(rep=rep, branches=br, root_bus=root_bus, nodes=nodes)


def _loop(pred: np.ndarray, a: int, b: int, nodes: np.ndarray) -> list[int]:
    """Buses of the cycle closed by edge a-b in the BFS tree given by `pred`."""

    def up(i: int) -> list[int]:
        path = [i]
        while pred[i] >= 0:
            i = int(pred[i])
            path.append(i)
        return path

    pa, pb = up(a), up(b)
    common = set(pa) & set(pb)
    ca = [i for i in pa if i not in common]
    cb = [i for i in pb if i not in common]
    lca = next(i for i in pa if i in common)
    return [int(nodes[i]) for i in [*ca, lca, *reversed(cb)]]
