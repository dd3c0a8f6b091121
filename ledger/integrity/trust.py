"""Which log keys a verifier trusts, and how a trusted key hands over to its successor.

Trust starts from keys the verifier *pins*: signed-note verifier keys it obtained out of band (a
file, one key per line, ``#`` comments allowed). Nothing a log or a bundle carries is trusted on
its own say-so: a note signed only by a key that is not pinned is refused with
``UntrustedSignature``, which names the key so that the person can compare it with what they were
given.

Key rotation: the log announces its next key in a checkpoint (the ``key`` line, see
``ledger.integrity.checkpoint``) signed by the key it replaces. Opening that checkpoint with a
trusted key makes the announced key trusted too (``learn``); so a verifier pinned to the first key
follows every rotation, and old checkpoints keep verifying with the old key.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.integrity.checkpoint import (
    SIGNATURE_PREFIX,
    Checkpoint,
    CheckpointError,
    NoSignature,
    key_id,
    load_public_key,
    parse_body,
    verify_note,
)


class UntrustedSignature(CheckpointError):
    """The note is not signed by any pinned key (it may well be signed by some other key)."""


@dataclass(frozen=True)
class TrustedKey:
    name: str
    public_key: Ed25519PublicKey
    text: str  # the verifier key as pinned

    @property
    def label(self) -> str:
        return describe_key(self.name, self.public_key)


def describe_key(name: str, public_key: Ed25519PublicKey) -> str:
    """``name+keyid (sha256:…)``: what a person compares with the key they were given."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"{name}+{key_id(name, public_key).hex()} (key sha256:{hashlib.sha256(raw).hexdigest()})"


def signers(note: str) -> list[str]:
    """``name+keyid`` of every signature line of a note, whether or not it verifies (for messages)."""
    found = []
    for line in note.rpartition("\n\n")[2].splitlines():
        if line.startswith(SIGNATURE_PREFIX):
            name, _, b64 = line[len(SIGNATURE_PREFIX):].partition(" ")
            try:
                found.append(f"{name}+{base64.b64decode(b64, validate=True)[:4].hex()}")
            except ValueError:
                found.append(f"{name}+?")
    return found


class TrustSet:
    def __init__(self, verifier_keys: Iterable[str] = ()):
        self.keys: list[TrustedKey] = []
        for text in verifier_keys:
            self.add(text)

    @classmethod
    def from_file(cls, path: Path) -> TrustSet:
        """Verifier keys from a file: one per line; blank lines and ``#`` comments are skipped."""
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"cannot read the trusted keys in {path}: {exc}") from None
        keys = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
        if not keys:
            raise CheckpointError(f"{path} holds no verifier key")
        try:
            return cls(keys)
        except CheckpointError as exc:
            raise CheckpointError(f"{path}: {exc}") from None

    def add(self, verifier_key: str) -> TrustedKey:
        name, public_key = load_public_key(verifier_key)
        for known in self.keys:
            if known.name == name and known.public_key == public_key:
                return known
        key = TrustedKey(name, public_key, verifier_key.strip())
        self.keys.append(key)
        return key

    def open_note(self, note: str) -> tuple[str, TrustedKey]:
        """The text of a note signed by one of the pinned keys, and that key. A note signed only by
        other keys raises UntrustedSignature naming them; a bad signature by a pinned key raises
        CheckpointError."""
        for key in self.keys:
            try:  # a malformed note, or a bad signature under a pinned key's name and ID, raises
                return verify_note(note, key.public_key, key.name), key
            except NoSignature:
                continue
        names = ", ".join(signers(note)) or "no key at all"
        pinned = ", ".join(k.label for k in self.keys) or "none"
        raise UntrustedSignature(f"signed by {names}, which is not a pinned key (pinned: {pinned})")

    def open_checkpoint(self, note: str) -> tuple[Checkpoint, TrustedKey]:
        text, key = self.open_note(note)
        checkpoint = parse_body(text)
        if checkpoint.origin != key.name:
            raise CheckpointError(f"checkpoint of origin {checkpoint.origin!r} is signed by key {key.name!r}: "
                                  "a log's key is named after its origin")
        self.learn(checkpoint)
        return checkpoint, key

    def learn(self, checkpoint: Checkpoint) -> None:
        """Trust the next key a trusted rotation checkpoint announces (same origin only)."""
        if checkpoint.next_key is not None:
            name, _ = load_public_key(checkpoint.next_key)
            if name != checkpoint.origin:
                raise CheckpointError(f"rotation checkpoint announces a key for {name!r}, not for its own origin")
            self.add(checkpoint.next_key)

    def open_chain(self, notes: Iterable[str]) -> list[Checkpoint]:
        """Open checkpoints in the order they were published, following key rotations."""
        return [self.open_checkpoint(note)[0] for note in notes]
