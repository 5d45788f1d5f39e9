"""Typed Python wrappers over the compiled contracts: deployment, calls and the EnergyToken; the
market contracts' wrappers live beside their plug-ins (markets/letb.py `LETB`, markets/retb.py
`RETB`), the ABI codec in market/abi.py.

A wrapper method returns a `TxRequest` that any `Signer` can sign and send, alone or in a batch:

    token = EnergyToken.deploy(admin, initial_supply=10**24)
    admin.transact(token.transfer(user.address, 5 * 10**18))
    send_many([(u, letb.request(t, demand_wh, rt)) for u, ... in ...])   # one block

Units follow gridledger/contracts/README.md: energy in Wh, prices in token base units per Wh,
money in token base units (18 decimals), hours as integer indexes, reputation 0..1000.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Self

from eth_utils import to_checksum_address

from gridledger.chain import (
    DEFAULT_GAS_LIMIT,
    CallReverted,
    ChainBackend,
    ChainError,
    Signer,
    TxRequest,
    TxResult,
    send_many,
)
from gridledger.contracts import load_artifact
from gridledger.market.abi import (  # re-exported: the wrappers' public names
    AbiEvent,
    AbiFunction,
    AbiMismatchError,
    ContractAbi,
    Event,
    _decode_topic,
)
from gridledger.market.clearing import MAX_BATCH, MAX_CAPS
from gridledger.market.clearing import MAX_FILLS as LETB_MAX_FILLS  # largest LETB max_fills

__all__ = [
    "BASE_UNITS_PER_USD",
    "GAS_LIMITS",
    "LETB_MAX_FILLS",
    "MAX_BATCH",
    "MAX_BATCH_FILLS",
    "MAX_UINT256",
    "AbiEvent",
    "AbiFunction",
    "AbiMismatchError",
    "ContractAbi",
    "DeployedContract",
    "EnergyToken",
    "Event",
    "MarketContract",
    "_decode_topic",
    "fund_agents",
    "price_from_base_units_per_wh",
    "price_to_base_units_per_wh",
    "settle_chunks",
    "usd_from_base_units",
    "usd_to_base_units",
]

MAX_UINT256 = 2**256 - 1
BASE_UNITS_PER_USD = 10**18
"""EnergyToken base units per token (18 decimals, 1 token = 1 USD)."""
DEPLOY_GAS_LIMIT = 10_000_000
GAS_LIMITS: dict[str, int] = {
    "open_hour": 3_000_000,
    "request": 3_000_000,
    "settle": 2_000_000,
    "feedback": 2_000_000,
    "post_offer": 1_000_000,
    "register": 500_000,
}
"""Explicit gas limit per function name (others: chain.DEFAULT_GAS_LIMIT)."""
SETTLE_ITEM_GAS_LIMIT = 100_000
SETTLE_FILL_GAS_LIMIT = 30_000
"""Gas limit of a settle_many call: SETTLE_ITEM_GAS_LIMIT per item plus this per LETB fill
(measured per item: RETB ≈ 24k, LETB ≈ 15k + 9k per fill with seeded sellers; a seller's first
payment without its seed adds 20k)."""


MAX_BATCH_FILLS = 3 * MAX_BATCH
"""Fills one LETB settle_many call carries at most (≈ 9k gas each): 32 requests of the model's
3 fills, fewer requests when a market allows more fills per request, so a call stays within
its per-call gas bound (gridledger/contracts/gas_bounds.py) whatever the fill cap."""


def settle_chunks(n: int, sizes: Sequence[int] | None = None, max_total: int = 0) -> list[range]:
    """Item ranges of the settle_many calls for n items, in order: at most MAX_BATCH items per
    call and, with `sizes` (fills per item), at most `max_total` fills per call."""
    out: list[range] = []
    start, total = 0, 0
    for i in range(n):
        size = sizes[i] if sizes is not None else 0
        if i - start == MAX_BATCH or (i > start and total + size > max_total):
            out.append(range(start, i))
            start, total = i, 0
        total += size
    if n > start:
        out.append(range(start, n))
    return out


def price_to_base_units_per_wh(price_usd_per_mwh: float) -> int:
    """$/MWh -> token base units per Wh (1 $/MWh = 10**12), the agreed on-chain price unit."""
    return round(price_usd_per_mwh * 10**12)


def price_from_base_units_per_wh(price: int) -> float:
    """Token base units per Wh -> $/MWh (inverse of `price_to_base_units_per_wh`)."""
    return price / 10**12


def usd_to_base_units(usd: float) -> int:
    """USD -> EnergyToken base units (1 token = 1 USD, 18 decimals)."""
    return round(usd * BASE_UNITS_PER_USD)


def usd_from_base_units(amount: int) -> float:
    """EnergyToken base units -> USD."""
    return amount / BASE_UNITS_PER_USD


# --------------------------------------------------------------------------------------------
# Generic deployed contract
# --------------------------------------------------------------------------------------------


class DeployedContract:
    """A contract at `address` on `chain`, with the ABI of artifact `artifact`.

    `tx(fn, *args)` -> TxRequest (sign/send it with a Signer); `call(fn, *args)` -> decoded
    return value of a view; `decode_logs(result)` -> Events of this contract in a result.
    """

    artifact: ClassVar[str] = ""
    required_functions: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        chain: ChainBackend,
        address: str,
        *,
        artifact: str | None = None,
        abi: Sequence[Mapping[str, Any]] | None = None,
        label: str | None = None,
    ) -> None:
        name = artifact or self.artifact
        if not name:
            raise ValueError("DeployedContract needs an artifact name")
        self.chain = chain
        self.address = to_checksum_address(address)
        self.name = name
        self.label = label or name
        self.abi = ContractAbi(abi if abi is not None else load_artifact(name)["abi"], name)
        missing = [f for f in self.required_functions if f not in self.abi.functions]
        if missing:
            raise AbiMismatchError(f"artifact {name} lacks functions {missing} this wrapper needs")

    # ---- deployment ----
    @classmethod
    def deploy(
        cls,
        signer: Signer,
        *args: Any,
        artifact: str | None = None,
        gas: int = DEPLOY_GAS_LIMIT,
        label: str | None = None,
    ) -> Self:
        """Deploy from `signer` (mines one block) and wrap the new contract."""
        req = cls.deploy_request(*args, artifact=artifact, gas=gas, label=label)
        res = signer.transact(req)
        return cls.at_result(signer.chain, res, artifact=artifact, label=label)

    @classmethod
    def deploy_request(
        cls,
        *args: Any,
        artifact: str | None = None,
        gas: int = DEPLOY_GAS_LIMIT,
        label: str | None = None,
    ) -> TxRequest:
        """The creation transaction (to batch several deployments in one block)."""
        name = artifact or cls.artifact
        art = load_artifact(name)
        code = bytes.fromhex(art["bytecode"].removeprefix("0x"))
        data = code + ContractAbi(art["abi"], name).encode_constructor(args)
        return TxRequest(to=None, data=data, gas=gas, contract=label or name, function="deploy")

    @classmethod
    def at_result(
        cls,
        chain: ChainBackend,
        result: TxResult,
        *,
        artifact: str | None = None,
        label: str | None = None,
    ) -> Self:
        """Wrap the contract created by a mined deployment result."""
        result.raise_for_error()
        if result.contract_address is None:
            raise ChainError(f"transaction {result.tx_hash} created no contract")
        return cls(chain, result.contract_address, artifact=artifact, label=label)

    # ---- transactions and calls ----
    def tx(
        self, fn: str, *args: Any, gas: int | None = None, value: int = 0, op: str | None = None
    ) -> TxRequest:
        """TxRequest calling `fn(*args)`; `op` relabels the operation in the ledger."""
        data = self.abi.encode_call(fn, args)
        limit = gas if gas is not None else GAS_LIMITS.get(fn, DEFAULT_GAS_LIMIT)
        return TxRequest(
            to=self.address,
            data=data,
            gas=limit,
            value=value,
            contract=self.label,
            function=op or fn,
        )

    def call(
        self, fn: str, *args: Any, block: int | str = "latest", sender: str | None = None
    ) -> Any:
        """Decoded return value of `fn(*args)` (eth_call); CallReverted names the function."""
        data = self.abi.encode_call(fn, args)
        try:
            out = self.chain.call(self.address, data, sender=sender, block=block)
        except CallReverted as exc:
            raise CallReverted(exc.reason, contract=self.label, function=fn) from exc
        return self.abi.decode_output(fn, len(args), out)

    def decode_logs(self, result: TxResult | Iterable[TxResult]) -> list[Event]:
        """Events this contract emitted in one or several mined results."""
        results = [result] if isinstance(result, TxResult) else list(result)
        events = []
        for res in results:
            for log in res.logs:
                if log.address != self.address:
                    continue
                decoded = self.abi.decode_log(log)
                if decoded is None:
                    continue
                ev, args = decoded
                events.append(
                    Event(
                        chain=res.chain,
                        contract=self.label,
                        address=self.address,
                        name=ev.name,
                        args=args,
                        block_number=res.block_number,
                        block_hash=res.block_hash,
                        tx_hash=res.tx_hash,
                        log_index=log.log_index,
                    )
                )
        return events

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label!r} at {self.address} on {self.chain.name!r})"


# --------------------------------------------------------------------------------------------
# EnergyToken
# --------------------------------------------------------------------------------------------


class EnergyToken(DeployedContract):
    """ERC-20 payment and incentive token (18 decimals, 1 token = 1 USD; amounts in base units)."""

    artifact = "EnergyToken"
    required_functions = ("transfer", "transferFrom", "approve", "mint", "set_minter", "balanceOf")

    @classmethod
    def deploy(  # type: ignore[override]
        cls, signer: Signer, initial_supply: int, *, gas: int = DEPLOY_GAS_LIMIT, **kw: Any
    ) -> EnergyToken:
        """Deploy with `initial_supply` base units minted to the deployer (admin)."""
        return super().deploy(signer, initial_supply, gas=gas, **kw)

    def transfer(self, to: str, amount: int, *, op: str | None = None) -> TxRequest:
        return self.tx("transfer", to, amount, op=op)

    def transfer_from(self, owner: str, to: str, amount: int) -> TxRequest:
        return self.tx("transferFrom", owner, to, amount)

    def approve(self, spender: str, amount: int = MAX_UINT256) -> TxRequest:
        """Allowance for `spender` (default: the never-decremented 'infinite' allowance)."""
        return self.tx("approve", spender, amount)

    def mint(self, to: str, amount: int) -> TxRequest:
        return self.tx("mint", to, amount)

    def set_minter(self, minter: str, enabled: bool = True) -> TxRequest:
        return self.tx("set_minter", minter, enabled)

    def balance_of(self, account: str, block: int | str = "latest") -> int:
        return int(self.call("balanceOf", account, block=block))

    def allowance(self, owner: str, spender: str) -> int:
        return int(self.call("allowance", owner, spender))

    def total_supply(self) -> int:
        return int(self.call("totalSupply"))

    def is_minter(self, account: str) -> bool:
        return bool(self.call("is_minter", account))


# --------------------------------------------------------------------------------------------
# Market contracts (LETB per area, RETB per zone) -- functions per contracts/README.md
# --------------------------------------------------------------------------------------------


class MarketContract(DeployedContract):
    """Functions LETB and RETB share (roles, registration, hours, caps, reputation)."""

    def set_operator(self, account: str) -> TxRequest:
        return self.tx("set_operator", account)

    def set_tdno(self, account: str) -> TxRequest:
        return self.tx("set_tdno", account)

    def register(self, account: str, commitment: bytes, bus: int, role: int) -> TxRequest:
        """Operator registers a participant: 32-byte identity commitment, feeder bus, role mask
        (1 producer, 2 consumer, 3 both)."""
        return self.tx("register", account, commitment, bus, role)

    def open_hour(
        self, t: int, feed_in_floor: int, buses: Sequence[int], caps: Sequence[int]
    ) -> TxRequest:
        """Operator opens market hour `t` with the feed-in floor and DLMP caps (base units/Wh)."""
        return self.tx("open_hour", t, feed_in_floor, list(buses), list(caps))

    def open_hour_calls(
        self, t: int, feed_in_floor: int, buses: Sequence[int], caps: Sequence[int]
    ) -> list[TxRequest]:
        """`open_hour` for any number of buses: one call per MAX_CAPS of them, the later ones
        continuing the open hour's cap list (market_base.vy); one call, as `open_hour`, for
        up to MAX_CAPS buses. Send them in this order, in one block."""
        if len(buses) != len(caps):
            raise ValueError(f"open_hour_calls: {len(buses)} buses but {len(caps)} caps")
        starts = range(0, len(buses), MAX_CAPS) if buses else [0]
        return [
            self.open_hour(t, feed_in_floor, buses[i : i + MAX_CAPS], caps[i : i + MAX_CAPS])
            for i in starts
        ]

    def current_hour(self) -> int:
        return int(self.call("current_hour"))

    def feed_in_floor(self) -> int:
        return int(self.call("feed_in_floor"))

    def cap_of(self, bus: int) -> tuple[int, int]:
        """(hour the cap was posted for, cap in base units per Wh)."""
        return tuple(self.call("cap_of", bus))  # type: ignore[return-value]

    def reputation_of(self, account: str, block: int | str = "latest") -> int:
        return int(self.call("reputation_of", account, block=block))


def fund_agents(
    token: EnergyToken,
    admin: Signer,
    addresses: Sequence[str],
    *,
    gas_wei: int,
    token_units: int,
) -> list[TxResult]:
    """Set-up funding: `gas_wei` of the native coin from the chain's faucet and `token_units`
    EnergyToken base units from `admin` to every address (two blocks; ledger operations
    'fund_gas' and 'fund_tokens')."""
    if token_units < 0:
        raise ValueError(f"fund_agents: token_units must be >= 0, got {token_units}")
    results = token.chain.fund(addresses, gas_wei) if gas_wei else []
    if token_units:
        items = [(admin, token.transfer(a, token_units, op="fund_tokens")) for a in addresses]
        results += send_many(items)
    return results


_MOVED = {
    "LETB": "gridledger.markets.letb",
    "LETB_OFFER_FIELDS": "gridledger.markets.letb",
    "RETB": "gridledger.markets.retb",
    "RETB_OFFER_FIELDS": "gridledger.markets.retb",
    "RETB_TRADE_FIELDS": "gridledger.markets.retb",
}
"""The market contracts' wrappers moved beside their plug-ins; old imports still find them."""


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
