"""The log's Ed25519 signing key: kept in files outside the database, created by ``caseledger keys init``.

- ``CASELEDGER_SIGNING_KEY_FILE`` (default ``<home>/keys/log-signing.pem``): PKCS#8 PEM, mode 0600.
- ``CASELEDGER_VERIFIER_KEY_FILE`` (default ``<home>/keys/log-verifier.txt``): the public key as a
  signed-note verifier key, for auditors. Its key name is the log's **origin**.
- ``log-verifiers-retired.txt`` beside it: every key this log signed with before a rotation, so
  checkpoints signed before the rotation still verify here.

The origin names one installation's log: ``CASELEDGER_LOG_ORIGIN`` when set, otherwise made unique
at ``keys init`` (host name and random bits), never a shared default — two ledgers with the same
origin and different keys could not be told apart by a person reading a checkpoint. Once the key
exists, the origin is the key's name, and a ``CASELEDGER_LOG_ORIGIN`` that disagrees is an error.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.integrity.checkpoint import (
    generate_key,
    load_private_key,
    load_public_key,
    private_key_to_pem,
    public_key_to_text,
)
from ledger.integrity.trust import TrustSet
from ledger.settings import Settings


class KeyMissing(RuntimeError):
    """No signing key yet (run ``caseledger keys init``), or the key files disagree with the settings."""


def unique_origin() -> str:
    """``<host>.caseledger/log-<8 hex>``: readable, and different for every ``keys init``."""
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()).strip(".-").lower() or "host"
    return f"{host}.caseledger/log-{secrets.token_hex(4)}"


def _write_private(path: Path, key: Ed25519PrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_key_to_pem(key))
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


@dataclass(frozen=True)
class LogKeys:
    configured_origin: str | None
    signing_file: Path
    verifier_file: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> LogKeys:
        return cls(configured_origin=settings.log_origin, signing_file=settings.signing_key_file,
                   verifier_file=settings.verifier_key_file)

    @property
    def retired_file(self) -> Path:
        return self.verifier_file.with_name("log-verifiers-retired.txt")

    @property
    def origin(self) -> str:
        return self.public_key()[0]

    def init(self, *, force: bool = False, origin: str | None = None) -> str:
        """Create the key pair; returns the verifier key text. Refuses to replace a key unless forced."""
        if self.signing_file.exists() and not force:
            raise FileExistsError(f"{self.signing_file} exists; a new key would not verify old checkpoints "
                                  "(use 'caseledger keys rotate' to change keys)")
        name = origin or self.configured_origin or unique_origin()
        key = generate_key()
        text = public_key_to_text(key.public_key(), name)  # checks the name first
        _write_private(self.signing_file, key)
        self.verifier_file.parent.mkdir(parents=True, exist_ok=True)
        self.verifier_file.write_text(text + "\n", encoding="utf-8")
        return text

    def ensure(self) -> None:
        if not self.signing_file.exists():
            self.init()

    def signing_key(self) -> Ed25519PrivateKey:
        if not self.signing_file.exists():
            raise KeyMissing(f"no signing key at {self.signing_file}; run 'caseledger keys init'")
        key = load_private_key(self.signing_file.read_bytes())
        if key.public_key() != self.public_key()[1]:
            raise KeyMissing(f"{self.signing_file} does not belong to the verifier key in {self.verifier_file}")
        return key

    def verifier_text(self) -> str:
        if not self.verifier_file.exists():
            raise KeyMissing(f"no verifier key at {self.verifier_file}; run 'caseledger keys init'")
        return self.verifier_file.read_text(encoding="utf-8").strip()

    def public_key(self) -> tuple[str, Ed25519PublicKey]:
        name, key = load_public_key(self.verifier_text())
        if self.configured_origin and self.configured_origin != name:
            raise KeyMissing(f"CASELEDGER_LOG_ORIGIN is {self.configured_origin!r} but the log's key "
                             f"({self.verifier_file}) is named {name!r}; the origin cannot change once the key exists")
        return name, key

    def retired(self) -> list[str]:
        if not self.retired_file.exists():
            return []
        return [line.strip() for line in self.retired_file.read_text(encoding="utf-8").splitlines() if line.strip()]

    def trusted(self) -> TrustSet:
        """The keys this installation's files say the log signed with: retired ones, then the current.
        They live outside the database, so a database edit cannot change what verifies."""
        return TrustSet([*self.retired(), self.verifier_text()])

    def install_next(self, key: Ed25519PrivateKey) -> str:
        """Make ``key`` the signing key; the current one's verifier key is kept as retired. Call after
        the rotation checkpoint announcing it was stored (``TransparencyLog.rotate_key``)."""
        old = self.verifier_text()
        name = self.origin
        text = public_key_to_text(key.public_key(), name)
        with self.retired_file.open("a", encoding="utf-8") as f:
            f.write(old + "\n")
        _write_private(self.signing_file, key)
        self.verifier_file.write_text(text + "\n", encoding="utf-8")
        return text
