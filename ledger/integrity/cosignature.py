"""Witness cosignatures: c2sp.org/tlog-cosignature, the Ed25519 "cosignature/v1" type.

A witness that has checked a checkpoint is consistent with everything it saw before from that log
adds one more line to the checkpoint's signed note (see ``ledger.integrity.checkpoint``):

    — <witness name> <base64(key ID (4) || timestamp (8, big-endian) || Ed25519 signature (64))>\\n

with key ID = SHA-256(witness name || 0x0A || 0x04 || 32-byte raw Ed25519 public key)[:4], 0x04
being the signed-note type byte for timestamped Ed25519 cosignatures (the log's own key uses
0x01, so the two kinds of signature can never be confused). The timestamp is the POSIX time of
cosigning, at most 2**63 - 1. The signed message is not the note text itself but

    cosignature/v1\\n
    time <timestamp in ASCII decimal, no leading zeros>\\n
    <the checkpoint text, every line of it, ending in a newline; no signature lines>

so a cosignature can never pass for a signature by the log. It says: "at that time, this was the
largest tree of this log the witness had seen, and it is consistent with every earlier one".
A witness publishes its key as a verifier key: ``<name>+<key ID, 8 hex digits>+<base64(0x04 ||
raw public key)>``.

Verifying is strict like ``checkpoint.verify_note``: the note must be well formed, lines of
witnesses not asked about are ignored, and a line under a trusted witness's name and key ID that
does not verify makes the whole note invalid. Anything wrong raises ``CosignatureError``.
"""

from __future__ import annotations

import base64

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.integrity.checkpoint import (
    MAX_SIGNATURES,
    SIGNATURE_PREFIX,
    CheckpointError,
    key_id,
    load_public_key,
    public_key_to_text,
    valid_key_name,
)

COSIGNATURE_TYPE = b"\x04"  # signed-note signature type byte: timestamped Ed25519 cosignature
HEADER = "cosignature/v1\n"
MAX_TIMESTAMP = 2**63 - 1
_BLOB_SIZE = 4 + 8 + 64


class CosignatureError(CheckpointError):
    """A cosignature is malformed or does not verify, or too few witnesses cosigned."""


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except ValueError as exc:  # binascii.Error and UnicodeEncodeError are both ValueErrors
        raise CosignatureError("malformed base64") from exc


def _check_timestamp(timestamp: object) -> int:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise CosignatureError(f"cosignature timestamp must be an integer from 0 to 2**63 - 1, not {timestamp!r}")
    return timestamp


def _check_text(text: object) -> str:
    if not isinstance(text, str) or not text.endswith("\n") or any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise CosignatureError("note text must end with a newline and contain no control characters")
    try:
        text.encode("utf-8")  # a Python str may hold lone surrogates: not valid UTF-8
    except UnicodeEncodeError as exc:
        raise CosignatureError("note text is not UTF-8") from exc
    return text


def witness_key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte key ID of a witness's Ed25519 cosigning key under its name."""
    return key_id(name, public_key, COSIGNATURE_TYPE)


def signed_message(text: str, timestamp: int) -> bytes:
    """What a cosignature/v1 signs: header line, time line, then the checkpoint text."""
    return f"{HEADER}time {_check_timestamp(timestamp)}\n{_check_text(text)}".encode("utf-8")


def cosign(note_text_body: str, private_key: Ed25519PrivateKey, name: str, timestamp: int) -> str:
    """The cosignature line (ending in a newline) of witness ``name`` over a note's text."""
    if not valid_key_name(name):
        raise CosignatureError(f"invalid witness name {name!r}")
    signature = private_key.sign(signed_message(note_text_body, timestamp))
    blob = witness_key_id(name, private_key.public_key()) + timestamp.to_bytes(8, "big") + signature
    return f"{SIGNATURE_PREFIX}{name} {base64.b64encode(blob).decode('ascii')}\n"


def witness_vkey_text(public_key: Ed25519PublicKey, name: str) -> str:
    """The witness's verifier key: ``<name>+<key ID hex>+<base64(0x04 || raw key)>``."""
    try:
        return public_key_to_text(public_key, name, COSIGNATURE_TYPE)
    except CheckpointError as exc:
        raise CosignatureError(f"invalid witness name {name!r}") from exc


def load_witness_vkey(text: str) -> tuple[str, Ed25519PublicKey]:
    """(name, public key) from a witness verifier key; checks the type byte (0x04) and the key ID."""
    try:
        return load_public_key(text, COSIGNATURE_TYPE)
    except CheckpointError as exc:
        raise CosignatureError(f"witness verifier key: {exc}") from None


def _parse_line(line: str) -> tuple[str, bytes]:
    """(key name, decoded blob) of one signature line, without its newline."""
    if not isinstance(line, str) or not line.startswith(SIGNATURE_PREFIX):
        raise CosignatureError("malformed note: bad signature line")
    name, _, b64 = line[len(SIGNATURE_PREFIX):].partition(" ")
    blob = _b64decode(b64)
    if not valid_key_name(name) or len(blob) < 5:  # a key ID and at least one byte of signature
        raise CosignatureError("malformed note: bad signature line")
    return name, blob


def split_note(note: str) -> tuple[str, list[str]]:
    """(text, signature lines without newlines) of a signed note; the same rules as verify_note."""
    if not isinstance(note, str) or "\n\n" not in note:
        raise CosignatureError("malformed note: no signature block")
    split = note.rfind("\n\n")  # the text ends at the last empty line
    text, block = _check_text(note[:split + 1]), note[split + 2:]
    if not block.endswith("\n") or any(ord(ch) < 0x20 and ch != "\n" for ch in block):
        raise CosignatureError("malformed note: the signature block must be lines ending in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CosignatureError("malformed note: too many signatures")
    for line in lines:
        _parse_line(line)
    return text, lines


def add_cosignature(note: str, line: str) -> str:
    """``note`` with one more signature line. A line already there changes nothing; an earlier
    line by the same key (name and key ID: a re-cosigning) is replaced, so one key, one line."""
    new = line[:-1] if isinstance(line, str) and line.endswith("\n") else line
    name, blob = _parse_line(new)
    text, lines = split_note(note)
    kept = []
    for old in lines:
        old_name, old_blob = _parse_line(old)
        if (old_name, old_blob[:4]) != (name, blob[:4]):
            kept.append(old)
    if len(kept) >= MAX_SIGNATURES:
        raise CosignatureError("malformed note: too many signatures")
    return text + "\n" + "".join(f"{kept_line}\n" for kept_line in [*kept, new])


def verify_cosignatures(note: str, witnesses: list[tuple[str, Ed25519PublicKey]], required: int) -> list[str]:
    """Names of the ``witnesses`` whose cosignature on ``note`` verifies (each counted once).

    Raises CosignatureError if the note is malformed, a line under a listed witness's name and key
    ID does not verify, or fewer than ``required`` distinct witnesses cosigned. The log's own
    signature is not checked here: open the note with the log's key too (checkpoint.open_note).
    """
    if isinstance(required, bool) or not isinstance(required, int) or required < 0:
        raise CosignatureError("required must be a non-negative int")
    if not isinstance(witnesses, (list, tuple)) or not all(
            isinstance(w, tuple) and len(w) == 2 and valid_key_name(w[0]) and isinstance(w[1], Ed25519PublicKey)
            for w in witnesses):
        raise CosignatureError("witnesses must be (name, Ed25519 public key) pairs")
    text, lines = split_note(note)
    parsed = [_parse_line(line) for line in lines]
    verified: list[str] = []
    seen: set[tuple[str, bytes]] = set()
    for name, public_key in witnesses:
        wanted = witness_key_id(name, public_key)
        if (name, wanted) in seen:
            continue  # the same witness listed twice must not count twice towards the quorum
        seen.add((name, wanted))
        ours = [blob for line_name, blob in parsed if line_name == name and blob[:4] == wanted]
        for blob in ours:  # every line under this key must verify, as in checkpoint.verify_note
            if len(blob) != _BLOB_SIZE:
                raise CosignatureError(f"malformed cosignature by {name}+{wanted.hex()}")
            timestamp = int.from_bytes(blob[4:12], "big")
            try:
                public_key.verify(blob[12:], signed_message(text, timestamp))
            except InvalidSignature as exc:
                raise CosignatureError(f"invalid cosignature by {name}+{wanted.hex()}") from exc
        if ours:
            verified.append(name)
    if len(verified) < required:
        raise CosignatureError(f"{len(verified)} of the required {required} witnesses cosigned the checkpoint")
    return verified
