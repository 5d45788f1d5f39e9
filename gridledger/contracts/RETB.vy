# pragma version 0.4.3
"""
@title RETB — renewable energy trading (one contract per zone)
@notice Renewable producers (REPs) post a stable window [start, end) (hour indices), capacity
        (Wh), price (token base units per Wh) and cumulative stable hours; a consumer buys its
        shortage (Wh) for a demand window from the REP the operator ranked first for it (passed as
        `rep`, eligibility verified here); payment is escrowed; the TDNO settles delivered Wh; on
        positive feedback the REP is minted the incentive I = C_REG * log_k(1 + x).
"""

import fixed_log
import market_base as base

initializes: base

exports: (
    base.admin,
    base.operator,
    base.tdno,
    base.token,
    base.bond,
    base.initial_reputation,
    base.set_operator,
    base.set_tdno,
    base.open_hour,
    base.current_hour,
    base.feed_in_floor,
    base.cap_of,
    base.account_state,
    base.max_batch,
)

struct RetbTrade:
    buyer: address
    nonce: uint256
    t: uint256
    start: uint256
    end: uint256
    rep: address
    e_wh: uint256
    price: uint256
    stable_hours: uint256

event OfferPosted:
    rep: indexed(address)
    t: uint256
    start: uint256
    end: uint256
    capacity_wh: uint256
    price: uint256
    stable_hours: uint256

event Trade:
    buyer: indexed(address)
    rep: indexed(address)
    nonce: uint256
    t: uint256
    start: uint256
    end: uint256
    e_wh: uint256
    price: uint256
    stable_hours: uint256

event Settled:
    buyer: indexed(address)
    rep: indexed(address)
    nonce: uint256
    delivered_wh: uint256
    paid: uint256
    refunded: uint256

event Rated:
    buyer: indexed(address)
    rep: indexed(address)
    nonce: uint256
    score: uint256
    reputation: uint256

event IncentiveMinted:
    rep: indexed(address)
    buyer: indexed(address)
    nonce: uint256
    x_fp: uint256
    incentive: uint256

ONE: constant(uint256) = 10**18
X_MAX_FP: constant(uint256) = 10**24
POSITIVE_SCORE: constant(uint256) = 3

# REP slot: price (96 bits, 160..255) | capacity left (64, 96..159) | start (16, 80..95)
#           | end (16, 64..79) | stable hours (16, 48..63) | reputation (16, 32..47)
#           | bus (16, 16..31) | flags (16, 0..15; bit 0 = registered REP)
R_E_SHIFT: constant(uint256) = 96
R_START_SHIFT: constant(uint256) = 80
R_END_SHIFT: constant(uint256) = 64
R_STABLE_SHIFT: constant(uint256) = 48
R_REP_SHIFT: constant(uint256) = 32
R_BUS_SHIFT: constant(uint256) = 16

reps: HashMap[address, uint256]
ZONE_ID: immutable(uint256)
LOG_BASE_K: immutable(uint256)
SCALE_WH: immutable(uint256)
STABLE_REF_HOURS: immutable(uint256)
LOG2_K_FP: immutable(uint256)


@deploy
def __init__(
    token: address,
    zone_id: uint256,
    operator: address,
    tdno: address,
    initial_reputation: uint256,
    bond: uint256,
    log_base_k: uint256,
    scale_wh: uint256,
    stable_ref_hours: uint256,
):
    """
    @param log_base_k base k of the incentive logarithm (>= 2)
    @param scale_wh reference energy of the production-scale factor, Wh
    @param stable_ref_hours reference of the stable-time factor, hours
    """
    base.__init__(token, operator, tdno, initial_reputation, bond)
    assert log_base_k >= 2 and log_base_k <= 10**6, "log base out of range"
    assert scale_wh >= 1 and scale_wh <= base.MAX_E_WH, "scale out of range"
    assert stable_ref_hours >= 1 and stable_ref_hours <= 65535, "stable reference out of range"
    ZONE_ID = zone_id
    LOG_BASE_K = log_base_k
    SCALE_WH = scale_wh
    STABLE_REF_HOURS = stable_ref_hours
    LOG2_K_FP = fixed_log._log2_fp(log_base_k * ONE)


@external
def register(account: address, commitment: bytes32, bus: uint256, role: uint256):
    """
    @notice register `account` at feeder `bus` with identity `commitment` and role bit mask
            (1 REP, 2 consumer, 3 both); operator or admin only
    """
    base._register(account, commitment, bus, role, False)
    if role & base.ROLE_PRODUCER != 0:
        self.reps[account] = (
            (base.initial_reputation << R_REP_SHIFT) | (bus << R_BUS_SHIFT) | 1
        )


@external
def post_offer(
    t: uint256,
    start: uint256,
    end: uint256,
    capacity_wh: uint256,
    price: uint256,
    stable_hours: uint256,
):
    """
    @notice replace the caller's offer: window [start, end) (hour indices, t <= start < end),
            capacity Wh for the window, price base units per Wh (within the open hour's cap of
            the REP's bus and the feed-in floor), cumulative stable hours (self-reported)
    """
    state: uint256 = base._check_hour(t)
    s: uint256 = self.reps[msg.sender]
    assert s & 1 != 0, "not a REP"
    assert t <= start and start < end and end <= base.MAX_HOUR + 1, "bad window"
    assert capacity_wh >= 1 and capacity_wh <= base.MAX_E_WH, "energy out of range"
    assert stable_hours <= 65535, "stable hours out of range"
    base._check_price(state, (s >> R_BUS_SHIFT) & base.MASK16, price)
    self.reps[msg.sender] = (
        (price << 160)
        | (capacity_wh << R_E_SHIFT)
        | (start << R_START_SHIFT)
        | (end << R_END_SHIFT)
        | (stable_hours << R_STABLE_SHIFT)
        | (s & base.MASK48)
    )
    log OfferPosted(
        rep=msg.sender,
        t=t,
        start=start,
        end=end,
        capacity_wh=capacity_wh,
        price=price,
        stable_hours=stable_hours,
    )


@external
def request(
    t: uint256, shortage_wh: uint256, start: uint256, end: uint256, rt: uint256, rep: address
) -> uint256:
    """
    @notice buy `shortage_wh` Wh for the demand window [start, end) from `rep`, the REP the
            operator ranked first for this user; the contract verifies its eligibility
    @return price paid per Wh, token base units
    """
    state: uint256 = base._check_hour(t)
    acct: uint256 = base.accounts[msg.sender]
    assert acct & base.F_CONSUMER != 0, "not a consumer"
    assert t <= start and start < end, "bad window"
    assert shortage_wh >= 1 and shortage_wh <= base.MAX_E_WH, "energy out of range"
    assert rt <= base.REP_MAX, "threshold out of range"
    assert acct & base.F_OPEN == 0, "previous request not settled"
    assert rep != msg.sender, "cannot buy from yourself"
    s: uint256 = self.reps[rep]
    assert s & 1 != 0, "not a REP"
    assert (s >> R_START_SHIFT) & base.MASK16 <= start and end <= (
        s >> R_END_SHIFT
    ) & base.MASK16, "REP window does not cover demand window"
    assert (s >> R_E_SHIFT) & base.MASK64 >= shortage_wh, "REP capacity below shortage"
    assert (s >> R_REP_SHIFT) & base.MASK16 >= rt, "REP reputation below threshold"
    self.reps[rep] = unsafe_sub(s, shortage_wh << R_E_SHIFT)  # capacity >= shortage_wh

    price: uint256 = s >> 160
    stable_hours: uint256 = (s >> R_STABLE_SHIFT) & base.MASK16
    nonce: uint256 = unsafe_add((acct >> 32) & base.MASK32, 1)
    trade: RetbTrade = RetbTrade(
        buyer=msg.sender,
        nonce=nonce,
        t=t,
        start=start,
        end=end,
        rep=rep,
        e_wh=shortage_wh,
        price=price,
        stable_hours=stable_hours,
    )
    base.accounts[msg.sender] = (
        base._commit(keccak256(abi_encode(trade)))
        | (nonce << 32)
        | (acct & (base.MASK32 - base.F_SETTLED))
        | base.F_OPEN
    )
    # shortage_wh <= 10**12 and price < 2**96: the product fits
    extcall base.token.transferFrom(msg.sender, self, unsafe_mul(shortage_wh, price))
    log Trade(
        buyer=msg.sender,
        rep=rep,
        nonce=nonce,
        t=t,
        start=start,
        end=end,
        e_wh=shortage_wh,
        price=price,
        stable_hours=stable_hours,
    )
    return price


@internal
def _settle(trade: RetbTrade, delivered_wh: uint256):
    """settle one trade (checks, payout, refund, Settled event); see settle()"""
    acct: uint256 = base._settling_account(trade.buyer, keccak256(abi_encode(trade)))
    assert delivered_wh <= trade.e_wh, "delivered above schedule"
    paid: uint256 = delivered_wh * trade.price
    refunded: uint256 = (trade.e_wh - delivered_wh) * trade.price
    receivers: DynArray[address, 2] = []
    amounts: DynArray[uint256, 2] = []
    if paid > 0:
        receivers.append(trade.rep)
        amounts.append(paid)
    if refunded > 0:
        receivers.append(trade.buyer)
        amounts.append(refunded)
    if len(receivers) > 0:
        extcall base.token.transfer_many(receivers, amounts)
    base.accounts[trade.buyer] = (
        base._commit(keccak256(abi_encode(trade, delivered_wh)))
        | ((acct & base.MASK64) ^ base.F_OPEN)
        | base.F_SETTLED
    )
    log Settled(
        buyer=trade.buyer,
        rep=trade.rep,
        nonce=trade.nonce,
        delivered_wh=delivered_wh,
        paid=paid,
        refunded=refunded,
    )


@external
def settle(trade: RetbTrade, delivered_wh: uint256):
    """
    @notice TDNO confirms `delivered_wh` Wh of `trade`; pays the REP delivered * price from
            escrow and refunds the rest to the buyer, once
    """
    self._settle(trade, delivered_wh)


@external
def settle_many(
    trades: DynArray[RetbTrade, base.MAX_BATCH], delivered_wh: DynArray[uint256, base.MAX_BATCH]
):
    """
    @notice TDNO settles up to MAX_BATCH trades in one call: each is checked and paid exactly
            as by settle(); any refused trade reverts the whole call
    """
    assert len(trades) == len(delivered_wh), "length mismatch"
    for i: uint256 in range(base.MAX_BATCH):
        if i == len(trades):
            break
        self._settle(trades[i], delivered_wh[i])


@internal
@view
def _x_fp(delivered_wh: uint256, scheduled_wh: uint256, stable_hours: uint256) -> uint256:
    x: uint256 = (delivered_wh * delivered_wh * stable_hours * ONE) // (
        SCALE_WH * scheduled_wh * STABLE_REF_HOURS
    )
    return min(x, X_MAX_FP)


@internal
@view
def _incentive(payment: uint256, x: uint256) -> uint256:
    return payment * fixed_log._log2_fp(ONE + x) // LOG2_K_FP


@external
def feedback(trade: RetbTrade, delivered_wh: uint256, score: uint256):
    """
    @notice the buyer rates its settled trade (score 0..5), once; moves the REP's reputation
            by (7 r + 200 score) // 8 and, if score >= 3 and energy was delivered, mints the
            incentive delivered * price * log_k(1 + x) to the REP
    """
    acct: uint256 = base._rating_account(
        trade.buyer, keccak256(abi_encode(trade, delivered_wh))
    )
    assert score <= base.SCORE_MAX, "score out of range"
    s: uint256 = self.reps[trade.rep]
    r: uint256 = base._rep_update((s >> R_REP_SHIFT) & base.MASK16, score)
    self.reps[trade.rep] = (s & ~(base.MASK16 << R_REP_SHIFT)) | (r << R_REP_SHIFT)
    base.accounts[trade.buyer] = acct ^ base.F_SETTLED
    log Rated(buyer=trade.buyer, rep=trade.rep, nonce=trade.nonce, score=score, reputation=r)
    if score >= POSITIVE_SCORE and delivered_wh > 0:
        x: uint256 = self._x_fp(delivered_wh, trade.e_wh, trade.stable_hours)
        incentive: uint256 = self._incentive(delivered_wh * trade.price, x)
        if incentive > 0:
            extcall base.token.mint(trade.rep, incentive)
        log IncentiveMinted(
            rep=trade.rep, buyer=trade.buyer, nonce=trade.nonce, x_fp=x, incentive=incentive
        )


@external
@view
def zone_id() -> uint256:
    """@notice zone number (informative)"""
    return ZONE_ID


@external
@view
def log_base_k() -> uint256:
    """@notice base k of the incentive logarithm"""
    return LOG_BASE_K


@external
@view
def scale_wh() -> uint256:
    """@notice reference energy of the production-scale factor, Wh"""
    return SCALE_WH


@external
@view
def stable_ref_hours() -> uint256:
    """@notice reference of the stable-time factor, hours"""
    return STABLE_REF_HOURS


@external
@view
def log2_k_fp() -> uint256:
    """@notice log2(k) in 1e18 fixed point (the incentive's divisor)"""
    return LOG2_K_FP


@external
@view
def rep_offer(rep: address) -> (uint256, uint256, uint256, uint256, uint256, uint256, uint256):
    """
    @notice (price per Wh, capacity left Wh, window start, window end, reputation, bus,
            stable hours) of REP `rep`
    """
    s: uint256 = self.reps[rep]
    assert s & 1 != 0, "not a REP"
    return (
        s >> 160,
        (s >> R_E_SHIFT) & base.MASK64,
        (s >> R_START_SHIFT) & base.MASK16,
        (s >> R_END_SHIFT) & base.MASK16,
        (s >> R_REP_SHIFT) & base.MASK16,
        (s >> R_BUS_SHIFT) & base.MASK16,
        (s >> R_STABLE_SHIFT) & base.MASK16,
    )


@external
@view
def reputation_of(rep: address) -> uint256:
    """@notice reputation (0..1000) of REP `rep`"""
    s: uint256 = self.reps[rep]
    assert s & 1 != 0, "not a REP"
    return (s >> R_REP_SHIFT) & base.MASK16


@external
@pure
def log2_fp(v: uint256) -> uint256:
    """@notice log2(v / 1e18) * 1e18 (v >= 1e18), the on-chain fixed-point logarithm"""
    return fixed_log._log2_fp(v)


@external
@view
def x_fp(delivered_wh: uint256, scheduled_wh: uint256, stable_hours: uint256) -> uint256:
    """@notice the incentive's x in 1e18 fixed point (see README)"""
    assert scheduled_wh >= 1, "energy out of range"
    return self._x_fp(delivered_wh, scheduled_wh, stable_hours)


@external
@view
def incentive_of(payment: uint256, x: uint256) -> uint256:
    """@notice incentive in base units for `payment` (base units) and `x` (1e18 fixed point)"""
    return self._incentive(payment, x)


@external
@view
def reputations_of(reps: DynArray[address, 256]) -> DynArray[uint256, 256]:
    """@notice reputations (0..1000) of up to 256 REPs in one call; 0 for non-REPs"""
    out: DynArray[uint256, 256] = []
    for a: address in reps:
        out.append((self.reps[a] >> R_REP_SHIFT) & base.MASK16)
    return out
