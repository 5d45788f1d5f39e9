"""ABI codec of the contract wrappers: calldata, outputs and event logs encoded and decoded with
eth_abi directly (no web3 contract objects, no node round trips). `ContractAbi` is built from an
artifact's ABI by `DeployedContract` (market/contracts.py); `Event` is a decoded log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

from gridledger.chain import ChainError, Log
from gridledger.chain.codec import checksum_address

__all__ = ["AbiEvent", "AbiFunction", "AbiMismatchError", "ContractAbi", "Event"]


class AbiMismatchError(ChainError):
    """An artifact lacks a function/event a wrapper needs, or arguments do not fit the ABI."""


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
