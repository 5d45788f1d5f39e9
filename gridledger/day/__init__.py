"""The parts of a market day that `gridledger.model.EnergyMarketModel` composes.

world (scenario -> feeder, profiles, agents), pricing (operator's OPF -> DLMP caps), chains (set-up
and one block per phase), conservation (checks), kpis (hourly rows, agent rows, summary). The
market hour itself is the loop in model.py over the markets of gridledger/markets/.
"""
