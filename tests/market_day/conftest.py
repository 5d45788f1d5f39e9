"""The default day, run once per test session and shared by every acceptance assertion."""

from __future__ import annotations

import warnings

import pytest

from gridledger import EnergyMarketModel, Results, Scenario


@pytest.fixture(scope="session")
def day() -> tuple[EnergyMarketModel, Results]:
    """The paper's default day on the embedded chains (the default engine, revm) with the real
    OPF (one run per session)."""
    model = EnergyMarketModel(Scenario())
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. an inexact OPF would warn: fail instead
        results = model.run()
    return model, results
