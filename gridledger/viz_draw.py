"""Matplotlib drawings for the browser page and notebooks: the feeder as a tree, coloured by bus.

Pure functions of a Feeder and per-bus / per-line values; no model or Solara state, so the same
drawing serves the Solara page (gridledger/app.py), notebooks and tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from gridledger.network import Feeder

# marker style of each kind of participant drawn on its bus
MARK_STYLES: dict[str, dict[str, object]] = {
    "PV plant": {"marker": "*", "s": 260, "c": "#f2b705", "edgecolors": "black", "zorder": 5},
    "prosumer": {"marker": "^", "s": 70, "c": "#2a9d3a", "edgecolors": "black", "zorder": 4},
    "user": {"marker": "o", "s": 18, "c": "white", "edgecolors": "#333333", "zorder": 3},
}


class DrawError(ValueError):
    """A value given for drawing does not fit the feeder (the message names it)."""


def tree_layout(feeder: Feeder) -> dict[int, tuple[float, float]]:
    """Bus -> (x, y): x = lines from the substation, y = leaf order of a depth-first walk.

    Leaves get consecutive rows and every other bus sits at the mean row of its children, so the
    radial feeder is drawn without crossing lines (the substation at the left).
    """
    children = feeder.children
    rows: dict[int, float] = {}
    next_leaf = 0
    # iterative post-order walk (the feeder is a tree rooted at the substation)
    stack: list[tuple[int, bool]] = [(feeder.substation_bus, False)]
    while stack:
        bus, expanded = stack.pop()
        kids = children[bus]
        if not kids:
            rows[bus] = float(next_leaf)
            next_leaf += 1
        elif expanded:
            rows[bus] = float(np.mean([rows[k] for k in kids]))
        else:
            stack.append((bus, True))
            stack.extend((k, False) for k in sorted(kids, reverse=True))
    depth = feeder.depth
    return {int(b): (float(depth[b]), -rows[int(b)]) for b in feeder.buses.index}


def line_flows_kw(feeder: Feeder, net_load_kw: pd.Series) -> pd.Series:
    """Active power entering each line's far end (kW, lossless): the net load of the subtree.

    Positive = flow away from the substation; negative = reverse flow (local export). Indexed by
    each line's ``to_bus``.
    """
    unknown = sorted(set(net_load_kw.index) - {int(b) for b in feeder.buses.index})
    if unknown:
        raise DrawError(f"net_load_kw names buses {unknown[:5]} not in feeder {feeder.name!r}")
    load = net_load_kw.reindex(feeder.buses.index, fill_value=0.0).astype(float)
    subtree = load.to_dict()
    for bus in sorted(feeder.buses.index, key=lambda b: -int(feeder.depth[b])):
        for child in feeder.children[int(bus)]:
            subtree[int(bus)] += subtree[child]
    to_bus = feeder.lines["to_bus"].astype(int)
    return pd.Series([subtree[b] for b in to_bus], index=to_bus.values, name="p_kw")


def draw_feeder(
    ax: Axes,
    feeder: Feeder,
    *,
    bus_values: pd.Series | None = None,
    value_label: str = "",
    cmap: str = "viridis",
    line_flows: pd.Series | None = None,
    marks: Mapping[str, Iterable[int]] | None = None,
    title: str | None = None,
) -> Axes:
    """Draw the feeder tree on ``ax``.

    bus_values: a value per bus (e.g. DLMP in $/MWh or voltage in p.u.) colouring the buses, with a
        colour bar labelled ``value_label``.
    line_flows: kW per line indexed by ``to_bus`` (e.g. from `line_flows_kw`); line width grows
        with |P|, reverse flow (towards the substation) is drawn dashed in orange.
    marks: kind -> buses, kinds from MARK_STYLES ("PV plant", "prosumer", "user").
    """
    pos = tree_layout(feeder)
    graph = nx.Graph()
    graph.add_nodes_from(pos)
    edges = [(int(r.from_bus), int(r.to_bus)) for r in feeder.lines.itertuples()]
    graph.add_edges_from(edges)

    widths: list[float] = [1.2] * len(edges)
    forward, reverse = edges, []
    if line_flows is not None:
        missing = sorted({b for _, b in edges} - {int(b) for b in line_flows.index})
        if missing:
            raise DrawError(f"line_flows lacks the lines into buses {missing[:5]}")
        flow = {int(b): float(v) for b, v in line_flows.items()}
        peak = max((abs(v) for v in flow.values()), default=0.0) or 1.0
        widths = [0.8 + 5.0 * abs(flow[b]) / peak for _, b in edges]
        forward = [e for e in edges if flow[e[1]] >= 0]
        reverse = [e for e in edges if flow[e[1]] < 0]
    width_of = dict(zip(edges, widths, strict=True))
    nx.draw_networkx_edges(
        graph, pos, edgelist=forward, width=[width_of[e] for e in forward],
        edge_color="#4a5a70", ax=ax,
    )  # fmt: skip
    if reverse:
        nx.draw_networkx_edges(
            graph, pos, edgelist=reverse, width=[width_of[e] for e in reverse],
            edge_color="#e07b00", style="dashed", ax=ax,
        )  # fmt: skip

    buses = [int(b) for b in feeder.buses.index]
    if bus_values is not None:
        missing = sorted(set(buses) - {int(b) for b in bus_values.index})
        if missing:
            raise DrawError(f"bus_values lacks buses {missing[:5]}")
        values = np.array([float(bus_values[b]) for b in buses])
        lo, hi = float(values.min()), float(values.max())
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5
        nodes = nx.draw_networkx_nodes(
            graph, pos, nodelist=buses, node_color=values, cmap=cmap, vmin=lo, vmax=hi,
            node_size=60, edgecolors="black", linewidths=0.4, ax=ax,
        )  # fmt: skip
        bar = ax.figure.colorbar(nodes, ax=ax, fraction=0.04, pad=0.01)
        bar.set_label(value_label)
    else:
        nx.draw_networkx_nodes(graph, pos, nodelist=buses, node_size=25, node_color="#999", ax=ax)

    handles: list[Line2D] = []
    for kind, kind_buses in (marks or {}).items():
        if kind not in MARK_STYLES:
            raise DrawError(f"marks kind {kind!r} unknown; use one of {list(MARK_STYLES)}")
        kind_buses = sorted({int(b) for b in kind_buses})
        bad = sorted(set(kind_buses) - set(buses))
        if bad:
            raise DrawError(f"marks[{kind!r}] names buses {bad[:5]} not in the feeder")
        if not kind_buses:
            continue
        style = MARK_STYLES[kind]
        xy = np.array([pos[b] for b in kind_buses])
        # draw beside the bus (offset up) so the bus colour stays visible
        ax.scatter(xy[:, 0], xy[:, 1] + 0.45, **style)  # type: ignore[arg-type]
        handles.append(
            Line2D(
                [], [], linestyle="none", marker=style["marker"], markerfacecolor=style["c"],
                markeredgecolor="black", markersize=9 if kind != "PV plant" else 13, label=kind,
            )
        )  # fmt: skip
    sub = pos[feeder.substation_bus]
    ax.annotate("substation", sub, xytext=(sub[0] - 0.3, sub[1] + 1.2), fontsize=8)
    if line_flows is not None:
        handles.append(Line2D([], [], color="#4a5a70", lw=3, label="flow from grid"))
        handles.append(Line2D([], [], color="#e07b00", lw=3, ls="--", label="reverse flow"))
    if handles:
        ax.legend(handles=handles, loc="lower left", fontsize=8, framealpha=0.85)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def bus_series_from_frame(frame: pd.DataFrame | pd.Series, t: int | None = None) -> pd.Series:
    """One hour of a (hour × bus) frame as a Series by bus (the last hour if ``t`` is None)."""
    if isinstance(frame, pd.Series):
        return frame
    if frame.empty:
        raise DrawError("empty hour × bus frame")
    row = frame.iloc[-1] if t is None else frame.loc[t]
    return pd.Series(row.to_numpy(dtype=float), index=[int(c) for c in frame.columns])


__all__ = [
    "MARK_STYLES",
    "DrawError",
    "bus_series_from_frame",
    "draw_feeder",
    "line_flows_kw",
    "tree_layout",
]
