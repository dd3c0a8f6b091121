"""C2SP tlog-proof (``c2sp.org/tlog-proof@v1``): one leaf's inclusion in a signed checkpoint, as text.

An auditor checks one offline with nothing but the log's verifier key and the leaf hash (which they
compute from the event's bytes, ``ledger.integrity.leaf``). The text is, line by line (each line
ends with U+000A; base64 is RFC 4648 §4, standard alphabet, padded):

    c2sp.org/tlog-proof@v1
    extra <base64>              optional, opaque and NOT authenticated (we never write one)
    index <N>                   the leaf's 0-based index, ASCII decimal, no leading zeros
    <base64(32-byte hash)>      zero or more: the RFC 9162 inclusion path, leaf's sibling first
    <empty line>
    <checkpoint>                the log's signed checkpoint note, verbatim (ledger.integrity.checkpoint)

Verifying (tlog-proof §"Verifying"): the checkpoint must be signed by the log's key (whose name is
the origin) and the path must lead from the leaf hash at ``index`` to the checkpoint's root for the
checkpoint's tree size. Witness cosignatures, if any, are ignored here (signed-note: signatures by
other keys are not ours to judge). Parsing is strict: the text must re-serialise to exactly itself.
Pure: standard library and ``ledger.integrity`` only.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from ledger.integrity.checkpoint import Checkpoint, CheckpointError, load_public_key, open_note
from ledger.integrity.merkle import HASH_SIZE, verify_inclusion

HEADER = "c2sp.org/tlog-proof@v1"
MEDIA_TYPE = "application/x-tlog-proof"
MAX_PATH = 64  # a tree of fewer than 2**64 leaves has inclusion paths of at most 64 hashes
_INDEX = re.compile(r"index (0|[1-9][0-9]*)")


class TlogProofError(ValueError):
    """The text is not a well-formed tlog-proof, or it does not verify."""


@dataclass(frozen=True)
class TlogProof:
    index: int
    proof: tuple[bytes, ...]
    checkpoint: str  # the signed note, verbatim
    extra: bytes | None = None  # unauthenticated; never trust it

    def __post_init__(self) -> None:
        if isinstance(self.index, bool) or not isinstance(self.index, int) or self.index < 0:
            raise TlogProofError("index must be a non-negative int")
        if len(self.proof) > MAX_PATH or not all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in self.proof):
            raise TlogProofError(f"the proof is at most {MAX_PATH} hashes of {HASH_SIZE} bytes")
        if not isinstance(self.checkpoint, str) or not self.checkpoint.endswith("\n"):
            raise TlogProofError("the checkpoint is a signed note ending with a newline")
        if self.extra is not None and not isinstance(self.extra, bytes):
            raise TlogProofError("extra data must be bytes")

    def text(self) -> str:
        lines = [HEADER]
        if self.extra is not None:
            lines.append(f"extra {_b64(self.extra)}")
        lines.append(f"index {self.index}")
        lines += [_b64(h) for h in self.proof]
        return "\n".join(lines) + "\n\n" + self.checkpoint


def format_proof(index: int, proof: list[bytes] | tuple[bytes, ...], checkpoint_note: str,
                 extra: bytes | None = None) -> str:
    """The tlog-proof text for leaf ``index``, its RFC 9162 path and the signed checkpoint note."""
    return TlogProof(index, tuple(proof), checkpoint_note, extra).text()


def parse_proof(text: str) -> TlogProof:
    """Parse a tlog-proof, strictly (no signature or path is checked here: see :func:`verify_proof`)."""
    if not isinstance(text, str):
        raise TlogProofError("a tlog-proof is text")
    head, sep, note = text.partition("\n\n")  # the first empty line ends the proof lines
    if not sep:
        raise TlogProofError("no empty line before the checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise TlogProofError(f"the first line must be {HEADER}")
    rest = lines[1:]
    extra = None
    if rest and rest[0].startswith("extra "):
        extra = _unb64(rest.pop(0)[len("extra "):], "extra data")
    match = _INDEX.fullmatch(rest.pop(0)) if rest else None
    if match is None:
        raise TlogProofError("expected 'index N' (decimal, no leading zeros)")
    if len(rest) > MAX_PATH:
        raise TlogProofError(f"more than {MAX_PATH} proof hashes")
    proof = []
    for line in rest:
        digest = _unb64(line, "proof hash")
        if len(digest) != HASH_SIZE:
            raise TlogProofError(f"a proof hash is {HASH_SIZE} bytes")
        proof.append(digest)
    parsed = TlogProof(int(match.group(1)), tuple(proof), note, extra)
    if parsed.text() != text:  # e.g. stray whitespace: nothing may differ from what we parsed
        raise TlogProofError("the proof is not in canonical form")
    return parsed


def verify_proof(text: str | TlogProof, leaf_hash: bytes, vkey: str, *, origin: str | None = None) -> Checkpoint:
    """Check a tlog-proof against the log's verifier key (``<name>+<key id>+<base64 key>``) and the
    leaf hash the auditor computed. Returns the signed checkpoint the leaf is included in; raises
    :class:`TlogProofError` on anything wrong. The checkpoint's origin must be ``origin`` (by
    default the key's name, which is how this log names itself)."""
    proof = text if isinstance(text, TlogProof) else parse_proof(text)
    if not isinstance(leaf_hash, bytes) or len(leaf_hash) != HASH_SIZE:
        raise TlogProofError(f"the leaf hash is {HASH_SIZE} bytes")
    try:
        name, key = load_public_key(vkey)
        checkpoint = open_note(proof.checkpoint, key, name)
    except CheckpointError as e:
        raise TlogProofError(f"checkpoint: {e}") from e
    if checkpoint.origin != (name if origin is None else origin):
        raise TlogProofError(f"the checkpoint is of log {checkpoint.origin!r}, not {origin or name!r}")
    if not verify_inclusion(leaf_hash, proof.index, checkpoint.size, list(proof.proof), checkpoint.root):
        raise TlogProofError(f"the path does not lead from leaf {proof.index} to the root of the checkpoint "
                             f"(size {checkpoint.size})")
    return checkpoint


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise TlogProofError(f"malformed base64 in {what}") from e
    if _b64(data) != text:
        raise TlogProofError(f"non-canonical base64 in {what}")
    return data
