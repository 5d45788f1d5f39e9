"""The model checks every invariant every hour (real EVM, real OPF) and names a violation."""

from __future__ import annotations

import pytest

from gridledger import EnergyMarketModel, Scenario
from gridledger.chain import send_many
from gridledger.day.invariant_checks import check_hour_invariants
from gridledger.model import InvariantError

SHORT = {"hours": 3, "start_hour": 17}


@pytest.mark.slow  # 2-6 s: three model hours
def test_hourly_invariants_hold_with_a_cheater() -> None:
    """Every hour's check passes on a run with under-delivery (that the model's step runs
    the check at all: test_supply_change_without_incentive_is_named)."""
    model = EnergyMarketModel(Scenario(**SHORT, cheat_producers=1))
    res = model.run()
    assert len(res.hourly) == 3
    assert (res.trades["delivered_wh"] < res.trades["e_wh"]).any()  # refunds to check


def test_reputation_out_of_bounds_is_named() -> None:
    # every seller is rated (and its copy refreshed from the chain) in the hours it sells, so
    # corrupt the model's copy after the hour and re-run the hour's check on the real state
    model = EnergyMarketModel(Scenario(**SHORT))
    model.step()
    check_hour_invariants(model, 0)  # holds (supply unchanged since the hour's own check)
    model.producers[3].reputation = 1001
    with pytest.raises(InvariantError, match=r"(?s)in hour 0.*reputation_bounds.*1001"):
        check_hour_invariants(model, 0)
    model.producers[3].reputation = 500
    model.users[0].grid_wh += 1  # one Wh unaccounted
    with pytest.raises(InvariantError, match=r"(?s)in hour 0.*energy_balance"):
        check_hour_invariants(model, 0)


def test_supply_change_without_incentive_is_named() -> None:
    model = EnergyMarketModel(Scenario(**SHORT))
    model.step()
    admin = model.signers[("admin", "letb")]
    tok = model.tokens["letb"]
    send_many([(admin, tok.set_minter(admin.address, True))])
    send_many([(admin, tok.mint(admin.address, 7))])  # 7 base units out of thin air
    with pytest.raises(InvariantError, match=r"(?s)in hour 1.*supply: .*changed by 7 base units"):
        model.step()
