"""TDNO: meters what was physically delivered each hour, confirms it on chain, settles escrow.

Metering: each producer's deliverable energy this hour is what it sold, cut by a configured fault
(probability `fault_rate` per producer and hour: it delivers `fault_delivery_fraction`) or, for a
REP, by its real output falling short of the forecast it sold against (forecast error). A
producer's deliverable energy is shared over its trades pro rata (integer Wh, floor, remainder to
the earliest trades), so delivered <= scheduled for every trade. The AC power flow of the hour
(network/powerflow, exact ZIP loads) with the metered injections gives the voltages, losses and
substation import that the TDNO records beside the settlement.
"""

from __future__ import annotations

from collections.abc import Sequence

import mesa


def pro_rata(deliverable_wh: int, scheduled_wh: Sequence[int]) -> list[int]:
    """Split `deliverable_wh` over trades in proportion to their schedule, never above it.

    Integer Wh: each trade gets floor(share); the Wh left by flooring go one each to the
    earliest trades that still have room. Sum = min(deliverable, total scheduled).
    """
    total = sum(scheduled_wh)
    if deliverable_wh >= total:
        return list(scheduled_wh)
    if deliverable_wh <= 0 or total == 0:
        return [0] * len(scheduled_wh)
    out = [s * deliverable_wh // total for s in scheduled_wh]
    left = deliverable_wh - sum(out)
    for i, s in enumerate(scheduled_wh):
        if left == 0:
            break
        if out[i] < s:
            out[i] += 1
            left -= 1
    return out


class TDNO(mesa.Agent):
    """Transmission/distribution network operator: meters, confirms delivery, settles."""

    role = "tdno"

    def __init__(self, model: mesa.Model, *, bus: int) -> None:
        super().__init__(model)
        self.bus = bus
        self.cost_usd = 0.0
        self.last_power_flow = None
