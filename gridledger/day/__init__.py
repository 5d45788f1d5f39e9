"""The parts of a market day that `gridledger.model.EnergyMarketModel` composes.

world (scenario -> feeder, profiles, agents), pricing (operator's OPF -> DLMP caps), chains (set-up
and one block per phase), phases (hour phases 1-5), settlement (6-7: metering, settlement,
feedback), conservation (checks), kpis (hourly rows, agent rows, summary).
"""
