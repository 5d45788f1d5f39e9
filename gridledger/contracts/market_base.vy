# pragma version 0.4.3
"""
@title market_base
@notice Module shared by LETB and RETB: roles (admin, operator, tdno), participant accounts,
        the open market hour with its feed-in floor, DLMP caps per bus, the reputation rule and
        request commitments. Units: energy in Wh, prices in token base units per Wh, money in
        token base units, hours are market hour indices, reputation 0..1000.
        Gas layout: settings that never change are immutables (no storage reads); one "roles"
        slot holds the operator, the producer counter and the open hour with its feed-in floor
        (one read authorises the operator and checks the hour); DLMP caps are packed four buses per slot
        under one hour tag; the deployment pre-pays the zero -> non-zero price of
        the cap slots of buses 0..PREPAID_CAP_BUSES-1 so no open_hour pays it.
"""

interface EnergyToken:
    def transfer(receiver: address, amount: uint256) -> bool: nonpayable
    def transferFrom(owner: address, receiver: address, amount: uint256) -> bool: nonpayable
    def transfer_many(
        receivers: DynArray[address, 32], amounts: DynArray[uint256, 32]
    ): nonpayable
    def mint(receiver: address, amount: uint256): nonpayable

event RoleSet:
    role: String[8]
    account: indexed(address)

event Registered:
    account: indexed(address)
    commitment: bytes32
    bus: uint256
    role: uint256
    producer_id: uint256

event HourOpened:
    t: indexed(uint256)
    feed_in_floor: uint256
    n_caps: uint256

REP_MAX: constant(uint256) = 1000
SCORE_MAX: constant(uint256) = 5
MAX_HOUR: constant(uint256) = 65534
MAX_PRICE: constant(uint256) = 2**96 - 1
MAX_CAP: constant(uint256) = 2**60 - 1
MAX_E_WH: constant(uint256) = 10**12
MAX_BUS: constant(uint256) = 65535
MAX_CAPS: constant(uint256) = 64
MAX_BATCH: constant(uint256) = 32  # items of one settle_many call (its gas grows with them)
MAX_PRODUCERS: constant(uint256) = 2**24 - 1
ROLE_PRODUCER: constant(uint256) = 1
ROLE_CONSUMER: constant(uint256) = 2

MASK16: constant(uint256) = 2**16 - 1
MASK32: constant(uint256) = 2**32 - 1
MASK48: constant(uint256) = 2**48 - 1
MASK64: constant(uint256) = 2**64 - 1
MASK80: constant(uint256) = 2**80 - 1
MASK96: constant(uint256) = 2**96 - 1
MASK160: constant(uint256) = 2**160 - 1

# account slot: commitment (120 bits, 136..255) | LETB buyer credit (72, 64..135; RETB: 0)
#               | nonce (32, 32..63) | producer id (24, 8..31) | flags (8, 0..7)
COMMIT_MASK: constant(uint256) = max_value(uint256) - (2**136 - 1)
CREDIT_SHIFT: constant(uint256) = 64
MAX_CREDIT: constant(uint256) = 2**72 - 1
F_REGISTERED: constant(uint256) = 1
F_PRODUCER: constant(uint256) = 2
F_CONSUMER: constant(uint256) = 4
F_OPEN: constant(uint256) = 8
F_SETTLED: constant(uint256) = 16

# roles slot: operator (160 bits, 0..159) | producers registered (24, 160..183)
#             | open hour + 1 (16, 184..199; 0 = none opened) | feed-in floor (56, 200..255)
COUNT_SHIFT: constant(uint256) = 160
TAG_SHIFT: constant(uint256) = 184
FLOOR_SHIFT: constant(uint256) = 200
MAX_FLOOR: constant(uint256) = 2**56 - 1
# cap slot k holds buses 4k .. 4k+3: hour + 1 of the last open_hour that posted a cap in the
#            group (16 bits, 0..15; 0 = never) | lane i = cap of bus 4k+i (60 bits at 16 + 60 i;
#            0 = no cap that hour). A slot first touched in a new hour starts from empty lanes.
#            The deployment writes bit 255 (in lane 3 of a slot with hour 0: read as no cap).
LANE_BITS: constant(uint256) = 60
MASK60: constant(uint256) = 2**60 - 1
CAP_SLOT_MARK: constant(uint256) = 1 << 255
PREPAID_CAP_BUSES: constant(uint256) = 68

admin: public(immutable(address))
token: public(immutable(EnergyToken))
bond: public(immutable(uint256))
initial_reputation: public(immutable(uint256))
roles: uint256
tdno: public(address)
accounts: HashMap[address, uint256]
caps: HashMap[uint256, uint256]


@deploy
def __init__(
    token_: address, operator: address, tdno: address, initial_reputation_: uint256, bond_: uint256
):
    assert token_ != empty(address), "zero address"
    assert initial_reputation_ <= REP_MAX, "reputation out of range"
    admin = msg.sender
    token = EnergyToken(token_)
    self.roles = convert(operator, uint256)
    self.tdno = tdno
    initial_reputation = initial_reputation_
    bond = bond_
    for k: uint256 in range(PREPAID_CAP_BUSES // 4):
        self.caps[k] = CAP_SLOT_MARK


@internal
@view
def _roles_of_operator() -> uint256:
    """roles slot, reverting unless the caller is the operator or the admin"""
    roles: uint256 = self.roles
    assert msg.sender == admin or convert(msg.sender, uint256) == roles & MASK160, (
        "unauthorised: operator only"
    )
    return roles


@external
@view
def operator() -> address:
    """@notice the operator account (registers participants, opens hours with caps)"""
    return convert(self.roles & MASK160, address)


@external
def set_operator(account: address):
    """@notice replace the operator; admin only"""
    assert msg.sender == admin, "unauthorised: admin only"
    self.roles = (self.roles & ~MASK160) | convert(account, uint256)
    log RoleSet(role="operator", account=account)


@external
def set_tdno(account: address):
    """@notice replace the TDNO (settlement) account; admin only"""
    assert msg.sender == admin, "unauthorised: admin only"
    self.tdno = account
    log RoleSet(role="tdno", account=account)


@internal
def _register(
    account: address, commitment: bytes32, bus: uint256, role: uint256, numbered: bool
) -> uint256:
    """checks, bond, account slot and event of a registration; a producer gets the next
    producer id if `numbered` (LETB), else 0; returns the id"""
    roles: uint256 = self._roles_of_operator()
    assert account != empty(address), "zero address"
    assert self.accounts[account] == 0, "already registered"
    assert commitment != empty(bytes32), "commitment is zero"
    assert bus >= 1 and bus <= MAX_BUS, "bus out of range"
    assert role >= 1 and role <= 3, "bad role"
    flags: uint256 = F_REGISTERED
    pid: uint256 = 0
    if role & ROLE_PRODUCER != 0:
        flags |= F_PRODUCER
        if numbered:
            pid = ((roles >> COUNT_SHIFT) & MAX_PRODUCERS) + 1
            assert pid <= MAX_PRODUCERS, "too many producers"
            self.roles = unsafe_add(roles, 1 << COUNT_SHIFT)
    if role & ROLE_CONSUMER != 0:
        flags |= F_CONSUMER
    self.accounts[account] = (pid << 8) | flags
    if bond > 0:
        extcall token.transferFrom(account, self, bond)
    log Registered(account=account, commitment=commitment, bus=bus, role=role, producer_id=pid)
    return pid


@internal
@view
def _n_registered() -> uint256:
    return (self.roles >> COUNT_SHIFT) & MAX_PRODUCERS


@external
def open_hour(
    t: uint256,
    feed_in_floor: uint256,
    buses: DynArray[uint256, MAX_CAPS],
    caps: DynArray[uint256, MAX_CAPS],
):
    """
    @notice open market hour `t` (hour index) with the feed-in floor and DLMP caps (token base
            units per Wh) of the listed buses; operator or admin only. Calling it again for the
            open hour continues its cap list (more than MAX_CAPS seller buses): caps already
            posted this hour stay, the listed buses' caps are set, the floor is set again.
    """
    roles: uint256 = self._roles_of_operator()
    assert t <= MAX_HOUR, "hour too large"
    # t >= the open hour (t + 2 > tag, not t + 1 >= tag: the same opcodes and gas as the
    # strictly increasing check this replaced)
    assert t + 2 > (roles >> TAG_SHIFT) & MASK16, "hour already closed"
    assert len(buses) == len(caps), "caps length mismatch"
    assert feed_in_floor <= MAX_FLOOR, "price out of range"
    tag: uint256 = t + 1
    n: uint256 = len(buses)
    for i: uint256 in range(MAX_CAPS):
        if i == n:
            break
        bus: uint256 = buses[i]
        cap: uint256 = caps[i]
        assert unsafe_sub(bus, 1) < MAX_BUS, "bus out of range"  # 1 <= bus <= MAX_BUS
        assert unsafe_sub(cap, 1) < MAX_CAP, "cap out of range"  # 1 <= cap <= MAX_CAP
        assert cap >= feed_in_floor, "cap below feed-in floor"
        k: uint256 = bus >> 2
        lane_at: uint256 = unsafe_add(16, unsafe_mul(bus & 3, LANE_BITS))
        slot: uint256 = self.caps[k]
        if slot & MASK16 != tag:
            slot = tag  # first cap of this group this hour: older lanes are dropped
        self.caps[k] = (slot & ~(MASK60 << lane_at)) | (cap << lane_at)
    self.roles = (roles & (2**TAG_SHIFT - 1)) | (tag << TAG_SHIFT) | (feed_in_floor << FLOOR_SHIFT)
    log HourOpened(t=t, feed_in_floor=feed_in_floor, n_caps=len(buses))


@internal
@view
def _check_hour(t: uint256) -> uint256:
    """roles slot, reverting unless `t` is the open hour"""
    state: uint256 = self.roles
    assert (state >> TAG_SHIFT) & MASK16 == t + 1, "wrong hour"
    return state


@internal
@pure
def _tag(state: uint256) -> uint256:
    """open hour + 1 in a roles slot (0 = none opened)"""
    return (state >> TAG_SHIFT) & MASK16


@internal
@view
def _cap_of(bus: uint256) -> (uint256, uint256):
    """(hour + 1, cap) last posted for `bus`: (0, 0) if none (its group's last hour had none)"""
    slot: uint256 = self.caps[bus >> 2]
    cap: uint256 = (slot >> unsafe_add(16, unsafe_mul(bus & 3, LANE_BITS))) & MASK60
    if cap == 0 or slot & MASK16 == 0:  # hour 0 of a pre-paid slot: its mark is no cap
        return 0, 0
    return slot & MASK16, cap


@internal
@view
def _check_price(state: uint256, bus: uint256, price: uint256):
    """offer price within [feed-in floor, DLMP cap of `bus`] of the open hour"""
    assert price >= 1 and price <= MAX_PRICE, "price out of range"
    tag: uint256 = 0
    cap: uint256 = 0
    tag, cap = self._cap_of(bus)
    assert tag == (state >> TAG_SHIFT) & MASK16, "no DLMP cap for bus this hour"
    assert price <= cap, "price above DLMP cap"
    assert price >= state >> FLOOR_SHIFT, "price below feed-in floor"


@internal
@pure
def _rep_update(reputation: uint256, score: uint256) -> uint256:
    """bounded reputation rule: (7 r + 200 score) // 8, stays in [0, 1000]"""
    return (7 * reputation + 200 * score) // 8


@internal
@pure
def _commit(h: bytes32) -> uint256:
    """the 120-bit commitment part of a hash, aligned to the account slot"""
    return convert(h, uint256) & COMMIT_MASK


@internal
@view
def _rating_account(buyer: address, h: bytes32) -> uint256:
    """account slot of `buyer` after the common feedback checks on commitment `h`"""
    assert msg.sender == buyer, "only the buyer may rate"
    acct: uint256 = self.accounts[buyer]
    assert acct & F_OPEN == 0, "request not settled"
    assert acct & COMMIT_MASK == self._commit(h), "unknown request"
    assert acct & F_SETTLED != 0, "already rated"
    return acct


@internal
@view
def _settling_account(buyer: address, h: bytes32) -> uint256:
    """account slot of `buyer` after the common settlement checks on commitment `h`"""
    assert msg.sender == self.tdno, "unauthorised: tdno only"
    acct: uint256 = self.accounts[buyer]
    assert acct & F_OPEN != 0, "already settled"  # or the buyer never had a matched request
    assert acct & COMMIT_MASK == self._commit(h), "unknown request"
    return acct


@external
@pure
def max_batch() -> uint256:
    """@notice items one settle_many call takes at most"""
    return MAX_BATCH


@external
@view
def current_hour() -> uint256:
    """@notice the open market hour index"""
    tag: uint256 = (self.roles >> TAG_SHIFT) & MASK16
    assert tag != 0, "no hour open"
    return tag - 1


@external
@view
def feed_in_floor() -> uint256:
    """@notice feed-in floor of the open hour, token base units per Wh"""
    return self.roles >> FLOOR_SHIFT


@external
@view
def cap_of(bus: uint256) -> (uint256, uint256):
    """
    @notice (hour index, DLMP cap in base units per Wh) posted for `bus` by the last open_hour
            that posted a cap for any bus of its group of four (bus // 4); (2**256-1, 0) if that
            hour gave `bus` no cap or none was ever posted
    """
    tag: uint256 = 0
    cap: uint256 = 0
    tag, cap = self._cap_of(bus)
    if cap == 0:
        return max_value(uint256), 0
    return tag - 1, cap


@external
@view
def account_state(account: address) -> (uint256, uint256, uint256, uint256):
    """@notice (commitment prefix, nonce, producer id, flags) of `account`"""
    acct: uint256 = self.accounts[account]
    return acct & COMMIT_MASK, (acct >> 32) & MASK32, (acct >> 8) & 2**24 - 1, acct & 255
