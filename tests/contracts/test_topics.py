"""Indexed event parameters read straight from their topic equal eth_abi's decoding."""

from __future__ import annotations

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from gridledger.market.abi import _decode_static, _decode_topic, _encode_sequence

ADDRESS = "0x" + keccak(b"agent").hex()[-40:]


@pytest.mark.parametrize(
    ("abi_type", "value"),
    [
        ("address", ADDRESS),
        ("uint256", 0),
        ("uint256", 2**256 - 1),
        ("uint64", 31_401),
        ("int256", -7),
        ("int128", 2**100),
        ("bool", True),
        ("bool", False),
    ],
)
def test_static_topics_decode_as_eth_abi_does(abi_type: str, value: object) -> None:
    topic = abi_encode([abi_type], [value])
    expected = abi_decode([abi_type], topic)[0]
    if abi_type == "address":
        expected = to_checksum_address(expected)
    got = _decode_topic({"name": "x", "type": abi_type}, topic)
    assert got == expected and type(got) is type(expected)


def test_bytes32_and_hashed_topics() -> None:
    word = keccak(b"offer")
    assert _decode_topic({"name": "x", "type": "bytes32"}, word) == word
    assert _decode_topic({"name": "x", "type": "string"}, word) == word  # the hash of the string


STATIC_CASES = [
    ("address", ADDRESS),
    ("uint256", 0),
    ("uint256", 2**256 - 1),
    ("uint64", 31_401),
    ("int256", -7),
    ("int128", -(2**127)),
    ("bool", True),
    ("bool", False),
]


def test_static_event_data_decodes_as_eth_abi_does() -> None:
    types = [t for t, _ in STATIC_CASES]
    data = abi_encode(types, [v for _, v in STATIC_CASES])
    expected = [
        to_checksum_address(v) if t == "address" else v
        for t, v in zip(types, abi_decode(types, data), strict=True)
    ]
    got = _decode_static(types, data)
    assert got == expected
    assert [type(v) for v in got] == [type(v) for v in expected]


@pytest.mark.parametrize(
    ("types", "data"),
    [
        (["uint64"], (2**64).to_bytes(32, "big")),  # out of range: eth_abi refuses it
        (["bool"], (2).to_bytes(32, "big")),
        (["address"], b"\x01" + bytes(31)),  # dirty padding
        (["int8"], (200).to_bytes(32, "big")),
        (["uint256"], bytes(64)),  # more data than the head
        (["string"], abi_encode(["string"], ["x"])),  # dynamic: eth_abi's job
    ],
)
def test_static_fast_path_leaves_the_rest_to_eth_abi(types: list[str], data: bytes) -> None:
    assert _decode_static(types, data) is None


FILL = {"type": "tuple", "components": [
    {"name": "producer_id", "type": "uint256"}, {"name": "seller", "type": "address"},
    {"name": "e_wh", "type": "uint256"}, {"name": "price", "type": "uint256"}]}  # fmt: skip
SETTLE_ITEM = {"type": "tuple[]", "components": [
    {"name": "buyer", "type": "address"}, {"name": "nonce", "type": "uint256"},
    dict(FILL, name="fills", type="tuple[]"),
    {"name": "delivered_wh", "type": "uint256[]"}]}  # fmt: skip


def _abi_type(param: dict) -> str:
    t = param["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in param["components"]) + ")" + t[5:]
    return t


def _check_same_as_eth_abi(params: list[dict], values: list) -> None:
    expected = abi_encode([_abi_type(p) for p in params], values)
    assert _encode_sequence(params, values) == expected


def test_static_call_arguments_encode_as_eth_abi_does() -> None:
    cases = [*STATIC_CASES, ("bytes32", keccak(b"commitment"))]
    params = [{"type": t} for t, _ in cases]
    values = [to_checksum_address(v) if t == "address" else v for t, v in cases]
    _check_same_as_eth_abi(params, values)


def test_nested_dynamic_arguments_encode_as_eth_abi_does() -> None:
    """LETB.settle_many(t, SettleItem[]) and feedback(..., Fill[], uint256[]) shapes."""
    seller = to_checksum_address(ADDRESS)
    fill = (3, seller, 1_250, 90 * 10**12)
    items = [(seller, 7, [fill, fill], [1_000, 250]), (seller, 8, [], []), (seller, 9, [fill], [0])]
    _check_same_as_eth_abi([{"type": "uint256"}, SETTLE_ITEM], [12, items])
    _check_same_as_eth_abi([{"type": "uint256"}, SETTLE_ITEM], [12, []])
    fills = dict(FILL, type="tuple[]")
    _check_same_as_eth_abi(
        [{"type": "address"}, {"type": "uint256"}, fills, {"type": "uint256[]"}],
        [seller, 5, [fill], [4]],
    )
    _check_same_as_eth_abi([FILL, {"type": "uint256"}], [fill, 2])  # a static struct inline


@pytest.mark.parametrize(
    ("abi_type", "value"),
    [
        ("uint256", -1),  # eth_abi refuses these: it must name the error
        ("uint8", 256),
        ("uint256", True),  # a bool is no uint for eth_abi
        ("int8", 128),
        ("address", ADDRESS),  # not checksummed
        ("bool", 1),
        ("bytes32", b"short"),  # eth_abi pads it
        ("uint256[2]", [1, 2]),  # fixed-size array
        ("string", "x"),
        ("uint256[]", 5),  # not a list
        ("uint256[]", [1, -1]),  # a bad element
    ],
)
def test_encoding_leaves_the_rest_to_eth_abi(abi_type: str, value: object) -> None:
    assert _encode_sequence([{"type": abi_type}], [value]) is None
