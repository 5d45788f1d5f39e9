"""gridledger: blockchain-based peer-to-peer electricity trading on a real distribution feeder.

Public API (imported lazily so that `import gridledger` stays light):
`Scenario`, `ScenarioError`, `EnergyMarketModel`, `run_scenario`, `Results`; the errors of a
run whose node went down (`NodeDownError`) and of a resume that the chains contradict
(`ResumeConflictError`).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Scenario": "gridledger.scenario",
    "ScenarioError": "gridledger.scenario",
    "EnergyMarketModel": "gridledger.model",
    "run_scenario": "gridledger.runner",
    "Results": "gridledger.results",
    "NodeDownError": "gridledger.chain",
    "ResumeConflictError": "gridledger.chain",
}
__all__ = [
    "EnergyMarketModel",
    "NodeDownError",
    "Results",
    "ResumeConflictError",
    "Scenario",
    "ScenarioError",
    "run_scenario",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'gridledger' has no attribute {name!r}")
