"""Feeder drawing helpers on the real SCE 56-bus feeder."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from gridledger.network import load_feeder
from gridledger.viz_draw import (
    DrawError,
    bus_series_from_frame,
    draw_feeder,
    line_flows_kw,
    tree_layout,
)


@pytest.fixture(scope="module")
def feeder():
    return load_feeder("sce56")


def test_tree_layout_places_every_bus_once_right_of_its_parent(feeder) -> None:
    pos = tree_layout(feeder)
    assert set(pos) == {int(b) for b in feeder.buses.index}
    assert len(set(pos.values())) == len(pos)  # no two buses on the same spot
    for r in feeder.lines.itertuples():
        assert pos[int(r.to_bus)][0] == pos[int(r.from_bus)][0] + 1
    leaves_y = sorted(pos[b][1] for b in feeder.leaves)
    assert np.allclose(np.diff(leaves_y), 1.0)  # leaves on consecutive rows


def test_line_flows_sum_subtrees_and_show_reverse_flow(feeder) -> None:
    net = feeder.buses["p_kw"].astype(float).copy()
    flows = line_flows_kw(feeder, net)
    assert len(flows) == feeder.n_lines
    first = feeder.lines.iloc[0]
    assert flows[int(first.to_bus)] == pytest.approx(net.sum())  # all load passes the first line
    for leaf in feeder.leaves:
        assert flows[leaf] == pytest.approx(net[leaf])
    net[53] -= 1000.0  # a 1 MW plant at the end of a lateral pushes power back
    flows = line_flows_kw(feeder, net)
    assert flows[53] < 0
    assert flows[int(first.to_bus)] == pytest.approx(net.sum())


def test_line_flows_refuse_unknown_buses(feeder) -> None:
    with pytest.raises(DrawError, match="999"):
        line_flows_kw(feeder, pd.Series({999: 1.0}))


def test_draw_feeder_colours_buses_and_marks_participants(feeder) -> None:
    fig = Figure()
    ax = fig.subplots()
    values = pd.Series(np.linspace(40.0, 60.0, feeder.n_buses), index=feeder.buses.index)
    draw_feeder(
        ax,
        feeder,
        bus_values=values,
        value_label="DLMP ($/MWh)",
        line_flows=line_flows_kw(feeder, feeder.buses["p_kw"]),
        marks={"PV plant": [53, 19], "prosumer": [5, 7]},
    )
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["PV plant", "prosumer"]
    assert len(fig.axes) == 2  # the colour bar
    assert fig.axes[1].get_ylabel() == "DLMP ($/MWh)"


def test_draw_feeder_names_bad_input(feeder) -> None:
    ax = Figure().subplots()
    with pytest.raises(DrawError, match="bus_values lacks"):
        draw_feeder(ax, feeder, bus_values=pd.Series({1: 1.0}))
    with pytest.raises(DrawError, match="'battery'"):
        draw_feeder(ax, feeder, marks={"battery": [5]})
    with pytest.raises(DrawError, match="999"):
        draw_feeder(ax, feeder, marks={"prosumer": [999]})


def test_bus_series_from_hour_by_bus_frame() -> None:
    frame = pd.DataFrame([[1.0, 2.0], [3.0, 4.0]], index=[0, 1], columns=["1", "2"])
    last = bus_series_from_frame(frame)
    assert last.to_dict() == {1: 3.0, 2: 4.0}
    assert bus_series_from_frame(frame, 0).to_dict() == {1: 1.0, 2: 2.0}
    with pytest.raises(DrawError):
        bus_series_from_frame(frame.iloc[:0])
