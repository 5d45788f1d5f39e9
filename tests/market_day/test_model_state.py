"""The model's state is what model.py declares: every attribute a run sets on an
EnergyMarketModel (set-up, hours, attacks, the refusal probe) is annotated on the class, and every
annotation is set, so reading the class tells what a model holds (issue 15)."""

from __future__ import annotations

import mesa

from gridledger import EnergyMarketModel, Scenario
from gridledger.day.refusals import probe_refusals
from gridledger.day.world import Network, Population, Profiles, build_world


def test_every_attribute_a_run_sets_is_declared_on_the_model() -> None:
    model = EnergyMarketModel(Scenario(hours=2, cheat_producers=1, sybil_identities=1))
    model.run()
    probe_refusals(model)
    mesa_own = set(vars(mesa.Model(rng=1)))
    held = {a for a in vars(model) if a not in mesa_own and not a.startswith("_")}
    declared = set(EnergyMarketModel.__annotations__)
    assert held - declared == set(), "set on the model but not declared in model.py"
    assert declared - held == set(), "declared in model.py but never set"


def test_world_builders_return_the_world_and_set_nothing_on_the_model() -> None:
    """build_world hands back typed parts; the model's attributes come from them, not from
    the builder (a second build on the same model leaves its attributes untouched)."""
    model = EnergyMarketModel(Scenario(hours=1))
    before = dict(vars(model))
    world = build_world(model)
    assert isinstance(world.network, Network)
    assert isinstance(world.profiles, Profiles)
    assert isinstance(world.population, Population)
    changed = {k for k, v in vars(model).items() if before.get(k, object()) is not v}
    assert changed <= {"_all_agents", "_agents_by_type", "agent_id_counter"}, changed
    # same seed, same world: the model holds what an equal build returns
    assert world.network.n_areas == model.n_areas
    assert world.profiles.tariff.tolist() == model.tariff.tolist()
    assert len(world.population.users) == len(model.users)
    assert [u.bus for u in world.population.users] == [u.bus for u in model.users]
    assert world.population.users[0] is not model.users[0]
