# pragma version 0.4.3
"""
@title LETB — local energy trading (one contract per area)
@notice Producers post (energy Wh, price base units per Wh) offers for the open market hour into
        a price-ordered linked list (insertion position from an off-chain hint, verified here);
        consumers post (demand Wh, reputation threshold) and are filled cheapest-first from
        offers whose producer reputation >= threshold; payment is escrowed in EnergyToken; the
        TDNO settles delivered Wh; the buyer rates each fill. See README.md for the full rules.
"""

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

struct Fill:
    producer_id: uint256
    seller: address
    e_wh: uint256
    price: uint256

struct SettleItem:
    buyer: address
    nonce: uint256
    fills: DynArray[Fill, MAX_FILLS]
    delivered_wh: DynArray[uint256, MAX_FILLS]

event OfferPosted:
    producer: indexed(address)
    producer_id: uint256
    t: uint256
    e_wh: uint256
    price: uint256

event Trade:
    buyer: indexed(address)
    seller: indexed(address)
    nonce: uint256
    t: uint256
    index: uint256
    producer_id: uint256
    e_wh: uint256
    price: uint256

event Requested:
    buyer: indexed(address)
    nonce: uint256
    t: uint256
    demand_wh: uint256
    filled_wh: uint256
    rt: uint256
    paid: uint256

event Settled:
    buyer: indexed(address)
    nonce: uint256
    t: uint256
    delivered_wh: uint256
    paid: uint256
    refunded: uint256

event Credited:
    buyer: indexed(address)
    nonce: uint256
    amount: uint256
    credit: uint256

event CreditUsed:
    buyer: indexed(address)
    nonce: uint256
    amount: uint256
    credit: uint256

event Withdrawn:
    account: indexed(address)
    amount: uint256

event Rated:
    buyer: indexed(address)
    seller: indexed(address)
    nonce: uint256
    producer_id: uint256
    score: uint256
    reputation: uint256

MAX_FILLS: constant(uint256) = 16
MAX_VISIT: constant(uint256) = 64
MAX_WALK: constant(uint256) = 1024
MAX_BOOK_VIEW: constant(uint256) = 1024

# offer slot: price (96 bits, 160..255) | e_wh left (64, 96..159) | next id (32, 64..95)
#             | hour + 1 of the offer (32, 32..63) | reputation XOR initial reputation (16, 16..31)
#             (all zero until the producer's first offer: registration writes no offer slot)
# seller slot: account (160 bits, 0..159) | bus (16, 160..175)
# head slot: producer id of the cheapest offer (24 bits, 16..39) | hour + 1 it belongs to
#            (16, 0..15; another hour's head means an empty book); bit 255 pre-pays the slot
P_E_SHIFT: constant(uint256) = 96
P_NEXT_SHIFT: constant(uint256) = 64
P_HOUR_SHIFT: constant(uint256) = 32
P_REP_SHIFT: constant(uint256) = 16
HEAD_SHIFT: constant(uint256) = 16
HEAD_SLOT_MARK: constant(uint256) = 1 << 255
BUS_SHIFT: constant(uint256) = 160

producers: HashMap[uint256, uint256]
seller_of: HashMap[uint256, uint256]
book_head: uint256
AREA_ID: immutable(uint256)
FILL_CAP: immutable(uint256)


@deploy
def __init__(
    token: address,
    area_id: uint256,
    operator: address,
    tdno: address,
    initial_reputation: uint256,
    bond: uint256,
    max_fills: uint256,
):
    """
    @param token EnergyToken address
    @param area_id area number (informative)
    @param initial_reputation reputation of a new producer, 0..1000
    @param bond token base units locked per registration (0 = none)
    @param max_fills fills one request may make, 1..MAX_FILLS (settlement and feedback gas grow
           with it: about 9k and 5k gas per fill)
    """
    assert max_fills >= 1 and max_fills <= MAX_FILLS, "max_fills out of range"
    base.__init__(token, operator, tdno, initial_reputation, bond)
    AREA_ID = area_id
    FILL_CAP = max_fills
    self.book_head = HEAD_SLOT_MARK


@external
def register(account: address, commitment: bytes32, bus: uint256, role: uint256):
    """
    @notice register `account` at feeder `bus` with identity `commitment` and role bit mask
            (1 producer, 2 consumer, 3 both); operator or admin only
    """
    pid: uint256 = base._register(account, commitment, bus, role, True)
    if pid != 0:
        self.seller_of[pid] = (bus << BUS_SHIFT) | convert(account, uint256)


@internal
@view
def _head(tag: uint256) -> uint256:
    """producer id at the head of the book of the hour with hour + 1 = `tag` (0 = empty)"""
    h: uint256 = self.book_head
    if h & base.MASK16 != tag or tag == 0:
        return 0
    return (h >> HEAD_SHIFT) & base.MAX_PRODUCERS


@internal
@view
def _reputation(offer_slot: uint256) -> uint256:
    """live reputation (0..1000) stored in an offer slot"""
    return ((offer_slot >> P_REP_SHIFT) & base.MASK16) ^ base.initial_reputation


@internal
@view
def _seller(pid: uint256) -> address:
    return convert(self.seller_of[pid] & base.MASK160, address)


@internal
@pure
def _before(price_a: uint256, id_a: uint256, price_b: uint256, id_b: uint256) -> bool:
    """book order: offer (price_a, id_a) comes before (price_b, id_b) — by price, then by
    producer id, so the book's order does not depend on the order offers were executed in"""
    return price_a < price_b or (price_a == price_b and id_a < id_b)


@external
@view
def area_id() -> uint256:
    """@notice area number (informative)"""
    return AREA_ID


@external
@view
def max_fills() -> uint256:
    """@notice fills one request may make at most (deployment parameter, 1..16)"""
    return FILL_CAP


@external
@view
def n_producers() -> uint256:
    """@notice number of producers registered (the highest producer id)"""
    return base._n_registered()


@external
def post_offer(t: uint256, e_wh: uint256, price: uint256, hint_prev_id: uint256) -> uint256:
    """
    @notice offer `e_wh` Wh at `price` base units per Wh for the open hour `t`; `hint_prev_id`
            is the producer id of the offer to insert after (0 = at the head), see hint_for()
    @return the caller's producer id
    """
    state: uint256 = base._check_hour(t)
    acct: uint256 = base.accounts[msg.sender]
    assert acct & base.F_PRODUCER != 0, "not a producer"
    pid: uint256 = (acct >> 8) & (2**24 - 1)
    slot: uint256 = self.producers[pid]
    tag: uint256 = t + 1
    assert (slot >> P_HOUR_SHIFT) & base.MASK32 != tag, "offer already posted this hour"
    assert e_wh >= 1 and e_wh <= base.MAX_E_WH, "energy out of range"
    base._check_price(state, self.seller_of[pid] >> BUS_SHIFT, price)

    prev: uint256 = hint_prev_id
    prev_slot: uint256 = 0
    nxt: uint256 = 0
    if prev == 0:
        nxt = self._head(tag)
    else:
        prev_slot = self.producers[prev]
        assert (prev_slot >> P_HOUR_SHIFT) & base.MASK32 == tag, "stale hint"
        assert (prev_slot >> P_E_SHIFT) & base.MASK64 != 0, "stale hint"
        assert self._before(prev_slot >> 160, prev, price, pid), "bad hint"
        nxt = (prev_slot >> P_NEXT_SHIFT) & base.MASK32
    for i: uint256 in range(MAX_WALK):
        if nxt == 0:
            break
        next_slot: uint256 = self.producers[nxt]
        if not self._before(next_slot >> 160, nxt, price, pid):
            break
        assert i + 1 < MAX_WALK, "hint too far"
        prev = nxt
        prev_slot = next_slot
        nxt = (next_slot >> P_NEXT_SHIFT) & base.MASK32

    self.producers[pid] = (
        (price << 160)
        | (e_wh << P_E_SHIFT)
        | (nxt << P_NEXT_SHIFT)
        | (tag << P_HOUR_SHIFT)
        | (slot & base.MASK32)
    )
    if prev == 0:
        self.book_head = (pid << HEAD_SHIFT) | tag
    else:
        self.producers[prev] = (prev_slot & ~(base.MASK32 << P_NEXT_SHIFT)) | (
            pid << P_NEXT_SHIFT
        )
    log OfferPosted(producer=msg.sender, producer_id=pid, t=t, e_wh=e_wh, price=price)
    return pid


@internal
@pure
def _request_hash(
    buyer: address, nonce: uint256, t: uint256, fills: DynArray[Fill, MAX_FILLS]
) -> bytes32:
    return keccak256(abi_encode(buyer, nonce, t, fills))


@external
def request(t: uint256, demand_wh: uint256, rt: uint256) -> uint256:
    """
    @notice buy up to `demand_wh` Wh in the open hour `t` from the cheapest offers whose
            producer reputation >= `rt` (0..1000), at most max_fills() fills; pulls the payment
            into escrow
    @return filled energy, Wh
    """
    state: uint256 = base._check_hour(t)
    acct: uint256 = base.accounts[msg.sender]
    assert acct & base.F_CONSUMER != 0, "not a consumer"
    assert demand_wh >= 1 and demand_wh <= base.MAX_E_WH, "energy out of range"
    assert rt <= base.REP_MAX, "threshold out of range"
    assert acct & base.F_OPEN == 0, "previous request not settled"

    own: uint256 = (acct >> 8) & (2**24 - 1)
    nonce: uint256 = ((acct >> 32) & base.MASK32) + 1
    head: uint256 = self._head(t + 1)
    new_head: uint256 = head
    cur: uint256 = head
    prev: uint256 = 0
    prev_slot: uint256 = 0
    remaining: uint256 = demand_wh
    total: uint256 = 0
    fills: DynArray[Fill, MAX_FILLS] = []
    cap: uint256 = FILL_CAP
    for i: uint256 in range(MAX_VISIT):
        if cur == 0 or remaining == 0 or len(fills) == cap:
            break
        s: uint256 = self.producers[cur]
        nxt: uint256 = (s >> P_NEXT_SHIFT) & base.MASK32
        if self._reputation(s) >= rt and cur != own:
            e: uint256 = (s >> P_E_SHIFT) & base.MASK64
            q: uint256 = min(e, remaining)
            p: uint256 = s >> 160
            seller: address = self._seller(cur)
            log Trade(
                buyer=msg.sender,
                seller=seller,
                nonce=nonce,
                t=t,
                index=len(fills),
                producer_id=cur,
                e_wh=q,
                price=p,
            )
            fills.append(Fill(producer_id=cur, seller=seller, e_wh=q, price=p))
            remaining -= q
            total += q * p
            s = (s & ~(base.MASK64 << P_E_SHIFT)) | ((e - q) << P_E_SHIFT)
            self.producers[cur] = s
            if e == q:  # exhausted: unlink
                if prev == 0:
                    new_head = nxt
                else:
                    prev_slot = (prev_slot & ~(base.MASK32 << P_NEXT_SHIFT)) | (
                        nxt << P_NEXT_SHIFT
                    )
                    self.producers[prev] = prev_slot
                cur = nxt
                continue
        prev = cur
        prev_slot = s
        cur = nxt

    filled: uint256 = demand_wh - remaining
    if len(fills) > 0:
        if new_head != head:
            self.book_head = (new_head << HEAD_SHIFT) | (t + 1)
        h: bytes32 = self._request_hash(msg.sender, nonce, t, fills)
        credit: uint256 = (acct >> base.CREDIT_SHIFT) & base.MAX_CREDIT
        used: uint256 = min(credit, total)
        base.accounts[msg.sender] = (
            base._commit(h)
            | ((credit - used) << base.CREDIT_SHIFT)
            | (nonce << 32)
            | (acct & (base.MASK32 - base.F_SETTLED))
            | base.F_OPEN
        )
        if used > 0:
            log CreditUsed(buyer=msg.sender, nonce=nonce, amount=used, credit=credit - used)
        if total > used:
            extcall base.token.transferFrom(msg.sender, self, total - used)
    else:
        nonce -= 1
    log Requested(
        buyer=msg.sender, nonce=nonce, t=t, demand_wh=demand_wh, filled_wh=filled, rt=rt, paid=total
    )
    return filled


@internal
def _settle(
    buyer: address,
    nonce: uint256,
    t: uint256,
    fills: DynArray[Fill, MAX_FILLS],
    delivered_wh: DynArray[uint256, MAX_FILLS],
):
    """settle one request (checks, payouts, refund credit, Settled event); see settle()"""
    n: uint256 = len(fills)
    assert n == len(delivered_wh), "length mismatch"
    acct: uint256 = base._settling_account(buyer, keccak256(abi_encode(buyer, nonce, t, fills)))
    receivers: DynArray[address, MAX_FILLS + 1] = []
    amounts: DynArray[uint256, MAX_FILLS + 1] = []
    paid: uint256 = 0
    refunded: uint256 = 0
    delivered_total: uint256 = 0
    for i: uint256 in range(MAX_FILLS):
        if i == n:
            break
        f: Fill = fills[i]
        d: uint256 = delivered_wh[i]
        assert d <= f.e_wh, "delivered above schedule"
        # e_wh <= 10**12 and price < 2**96 were checked when the fill was made
        if d > 0:
            amount: uint256 = unsafe_mul(d, f.price)
            receivers.append(f.seller)
            amounts.append(amount)
            paid = unsafe_add(paid, amount)
            delivered_total = unsafe_add(delivered_total, d)
        refunded = unsafe_add(refunded, unsafe_mul(unsafe_sub(f.e_wh, d), f.price))
    credit: uint256 = (acct >> base.CREDIT_SHIFT) & base.MAX_CREDIT
    if refunded > 0:
        if credit + refunded <= base.MAX_CREDIT:
            credit = unsafe_add(credit, refunded)
            acct = unsafe_add(acct, refunded << base.CREDIT_SHIFT)
            log Credited(buyer=buyer, nonce=nonce, amount=refunded, credit=credit)
        else:  # the credit field would overflow: refund by transfer instead
            receivers.append(buyer)
            amounts.append(refunded)
    if len(receivers) > 0:
        extcall base.token.transfer_many(receivers, amounts, skip_contract_check=True)
    base.accounts[buyer] = (acct ^ base.F_OPEN) | base.F_SETTLED
    log Settled(
        buyer=buyer,
        nonce=nonce,
        t=t,
        delivered_wh=delivered_total,
        paid=paid,
        refunded=refunded,
    )


@external
def settle(
    buyer: address,
    nonce: uint256,
    t: uint256,
    fills: DynArray[Fill, MAX_FILLS],
    delivered_wh: DynArray[uint256, MAX_FILLS],
):
    """
    @notice TDNO confirms the delivered Wh of each fill of `buyer`'s request `nonce`; pays each
            seller delivered * price from escrow and credits the rest to the buyer inside the
            contract (pull payment: spent first by its next request, or `withdraw()`), once
    """
    self._settle(buyer, nonce, t, fills, delivered_wh)


@external
def settle_many(t: uint256, items: DynArray[SettleItem, base.MAX_BATCH]):
    """
    @notice TDNO settles up to MAX_BATCH requests of hour `t` in one call: each item is checked
            and paid exactly as by settle(); any refused item reverts the whole call
    """
    for item: SettleItem in items:
        self._settle(item.buyer, item.nonce, t, item.fills, item.delivered_wh)


@external
def withdraw() -> uint256:
    """
    @notice pay the caller's whole refund credit (token base units) out of escrow, at any time
    @return amount paid
    """
    acct: uint256 = base.accounts[msg.sender]
    credit: uint256 = (acct >> base.CREDIT_SHIFT) & base.MAX_CREDIT
    assert credit > 0, "no credit"
    base.accounts[msg.sender] = acct & ~(base.MAX_CREDIT << base.CREDIT_SHIFT)
    extcall base.token.transfer(msg.sender, credit)
    log Withdrawn(account=msg.sender, amount=credit)
    return credit


@external
@view
def credit_of(account: address) -> uint256:
    """@notice refund credit of `account`, token base units (spent by its next request)"""
    return (base.accounts[account] >> base.CREDIT_SHIFT) & base.MAX_CREDIT


@external
def feedback(
    buyer: address,
    nonce: uint256,
    t: uint256,
    fills: DynArray[Fill, MAX_FILLS],
    scores: DynArray[uint256, MAX_FILLS],
):
    """
    @notice the buyer rates each fill of its settled request (score 0..5, one per fill), once;
            each seller's reputation moves by (7 r + 200 score) // 8
    """
    acct: uint256 = base._rating_account(buyer, self._request_hash(buyer, nonce, t, fills))
    assert len(fills) == len(scores), "length mismatch"
    for i: uint256 in range(MAX_FILLS):
        if i >= len(fills):
            break
        score: uint256 = scores[i]
        assert score <= base.SCORE_MAX, "score out of range"
        pid: uint256 = fills[i].producer_id
        s: uint256 = self.producers[pid]
        r: uint256 = base._rep_update(self._reputation(s), score)
        self.producers[pid] = (s & ~(base.MASK16 << P_REP_SHIFT)) | (
            (r ^ base.initial_reputation) << P_REP_SHIFT
        )
        log Rated(
            buyer=buyer,
            seller=fills[i].seller,
            nonce=nonce,
            producer_id=pid,
            score=score,
            reputation=r,
        )
    base.accounts[buyer] = acct ^ base.F_SETTLED


@external
@view
def head() -> uint256:
    """@notice producer id of the cheapest offer of the open hour (0 = empty book)"""
    return self._head(base._tag(base.roles))


@external
@view
def offer_of(
    producer_id: uint256,
) -> (address, uint256, uint256, uint256, uint256, uint256, uint256):
    """
    @notice (seller, price per Wh, e_wh left, next id, hour index or 2**256-1 if never offered,
            reputation, bus) of producer `producer_id`
    """
    s: uint256 = self.producers[producer_id]
    tag: uint256 = (s >> P_HOUR_SHIFT) & base.MASK32
    hour: uint256 = max_value(uint256)
    if tag != 0:
        hour = tag - 1
    seller: uint256 = self.seller_of[producer_id]
    return (
        convert(seller & base.MASK160, address),
        s >> 160,
        (s >> P_E_SHIFT) & base.MASK64,
        (s >> P_NEXT_SHIFT) & base.MASK32,
        hour,
        self._reputation(s),
        seller >> BUS_SHIFT,
    )


@external
@view
def book() -> DynArray[uint256, MAX_BOOK_VIEW]:
    """@notice producer ids of the open hour's book in matching order"""
    ids: DynArray[uint256, MAX_BOOK_VIEW] = []
    cur: uint256 = self._head(base._tag(base.roles))
    for i: uint256 in range(MAX_BOOK_VIEW):
        if cur == 0:
            break
        ids.append(cur)
        cur = (self.producers[cur] >> P_NEXT_SHIFT) & base.MASK32
    return ids


@external
@view
def hint_for(price: uint256) -> uint256:
    """
    @notice a valid `hint_prev_id` for an offer at `price` by any producer: the last offer with a
            lower price (0 = head); post_offer walks on past equal prices with lower ids
    """
    prev: uint256 = 0
    cur: uint256 = self._head(base._tag(base.roles))
    for i: uint256 in range(MAX_BOOK_VIEW):
        if cur == 0:
            break
        s: uint256 = self.producers[cur]
        if s >> 160 >= price:
            break
        prev = cur
        cur = (s >> P_NEXT_SHIFT) & base.MASK32
    return prev


@external
@view
def producer_id(account: address) -> uint256:
    """@notice producer id of `account` (0 = not a producer)"""
    return (base.accounts[account] >> 8) & (2**24 - 1)


@external
@view
def reputation_of(account: address) -> uint256:
    """@notice reputation (0..1000) of producer `account`"""
    pid: uint256 = (base.accounts[account] >> 8) & (2**24 - 1)
    assert pid != 0, "not a producer"
    return self._reputation(self.producers[pid])


@external
@view
def reputations_of(accounts: DynArray[address, 256]) -> DynArray[uint256, 256]:
    """@notice reputations (0..1000) of up to 256 producers in one call; 0 for non-producers"""
    out: DynArray[uint256, 256] = []
    for a: address in accounts:
        pid: uint256 = (base.accounts[a] >> 8) & (2**24 - 1)
        rep: uint256 = 0
        if pid != 0:
            rep = self._reputation(self.producers[pid])
        out.append(rep)
    return out
