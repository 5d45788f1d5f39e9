"""One name per step of a market hour: `Phase`, used by the hour loop, the ledger's gas frame
(`phase` column), `NodeDownError.phase` and the docs.

The string values are the ones the gas frames and stored results have always carried, so a
frame written before the enum existed still compares equal. `Phase.stage` maps each step to the
paper's Stage 1-4 (docs/architecture.md "One market hour").
"""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    """A step of set-up or of one market hour, in the order the hour runs them."""

    SETUP = "setup"
    """Set-up (t = -1): deployments, funding, approvals, registrations."""
    OPEN_HOUR = "open_hour"
    """The operator prices the hour (OPF) and opens it on every market with the DLMP caps."""
    POST_OFFER = "post_offer"
    """Sellers post their offers (possibly several blocks: LETB offer rounds)."""
    LETB_REQUEST = "letb_request"
    """Users request local energy in their area (LETB, or the market replacing it)."""
    RETB_REQUEST = "retb_request"
    """Users send their shortage to the renewable zone (RETB) with the operator's ranking."""
    GRID = "grid"
    """The grid sells every user what the markets did not cover (off chain, no transaction)."""
    SETTLE = "settle"
    """The TDNO meters delivery and settles every market's requests on chain."""
    FEEDBACK = "feedback"
    """Users' smart meters rate their trades; reputations and incentives move on chain."""
    CHECKS = "checks"
    """Conservation and invariant checks, the hour's row, the checkpoint part."""
    PROBE = "probe"
    """Refusal probes after the run (day/refusals.py; gas rows with t = -2)."""
    RESUME = "resume: connect"
    """Reconnecting to the chains of a checkpointed run (NodeDownError only)."""

    @property
    def stage(self) -> int | None:
        """The paper's stage of this step: 1 offers, 2 requests, 3 settlement, 4 feedback
        (None for set-up, checks, probes)."""
        return _STAGE.get(self)


_STAGE: dict[Phase, int] = {
    Phase.OPEN_HOUR: 1,
    Phase.POST_OFFER: 1,
    Phase.LETB_REQUEST: 2,
    Phase.RETB_REQUEST: 2,
    Phase.GRID: 2,
    Phase.SETTLE: 3,
    Phase.FEEDBACK: 4,
}
