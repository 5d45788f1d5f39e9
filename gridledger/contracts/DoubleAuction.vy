# pragma version 0.4.3
"""
@title DoubleAuction — uniform-price (pay-as-clear) double auction (one contract per area)
@notice Each market hour, sellers post asks (Wh, price) and buyers post bids (Wh, limit price),
        both within [feed-in floor, DLMP cap of their own bus]; bids escrow e_wh * limit. The
        operator clears the hour (in chunks of bids): ONE price for every trade of the area and
        hour, the midpoint of the last matched bid's limit and ask's price; bids are filled from
        asks in book order; the escrow not needed at that price is credited to the buyer. The
        TDNO settles delivered Wh and buyers rate fills exactly as on LETB (same Fill, commitment,
        settle, settle_many, feedback, withdraw). See README.md for the full rules.
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

event AskPosted:
    seller: indexed(address)
    member_id: uint256
    t: uint256
    e_wh: uint256
    price: uint256

event BidPosted:
    buyer: indexed(address)
    member_id: uint256
    t: uint256
    e_wh: uint256
    limit: uint256

event Priced:
    t: indexed(uint256)
    price: uint256
    traded_wh: uint256
    fills: uint256

event Trade:
    buyer: indexed(address)
    seller: indexed(address)
    nonce: uint256
    t: uint256
    index: uint256
    producer_id: uint256
    e_wh: uint256
    price: uint256

event Matched:
    buyer: indexed(address)
    nonce: uint256
    t: uint256
    demand_wh: uint256
    filled_wh: uint256
    price: uint256
    paid: uint256

event Cleared:
    t: indexed(uint256)
    price: uint256

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
MAX_WALK: constant(uint256) = 1024
MAX_HOUR_FILLS: constant(uint256) = 1024
MAX_CLEAR_BIDS: constant(uint256) = 256
MAX_BOOK_VIEW: constant(uint256) = 1024
ASK: constant(uint256) = 1
BID: constant(uint256) = 2

# order slot (one per member; all zero until its first order): price or limit (96 bits,
#            160..255) | e_wh (64, 96..159) | next id in its book (32, 64..95) | hour + 1
#            (16, 48..63) | bus (16, 32..47) | reputation XOR initial reputation (16, 16..31)
#            | side (16, 0..15: 1 ask, 2 bid)
# member slot: account (160 bits, 0..159) | bus (16, 160..175)
# book slot: hour + 1 of the book (32 bits, 0..31) | ask head (32, 32..63) | bid head (32, 64..95)
#            | phase (8, 96..103: 0 open, 1 clearing, 2 cleared); bit 255 pre-pays the slot
# cursor slot (clearing in chunks): price (96, 160..255) | Wh left of the current ask (64,
#            96..159) | current ask (32, 64..95) | next bid (32, 32..63) | fills left (32, 0..31)
O_E_SHIFT: constant(uint256) = 96
O_NEXT_SHIFT: constant(uint256) = 64
O_HOUR_SHIFT: constant(uint256) = 48
O_BUS_SHIFT: constant(uint256) = 32
O_REP_SHIFT: constant(uint256) = 16
ASK_SHIFT: constant(uint256) = 32
BID_SHIFT: constant(uint256) = 64
PHASE_SHIFT: constant(uint256) = 96
OPEN: constant(uint256) = 0
CLEARING: constant(uint256) = 1
CLEARED: constant(uint256) = 2
BUS_SHIFT: constant(uint256) = 160
SLOT_MARK: constant(uint256) = 1 << 255

orders: HashMap[uint256, uint256]
member_of: HashMap[uint256, uint256]
book_state: uint256
cursor: uint256
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
    @param max_fills fills one bid may take, 1..MAX_FILLS (as LETB's max_fills)
    """
    assert max_fills >= 1 and max_fills <= MAX_FILLS, "max_fills out of range"
    base.__init__(token, operator, tdno, initial_reputation, bond)
    AREA_ID = area_id
    FILL_CAP = max_fills
    self.book_state = SLOT_MARK
    self.cursor = SLOT_MARK


@external
def register(
    account: address, commitment: bytes32, bus: uint256, role: uint256, member_id: uint256
):
    """
    @notice register `account` at feeder `bus` with identity `commitment`, role bit mask (1
            seller, 2 buyer, 3 both) and `member_id` (1..2**24-1, each id once: it keys the
            member's order slot and orders ties in the books); operator only
    """
    base._register(account, commitment, bus, role, False)
    assert unsafe_sub(member_id, 1) < base.MAX_PRODUCERS, "member id out of range"
    assert self.member_of[member_id] == 0, "member id taken"
    base.accounts[account] = base.accounts[account] | (member_id << 8)
    self.member_of[member_id] = (bus << BUS_SHIFT) | convert(account, uint256)


@internal
@pure
def _ahead(side: uint256, price_a: uint256, id_a: uint256, price_b: uint256, id_b: uint256) -> bool:
    """book order: asks by ascending price, bids by descending limit, ties by ascending id"""
    if price_a == price_b:
        return id_a < id_b
    if side == ASK:
        return price_a < price_b
    return price_a > price_b


@internal
def _post(t: uint256, e_wh: uint256, price: uint256, hint_prev_id: uint256, side: uint256) -> (
    uint256, uint256
):
    """checks and book insertion of an ask or a bid; returns (member id, account slot)"""
    state: uint256 = base._check_hour(t)
    acct: uint256 = base.accounts[msg.sender]
    if side == ASK:
        assert acct & base.F_PRODUCER != 0, "not a seller"
    else:
        assert acct & base.F_CONSUMER != 0, "not a buyer"
        assert acct & base.F_OPEN == 0, "previous request not settled"
    mid: uint256 = (acct >> 8) & base.MAX_PRODUCERS
    slot: uint256 = self.orders[mid]
    tag: uint256 = t + 1
    assert (slot >> O_HOUR_SHIFT) & base.MASK16 != tag, "order already posted this hour"
    assert e_wh >= 1 and e_wh <= base.MAX_E_WH, "energy out of range"
    bus: uint256 = (slot >> O_BUS_SHIFT) & base.MASK16
    if slot == 0:  # the member's first order: its bus from the registry
        bus = self.member_of[mid] >> BUS_SHIFT
    base._check_price(state, bus, price)

    bs: uint256 = self.book_state
    if bs & base.MASK32 != tag:
        assert (bs >> BID_SHIFT) & base.MASK32 == 0 or (bs >> PHASE_SHIFT) & 3 == CLEARED, (
            "previous hour not cleared"
        )
        bs = SLOT_MARK | tag
    else:
        assert (bs >> PHASE_SHIFT) & 3 == OPEN, "hour cleared"
    head_shift: uint256 = ASK_SHIFT
    if side == BID:
        head_shift = BID_SHIFT
    prev: uint256 = hint_prev_id
    prev_slot: uint256 = 0
    nxt: uint256 = 0
    if prev == 0:
        nxt = (bs >> head_shift) & base.MASK32
    else:
        prev_slot = self.orders[prev]
        assert (prev_slot >> O_HOUR_SHIFT) & base.MASK16 == tag and prev_slot & base.MASK16 == (
            side
        ), "stale hint"
        assert self._ahead(side, prev_slot >> 160, prev, price, mid), "bad hint"
        nxt = (prev_slot >> O_NEXT_SHIFT) & base.MASK32
    for i: uint256 in range(MAX_WALK):
        if nxt == 0:
            break
        next_slot: uint256 = self.orders[nxt]
        if not self._ahead(side, next_slot >> 160, nxt, price, mid):
            break
        assert i + 1 < MAX_WALK, "hint too far"
        prev = nxt
        prev_slot = next_slot
        nxt = (next_slot >> O_NEXT_SHIFT) & base.MASK32

    self.orders[mid] = (
        (price << 160)
        | (e_wh << O_E_SHIFT)
        | (nxt << O_NEXT_SHIFT)
        | (tag << O_HOUR_SHIFT)
        | (bus << O_BUS_SHIFT)
        | (slot & (base.MASK16 << O_REP_SHIFT))
        | side
    )
    if prev == 0:
        bs = (bs & ~(base.MASK32 << head_shift)) | (mid << head_shift)
    else:
        self.orders[prev] = (prev_slot & ~(base.MASK32 << O_NEXT_SHIFT)) | (mid << O_NEXT_SHIFT)
    self.book_state = bs
    return mid, acct


@external
def post_ask(t: uint256, e_wh: uint256, price: uint256, hint_prev_id: uint256) -> uint256:
    """
    @notice sell up to `e_wh` Wh at `price` or more in the open hour `t`; `hint_prev_id` = the
            member id of the ask to insert after (0 = at the head)
    @return the caller's member id
    """
    mid: uint256 = 0
    acct: uint256 = 0
    mid, acct = self._post(t, e_wh, price, hint_prev_id, ASK)
    log AskPosted(seller=msg.sender, member_id=mid, t=t, e_wh=e_wh, price=price)
    return mid


@external
def post_bid(t: uint256, e_wh: uint256, limit: uint256, hint_prev_id: uint256) -> uint256:
    """
    @notice buy up to `e_wh` Wh at `limit` or less in the open hour `t`; escrows e_wh * limit
            (the refund credit pays first); `hint_prev_id` = the bid to insert after (0 = head)
    @return the caller's member id
    """
    mid: uint256 = 0
    acct: uint256 = 0
    mid, acct = self._post(t, e_wh, limit, hint_prev_id, BID)
    total: uint256 = unsafe_mul(e_wh, limit)  # e_wh <= 10**12, limit <= cap < 2**60
    credit: uint256 = (acct >> base.CREDIT_SHIFT) & base.MAX_CREDIT
    used: uint256 = min(credit, total)
    if used > 0:
        base.accounts[msg.sender] = unsafe_sub(acct, used << base.CREDIT_SHIFT)
        log CreditUsed(
            buyer=msg.sender, nonce=(acct >> 32) & base.MASK32, amount=used, credit=credit - used
        )
    if total > used:
        extcall base.token.transferFrom(msg.sender, self, total - used)
    log BidPosted(buyer=msg.sender, member_id=mid, t=t, e_wh=e_wh, limit=limit)
    return mid


@internal
def _price_walk(bs: uint256) -> uint256:
    """the clearing price: walk bids (dearest first) against asks (cheapest first), filling
    min(bid left, ask left) while the bid's limit >= the ask's price, a bid taking at most
    FILL_CAP fills, at most MAX_HOUR_FILLS fills; price = (last bid's limit + last ask's price)
    // 2 (0 if nothing crosses). Returns the cursor of the allocation that follows."""
    bid: uint256 = (bs >> BID_SHIFT) & base.MASK32
    ask: uint256 = (bs >> ASK_SHIFT) & base.MASK32
    first_bid: uint256 = bid
    first_ask: uint256 = ask
    b_slot: uint256 = 0
    a_slot: uint256 = 0
    b_left: uint256 = 0
    a_left: uint256 = 0
    first_left: uint256 = 0
    if bid != 0:
        b_slot = self.orders[bid]
        b_left = (b_slot >> O_E_SHIFT) & base.MASK64
    if ask != 0:
        a_slot = self.orders[ask]
        a_left = (a_slot >> O_E_SHIFT) & base.MASK64
        first_left = a_left
    b_fills: uint256 = 0
    fills: uint256 = 0
    traded: uint256 = 0
    last_bid: uint256 = 0
    last_ask: uint256 = 0
    for i: uint256 in range(MAX_HOUR_FILLS):
        if bid == 0 or ask == 0 or b_slot >> 160 < a_slot >> 160:
            break
        q: uint256 = min(b_left, a_left)
        fills = i + 1
        traded = unsafe_add(traded, q)
        last_bid = b_slot >> 160
        last_ask = a_slot >> 160
        b_left = unsafe_sub(b_left, q)
        a_left = unsafe_sub(a_left, q)
        b_fills = unsafe_add(b_fills, 1)
        if a_left == 0:
            ask = (a_slot >> O_NEXT_SHIFT) & base.MASK32
            if ask != 0:
                a_slot = self.orders[ask]
                a_left = (a_slot >> O_E_SHIFT) & base.MASK64
        if b_left == 0 or b_fills == FILL_CAP:
            bid = (b_slot >> O_NEXT_SHIFT) & base.MASK32
            b_fills = 0
            if bid != 0:
                b_slot = self.orders[bid]
                b_left = (b_slot >> O_E_SHIFT) & base.MASK64
    price: uint256 = unsafe_add(last_bid, last_ask) // 2
    log Priced(t=(bs & base.MASK32) - 1, price=price, traded_wh=traded, fills=fills)
    return (
        (price << 160)
        | (first_left << O_E_SHIFT)
        | (first_ask << 64)
        | (first_bid << 32)
        | fills
    )


@internal
def _credit(buyer: address, acct: uint256, nonce: uint256, amount: uint256) -> uint256:
    """credit `amount` to the buyer's refund credit in its account slot `acct` (transferred
    instead if the credit field would overflow); returns the new account slot"""
    if amount == 0:
        return acct
    credit: uint256 = (acct >> base.CREDIT_SHIFT) & base.MAX_CREDIT
    if credit + amount <= base.MAX_CREDIT:
        log Credited(buyer=buyer, nonce=nonce, amount=amount, credit=credit + amount)
        return unsafe_add(acct, amount << base.CREDIT_SHIFT)
    extcall base.token.transfer(buyer, amount)
    return acct


@internal
def _allocate(t: uint256, cur: uint256, max_bids: uint256) -> uint256:
    """fill up to `max_bids` bids from the cursor on, in book order, at the cursor's price;
    returns the cursor after them (next bid 0 = every bid done)"""
    price: uint256 = (cur >> 160) & base.MASK60
    a_left: uint256 = (cur >> O_E_SHIFT) & base.MASK64
    ask: uint256 = (cur >> 64) & base.MASK32
    bid: uint256 = (cur >> 32) & base.MASK32
    left: uint256 = cur & base.MASK32
    a_slot: uint256 = 0
    seller: address = empty(address)
    if ask != 0 and left != 0:
        a_slot = self.orders[ask]
        seller = convert(self.member_of[ask] & base.MASK160, address)
    for n: uint256 in range(MAX_CLEAR_BIDS):
        if n == max_bids or bid == 0:
            break
        b_slot: uint256 = self.orders[bid]
        demand: uint256 = (b_slot >> O_E_SHIFT) & base.MASK64
        buyer: address = convert(self.member_of[bid] & base.MASK160, address)
        acct: uint256 = base.accounts[buyer]
        nonce: uint256 = unsafe_add((acct >> 32) & base.MASK32, 1)
        fills: DynArray[Fill, MAX_FILLS] = []
        b_left: uint256 = demand
        for k: uint256 in range(MAX_FILLS):
            if left == 0 or b_left == 0 or k == FILL_CAP:
                break
            q: uint256 = min(b_left, a_left)
            log Trade(
                buyer=buyer, seller=seller, nonce=nonce, t=t, index=k, producer_id=ask, e_wh=q,
                price=price
            )
            fills.append(Fill(producer_id=ask, seller=seller, e_wh=q, price=price))
            b_left = unsafe_sub(b_left, q)
            a_left = unsafe_sub(a_left, q)
            left = unsafe_sub(left, 1)
            if a_left == 0:
                ask = (a_slot >> O_NEXT_SHIFT) & base.MASK32
                if ask != 0 and left != 0:
                    a_slot = self.orders[ask]
                    a_left = (a_slot >> O_E_SHIFT) & base.MASK64
                    seller = convert(self.member_of[ask] & base.MASK160, address)
        filled: uint256 = unsafe_sub(demand, b_left)
        paid: uint256 = unsafe_mul(filled, price)
        if filled > 0:
            h: bytes32 = keccak256(abi_encode(buyer, nonce, t, fills))
            acct = (
                base._commit(h)
                | (acct & (base.MAX_CREDIT << base.CREDIT_SHIFT))
                | (nonce << 32)
                | (acct & (base.MASK32 - base.F_SETTLED))
                | base.F_OPEN
            )
        else:
            nonce = unsafe_sub(nonce, 1)
        # escrowed demand * limit at the bid; the part not paid at the clearing price returns
        acct = self._credit(buyer, acct, nonce, unsafe_sub(unsafe_mul(demand, b_slot >> 160), paid))
        base.accounts[buyer] = acct
        log Matched(
            buyer=buyer, nonce=nonce, t=t, demand_wh=demand, filled_wh=filled, price=price,
            paid=paid
        )
        bid = (b_slot >> O_NEXT_SHIFT) & base.MASK32
    return (price << 160) | (a_left << O_E_SHIFT) | (ask << 64) | (bid << 32) | left


@external
def clear(t: uint256, max_bids: uint256) -> bool:
    """
    @notice clear hour `t` (the open hour, or the last hour with orders if not yet cleared):
            the first call sets the price, every call fills the next `max_bids` bids (at most
            MAX_CLEAR_BIDS) in book order and credits each bid's unused escrow; operator only
    @return True when every bid of the hour is done (event Cleared)
    """
    roles: uint256 = base._roles_of_operator()
    tag: uint256 = t + 1
    bs: uint256 = self.book_state
    if bs & base.MASK32 != tag:
        assert tag == base._tag(roles), "wrong hour"
        assert (bs >> BID_SHIFT) & base.MASK32 == 0 or (bs >> PHASE_SHIFT) & 3 == CLEARED, (
            "previous hour not cleared"
        )
        self.book_state = SLOT_MARK | tag | (CLEARED << PHASE_SHIFT)  # an hour without orders
        log Priced(t=t, price=0, traded_wh=0, fills=0)
        log Cleared(t=t, price=0)
        return True
    phase: uint256 = (bs >> PHASE_SHIFT) & 3
    assert phase != CLEARED, "already cleared"
    cur: uint256 = 0
    if phase == OPEN:
        cur = self._price_walk(bs)
    else:
        cur = self.cursor
    cur = self._allocate(t, cur, max_bids)
    done: bool = (cur >> 32) & base.MASK32 == 0
    new_phase: uint256 = CLEARING
    if done:
        new_phase = CLEARED
        log Cleared(t=t, price=(cur >> 160) & base.MASK60)
    self.book_state = (bs & ~(3 << PHASE_SHIFT)) | (new_phase << PHASE_SHIFT)
    self.cursor = cur | SLOT_MARK
    return done


@internal
def _settle(
    buyer: address,
    nonce: uint256,
    t: uint256,
    fills: DynArray[Fill, MAX_FILLS],
    delivered_wh: DynArray[uint256, MAX_FILLS],
):
    """settle one matched bid (checks, payouts, refund credit, Settled event) as LETB does"""
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
        # e_wh <= 10**12 and price < 2**60 were checked when the fill was made
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
        else:
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
    @notice TDNO confirms the delivered Wh of each fill of `buyer`'s matched bid `nonce`; pays
            each seller delivered * price from escrow and credits the rest to the buyer, once
    """
    self._settle(buyer, nonce, t, fills, delivered_wh)


@external
def settle_many(t: uint256, items: DynArray[SettleItem, base.MAX_BATCH]):
    """@notice TDNO settles up to MAX_BATCH matched bids of hour `t`, each as by settle()"""
    for item: SettleItem in items:
        self._settle(item.buyer, item.nonce, t, item.fills, item.delivered_wh)


@external
def withdraw() -> uint256:
    """@notice pay the caller's whole refund credit (token base units) out of escrow"""
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
    """@notice refund credit of `account`, token base units (spent by its next bid)"""
    return (base.accounts[account] >> base.CREDIT_SHIFT) & base.MAX_CREDIT


@internal
@view
def _reputation(slot: uint256) -> uint256:
    return ((slot >> O_REP_SHIFT) & base.MASK16) ^ base.initial_reputation


@external
def feedback(
    buyer: address,
    nonce: uint256,
    t: uint256,
    fills: DynArray[Fill, MAX_FILLS],
    scores: DynArray[uint256, MAX_FILLS],
):
    """
    @notice the buyer rates each fill of its settled bid (score 0..5, one per fill), once;
            each seller's reputation moves by (7 r + 200 score) // 8
    """
    acct: uint256 = base._rating_account(buyer, keccak256(abi_encode(buyer, nonce, t, fills)))
    assert len(fills) == len(scores), "length mismatch"
    for i: uint256 in range(MAX_FILLS):
        if i >= len(fills):
            break
        score: uint256 = scores[i]
        assert score <= base.SCORE_MAX, "score out of range"
        mid: uint256 = fills[i].producer_id
        s: uint256 = self.orders[mid]
        r: uint256 = base._rep_update(self._reputation(s), score)
        self.orders[mid] = (s & ~(base.MASK16 << O_REP_SHIFT)) | (
            (r ^ base.initial_reputation) << O_REP_SHIFT
        )
        log Rated(
            buyer=buyer, seller=fills[i].seller, nonce=nonce, producer_id=mid, score=score,
            reputation=r
        )
    base.accounts[buyer] = acct ^ base.F_SETTLED


@external
@view
def area_id() -> uint256:
    """@notice area number (informative)"""
    return AREA_ID


@external
@view
def max_fills() -> uint256:
    """@notice fills one bid may take at most (deployment parameter, 1..16)"""
    return FILL_CAP


@external
@view
def member_id(account: address) -> uint256:
    """@notice member id of `account` (0 = not registered)"""
    return (base.accounts[account] >> 8) & base.MAX_PRODUCERS


@external
@view
def clearing_state() -> (uint256, uint256, uint256):
    """@notice (hour index of the book or 2**256-1 if none, phase 0 open 1 clearing 2 cleared,
            clearing price once set, else 0)"""
    bs: uint256 = self.book_state
    tag: uint256 = bs & base.MASK32
    phase: uint256 = (bs >> PHASE_SHIFT) & 3
    if tag == 0:
        return max_value(uint256), 0, 0
    price: uint256 = 0
    if phase == CLEARING or (phase == CLEARED and (bs >> BID_SHIFT) & base.MASK32 != 0):
        price = (self.cursor >> 160) & base.MASK60
    return tag - 1, phase, price


@external
@view
def book(side: uint256) -> DynArray[uint256, MAX_BOOK_VIEW]:
    """@notice member ids of the book of `side` (1 asks, 2 bids) of the last hour with orders,
            in book order"""
    bs: uint256 = self.book_state
    cur: uint256 = (bs >> ASK_SHIFT) & base.MASK32
    if side == BID:
        cur = (bs >> BID_SHIFT) & base.MASK32
    ids: DynArray[uint256, MAX_BOOK_VIEW] = []
    for i: uint256 in range(MAX_BOOK_VIEW):
        if cur == 0:
            break
        ids.append(cur)
        cur = (self.orders[cur] >> O_NEXT_SHIFT) & base.MASK32
    return ids


@external
@view
def order_of(mid: uint256) -> (address, uint256, uint256, uint256, uint256, uint256, uint256):
    """
    @notice (account, price or limit per Wh, e_wh, side 1 ask 2 bid 0 none, hour index or
            2**256-1, reputation, bus) of member `mid`
    """
    s: uint256 = self.orders[mid]
    tag: uint256 = (s >> O_HOUR_SHIFT) & base.MASK16
    hour: uint256 = max_value(uint256)
    if tag != 0:
        hour = tag - 1
    m: uint256 = self.member_of[mid]
    return (
        convert(m & base.MASK160, address),
        s >> 160,
        (s >> O_E_SHIFT) & base.MASK64,
        s & base.MASK16,
        hour,
        self._reputation(s),
        m >> BUS_SHIFT,
    )


@external
@view
def reputations_of(accounts: DynArray[address, 256]) -> DynArray[uint256, 256]:
    """@notice reputations (0..1000) of up to 256 members in one call; 0 for non-members"""
    out: DynArray[uint256, 256] = []
    for a: address in accounts:
        mid: uint256 = (base.accounts[a] >> 8) & base.MAX_PRODUCERS
        rep: uint256 = 0
        if mid != 0:
            rep = self._reputation(self.orders[mid])
        out.append(rep)
    return out
