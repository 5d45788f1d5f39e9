"""Typed Python wrappers over the compiled contracts: the one place that knows their ABIs.

Calldata is encoded with eth_abi directly (no web3 contract objects, no node round trips), so a
wrapper method returns a `TxRequest` that any `Signer` can sign and send, alone or in a batch:

    token = EnergyToken.deploy(admin, initial_supply=10**24)
    admin.transact(token.transfer(user.address, 5 * 10**18))
    send_many([(u, letb.request(t, demand_wh, rt)) for u, ... in ...])   # one block

Units follow gridledger/contracts/README.md: energy in Wh, prices in token base units per Wh,
money in token base units (18 decimals), hours as integer indexes, reputation 0..1000.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Self

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from gridledger.chain import (
    DEFAULT_GAS_LIMIT,
    CallReverted,
    ChainBackend,
    ChainError,
    Log,
    Signer,
    TxRequest,
    TxResult,
    send_many,
)
from gridledger.chain.codec import checksum_address
from gridledger.contracts import load_artifact
from gridledger.market.clearing import MAX_BATCH
from gridledger.market.clearing import MAX_FILLS as LETB_MAX_FILLS  # largest LETB max_fills

__all__ = [
    "BASE_UNITS_PER_USD",
    "GAS_LIMITS",
    "LETB",
    "LETB_MAX_FILLS",
    "MAX_BATCH",
    "MAX_BATCH_FILLS",
    "MAX_UINT256",
    "RETB",
    "AbiMismatchError",
    "ContractAbi",
    "DeployedContract",
    "EnergyToken",
    "Event",
    "MarketContract",
    "fund_agents",
    "price_from_base_units_per_wh",
    "price_to_base_units_per_wh",
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


def _chunks(n: int, sizes: Sequence[int] | None = None, max_total: int = 0) -> list[range]:
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


class AbiMismatchError(ChainError):
    """An artifact lacks a function/event a wrapper needs, or arguments do not fit the ABI."""


# --------------------------------------------------------------------------------------------
# ABI codec
# --------------------------------------------------------------------------------------------


def _type_str(param: Mapping[str, Any]) -> str:
    t = str(param["type"])
    if t.startswith("tuple"):
        inner = ",".join(_type_str(c) for c in param["components"])
        return f"({inner}){t[len('tuple') :]}"
    return t


def _to_abi_value(param: Mapping[str, Any], value: Any) -> Any:
    """Python value -> what eth_abi encodes: dicts/dataclass-like become tuples for structs."""
    t = str(param["type"])
    if t.startswith("tuple"):
        comps = param["components"]
        if t.endswith("]"):
            elem = dict(param, type=t[: t.rindex("[")])
            return [_to_abi_value(elem, v) for v in value]
        if isinstance(value, Mapping):
            return tuple(_to_abi_value(c, value[c["name"]]) for c in comps)
        return tuple(_to_abi_value(c, v) for c, v in zip(comps, value, strict=True))
    if t.endswith("]"):
        elem = dict(param, type=t[: t.rindex("[")])
        return [_to_abi_value(elem, v) for v in value]
    if t == "address" and isinstance(value, str):
        return checksum_address(value)
    return value


def _from_abi_value(param: Mapping[str, Any], value: Any) -> Any:
    """Decoded value -> Python: structs become dicts by component name, addresses checksummed."""
    t = str(param["type"])
    if t.endswith("]"):
        elem = dict(param, type=t[: t.rindex("[")])
        return [_from_abi_value(elem, v) for v in value]
    if t.startswith("tuple"):
        comps = param["components"]
        if all(c.get("name") for c in comps):
            return {c["name"]: _from_abi_value(c, v) for c, v in zip(comps, value, strict=True)}
        return tuple(_from_abi_value(c, v) for c, v in zip(comps, value, strict=True))
    if t == "address":
        return checksum_address(value)
    return value


def _decode_topic(param: Mapping[str, Any], topic: bytes) -> Any:
    """The value of an indexed event parameter from its 32-byte topic. Static words are read
    directly (eth_abi's generic decoder costs ~50 us a call and most logs carry 2-3 indexed
    addresses or integers); dynamic types are hashed in the topic and returned as they are."""
    t = _type_str(param)
    if t == "address":
        return checksum_address("0x" + topic[-20:].hex())
    if t.startswith("uint"):
        return int.from_bytes(topic, "big")
    if t.startswith("int"):
        return int.from_bytes(topic, "big", signed=True)
    if t == "bool":
        return topic[-1] == 1
    if t in ("string", "bytes") or t.endswith("]") or t.startswith("("):
        return topic  # hashed in the topic
    return _from_abi_value(param, abi_decode([t], topic)[0])


def _static_word(t: str, word: bytes) -> tuple[bool, Any]:
    """(ok, value) of one 32-byte head word of elementary static type `t`, as eth_abi's strict
    decoder and `_from_abi_value` return it; ok is False for any other type or a word eth_abi
    would refuse (wrong padding, out of range), which then goes to eth_abi for its error."""
    if t.startswith("uint"):
        bits = int(t[4:] or 256)
        v = int.from_bytes(word, "big")
        return v >> bits == 0, v
    if t == "address":
        return not any(word[:12]), checksum_address("0x" + word[12:].hex())
    if t == "bool":
        return not any(word[:31]) and word[31] <= 1, word[31] == 1
    if t.startswith("int"):
        bits = int(t[3:] or 256)
        v = int.from_bytes(word, "big", signed=True)
        return -(1 << (bits - 1)) <= v < 1 << (bits - 1), v
    return False, None


def _decode_static(types: Sequence[str], data: bytes) -> list[Any] | None:
    """Values of a head of elementary static types (every event the markets emit), read word by
    word; None when eth_abi must decode (another type, a malformed word, other length): its
    generic decoder costs ~0.2 ms a log, the largest single cost of a long run's ledger."""
    if len(data) != 32 * len(types):
        return None
    out = []
    for i, t in enumerate(types):
        ok, v = _static_word(t, data[32 * i : 32 * i + 32])
        if not ok:
            return None
        out.append(v)
    return out


def _static_head(t: str, v: Any) -> bytes | None:
    """The 32-byte word eth_abi encodes for value `v` of elementary static type `t`, or None
    for any other type or a value it is not sure to encode the same way (eth_abi then encodes
    it or names the error)."""
    if t.startswith("uint") and type(v) is int:
        in_range = v >= 0 and v >> int(t[4:] or 256) == 0
        return v.to_bytes(32, "big") if in_range else None
    if t == "address" and type(v) is str and len(v) == 42 and v == checksum_address(v):
        return bytes(12) + bytes.fromhex(v[2:])
    if t == "bool" and type(v) is bool:
        return bytes(31) + (b"\x01" if v else b"\x00")
    if t == "bytes32" and type(v) is bytes and len(v) == 32:
        return v
    if t.startswith("int") and type(v) is int:
        half = 1 << (int(t[3:] or 256) - 1)
        return v.to_bytes(32, "big", signed=True) if -half <= v < half else None
    return None


def _is_dynamic(param: Mapping[str, Any]) -> bool:
    t = str(param["type"])
    if t.endswith("[]") or t in ("string", "bytes"):
        return True
    return t == "tuple" and any(_is_dynamic(c) for c in param["components"])


def _encode_value(param: Mapping[str, Any], v: Any) -> bytes | None:
    """ABI encoding of one value (inline words if static, the tail if dynamic) for elementary
    static types, tuples and dynamic arrays of them; None for anything else (fixed-size
    arrays, bytes, string) or a value `_static_head` is not sure of: eth_abi's job then."""
    t = str(param["type"])
    if t.endswith("[]"):
        if not isinstance(v, list | tuple):
            return None
        elem = dict(param, type=t[:-2])
        body = _encode_sequence([elem] * len(v), v)
        return None if body is None else len(v).to_bytes(32, "big") + body
    if t == "tuple":
        comps = param["components"]
        if not isinstance(v, list | tuple) or len(v) != len(comps):
            return None
        return _encode_sequence(comps, v)
    if "[" in t:
        return None
    return _static_head(t, v)


def _encode_sequence(params: Sequence[Mapping[str, Any]], values: Sequence[Any]) -> bytes | None:
    """Head/tail encoding of a tuple of values (the ABI's rule: static values inline, dynamic
    ones as an offset into the tail). eth_abi's validating encoder costs ~0.4 ms for a plain
    call and several ms for a settle_many batch: the largest cost of sending a transaction."""
    parts: list[bytes] = []
    for p, v in zip(params, values, strict=True):
        e = _encode_value(p, v)
        if e is None:
            return None
        parts.append(e)
    dynamic = [_is_dynamic(p) for p in params]
    offset = sum(32 if d else len(e) for d, e in zip(dynamic, parts, strict=True))
    heads, tails = [], []
    for d, e in zip(dynamic, parts, strict=True):
        if d:
            heads.append(offset.to_bytes(32, "big"))
            tails.append(e)
            offset += len(e)
        else:
            heads.append(e)
    return b"".join(heads + tails)


@dataclass(frozen=True)
class AbiFunction:
    name: str
    inputs: tuple[Mapping[str, Any], ...]
    outputs: tuple[Mapping[str, Any], ...]
    selector: bytes
    mutability: str

    @cached_property
    def input_types(self) -> list[str]:
        return [_type_str(p) for p in self.inputs]

    @cached_property
    def output_types(self) -> list[str]:
        return [_type_str(p) for p in self.outputs]


@dataclass(frozen=True)
class AbiEvent:
    name: str
    inputs: tuple[Mapping[str, Any], ...]
    topic0: bytes

    @cached_property
    def indexed(self) -> tuple[Mapping[str, Any], ...]:
        return tuple(p for p in self.inputs if p.get("indexed"))

    @cached_property
    def plain(self) -> tuple[Mapping[str, Any], ...]:
        return tuple(p for p in self.inputs if not p.get("indexed"))

    @cached_property
    def plain_types(self) -> list[str]:
        return [_type_str(p) for p in self.plain]


@dataclass(frozen=True)
class Event:
    """A decoded event log."""

    chain: str
    contract: str
    address: str
    name: str
    args: dict[str, Any]
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int


class ContractAbi:
    """Function selectors, calldata encoding, output and event decoding for one ABI."""

    def __init__(self, abi: Sequence[Mapping[str, Any]], name: str) -> None:
        self.name = name
        self.abi = list(abi)
        self.functions: dict[str, list[AbiFunction]] = {}
        self.events: dict[str, AbiEvent] = {}
        self.events_by_topic: dict[bytes, AbiEvent] = {}
        self.constructor_inputs: tuple[Mapping[str, Any], ...] = ()
        for item in self.abi:
            kind = item.get("type")
            inputs = tuple(item.get("inputs", ()))
            sig = f"{item.get('name')}({','.join(_type_str(p) for p in inputs)})"
            if kind == "function":
                fn = AbiFunction(
                    name=item["name"],
                    inputs=inputs,
                    outputs=tuple(item.get("outputs", ())),
                    selector=keccak(text=sig)[:4],
                    mutability=item.get("stateMutability", "nonpayable"),
                )
                self.functions.setdefault(fn.name, []).append(fn)
            elif kind == "event":
                ev = AbiEvent(name=item["name"], inputs=inputs, topic0=keccak(text=sig))
                self.events[ev.name] = ev
                self.events_by_topic[ev.topic0] = ev
            elif kind == "constructor":
                self.constructor_inputs = inputs

    def function(self, name: str, n_args: int) -> AbiFunction:
        cands = self.functions.get(name)
        if not cands:
            raise AbiMismatchError(f"{self.name} has no function {name!r}")
        for fn in cands:
            if len(fn.inputs) == n_args:
                return fn
        arities = sorted(len(f.inputs) for f in cands)
        raise AbiMismatchError(
            f"{self.name}.{name} takes {arities} argument(s), {n_args} were given"
        )

    def encode_call(self, name: str, args: Sequence[Any]) -> bytes:
        fn = self.function(name, len(args))
        values = [_to_abi_value(p, a) for p, a in zip(fn.inputs, args, strict=True)]
        fast = _encode_sequence(fn.inputs, values)
        if fast is not None:
            return fn.selector + fast
        try:
            return fn.selector + abi_encode(fn.input_types, values)
        except Exception as exc:  # eth_abi raises several encoding error types
            raise AbiMismatchError(f"{self.name}.{name}{tuple(args)!r}: {exc}") from exc

    def encode_constructor(self, args: Sequence[Any]) -> bytes:
        if len(args) != len(self.constructor_inputs):
            raise AbiMismatchError(
                f"{self.name} constructor takes {len(self.constructor_inputs)} argument(s) "
                f"({[p['name'] for p in self.constructor_inputs]}), {len(args)} were given"
            )
        if not args:
            return b""
        types = [_type_str(p) for p in self.constructor_inputs]
        values = [_to_abi_value(p, a) for p, a in zip(self.constructor_inputs, args, strict=True)]
        return abi_encode(types, values)

    def decode_output(self, name: str, n_args: int, data: bytes) -> Any:
        fn = self.function(name, n_args)
        if not fn.outputs:
            return None
        values = abi_decode(fn.output_types, data)
        out = [_from_abi_value(p, v) for p, v in zip(fn.outputs, values, strict=True)]
        return out[0] if len(out) == 1 else tuple(out)

    def decode_log(self, log: Log) -> tuple[AbiEvent, dict[str, Any]] | None:
        """(event, args) of a log emitted by this contract, or None if the topic is unknown."""
        if not log.topics:
            return None
        ev = self.events_by_topic.get(log.topics[0])
        if ev is None:
            return None
        args: dict[str, Any] = {}
        for p, topic in zip(ev.indexed, log.topics[1:], strict=True):
            args[p["name"]] = _decode_topic(p, topic)
        if ev.plain:
            fast = _decode_static(ev.plain_types, log.data)
            if fast is not None:
                args.update(zip((p["name"] for p in ev.plain), fast, strict=True))
            else:
                values = abi_decode(ev.plain_types, log.data)
                for p, v in zip(ev.plain, values, strict=True):
                    args[p["name"]] = _from_abi_value(p, v)
        return ev, {p["name"]: args[p["name"]] for p in ev.inputs}


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

    def current_hour(self) -> int:
        return int(self.call("current_hour"))

    def feed_in_floor(self) -> int:
        return int(self.call("feed_in_floor"))

    def cap_of(self, bus: int) -> tuple[int, int]:
        """(hour the cap was posted for, cap in base units per Wh)."""
        return tuple(self.call("cap_of", bus))  # type: ignore[return-value]

    def reputation_of(self, account: str, block: int | str = "latest") -> int:
        return int(self.call("reputation_of", account, block=block))


class LETB(MarketContract):
    """Local energy trading contract of one area (offer book + cheapest-first matching)."""

    artifact = "LETB"
    required_functions = (
        "register", "open_hour", "post_offer", "request", "settle", "settle_many", "feedback",
        "hint_for", "withdraw", "credit_of",
    )  # fmt: skip

    @classmethod
    def deploy_request(  # type: ignore[override]
        cls,
        token: str,
        area_id: int,
        operator: str,
        tdno: str,
        initial_reputation: int,
        bond: int = 0,
        max_fills: int = LETB_MAX_FILLS,
        *,
        artifact: str | None = None,
        gas: int = DEPLOY_GAS_LIMIT,
        label: str | None = None,
    ) -> TxRequest:
        """One area's LETB creation transaction; `max_fills` (1..16) = fills one request may
        make at most. `LETB.deploy(signer, token, area_id, ...)` takes the same arguments."""
        return super().deploy_request(
            token, area_id, operator, tdno, initial_reputation, bond, max_fills,
            artifact=artifact, gas=gas, label=label,
        )  # fmt: skip

    def max_fills(self) -> int:
        """Fills one request may make at most (the deployment parameter)."""
        return int(self.call("max_fills"))

    def post_offer(
        self, t: int, e_wh: int, price: int, hint_prev_id: int | None = None
    ) -> TxRequest:
        """Producer's offer for hour t; hint = predecessor's producer id (None: ask the chain)."""
        hint = self.hint_for(price) if hint_prev_id is None else hint_prev_id
        return self.tx("post_offer", t, e_wh, price, hint)

    def request(self, t: int, demand_wh: int, rt: int) -> TxRequest:
        """User's demand for hour t with reliability threshold rt (0..1000)."""
        return self.tx("request", t, demand_wh, rt)

    def settle(
        self,
        buyer: str,
        nonce: int,
        t: int,
        fills: Sequence[Mapping[str, Any]],
        delivered_wh: Sequence[int],
    ) -> TxRequest:
        """TDNO settles a request: fills = its Trade events' (producer_id, seller, e_wh, price)."""
        return self.tx("settle", buyer, nonce, t, [_fill(f) for f in fills], list(delivered_wh))

    def settle_many(self, t: int, items: Sequence[Mapping[str, Any]]) -> list[TxRequest]:
        """TDNO settles requests of hour t: items = {buyer, nonce, fills, delivered_wh} (as for
        `settle`); one settle_many call per MAX_BATCH items or MAX_BATCH_FILLS fills, in order
        (a lone item goes as `settle`: the batch's decoding costs ≈ 8k gas more than one request
        saves)."""
        calls = []
        fills = [len(x["fills"]) for x in items]
        for part in _chunks(len(items), fills, MAX_BATCH_FILLS):
            if len(part) == 1:
                x = items[part[0]]
                calls.append(self.settle(x["buyer"], x["nonce"], t, x["fills"], x["delivered_wh"]))
                continue
            batch = [
                {
                    "buyer": items[i]["buyer"],
                    "nonce": items[i]["nonce"],
                    "fills": [_fill(f) for f in items[i]["fills"]],
                    "delivered_wh": list(items[i]["delivered_wh"]),
                }
                for i in part
            ]
            gas = SETTLE_ITEM_GAS_LIMIT * len(part) + SETTLE_FILL_GAS_LIMIT * sum(
                fills[i] for i in part
            )
            calls.append(self.tx("settle_many", t, batch, gas=gas))
        return calls

    def feedback(
        self,
        buyer: str,
        nonce: int,
        t: int,
        fills: Sequence[Mapping[str, Any]],
        scores: Sequence[int],
    ) -> TxRequest:
        return self.tx("feedback", buyer, nonce, t, [_fill(f) for f in fills], list(scores))

    def withdraw(self) -> TxRequest:
        """Buyer pulls its whole refund credit (token base units) out of the LETB escrow."""
        return self.tx("withdraw")

    def credit_of(self, account: str, block: int | str = "latest") -> int:
        """Refund credit of `account` in token base units (settle credits refunds; the next
        request spends it first, `withdraw` pays it out)."""
        return int(self.call("credit_of", account, block=block))

    def hint_for(self, price: int, block: int | str = "latest") -> int:
        return int(self.call("hint_for", price, block=block))

    def head(self) -> int:
        return int(self.call("head"))

    def book(self) -> list[int]:
        return [int(x) for x in self.call("book")]

    def offer_of(self, producer_id: int) -> dict[str, Any]:
        """Offer by producer id: seller, price, e_wh, next_id, t, reputation, bus."""
        return dict(zip(LETB_OFFER_FIELDS, self.call("offer_of", producer_id), strict=True))

    def producer_id(self, account: str) -> int:
        return int(self.call("producer_id", account))


LETB_OFFER_FIELDS = ("seller", "price", "e_wh", "next_id", "t", "reputation", "bus")


def _fill(f: Mapping[str, Any]) -> dict[str, Any]:
    return {k: f[k] for k in ("producer_id", "seller", "e_wh", "price")}


RETB_OFFER_FIELDS = (
    "price", "remaining_wh", "start", "end", "reputation", "bus", "stable_hours",
)  # fmt: skip
RETB_TRADE_FIELDS = (
    "buyer", "nonce", "t", "start", "end", "rep", "e_wh", "price", "stable_hours",
)  # fmt: skip


class RETB(MarketContract):
    """Renewable energy trading contract of one zone (REP offers, operator-ranked matching,
    settlement and incentive minting)."""

    artifact = "RETB"
    required_functions = (
        "register", "open_hour", "post_offer", "request", "settle", "settle_many", "feedback",
    )  # fmt: skip

    @classmethod
    def deploy(  # type: ignore[override]
        cls,
        signer: Signer,
        token: str,
        zone_id: int,
        operator: str,
        tdno: str,
        initial_reputation: int,
        bond: int,
        log_base_k: int,
        scale_wh: int,
        stable_ref_hours: int,
        *,
        gas: int = DEPLOY_GAS_LIMIT,
        label: str | None = None,
    ) -> RETB:
        return super().deploy(
            signer, token, zone_id, operator, tdno, initial_reputation, bond, log_base_k,
            scale_wh, stable_ref_hours, gas=gas, label=label,
        )  # fmt: skip

    def post_offer(
        self, t: int, start: int, end: int, capacity_wh: int, price: int, stable_hours: int
    ) -> TxRequest:
        return self.tx("post_offer", t, start, end, capacity_wh, price, stable_hours)

    def request(
        self, t: int, shortage_wh: int, start: int, end: int, rt: int, rep: str
    ) -> TxRequest:
        """User's shortage for window [start, end); `rep` = the operator's ranking hint."""
        return self.tx("request", t, shortage_wh, start, end, rt, rep)

    def settle(self, trade: Mapping[str, Any], delivered_wh: int) -> TxRequest:
        """TDNO settles a trade (the fields of its Trade event)."""
        return self.tx("settle", _retb_trade(trade), delivered_wh)

    def settle_many(
        self, trades: Sequence[Mapping[str, Any]], delivered_wh: Sequence[int]
    ) -> list[TxRequest]:
        """TDNO settles trades (their Trade events' fields) with the delivered Wh of each; one
        settle_many call per MAX_BATCH trades, in order (a lone trade goes as `settle`)."""
        if len(trades) != len(delivered_wh):
            raise ValueError(
                f"RETB.settle_many: {len(delivered_wh)} delivered amounts for {len(trades)} trades"
            )
        return [
            self.tx(
                "settle_many",
                [_retb_trade(trades[i]) for i in part],
                [delivered_wh[i] for i in part],
                gas=SETTLE_ITEM_GAS_LIMIT * len(part),
            )
            if len(part) > 1
            else self.settle(trades[part[0]], delivered_wh[part[0]])
            for part in _chunks(len(trades))
        ]

    def feedback(self, trade: Mapping[str, Any], delivered_wh: int, score: int) -> TxRequest:
        return self.tx("feedback", _retb_trade(trade), delivered_wh, score)

    def rep_offer(self, rep: str) -> dict[str, Any]:
        """REP's offer: price, remaining_wh, start, end, reputation, bus, stable_hours."""
        return dict(zip(RETB_OFFER_FIELDS, self.call("rep_offer", rep), strict=True))


def _retb_trade(trade: Mapping[str, Any]) -> dict[str, Any]:
    return {k: trade[k] for k in RETB_TRADE_FIELDS}


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
