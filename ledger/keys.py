"""The log's Ed25519 signing key: kept in files outside the database, created by ``caseledger keys init``.

- ``CASELEDGER_SIGNING_KEY_FILE`` (default ``<home>/keys/log-signing.pem``): PKCS#8 PEM, mode 0600.
- ``CASELEDGER_VERIFIER_KEY_FILE`` (default ``<home>/keys/log-verifier.txt``): the public key as a
  signed-note verifier key, for auditors.
- ``CASELEDGER_LOG_ORIGIN`` (default ``caseledger.local/log``): the log's name; also the key name.
"""

from __future__ import annotations

import os
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
from ledger.settings import Settings


class KeyMissing(RuntimeError):
    """No signing key yet: run ``caseledger keys init``."""


@dataclass(frozen=True)
class LogKeys:
    origin: str
    signing_file: Path
    verifier_file: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> LogKeys:
        return cls(origin=settings.log_origin, signing_file=settings.signing_key_file,
                   verifier_file=settings.verifier_key_file)

    def init(self, *, force: bool = False) -> str:
        """Create the key pair; returns the verifier key text. Refuses to replace a key unless forced."""
        if self.signing_file.exists() and not force:
            raise FileExistsError(f"{self.signing_file} exists; a new key would not verify old checkpoints "
                                  "(use --force to replace it anyway)")
        key = generate_key()
        self.signing_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.signing_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private_key_to_pem(key))
        text = public_key_to_text(key.public_key(), self.origin)
        self.verifier_file.parent.mkdir(parents=True, exist_ok=True)
        self.verifier_file.write_text(text + "\n", encoding="utf-8")
        return text

    def ensure(self) -> None:
        if not self.signing_file.exists():
            self.init()

    def signing_key(self) -> Ed25519PrivateKey:
        if not self.signing_file.exists():
            raise KeyMissing(f"no signing key at {self.signing_file}; run 'caseledger keys init'")
        return load_private_key(self.signing_file.read_bytes())

    def verifier_text(self) -> str:
        if not self.verifier_file.exists():
            raise KeyMissing(f"no verifier key at {self.verifier_file}; run 'caseledger keys init'")
        return self.verifier_file.read_text(encoding="utf-8").strip()

    def public_key(self) -> tuple[str, Ed25519PublicKey]:
        return load_public_key(self.verifier_text())
