"""The canonical leaf encoding: the exact bytes of one stored event that the Merkle tree hashes.

An auditor re-implements this, so here it is byte by byte (all integers unsigned, big-endian):

    offset  length  content
    0       18      ASCII "caseledger-leaf-v1"        format name and version
    18      1       0x00                              ends the format name
    19      16      originator_id                     the aggregate's UUID, RFC 4122 byte order
                                                      (Python ``uuid.UUID.bytes``)
    35      8       originator_version                u64: the event's version in its aggregate
    43      4       T = length of topic in bytes      u32
    47      T       topic                             UTF-8, the event's type (eventsourcing topic)
    47+T    4       S = length of state in bytes      u32
    51+T    S       state                             the stored event bytes, exactly as stored

Nothing follows ``state``. The leaf hash is then SHA-256(0x00 || these bytes) (RFC 9162).

Why these fields: (originator_id, originator_version) is the event's identity, so a leaf cannot be
moved to another aggregate or position in it; the topic fixes the event type; ``state`` is the
stored event body and already carries the event's metadata (actor, role, time, policy version).
It may later be ciphertext: verification hashes the stored bytes and never needs a key, and
destroying a key (crypto-shredding) does not change any leaf.

Every variable-length field is length-prefixed, so no two different events encode to the same
bytes; and the leading format name keeps these bytes apart from any other format we ever hash.
"""

from __future__ import annotations

import struct
import uuid
from typing import NamedTuple

MAGIC = b"caseledger-leaf-v1\x00"
_U32_MAX = 2**32 - 1
_U64_MAX = 2**64 - 1


class Leaf(NamedTuple):
    originator_id: uuid.UUID
    originator_version: int
    topic: str
    state: bytes


def encode_leaf(originator_id: uuid.UUID, originator_version: int, topic: str, state: bytes) -> bytes:
    """The canonical bytes of one event (see the module docstring)."""
    if not isinstance(originator_id, uuid.UUID):
        raise TypeError("originator_id must be a uuid.UUID")
    if isinstance(originator_version, bool) or not isinstance(originator_version, int):
        raise TypeError("originator_version must be an int")
    if not 0 <= originator_version <= _U64_MAX:
        raise ValueError("originator_version must fit in an unsigned 64-bit integer")
    if not isinstance(topic, str):
        raise TypeError("topic must be a str")
    if not isinstance(state, (bytes, bytearray, memoryview)):
        raise TypeError("state must be bytes")
    try:
        topic_bytes = topic.encode("utf-8")  # strict: lone surrogates are refused
    except UnicodeEncodeError as exc:
        raise ValueError("topic is not encodable as UTF-8") from exc
    state = bytes(state)
    if len(topic_bytes) > _U32_MAX or len(state) > _U32_MAX:
        raise ValueError("topic or state longer than 2**32 - 1 bytes")
    return b"".join((
        MAGIC,
        originator_id.bytes,
        struct.pack(">Q", originator_version),
        struct.pack(">I", len(topic_bytes)), topic_bytes,
        struct.pack(">I", len(state)), state,
    ))


def decode_leaf(data: bytes) -> Leaf:
    """Parse canonical leaf bytes; ValueError unless ``data`` is exactly one well-formed leaf."""
    data = bytes(data)
    if not data.startswith(MAGIC):
        raise ValueError("not a caseledger-leaf-v1 leaf")
    pos = len(MAGIC)

    def take(n: int) -> bytes:
        nonlocal pos
        if len(data) - pos < n:
            raise ValueError("leaf is truncated")
        chunk = data[pos:pos + n]
        pos += n
        return chunk

    originator_id = uuid.UUID(bytes=take(16))
    (version,) = struct.unpack(">Q", take(8))
    (topic_len,) = struct.unpack(">I", take(4))
    try:
        topic = take(topic_len).decode("utf-8")  # strict: invalid UTF-8 is malformed
    except UnicodeDecodeError as exc:
        raise ValueError("leaf topic is not valid UTF-8") from exc
    (state_len,) = struct.unpack(">I", take(4))
    state = take(state_len)
    if pos != len(data):
        raise ValueError("trailing bytes after leaf state")
    return Leaf(originator_id, version, topic, state)
