"""The sellers' pricing rule (agents/pricing.py) and the DLMP reference of the operator's OPF."""

from __future__ import annotations

import pytest

from gridledger import Scenario, ScenarioError
from gridledger.agents.pricing import split_gain_price

FIT = 40.0


def test_price_splits_the_gain_between_tariff_and_feed_in() -> None:
    assert split_gain_price(160.0, 500.0, FIT, 0.5) == pytest.approx(100.0)
    assert split_gain_price(400.0, 500.0, FIT, 0.5) == pytest.approx(220.0)
    assert split_gain_price(160.0, 500.0, FIT, 0.0) == FIT
    assert split_gain_price(160.0, 500.0, FIT, 1.0) == 160.0


def test_price_stays_within_the_contract_bounds() -> None:
    # a cap below the tariff bounds the price; below the feed-in floor nothing can be sold
    assert split_gain_price(400.0, 100.0, FIT, 0.9) == pytest.approx(FIT + 0.9 * 60.0)
    assert split_gain_price(400.0, 39.0, FIT, 0.5) is None
    for cap in (40.0, 80.0, 150.0, 420.0):
        for tariff in (130.0, 160.0, 400.0):
            v = split_gain_price(tariff, cap, FIT, 0.7)
            assert v is not None and FIT <= v <= min(cap, tariff)


def test_relative_discount_grows_with_the_tariff() -> None:
    """The buyer's saving relative to the tariff, (1 - f)(1 - FiT/T), is largest on-peak."""
    saving = {t: 1.0 - split_gain_price(t, 1e9, FIT, 0.5) / t for t in (130.0, 160.0, 400.0)}
    assert saving[130.0] < saving[160.0] < saving[400.0]
    assert saving[400.0] == pytest.approx(0.5 * (1.0 - FIT / 400.0))


def test_bad_fraction_and_reference_are_named() -> None:
    with pytest.raises(ValueError, match="fraction"):
        split_gain_price(160.0, 200.0, FIT, 1.5)
    with pytest.raises(ScenarioError, match="dlmp_reference"):
        Scenario(dlmp_reference="spot")
