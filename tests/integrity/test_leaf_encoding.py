"""The canonical leaf encoding: exact bytes, round trip, refusal of malformed input."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.integrity.leaf import MAGIC, Leaf, decode_leaf, encode_leaf
from ledger.integrity.merkle import leaf_hash

ID = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
TOPIC = "domain.ticket:Ticket.Received"
STATE = b'{"a":1}'

# Written out by hand from the layout in ledger/integrity/leaf.py, for auditors re-implementing it.
GOLDEN = bytes.fromhex(
    "636173656c65646765722d6c6561662d7631"  # "caseledger-leaf-v1"
    "00"  # separator
    "00112233445566778899aabbccddeeff"  # originator_id
    "0000000000000003"  # originator_version = 3, u64 big-endian
    "0000001d"  # len(topic) = 29, u32 big-endian
    "646f6d61696e2e7469636b65743a5469636b65742e5265636569766564"  # topic, UTF-8
    "00000007"  # len(state) = 7
    "7b2261223a317d"  # state
)
# SHA-256(0x00 || GOLDEN): a regression vector, so a change of encoding cannot go unnoticed.
GOLDEN_LEAF_HASH = "f344f62c40b429e9ab0c1909fd0a90d96c53b8ea635e31e19f4151bda2e209f2"


def test_golden_bytes() -> None:
    encoded = encode_leaf(ID, 3, TOPIC, STATE)
    assert encoded == GOLDEN
    assert leaf_hash(encoded).hex() == GOLDEN_LEAF_HASH
    assert decode_leaf(GOLDEN) == Leaf(ID, 3, TOPIC, STATE)


@settings(max_examples=200, deadline=None)
@given(st.uuids(), st.integers(0, 2**64 - 1), st.text(max_size=50), st.binary(max_size=200))
def test_round_trip(originator_id: uuid.UUID, version: int, topic: str, state: bytes) -> None:
    encoded = encode_leaf(originator_id, version, topic, state)
    assert decode_leaf(encoded) == (originator_id, version, topic, state)
    assert len(encoded) == len(MAGIC) + 16 + 8 + 4 + len(topic.encode()) + 4 + len(state)


def test_fields_are_not_ambiguous() -> None:
    # Moving bytes between topic and state changes the encoding (length prefixes).
    assert encode_leaf(ID, 1, "ab", b"c") != encode_leaf(ID, 1, "a", b"bc")
    assert encode_leaf(ID, 1, "", b"") != encode_leaf(ID, 2, "", b"")
    assert encode_leaf(ID, 1, "", b"") != encode_leaf(uuid.UUID(int=0), 1, "", b"")


def test_every_truncation_and_extension_is_refused() -> None:
    for cut in range(len(GOLDEN)):
        with pytest.raises(ValueError):
            decode_leaf(GOLDEN[:cut])
    with pytest.raises(ValueError, match="trailing"):
        decode_leaf(GOLDEN + b"\x00")


@pytest.mark.parametrize("data", [
    b"caseledger-leaf-v2\x00" + GOLDEN[19:],  # other format version
    b"caseledger-leaf-v1\x01" + GOLDEN[19:],  # bad separator
    GOLDEN[:43] + b"\x00\x00\x00\x02\xff\xfe" + GOLDEN[-11:],  # topic is not UTF-8
    GOLDEN[:43] + b"\xff\xff\xff\xff" + GOLDEN[47:],  # topic length beyond the data
    GOLDEN[:-11] + b"\x00\x00\x00\x08" + STATE,  # state length one too long
    GOLDEN[:-11] + b"\x00\x00\x00\x06" + STATE,  # state length one too short: trailing byte
])
def test_malformed_leaves_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        decode_leaf(data)


@pytest.mark.parametrize(("args", "error"), [
    ((ID, -1, TOPIC, STATE), ValueError),
    ((ID, 2**64, TOPIC, STATE), ValueError),
    ((ID, "3", TOPIC, STATE), TypeError),
    ((ID, True, TOPIC, STATE), TypeError),
    ((str(ID), 3, TOPIC, STATE), TypeError),
    ((ID, 3, b"topic", STATE), TypeError),
    ((ID, 3, TOPIC, "state"), TypeError),
    ((ID, 3, "\ud800", STATE), ValueError),  # lone surrogate: not encodable as UTF-8
])
def test_encode_refuses_bad_fields(args: tuple, error: type[Exception]) -> None:
    with pytest.raises(error):
        encode_leaf(*args)
