# pragma version 0.4.3
"""
@title EnergyToken
@notice ERC-20 payment and escrow token of gridledger: 18 decimals, 1 token = 1 USD, so every
        amount is in token base units. The deployer (admin) receives the initial supply (the fiat
        on-ramp); afterwards only accounts the admin marks as minters (the RETB contracts) can
        mint, and only as renewable incentives. An allowance of 2**256-1 is never decremented.
        Gas layout: one slot per account holds its balance (low 192 bits), its own spender index
        (8 bits; given to the first 56 contracts that receive an unlimited approval) and one bit
        per indexed spender it approved without limit, so a market pulling into its own account
        (request escrow, registration bond) reads no allowance slot. Other allowances live in an
        ordinary map. The total supply stays below 2**192, so balances never reach the flags.
"""

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

event MinterSet:
    minter: indexed(address)
    enabled: bool

name: public(constant(String[32])) = "GridLedger Energy Token"
symbol: public(constant(String[8])) = "GLT"
decimals: public(constant(uint8)) = 18

BALANCE_MASK: constant(uint256) = 2**192 - 1
INDEX_SHIFT: constant(uint256) = 192
APPROVAL_SHIFT: constant(uint256) = 199  # bit 199 + i: unlimited approval of spender index i
MAX_SPENDERS: constant(uint256) = 56
MAX_BATCH: constant(uint256) = 32

totalSupply: public(uint256)
slots: HashMap[address, uint256]
allowances: HashMap[address, HashMap[address, uint256]]
admin: public(immutable(address))
is_minter: public(HashMap[address, bool])
n_spenders: public(uint256)


@deploy
def __init__(initial_supply: uint256):
    """@param initial_supply base units minted to the deployer (below 2**192)"""
    assert initial_supply <= BALANCE_MASK, "supply out of range"
    admin = msg.sender
    self.totalSupply = initial_supply
    self.slots[msg.sender] = initial_supply
    log Transfer(sender=empty(address), receiver=msg.sender, value=initial_supply)


@internal
@pure
def _approval_bit(index: uint256) -> uint256:
    return 1 << (APPROVAL_SHIFT + index)


@internal
@view
def _unlimited(owner_slot: uint256, spender_slot: uint256) -> bool:
    """whether the owner (slot) approved the spender (slot) without limit through its index"""
    index: uint256 = (spender_slot >> INDEX_SHIFT) & 255
    return index != 0 and owner_slot & self._approval_bit(index) != 0


@external
@view
def balanceOf(arg0: address) -> uint256:
    """@notice balance of account `arg0`, base units"""
    return self.slots[arg0] & BALANCE_MASK


@external
@view
def allowance(arg0: address, arg1: address) -> uint256:
    """@notice base units spender `arg1` may move for owner `arg0` (2**256-1 = unlimited)"""
    if self._unlimited(self.slots[arg0], self.slots[arg1]):
        return max_value(uint256)
    return self.allowances[arg0][arg1]


@external
@view
def spender_index(spender: address) -> uint256:
    """@notice packed-approval index of `spender` (0 = none: its allowances use the map)"""
    return (self.slots[spender] >> INDEX_SHIFT) & 255


@external
def transfer(receiver: address, amount: uint256) -> bool:
    """@notice move `amount` base units from the caller to `receiver`"""
    assert receiver != empty(address), "zero address"
    sender: uint256 = self.slots[msg.sender]
    assert sender & BALANCE_MASK >= amount, "insufficient balance"
    self.slots[msg.sender] = unsafe_sub(sender, amount)
    self.slots[receiver] = unsafe_add(self.slots[receiver], amount)
    log Transfer(sender=msg.sender, receiver=receiver, value=amount)
    return True


@external
def transfer_many(receivers: DynArray[address, MAX_BATCH], amounts: DynArray[uint256, MAX_BATCH]):
    """
    @notice move amounts[i] base units from the caller to receivers[i] for each i, with one
            debit of the caller (the markets' settlement payouts); one Transfer event each
    """
    n: uint256 = len(receivers)
    assert n == len(amounts), "length mismatch"
    total: uint256 = 0
    for i: uint256 in range(MAX_BATCH):
        if i == n:
            break
        receiver: address = receivers[i]
        amount: uint256 = amounts[i]
        assert receiver != empty(address), "zero address"
        total += amount
        self.slots[receiver] = unsafe_add(self.slots[receiver], amount)
        log Transfer(sender=msg.sender, receiver=receiver, value=amount)
    sender: uint256 = self.slots[msg.sender]
    # credits came first; a short balance reverts them all (the caller's own credits included)
    assert sender & BALANCE_MASK >= total, "insufficient balance"
    self.slots[msg.sender] = unsafe_sub(sender, total)


@external
def transferFrom(owner: address, receiver: address, amount: uint256) -> bool:
    """@notice move `amount` base units of `owner` (needs the caller's allowance)"""
    owner_slot: uint256 = self.slots[owner]
    unlimited: bool = False
    if receiver == msg.sender:  # a pull into the spender's own account: its slot is read anyway
        unlimited = self._unlimited(owner_slot, self.slots[receiver])
    else:
        unlimited = self._unlimited(owner_slot, self.slots[msg.sender])
    if not unlimited:
        allowed: uint256 = self.allowances[owner][msg.sender]
        if allowed != max_value(uint256):
            assert allowed >= amount, "insufficient allowance"
            self.allowances[owner][msg.sender] = allowed - amount
    assert receiver != empty(address), "zero address"
    assert owner_slot & BALANCE_MASK >= amount, "insufficient balance"
    self.slots[owner] = unsafe_sub(owner_slot, amount)
    self.slots[receiver] = unsafe_add(self.slots[receiver], amount)
    log Transfer(sender=owner, receiver=receiver, value=amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @notice allow `spender` to move `amount` base units (2**256-1 = unlimited); an unlimited
            approval of a contract is kept as one bit in the caller's account slot
    """
    spender_slot: uint256 = self.slots[spender]
    index: uint256 = (spender_slot >> INDEX_SHIFT) & 255
    if (
        index == 0
        and amount == max_value(uint256)
        and spender.is_contract
        and self.n_spenders < MAX_SPENDERS
    ):
        index = self.n_spenders + 1
        self.n_spenders = index
        self.slots[spender] = spender_slot | (index << INDEX_SHIFT)
    if index != 0:
        owner_slot: uint256 = self.slots[msg.sender]
        if amount == max_value(uint256):
            self.slots[msg.sender] = owner_slot | self._approval_bit(index)
        else:
            if owner_slot & self._approval_bit(index) != 0:
                self.slots[msg.sender] = owner_slot ^ self._approval_bit(index)
            self.allowances[msg.sender][spender] = amount
    else:
        self.allowances[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def mint(receiver: address, amount: uint256):
    """@notice mint `amount` base units to `receiver`; minters (RETB contracts) only"""
    assert self.is_minter[msg.sender], "unauthorised: minter only"
    assert receiver != empty(address), "zero address"
    supply: uint256 = self.totalSupply + amount
    assert supply <= BALANCE_MASK, "supply out of range"
    self.totalSupply = supply
    self.slots[receiver] = unsafe_add(self.slots[receiver], amount)
    log Transfer(sender=empty(address), receiver=receiver, value=amount)


@external
def set_minter(minter: address, enabled: bool):
    """@notice grant or revoke the minter role; admin only"""
    assert msg.sender == admin, "unauthorised: admin only"
    self.is_minter[minter] = enabled
    log MinterSet(minter=minter, enabled=enabled)


@external
@view
def balances_of(accounts: DynArray[address, 256]) -> DynArray[uint256, 256]:
    """@notice balances (base units) of up to 256 accounts in one call"""
    out: DynArray[uint256, 256] = []
    for a: address in accounts:
        out.append(self.slots[a] & BALANCE_MASK)
    return out
