"""Grid model of gridledger: feeders, device models, profiles, AC power flow, OPF and DLMPs."""

from gridledger.network.devices import (
    DeviceError,
    EVCharger,
    PVPlant,
    RegulatedPlant,
    Storage,
    ZIPLoad,
)
from gridledger.network.feeder import (
    BUNDLED_FEEDERS,
    Feeder,
    FeederDataError,
    load_feeder,
    synthetic_feeder,
)
from gridledger.network.grid_data import (
    GridData,
    GridSourceError,
    SimbenchMissingError,
    UnknownGridError,
    grid_source,
)
from gridledger.network.opf.horizon import solve_opf
from gridledger.network.opf.hourly import HourlyOPF
from gridledger.network.opf.result import (
    OPFError,
    OPFExactness,
    OPFInexactWarning,
    OPFInfeasibleError,
    OPFResult,
    delivery_charge_usd_per_mwh,
)
from gridledger.network.pandapower_grid import (
    BUS_OFFSET,
    LV_BASE_MVA,
    GridModelError,
    GridTopologyError,
    choose_base_mva,
    grid_from_pandapower,
)
from gridledger.network.powerflow import PowerFlowDivergedError, PowerFlowResult, run_power_flow
from gridledger.network.profiles import (
    DayProfiles,
    default_day,
    feed_in_tariff,
    load_shape,
    pv_shape,
    tou_tariff,
    wholesale_price,
)
from gridledger.network.simbench_grid import load_simbench

__all__ = [
    "BUNDLED_FEEDERS",
    "BUS_OFFSET",
    "LV_BASE_MVA",
    "DayProfiles",
    "DeviceError",
    "EVCharger",
    "Feeder",
    "FeederDataError",
    "GridData",
    "GridModelError",
    "GridSourceError",
    "GridTopologyError",
    "HourlyOPF",
    "OPFError",
    "OPFExactness",
    "OPFInexactWarning",
    "OPFInfeasibleError",
    "OPFResult",
    "PVPlant",
    "PowerFlowDivergedError",
    "PowerFlowResult",
    "RegulatedPlant",
    "SimbenchMissingError",
    "Storage",
    "UnknownGridError",
    "ZIPLoad",
    "choose_base_mva",
    "default_day",
    "delivery_charge_usd_per_mwh",
    "feed_in_tariff",
    "grid_from_pandapower",
    "grid_source",
    "load_feeder",
    "load_shape",
    "load_simbench",
    "pv_shape",
    "run_power_flow",
    "solve_opf",
    "synthetic_feeder",
    "tou_tariff",
    "wholesale_price",
]
