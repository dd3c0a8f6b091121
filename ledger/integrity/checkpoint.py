"""Signed checkpoints: c2sp.org/tlog-checkpoint text inside a c2sp.org/signed-note, Ed25519.

A checkpoint commits the log to "the first ``size`` leaves have Merkle root ``root``". Its text
(the note body, what is signed, UTF-8) is exactly:

    <origin>\\n                    the log's identity, e.g. "caseledger.example/log"
    <size>\\n                      tree size in ASCII decimal, no leading zeros
    <base64(root)>\\n              the 32-byte RFC 9162 root hash, standard base64 with padding
    time <RFC 3339 UTC>\\n         our extension line: YYYY-MM-DDTHH:MM:SS[.ffffff]Z
    key <verifier key>\\n           only in a key-rotation checkpoint: the log's next key, announced
                                 under the signature of the key it replaces (see ledger.integrity.trust)

The signed note is that text, an empty line, then one line per signature:

    — <key name> <base64(key ID (4 bytes) || Ed25519 signature over the text (64 bytes))>\\n

(the dash is U+2014 EM DASH), with key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte raw
Ed25519 public key)[:4], 0x01 being the signed-note type byte for Ed25519. This is byte for byte
what golang.org/x/mod/sumdb/note produces, so Go and other tlog tooling can check our checkpoints.
A public key is exchanged as the signed-note "verifier key" text:
``<key name>+<key ID, 8 hex digits>+<base64(0x01 || raw public key)>``.

Parsing is strict: the text must re-serialise to exactly the signed bytes, so nothing an auditor
reads can differ from what was signed. Signatures by other keys are ignored, as the spec requires.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519_TYPE = b"\x01"  # signed-note signature type byte for Ed25519
SIGNATURE_PREFIX = "\u2014 "  # "— "
MAX_SIGNATURES = 100  # bound the work an oversized note can cause (the Go library does the same)
_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{6}))?Z")
_SIZE = re.compile(r"0|[1-9][0-9]*")


class CheckpointError(ValueError):
    """A note or checkpoint is malformed, unsigned, or signed by the wrong key."""


class NoSignature(CheckpointError):
    """The note is well formed but carries no signature by the key asked for."""


def valid_key_name(name: object) -> bool:
    # signed-note: key names are non-empty, with no Unicode spaces and no "+"; notes have no
    # ASCII control characters.
    return (isinstance(name, str) and name != "" and "+" not in name
            and not any(ch.isspace() or ord(ch) < 0x20 for ch in name))


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise CheckpointError("malformed base64") from exc


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key_name: str, public_key: Ed25519PublicKey, key_type: bytes = ED25519_TYPE) -> bytes:
    """The 4-byte signed-note key ID of an Ed25519 key under a name (type 0x01: a log's signing key;
    a witness's cosigning key is type 0x04, see ``cosignature``)."""
    return hashlib.sha256(key_name.encode("utf-8") + b"\n" + key_type + _raw(public_key)).digest()[:4]


def sign_note(text: str, private_key: Ed25519PrivateKey, key_name: str) -> str:
    """A signed note: ``text`` (ending in a newline), an empty line, one signature line."""
    if not valid_key_name(key_name):
        raise CheckpointError(f"invalid key name {key_name!r}")
    if not text.endswith("\n") or any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise CheckpointError("note text must end with a newline and contain no control characters")
    signature = private_key.sign(text.encode("utf-8"))
    blob = key_id(key_name, private_key.public_key()) + signature
    return f"{text}\n{SIGNATURE_PREFIX}{key_name} {base64.b64encode(blob).decode('ascii')}\n"


def verify_note(note: str, public_key: Ed25519PublicKey, key_name: str) -> str:
    """The text of ``note`` if it carries a valid signature by (key_name, public_key).

    Raises CheckpointError if the note is malformed, has no signature by that key, or that key's
    signature does not verify. Signatures by other keys are ignored (signed-note spec).
    """
    if not isinstance(note, str) or not valid_key_name(key_name):
        raise CheckpointError("malformed note")
    try:
        note.encode("utf-8")  # a Python str may hold lone surrogates: not valid UTF-8
    except UnicodeEncodeError as exc:
        raise CheckpointError("malformed note: not UTF-8") from exc
    if any(ord(ch) < 0x20 and ch != "\n" for ch in note):
        raise CheckpointError("malformed note: control character")
    split = note.rfind("\n\n")  # the text ends at the last empty line
    if split < 0:
        raise CheckpointError("malformed note: no signature block")
    text, sigs = note[:split + 1], note[split + 2:]
    if not sigs.endswith("\n"):
        raise CheckpointError("malformed note: signature block must end with a newline")
    lines = sigs[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError("malformed note: too many signatures")
    wanted = key_id(key_name, public_key)
    verified = False
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise CheckpointError("malformed note: bad signature line")
        name, _, b64 = line[len(SIGNATURE_PREFIX):].partition(" ")
        blob = _b64decode(b64)
        if not valid_key_name(name) or len(blob) < 5:
            raise CheckpointError("malformed note: bad signature line")
        if name != key_name or blob[:4] != wanted:
            continue  # another key's signature (a witness, a rotated key): not ours to judge
        try:
            public_key.verify(blob[4:], text.encode("utf-8"))
        except InvalidSignature as exc:
            raise CheckpointError(f"invalid signature by key {key_name}+{wanted.hex()}") from exc
        verified = True
    if not verified:
        raise NoSignature(f"note has no signature by key {key_name}+{wanted.hex()}")
    return text


def _format_time(moment: datetime) -> str:
    t = moment.astimezone(timezone.utc)
    fraction = f".{t.microsecond:06d}" if t.microsecond else ""
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}{fraction}Z"


def _parse_time(text: str) -> datetime:
    match = _TIME.fullmatch(text)
    if not match:
        raise CheckpointError(f"malformed checkpoint time {text!r}")
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                        int(fraction or 0), tzinfo=timezone.utc)
    except ValueError as exc:
        raise CheckpointError(f"invalid checkpoint time {text!r}") from exc


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    time: datetime
    next_key: str | None = None  # the verifier key that signs from now on, in a rotation checkpoint

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin or any(ord(ch) < 0x20 for ch in self.origin):
            raise CheckpointError("origin must be a non-empty line of text")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise CheckpointError("size must be a non-negative int")
        if not isinstance(self.root, bytes) or len(self.root) != 32:
            raise CheckpointError("root must be a 32-byte hash")
        if not isinstance(self.time, datetime) or self.time.utcoffset() is None:
            raise CheckpointError("time must be a timezone-aware datetime")
        object.__setattr__(self, "time", self.time.astimezone(timezone.utc))  # one canonical form
        if self.next_key is not None:
            load_public_key(self.next_key)  # raises CheckpointError unless a well-formed verifier key

    def body(self) -> bytes:
        """The checkpoint text: exactly the bytes that are signed."""
        root = base64.b64encode(self.root).decode("ascii")
        rotation = f"key {self.next_key}\n" if self.next_key is not None else ""
        return f"{self.origin}\n{self.size}\n{root}\ntime {_format_time(self.time)}\n{rotation}".encode("utf-8")


def parse_body(text: str) -> Checkpoint:
    """Checkpoint from its text; strict, so that it re-serialises to exactly ``text``."""
    lines = text.split("\n")
    if len(lines) not in (5, 6) or lines[-1] != "" or not lines[3].startswith("time "):
        raise CheckpointError("checkpoint must be origin, size, root, one time line and at most one key line")
    origin, size, root, time_line = lines[:4]
    next_key = None
    if len(lines) == 6:
        if not lines[4].startswith("key "):
            raise CheckpointError("the line after the time must be a key line")
        next_key = lines[4][len("key "):]
    if not _SIZE.fullmatch(size):
        raise CheckpointError(f"malformed tree size {size!r}")
    checkpoint = Checkpoint(origin, int(size), _b64decode(root), _parse_time(time_line[len("time "):]), next_key)
    if checkpoint.body() != text.encode("utf-8"):
        raise CheckpointError("checkpoint text is not in canonical form")
    return checkpoint


def sign(checkpoint: Checkpoint, private_key: Ed25519PrivateKey, key_name: str) -> str:
    """The checkpoint as a signed note. The key name SHOULD equal the origin (tlog-checkpoint)."""
    return sign_note(checkpoint.body().decode("utf-8"), private_key, key_name)


def open_note(text: str, public_key: Ed25519PublicKey, key_name: str) -> Checkpoint:
    """Verify a signed checkpoint note and parse it; CheckpointError on anything wrong."""
    return parse_body(verify_note(text, public_key, key_name))


# --- Keys ---


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_to_pem(key: Ed25519PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted: protect the file (permissions, secret store) instead."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise CheckpointError("not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError("the checkpoint key must be Ed25519")
    return key


def public_key_to_text(key: Ed25519PublicKey, key_name: str, key_type: bytes = ED25519_TYPE) -> str:
    """The signed-note verifier key: ``<name>+<key ID hex>+<base64(type || raw key)>``."""
    if not valid_key_name(key_name):
        raise CheckpointError(f"invalid key name {key_name!r}")
    encoded = base64.b64encode(key_type + _raw(key)).decode("ascii")
    return f"{key_name}+{key_id(key_name, key, key_type).hex()}+{encoded}"


def load_public_key(text: str, key_type: bytes = ED25519_TYPE) -> tuple[str, Ed25519PublicKey]:
    """(key name, public key) from a signed-note verifier key; checks the type and the embedded key ID."""
    parts = text.strip().split("+", 2) if isinstance(text, str) else []
    if len(parts) != 3 or not valid_key_name(parts[0]) or not re.fullmatch(r"[0-9a-fA-F]{8}", parts[1]):
        raise CheckpointError("malformed verifier key")
    name, id_hex, encoded = parts
    raw = _b64decode(encoded)
    if len(raw) != 33 or raw[:1] != key_type:
        raise CheckpointError(f"verifier key is not a 32-byte Ed25519 key (type 0x{key_type.hex()})")
    try:
        key = Ed25519PublicKey.from_public_bytes(raw[1:])
    except ValueError as exc:
        raise CheckpointError("verifier key is not a valid Ed25519 key") from exc
    if key_id(name, key, key_type) != bytes.fromhex(id_hex):
        raise CheckpointError("verifier key ID does not match the name and key")
    return name, key
