"""A witness: cosigns a log's checkpoints after checking that the log only ever grew.

This is c2sp.org/tlog-witness reduced to one log and an offline command (``caseledger witness``):
the log's operator hands the witness a signed checkpoint and a consistency proof from the last
checkpoint the witness cosigned; the witness checks both and returns the checkpoint with its
cosignature (``ledger.integrity.cosignature``) added. A log that showed one history to the witness
and another to someone else cannot get both cosigned, which is what makes a fork visible.

The witness's state is a folder of its own, never a database the log's operator controls:

    witness-key.pem        the witness's Ed25519 private key (PKCS#8 PEM, mode 0600)
    witness-verifier.txt   its verifier key, for whoever checks cosignatures
    log-verifier.txt       the log's verifier key, pinned at ``init`` (the key name is the origin)
    latest.note            the last checkpoint it cosigned, with its cosignature
    witness.lock           held while a checkpoint is checked and saved

Trust on first use: the first checkpoint the witness sees is taken as it is (there is nothing to
check it against but the pinned key); every later one must extend it. A key-rotation checkpoint
(``key`` line, signed by the old key and the new one) moves the pin to the announced key, because
the log signs with that key only from then on.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.integrity import merkle
from ledger.integrity.checkpoint import (
    Checkpoint,
    CheckpointError,
    generate_key,
    load_private_key,
    load_public_key,
    open_note,
    parse_body,
    private_key_to_pem,
)
from ledger.integrity.cosignature import (
    add_cosignature,
    cosign,
    load_witness_vkey,
    split_note,
    verify_cosignatures,
    witness_vkey_text,
)
from ledger.integrity.trust import describe_key, signers

KEY_FILE, VERIFIER_FILE, LOG_KEY_FILE = "witness-key.pem", "witness-verifier.txt", "log-verifier.txt"
LATEST_FILE, LOCK_FILE = "latest.note", "witness.lock"


class WitnessError(Exception):
    """The witness's state folder is missing, incomplete or damaged, or the request is unusable."""


class WitnessRefused(WitnessError):
    """The checkpoint was not cosigned: wrong key or origin, a rollback, or a fork of the log."""


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write a file so that a crash leaves the old content or the new one, never half of either."""
    temporary = path.with_name(path.name + ".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise WitnessError(f"{path} is missing: is this a witness folder (caseledger witness init)?") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise WitnessError(f"cannot read {path}: {exc}") from None


@dataclass(frozen=True)
class Witness:
    folder: Path
    name: str
    private_key: Ed25519PrivateKey

    @classmethod
    def init(cls, folder: Path | str, name: str, log_vkey_text: str) -> Witness:
        """Create the witness: a new key pair, and the log key it will trust."""
        folder = Path(folder)
        try:
            load_public_key(log_vkey_text)
        except CheckpointError as exc:
            raise WitnessError(f"the log key: {exc}") from None
        key = generate_key()
        try:
            vkey = witness_vkey_text(key.public_key(), name)
        except CheckpointError as exc:
            raise WitnessError(str(exc)) from None
        if (folder / KEY_FILE).exists():
            raise WitnessError(f"{folder / KEY_FILE} exists: this folder already holds a witness")
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_atomic(folder / KEY_FILE, private_key_to_pem(key), 0o600)
        _write_atomic(folder / VERIFIER_FILE, f"{vkey}\n".encode("utf-8"))
        _write_atomic(folder / LOG_KEY_FILE, f"{log_vkey_text.strip()}\n".encode("utf-8"))
        return cls(folder, name, key)

    @classmethod
    def open(cls, folder: Path | str) -> Witness:
        folder = Path(folder)
        pem, vkey = _read(folder / KEY_FILE), _read(folder / VERIFIER_FILE)
        try:
            key = load_private_key(pem.encode("utf-8"))
            name, public_key = load_witness_vkey(vkey)
        except CheckpointError as exc:
            raise WitnessError(f"{folder}: {exc}") from None
        if public_key != key.public_key():
            raise WitnessError(f"{folder / VERIFIER_FILE} is not the key of {folder / KEY_FILE}")
        return cls(folder, name, key)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def vkey(self) -> str:
        """The verifier key to give to whoever checks this witness's cosignatures."""
        return witness_vkey_text(self.public_key, self.name)

    def log_key(self) -> tuple[str, Ed25519PublicKey, str]:
        """(origin, public key, verifier key text) of the pinned log key."""
        text = _read(self.folder / LOG_KEY_FILE).strip()
        try:
            return (*load_public_key(text), text)
        except CheckpointError as exc:
            raise WitnessError(f"{self.folder / LOG_KEY_FILE}: {exc}") from None

    def latest(self) -> tuple[Checkpoint, str] | None:
        """The last checkpoint this witness cosigned and its note, or None before the first."""
        path = self.folder / LATEST_FILE
        if not path.exists():
            return None
        note = _read(path)
        try:  # our own cosignature on it shows the file was written by this witness, unaltered
            verify_cosignatures(note, [(self.name, self.public_key)], 1)
            return parse_body(split_note(note)[0]), note
        except CheckpointError as exc:
            raise WitnessError(f"{path} is damaged or was not cosigned by this witness: {exc}") from None

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # Checking against the latest checkpoint and saving the new one must be one step, or two
        # requests could interleave and roll the saved state back (see c2sp.org/tlog-witness).
        fd = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def cosign(self, note: str, proof: Sequence[bytes], now_unix: int, *, old_size: int | None = None) -> str:
        """Check ``note`` and return it with this witness's cosignature added; save it as latest.

        ``proof`` is the RFC 9162 consistency proof from the latest cosigned checkpoint (empty for
        the first one). ``old_size``, when given, is the size the caller thinks that is. Saves
        nothing and raises WitnessRefused if the checkpoint is not the pinned log's or does not
        extend the latest one; WitnessError if the request is unusable (time, proof from the wrong size).
        """
        if isinstance(now_unix, bool) or not isinstance(now_unix, int) or not 0 <= now_unix <= 2**63 - 1:
            raise WitnessError(f"invalid time {now_unix!r}")
        if not isinstance(proof, (list, tuple)):
            raise WitnessError("the consistency proof must be a list of hashes")
        with self._locked():
            origin, log_key, log_vkey = self.log_key()
            try:
                checkpoint = open_note(note, log_key, origin)
            except CheckpointError as exc:
                found = ", ".join(signers(note)) if isinstance(note, str) else ""
                raise WitnessRefused(f"not a checkpoint signed by the pinned log key {describe_key(origin, log_key)}"
                                     f" ({exc}; signed by {found or 'nobody'})") from None
            if checkpoint.origin != origin:
                raise WitnessRefused(f"checkpoint of origin {checkpoint.origin!r}; this witness follows {origin!r}")
            if checkpoint.size == 0 and checkpoint.root != merkle.EMPTY_ROOT:
                raise WitnessRefused("a checkpoint of size 0 must carry the empty tree's root")
            if checkpoint.next_key is not None and load_public_key(checkpoint.next_key)[0] != origin:
                raise WitnessRefused("the rotation checkpoint announces a key for another origin")
            latest = self.latest()
            self._check_extends(latest[0] if latest else None, checkpoint, list(proof), old_size)
            try:
                line = cosign(checkpoint.body().decode("utf-8"), self.private_key, self.name, now_unix)
                cosigned = add_cosignature(note, line)
            except CheckpointError as exc:
                raise WitnessRefused(str(exc)) from None
            _write_atomic(self.folder / LATEST_FILE, cosigned.encode("utf-8"))
            if checkpoint.next_key is not None and checkpoint.next_key != log_vkey:
                # the announced key signs from now on; the pinned key vouched for it by signing
                _write_atomic(self.folder / LOG_KEY_FILE, f"{checkpoint.next_key}\n".encode("utf-8"))
            return cosigned

    @staticmethod
    def _check_extends(old: Checkpoint | None, new: Checkpoint, proof: list[bytes], old_size: int | None) -> None:
        old_n, old_root = (old.size, old.root) if old else (0, merkle.EMPTY_ROOT)  # first use: the empty tree
        # A proof from the wrong size, or none at all, is a mistake by the caller, not evidence
        # against the log: WitnessError, not WitnessRefused.
        if old_size is not None and old_size != old_n:
            raise WitnessError(f"the proof is from size {old_size}, but the latest checkpoint this witness "
                               f"cosigned has size {old_n}: give a consistency proof from size {old_n}")
        if old is None and proof:
            raise WitnessError("this witness has cosigned nothing yet: the first checkpoint takes no proof")
        if not proof and 0 < old_n < new.size:
            raise WitnessError(f"a consistency proof from size {old_n} (the latest checkpoint this witness "
                               f"cosigned) to size {new.size} is needed")
        if new.size < old_n:
            raise WitnessRefused(f"rollback: size {new.size} is smaller than the size {old_n} already cosigned")
        if new.size == old_n and new.root != old_root:
            raise WitnessRefused(f"fork: a different root for size {old_n}, which was already cosigned")
        if not merkle.verify_consistency(old_n, new.size, old_root, new.root, proof):
            raise WitnessRefused(f"the consistency proof from old size {old_n} to new size {new.size} does not "
                                 f"verify: this log's history is not the one cosigned at size {old_n} (a fork?)")
