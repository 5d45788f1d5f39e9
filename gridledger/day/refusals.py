"""Forbidden actions tried on a finished run's live chains (issue 7, attacks 3-7 inside a run).

`probe_refusals(model)` opens one extra LETB hour after the run (hour `model.t`, the next hour
index) in the area of an honest producer and tries, each signed by the acting agent's own key:
an offer above the bus's DLMP cap and one below the feed-in floor, a delivery confirmation above
the schedule, settlement and opening an hour by a user (TDNO-/operator-only), feedback by a
stranger and a second rating by the buyer, and a token transfer signed for one chain replayed on
the other (both directions). Between the attempts the honest actions that make them meaningful
run too (an offer at the cap, a 500 Wh request that fills it, the TDNO's true confirmation, the
buyer's rating). For each attempt it measures what moved: the token balances of every account
involved and the market's escrow (`tokens_unaccounted_base_units` = sum of |change|) and the Wh
settled by the attempt (`wh_unaccounted`); both must be 0.

Rows go to `model.refusal_rows`; `attack_summary` appends them, so `model.results()` afterwards
has them in `summary["attacks"]` and `Results.attacks` (`refused`, `revert_reason`). Every probe
transaction is recorded in the gas frame with t = -2 and phase "probe", so the day's KPIs (which
count t >= 0) are unchanged; the probe hour's honest trade is not one of the day's trades.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gridledger.chain import ChainIdMismatchError, Signer, TransactionReverted, TxRequest
from gridledger.day.chains import events
from gridledger.markets.phases import Phase

if TYPE_CHECKING:
    from gridledger.model import EnergyMarketModel

PROBE_T = -2
"""Hour index the probe transactions carry in the gas frame (set-up is -1, the day 0..)."""


class ProbeSetupError(RuntimeError):
    """The run has no area with an honest producer and two users to probe with."""


def probe_refusals(model: EnergyMarketModel) -> list[dict[str, Any]]:
    """Try each forbidden action once on the live chains; one row per attempt (see module)."""
    if model.running:
        raise ProbeSetupError("probe_refusals: the run is not finished (model.running is True)")
    mechanism = model.params.market_mechanism
    if mechanism != "paper":  # the probes are LETB's own rules (post_offer, request, settle)
        raise ProbeSetupError(f"probe_refusals: probes LETB, the run's mechanism is {mechanism!r}")
    cheaters = {id(p) for p in model.cheaters}
    producer = users = None
    for p in model.producers:
        same = [u for u in model.users if u.area == p.area]
        if id(p) not in cheaters and len(same) >= 2:
            producer, users = p, same[:2]
            break
    if producer is None or users is None:
        raise ProbeSetupError("probe_refusals: no area with an honest producer and two users")
    buyer, stranger = users
    market = model.letb[producer.area]
    token = model.tokens["letb"]
    ops, tdno = model.signers[("operator", "letb")], model.signers[("tdno", "letb")]
    watched = [producer.account.address, buyer.account.address, stranger.account.address]
    watched += [market.address, ops.address, tdno.address]
    rows: list[dict[str, Any]] = []
    ledger_t, ledger_phase = model.ledger.t, model.ledger.phase
    model.ledger.t, model.ledger.phase = PROBE_T, Phase.PROBE.value

    def balances() -> list[int]:
        return [token.balance_of(a) for a in watched]

    def attempt(scenario: str, tried: str, signer: Signer, req: TxRequest) -> None:
        before = balances()
        reason, settled_wh, refused = "", 0, True
        try:
            res = signer.transact(req)
        except TransactionReverted as exc:
            reason = exc.reason
        else:  # accepted: a finding, and whatever it settled counts as unaccounted
            refused = False
            settled_wh = sum(int(a["delivered"]) for n, a in events(market, res) if n == "Settled")
        moved = sum(abs(a - b) for a, b in zip(balances(), before, strict=True))
        rows.append(row(scenario, tried, refused, reason, moved, settled_wh))

    try:
        t = model.t
        bus = producer.bus
        _tag, cap = market.cap_of(bus)
        floor = market.feed_in_floor()
        ops.transact(market.open_hour(t, floor, [bus], [cap]))
        ps, bs, ss = producer.signer, buyer.letb_signer, stranger.letb_signer
        attempt("bid above DLMP cap", f"producer {producer.index} offers 1 unit above the cap "
                f"of bus {bus}", ps, market.post_offer(t, 1000, cap + 1))  # fmt: skip
        attempt("bid below feed-in tariff", f"producer {producer.index} offers 1 unit below the "
                "feed-in floor", ps, market.post_offer(t, 1000, floor - 1))  # fmt: skip
        ps.transact(market.post_offer(t, 1000, cap))
        res = bs.transact(market.request(t, 500, 0))
        fills = sorted(
            (a for n, a in events(market, res) if n == "Trade"), key=lambda a: a["index"]
        )
        nonce = int(fills[0]["nonce"])
        sched = [int(f["e_wh"]) for f in fills]
        who = f"user {buyer.index}'s request of hour {t}"
        attempt("over-delivery confirmation", f"TDNO confirms 1 Wh more than scheduled for {who}",
                tdno, market.settle(buyer.account.address, nonce, t, fills,
                                    [sched[0] + 1, *sched[1:]]))  # fmt: skip
        attempt("settlement by a non-TDNO", f"user {buyer.index} confirms its own delivery",
                bs, market.settle(buyer.account.address, nonce, t, fills, sched))  # fmt: skip
        attempt("hour opened by a non-operator", f"user {buyer.index} posts its own DLMP caps",
                bs, market.open_hour(t + 1, floor, [buyer.bus], [cap]))  # fmt: skip
        tdno.transact(market.settle(buyer.account.address, nonce, t, fills, sched))
        fb = market.feedback(buyer.account.address, nonce, t, fills, [0] * len(fills))
        attempt("feedback by a stranger", f"user {stranger.index} rates {who} 0", ss, fb)
        attempt("feedback by the seller", f"producer {producer.index} rates its own sale",
                ps, market.feedback(buyer.account.address, nonce, t, fills,
                                    [5] * len(fills)))  # fmt: skip
        bs.transact(market.feedback(buyer.account.address, nonce, t, fills, [5] * len(fills)))
        attempt("second rating by the buyer", f"user {buyer.index} rates {who} again", bs, fb)
        for frm, to in (("letb", "retb"), ("retb", "letb")):
            rows.append(replay(model, buyer, stranger, frm, to))
    finally:
        model.ledger.t, model.ledger.phase = ledger_t, ledger_phase
    model.refusal_rows.extend(rows)
    return rows


def replay(model: EnergyMarketModel, buyer: Any, stranger: Any, frm: str, to: str) -> dict:
    """A 1-token transfer signed for chain `frm` submitted to chain `to`: refused unsent."""
    signer = buyer.letb_signer if frm == "letb" else buyer.retb_signer
    tok, target = model.tokens[frm], model.chains[to]
    addrs = [buyer.account.address, stranger.account.address]
    before = [model.tokens[c].balance_of(a) for c in ("letb", "retb") for a in addrs]
    nonce_before = target.nonce(buyer.account.address)
    signed = signer.sign(tok.transfer(stranger.account.address, 10**18))
    reason, refused = "", True
    try:
        target.submit(signed)
    except ChainIdMismatchError as exc:
        reason = str(exc).split(" was ", 1)[-1]  # "signed for chain id ..., but chain ..."
    else:
        refused = False
    target.mine()
    signer.resync()
    after = [model.tokens[c].balance_of(a) for c in ("letb", "retb") for a in addrs]
    moved = sum(abs(a - b) for a, b in zip(after, before, strict=True))
    if target.nonce(buyer.account.address) != nonce_before:
        refused = False
    return row(
        "cross-chain replay",
        f"user {buyer.index}'s token transfer signed for {frm.upper()} sent to {to.upper()}",
        refused,
        reason,
        moved,
        0,
    )


def row(
    scenario: str, tried: str, refused: bool, reason: str, moved_units: int, settled_wh: int
) -> dict[str, Any]:
    """One summary["attacks"] row of a refused (or, as a finding, accepted) attempt."""
    return {
        "scenario": scenario,
        "tried": tried,
        "refused": refused,
        "revert_reason": reason,
        "happened": (f"refused: {reason}" if refused else "ACCEPTED")
        + f"; tokens moved {moved_units}, Wh settled {settled_wh}",
        "tokens_unaccounted": moved_units,
        "wh_unaccounted": settled_wh,
    }
