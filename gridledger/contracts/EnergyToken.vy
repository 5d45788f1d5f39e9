# pragma version 0.4.3
"""
@title EnergyToken
@notice ERC-20 payment and escrow token of gridledger: 18 decimals, 1 token = 1 USD, so every
        amount is in token base units. The deployer (admin) receives the initial supply (the fiat
        on-ramp); afterwards only accounts the admin marks as minters (the RETB contracts) can
        mint, and only as renewable incentives. An allowance of 2**256-1 is never decremented.
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

totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
admin: public(address)
is_minter: public(HashMap[address, bool])


@deploy
def __init__(initial_supply: uint256):
    """@param initial_supply base units minted to the deployer"""
    self.admin = msg.sender
    self.totalSupply = initial_supply
    self.balanceOf[msg.sender] = initial_supply
    log Transfer(sender=empty(address), receiver=msg.sender, value=initial_supply)


@internal
def _move(sender: address, receiver: address, amount: uint256):
    assert receiver != empty(address), "zero address"
    balance: uint256 = self.balanceOf[sender]
    assert balance >= amount, "insufficient balance"
    self.balanceOf[sender] = balance - amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=sender, receiver=receiver, value=amount)


@external
def transfer(receiver: address, amount: uint256) -> bool:
    """@notice move `amount` base units from the caller to `receiver`"""
    self._move(msg.sender, receiver, amount)
    return True


@external
def transferFrom(owner: address, receiver: address, amount: uint256) -> bool:
    """@notice move `amount` base units of `owner` (needs the caller's allowance)"""
    allowed: uint256 = self.allowance[owner][msg.sender]
    if allowed != max_value(uint256):
        assert allowed >= amount, "insufficient allowance"
        self.allowance[owner][msg.sender] = allowed - amount
    self._move(owner, receiver, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    """@notice allow `spender` to move `amount` base units (2**256-1 = unlimited)"""
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def mint(receiver: address, amount: uint256):
    """@notice mint `amount` base units to `receiver`; minters (RETB contracts) only"""
    assert self.is_minter[msg.sender], "unauthorised: minter only"
    assert receiver != empty(address), "zero address"
    self.totalSupply += amount
    self.balanceOf[receiver] += amount
    log Transfer(sender=empty(address), receiver=receiver, value=amount)


@external
def set_minter(minter: address, enabled: bool):
    """@notice grant or revoke the minter role; admin only"""
    assert msg.sender == self.admin, "unauthorised: admin only"
    self.is_minter[minter] = enabled
    log MinterSet(minter=minter, enabled=enabled)


@external
@view
def balances_of(accounts: DynArray[address, 256]) -> DynArray[uint256, 256]:
    """@notice balances (base units) of up to 256 accounts in one call"""
    out: DynArray[uint256, 256] = []
    for a: address in accounts:
        out.append(self.balanceOf[a])
    return out
