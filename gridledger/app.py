"""The browser page: a Mesa SolaraViz over EnergyMarketModel (served by ``gridledger viz``).

One model per browser session (created in the page component with ``solara.use_memo``, never at
module level). The sidebar holds mesa's Step / Play / Reset controls and the scenario parameters;
Reset builds a new model from the controls' values (each slider shows its value). The main area
shows a line saying when trading begins and, updated every step: tab "Feeder, grid and price" —
the feeder coloured by DLMP or voltage with PV plants, prosumers, users and line flows, grid
import and users' price of the trading scheme beside the no-trading baseline on clock hours, the
running totals and the run's scenario; tab "Batteries, reputation and gas" — batteries' state of
charge, producers' reputations and gas per contract operation. Before the first step, charts
that have no data yet show a line saying so instead of empty axes.

Plots are matplotlib images (no vega), so the page needs only Solara's core assets offline.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import mesa
import numpy as np
import solara
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from mesa.visualization import SolaraViz
from mesa.visualization.user_param import Slider
from mesa.visualization.utils import update_counter

from gridledger import EnergyMarketModel, Scenario
from gridledger.markets import MECHANISMS
from gridledger.report import time_axis

# the page's data functions, also imported from here by tests and notebooks
from gridledger.viz_data import (  # noqa: F401
    agent_series,
    bus_values,
    clock_label,
    gas_by_operation,
    hour_row,
    hourly_frame,
    line_flows,
    model_hours,
    model_hours_done,
    participants,
    shown_hour,
    totals,
    trading_schedule,
    trading_start_line,
)
from gridledger.viz_draw import draw_feeder
from gridledger.viz_server import SCENARIO_ENV

TITLE = "gridledger: P2P energy trading on the SCE 56-bus feeder"

# ----------------------------------------------------------------------------------------------
# the model as the page builds it


def page_scenario(environ: Mapping[str, str] | None = None) -> Scenario:
    """The scenario new sessions start from: ``$GRIDLEDGER_VIZ_SCENARIO`` (a TOML file, set by
    ``gridledger viz --scenario``) or the paper's day."""
    env = os.environ if environ is None else environ
    path = env.get(SCENARIO_ENV)
    return Scenario.from_toml(path) if path else Scenario()


def _slider(label: str, value: float, lo: float, hi: float, step: float) -> Slider:
    """A slider whose range also covers the starting value."""
    return Slider(label, value, min(lo, value), max(hi, value), step)


def _select(label: str, value: str, values: list[str]) -> dict[str, Any]:
    """A drop-down control (mesa's user-input dict of type "Select")."""
    return {"type": "Select", "label": label, "value": value, "values": values}


def model_params(defaults: Scenario | None = None) -> dict[str, Any]:
    """Sidebar controls (sliders, the market mechanism's drop-down) plus the fixed fields in
    which ``defaults`` differs from the paper's day; all are keyword overrides of
    EnergyMarketModel, so Reset keeps them.

    With the default scenario, slider ranges keep every combination valid (the feed-in tariff
    stays below every tariff).
    """
    sc = page_scenario() if defaults is None else defaults
    controls = {
        "market_mechanism": _select(
            "Market mechanism", sc.market_mechanism, sorted(MECHANISMS, key=lambda m: m != "paper")
        ),
        "prosumer_share": _slider("Share of prosumers", sc.prosumer_share, 0.0, 1.0, 0.05),
        "reliability_threshold": _slider(
            "Reliability threshold rt (0..1000)", sc.reliability_threshold, 0, 1000, 50
        ),
        "fault_rate": _slider("Producer fault rate", sc.fault_rate, 0.0, 0.5, 0.05),
        "feed_in_tariff_usd_per_mwh": _slider(
            "Feed-in tariff ($/MWh)", sc.feed_in_tariff_usd_per_mwh, 0.0, 100.0, 5.0
        ),
        "tariff_offpeak_usd_per_mwh": _slider(
            "Off-peak tariff ($/MWh)", sc.tariff_offpeak_usd_per_mwh, 110.0, 300.0, 10.0
        ),
        "tariff_midpeak_usd_per_mwh": _slider(
            "Mid-peak tariff ($/MWh)", sc.tariff_midpeak_usd_per_mwh, 110.0, 400.0, 10.0
        ),
        "tariff_onpeak_usd_per_mwh": _slider(
            "On-peak tariff ($/MWh)", sc.tariff_onpeak_usd_per_mwh, 110.0, 600.0, 10.0
        ),
        "start_hour": _slider("Start at clock hour", sc.start_hour, 0, 23, 1),
        "hours": _slider("Market hours", sc.hours, 1, 24, 1),
        "seed": _slider("Seed", sc.seed, 0, 999, 1),
    }
    paper_day = Scenario().to_dict()
    fixed = {k: v for k, v in sc.to_dict().items() if k not in controls and v != paper_day[k]}
    return {**fixed, **controls}


def initial_values(params: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword overrides of a new model: the controls' values and the fixed fields."""
    return {k: _value(p) for k, p in params.items()}


def _value(param: Any) -> Any:
    """A control's starting value (a Slider's, a drop-down's), or a fixed field's value."""
    if isinstance(param, Slider):
        return param.value
    if isinstance(param, dict) and param.get("type") == "Select":
        return param["value"]
    return param


def new_model(params: Mapping[str, Any] | None = None) -> EnergyMarketModel:
    """The model a new browser session starts with (the controls' initial values).

    Reset re-creates the model with ``EnergyMarketModel(**values, scenario=<mesa Scenario>)``;
    the model ignores a scenario that is not a gridledger Scenario (mesa puts its own there).
    """
    return EnergyMarketModel(**initial_values(model_params() if params is None else params))


# ----------------------------------------------------------------------------------------------
# components (each takes the model; mesa re-renders them after every step)


def _figure(width: float = 6.4, height: float = 4.0) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots()


@solara.component
def FeederView(model: mesa.Model) -> None:
    """The feeder tree: buses coloured by DLMP or voltage, participants marked, line flows."""
    update_counter.get()  # re-render after every step (mesa's step counter)
    quantity, set_quantity = solara.use_state("DLMP")
    values, label = bus_values(model, "voltage" if quantity == "voltage" else "dlmp")
    fig, ax = _figure(8.0, 5.0)
    t = shown_hour(model)
    draw_feeder(
        ax,
        model.feeder,
        bus_values=values,
        value_label=label,
        line_flows=line_flows(model),
        marks=participants(model),
        title=f"Feeder in the hour from {clock_label(model, t)}"
        if model.t
        else "Feeder (before the first hour)",
    )
    with solara.Column(classes=["gl-feeder"]):
        solara.ToggleButtonsSingle(
            value=quantity, values=["DLMP", "voltage"], on_value=set_quantity
        )
        solara.FigureMatplotlib(fig, format="png")


def _not_yet(what: str, css: str) -> None:
    """A line in place of a chart that has no data yet (no empty axes before the first step)."""
    with solara.Column(classes=[css]):
        solara.Text(f"{what}: drawn after the first market hour (press Step).",
                    classes=["gl-no-data"])  # fmt: skip


def time_series_figure(
    model: mesa.Model,
    columns: Mapping[str, tuple[str, str]],
    title: str,
    ylabel: str,
    steps: bool = False,
) -> Figure | None:
    """Hourly columns of the model (column -> (legend label, colour)) on clock hours; `steps`:
    drawn as steps over each market hour (prices), else as points at the hour's start. None
    before the first hour."""
    frame = hourly_frame(model)
    if frame.empty:
        return None
    x = model.params.start_hour + frame["t"].to_numpy(float)
    labels = [clock_label(model, int(t)) for t in frame["t"]]
    fig, ax = _figure()
    for column, (label, colour) in columns.items():
        y = frame[column].to_numpy(float)
        if steps:
            ax.stairs(y, np.append(x, x[-1] + 1), baseline=None, color=colour, lw=2, label=label)
        else:
            ax.plot(x, y, color=colour, lw=2, marker="o", ms=4, label=label)
    time_axis(ax, x, labels, spans=steps)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    top = float(np.nanmax(frame[list(columns)].to_numpy(float), initial=0.0))
    ax.set_ylim(0, top * 1.2 + 1e-9)  # room for the legend above the highest line
    ax.legend(loc="best", fontsize=8)
    return fig


@solara.component
def TimeSeries(
    model: mesa.Model,
    columns: Mapping[str, tuple[str, str]],
    title: str,
    ylabel: str,
    css: str,
    steps: bool = False,
) -> None:
    """`time_series_figure` on the page, re-drawn after every step."""
    update_counter.get()  # re-render after every step (mesa's step counter)
    fig = time_series_figure(model, columns, title, ylabel, steps)
    if fig is None:
        return _not_yet(title, css)
    with solara.Column(classes=[css]):
        solara.FigureMatplotlib(fig, format="png")


def GridImportView(model: mesa.Model) -> None:
    return TimeSeries(
        model,
        {"grid_import_kwh": SCHEME[0], "grid_import_kwh_baseline": SCHEME[1]},
        "Grid import: trading vs baseline",
        "kWh per market hour",
        "gl-grid-chart",
    )


def PriceView(model: mesa.Model) -> None:
    return TimeSeries(
        model,
        {"user_price_usd_per_mwh": SCHEME[0], "user_price_usd_per_mwh_baseline": SCHEME[1]},
        "Users' average price",
        "$/MWh",
        "gl-price-chart",
        steps=True,
    )


SCHEME = (("P2P trading", "tab:blue"), ("baseline (no trading)", "tab:gray"))
"""Legend label and colour of the trading scheme and of the no-trading baseline."""

ROLE_STYLE = {
    "producer": ("prosumers (LETB)", "tab:green"),
    "rep": ("PV plants (RETB)", "tab:orange"),
}


def agent_lines_figure(
    model: mesa.Model, variable: str, roles: tuple[str, ...], title: str, ylabel: str
) -> Figure | None:
    """One thin line per agent of each role for an agent reporter, each role's mean in bold, on
    clock hours (the end of each market hour); None before the first hour."""
    frames = {role: agent_series(model, variable, role) for role in roles}
    if all(frame.empty for frame in frames.values()):
        return None
    fig, ax = _figure()
    for role, frame in frames.items():
        if frame.empty:
            continue
        label, colour = ROLE_STYLE[role]
        # DataCollector step k is collected at the end of market hour k - 1, i.e. at clock
        # start_hour + k
        x = model.params.start_hour + frame.index.to_numpy(float)
        ax.plot(x, frame.to_numpy(), color=colour, alpha=0.25, lw=0.8)
        ax.plot(x, frame.mean(axis=1), color=colour, lw=2.5, label=f"{label}: mean")
    ax.legend(loc="best")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    steps = np.unique(np.concatenate([f.index.to_numpy(int) for f in frames.values()]))
    time_axis(ax, model.params.start_hour + steps.astype(float),
              [clock_label(model, int(k)) for k in steps])  # fmt: skip
    ax.set_xlabel("hour of day (end of market hour)")
    return fig


@solara.component
def AgentLines(
    model: mesa.Model, variable: str, roles: tuple[str, ...], title: str, ylabel: str
) -> None:
    """`agent_lines_figure` on the page, re-drawn after every step."""
    update_counter.get()  # re-render after every step (mesa's step counter)
    fig = agent_lines_figure(model, variable, roles, title, ylabel)
    if fig is None:
        return _not_yet(title, f"gl-{variable}-chart")
    with solara.Column(classes=[f"gl-{variable}-chart"]):
        solara.FigureMatplotlib(fig, format="png")


def SocView(model: mesa.Model) -> None:
    return AgentLines(model, "soc", ("producer",), "Prosumers' battery state of charge", "SoC")


def ReputationView(model: mesa.Model) -> None:
    return AgentLines(
        model, "reputation", ("producer", "rep"), "Reputation", "reputation (0..1000)"
    )


@solara.component
def GasView(model: mesa.Model) -> None:
    """Mean gas per transaction of each contract operation (bars), count on each bar."""
    update_counter.get()  # re-render after every step (mesa's step counter)
    table = gas_by_operation(model)
    if table.empty:
        return _not_yet("Gas per operation", "gl-gas-chart")
    fig, ax = _figure(6.4, 4.4)
    colours = {c: f"C{i}" for i, c in enumerate(sorted(table["chain"].unique()))}
    y = np.arange(len(table))
    ax.barh(y, table["gas_mean"], color=[colours[c] for c in table["chain"]])
    ax.set_yticks(y, table["label"], fontsize=7)
    for yi, (g, n) in enumerate(zip(table["gas_mean"], table["count"], strict=True)):
        ax.text(g, yi, f" ×{n}", va="center", fontsize=7)
    handles = [Patch(color=colour, label=chain) for chain, colour in colours.items()]
    ax.legend(handles=handles, title="chain", loc="lower right", fontsize=8)
    ax.set_title("Gas per operation (mean per transaction)")
    ax.set_xlabel("gas")
    with solara.Column(classes=["gl-gas-chart"]):
        solara.FigureMatplotlib(fig, format="png")


@solara.component
def TotalsView(model: mesa.Model) -> None:
    """Running totals of the hours done, scheme vs baseline (each value has a CSS class gl-KEY)."""
    update_counter.get()  # re-render after every step (mesa's step counter)
    s = totals(model)
    who = participants(model)
    relief = s["grid_import_kwh_baseline"] - s["grid_import_kwh"]
    saving = s["user_cost_usd_baseline"] - s["user_cost_usd"]
    rows = [
        ("hours", "Market hours done", f"{model_hours_done(model)} of {model_hours(model)}"),
        ("prosumers", "Prosumers / users", f"{len(who['prosumer'])} / {len(who['user'])}"),
        ("demand", "Demand", f"{s['demand_kwh']:.0f} kWh"),
        ("local", "Bought locally (LETB or auction)", f"{s['local_kwh']:.0f} kWh"),
        ("renewable", "Bought from PV plants (RETB)", f"{s['renewable_kwh']:.0f} kWh"),
        ("grid", "Grid import (baseline)",
         f"{s['grid_import_kwh']:.0f} ({s['grid_import_kwh_baseline']:.0f}) kWh"),
        ("relief", "Grid relief", f"{relief:.0f} kWh"),
        ("cost", "Users' cost (baseline)",
         f"${s['user_cost_usd']:.2f} (${s['user_cost_usd_baseline']:.2f})"),
        ("saving", "Users' saving", f"${saving:.2f}"),
        ("gas", "Transactions / gas", f"{s['tx_count']:,.0f} / {s['gas_used']:,.0f}"),
    ]  # fmt: skip
    sc = model.params
    setting = [
        ("mechanism", "Market mechanism", sc.market_mechanism),
        ("share", "Share of prosumers", f"{sc.prosumer_share:.2f}"),
        ("rt", "Reliability threshold rt", f"{sc.reliability_threshold}"),
        ("faults", "Producer fault rate", f"{sc.fault_rate:.2f}"),
        ("tariffs", "Tariffs FiT / off / mid / on ($/MWh)",
         f"{sc.feed_in_tariff_usd_per_mwh:.0f} / {sc.tariff_offpeak_usd_per_mwh:.0f} / "
         f"{sc.tariff_midpeak_usd_per_mwh:.0f} / {sc.tariff_onpeak_usd_per_mwh:.0f}"),
        ("start", "Start hour / market hours", f"{sc.start_hour:02d}:00 / {sc.hours}"),
        ("areas", "LETB areas", f"{sc.letb_areas}"),
        ("seed", "Seed", f"{sc.seed}"),
    ]  # fmt: skip
    for title, table in (("Running totals", rows), ("This run's scenario", setting)):
        with solara.Card(title, classes=["gl-totals"]):
            for key, label, value in table:
                with solara.Row(justify="space-between"):
                    solara.Text(label)
                    solara.Text(value, classes=[f"gl-{key}"])


TABS: dict[str, list[Callable[[mesa.Model], Any]]] = {
    "Feeder, grid and price": [FeederView, TotalsView, GridImportView, PriceView],
    "Batteries, reputation and gas": [SocView, ReputationView, GasView],
}
"""Tab name (what it shows) -> its views; each view takes the model."""

SLIDER_VALUES_CSS = """
.v-slider__thumb-label-container { display: block !important; }
.v-slider__thumb-label { display: flex !important; }
.v-slider { margin-top: 26px; }
"""
"""Vuetify shows a slider's value (its thumb label) only while it is dragged; always show it."""


@solara.component
def MarketTabs(model: mesa.Model) -> None:
    """When trading begins, then the tabs (named for what they show) with the active tab's views
    (mesa's own tabs are called "Page 0", "Page 1"; only the active tab is drawn, as in mesa)."""
    tab, set_tab = solara.use_state(0)
    solara.Text(trading_start_line(model), classes=["gl-trading-start"])
    with solara.v.Tabs(v_model=tab, on_v_model=set_tab):
        for name in TABS:
            solara.v.Tab(children=[name])
    with solara.ColumnsResponsive(12, large=6, classes=["gl-views"]):
        for view in list(TABS.values())[tab]:
            view(model)


@solara.component
def Page() -> None:
    """The page ``solara run gridledger.app`` serves; one model per browser session. SolaraViz
    draws the sidebar (controls, Step / Play / Reset) and keeps the session's model; the main
    area is MarketTabs of its current model."""
    params = solara.use_memo(model_params, [])
    model = solara.use_reactive(solara.use_memo(lambda: new_model(params), []))
    solara.Style(SLIDER_VALUES_CSS)
    SolaraViz(model, components=[], model_params=params, name=TITLE)
    MarketTabs(model.value)
