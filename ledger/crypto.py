"""Per-subject encryption of personal data, and its destruction by destroying the key (crypto-shredding).

An event's personal part, ``personal = {"subject": s, "fields": {...}}`` (see ``domain.context``),
is stored sealed: ``{"subject": s, "names": [field names], "sealed": base64(nonce ‖ AES-256-GCM)}``.
Everything else in the event stays readable, so projections, audits and the Merkle log (which
hashes exactly these stored bytes) never need a key.

- Each data subject (customer) has one random 256-bit **data key**, made on first use and stored
  in ``subject_keys`` *wrapped* (AES-GCM) by the **key-encryption key** (KEK). The KEK lives outside
  the database: a file (``CASELEDGER_KEK_FILE``, default ``<home>/data-kek.key``) or
  ``CASELEDGER_KEK``. A database dump without the KEK reveals no personal data.
- The additional authenticated data binds each ciphertext to its subject, aggregate and version,
  so sealed blobs cannot be moved between events or subjects unnoticed.
- **Destruction** deletes the subject's wrapped key and leaves a tombstone (subject id and time,
  no key material) in one transaction, then compacts the key table so the deleted bytes are not
  left in free pages. From then on the subject's personal fields decode as destroyed (``None``,
  with ``"destroyed": True``) and no new personal data can be written for that subject.

Unwrapped keys are cached per process for ``CASELEDGER_KEY_CACHE_SECONDS`` (default 5): another
process sees a destruction at most that long after it happened.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import tempfile
import time
from binascii import b2a_base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic

from ledger.json_encoding import OneShotEncoder
from ledger.sqlaccess import SqlAccess

NONCE_BYTES = 12
#: The sealed plaintext's JSON: compact, sorted, UTF-8 (an encoder made once, its C encoder too).
_PLAINTEXT = OneShotEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))
KEY_TABLES = {"keys": "subject_keys", "tombstones": "subject_tombstones"}


class SubjectErased(Exception):
    """The subject's personal data was destroyed; nothing personal can be written for it again."""

    rule = "retention.subject_destroyed"

    def __init__(self, subject: str):
        self.subject = subject
        super().__init__(f"the personal data of subject {subject} was destroyed; it cannot be written again")


class KeyUnavailable(RuntimeError):
    """A data key exists but cannot be unwrapped (wrong KEK), or is missing without a tombstone."""


class KeyEncryptionKey:
    """The AES-256 key that wraps every data key. Never stored in the database."""

    def __init__(self, key: bytes):
        if len(key) != 32:
            raise ValueError("the key-encryption key must be 32 bytes (AES-256)")
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(b"caseledger-kek-id|" + key).hexdigest()[:16]

    @classmethod
    def load(cls, key: bytes | None, path: Path) -> KeyEncryptionKey:
        """The key itself (``CASELEDGER_KEK``), else the one in ``path`` (``CASELEDGER_KEK_FILE``),
        created on first use."""
        if key is not None:
            return cls(key)
        if not path.exists():
            _create_once(path, base64.b64encode(AESGCM.generate_key(bit_length=256)) + b"\n")
        return cls(base64.b64decode(path.read_text().strip()))

    def wrap(self, subject: str, data_key: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data_key, _wrap_aad(subject))

    def unwrap(self, subject: str, wrapped: bytes) -> bytes:
        return self._aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _wrap_aad(subject))


def _create_once(path: Path, content: bytes) -> None:
    """Write ``path`` (mode 0600) unless it exists, atomically: processes starting at once on a new
    home (gunicorn workers) all end up with the one key that was written first, and none ever
    reads a file half written. The content goes to a file of its own, which is then hard-linked
    to ``path`` — a link fails if ``path`` exists, where a rename would replace it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process was first: its key is the key
    finally:
        os.unlink(temporary)


def _wrap_aad(subject: str) -> bytes:
    return b"caseledger-data-key-v1|" + subject.encode()


def key_fingerprint(data_key: bytes) -> str:
    """A one-way fingerprint of a data key, for destruction certificates."""
    return "sha256:" + hashlib.sha256(b"caseledger-data-key-fingerprint|" + data_key).hexdigest()


class SubjectKeys:
    """Data keys per subject in the ledger's database, wrapped by the KEK, with a short-lived cache."""

    def __init__(self, recorder: Any, kek: KeyEncryptionKey, *, cache_seconds: float = 5.0):
        self.kek = kek
        self.sql = SqlAccess(recorder, KEY_TABLES)
        self.cache_seconds = cache_seconds
        # subject -> (data key or None once destroyed, cached until (monotonic), its cipher object)
        self._cache: dict[str, tuple[bytes | None, float, AESGCM | None]] = {}
        blob = "BYTEA" if self.sql.pg else "BLOB"
        with self.sql.schema_transaction() as c:
            c.execute(f"CREATE TABLE IF NOT EXISTS {{keys}} (subject TEXT PRIMARY KEY, kek_id TEXT NOT NULL, "
                      f"wrapped {blob} NOT NULL, created_at TEXT NOT NULL)")
            c.execute("CREATE TABLE IF NOT EXISTS {tombstones} (subject TEXT PRIMARY KEY, destroyed_at TEXT NOT NULL, "
                      "disposition_id TEXT NOT NULL, key_fingerprint TEXT NOT NULL)")

    # -- reading ---------------------------------------------------------------------------
    def key_for_reading(self, subject: str) -> bytes | None:
        """The subject's data key, or None once it has been destroyed."""
        return self._for_reading(subject)[0]

    def cipher_for_reading(self, subject: str) -> AESGCM | None:
        """The subject's data key as a cipher object (made once per cached key), or None once destroyed."""
        return self._for_reading(subject)[2]

    def _for_reading(self, subject: str) -> tuple[bytes | None, float, AESGCM | None]:
        cached = self._cache.get(subject)
        if cached is not None and (cached[0] is None or cached[1] > time.monotonic()):
            return cached
        rows = self.sql.rows("SELECT kek_id, wrapped FROM {keys} WHERE subject = ?", (subject,))
        if rows:
            key = self._unwrap(subject, rows[0][0], bytes(rows[0][1]))
        elif self.is_destroyed(subject):
            key = None  # destruction is final, so this may be cached for good
        else:
            raise KeyUnavailable(f"no data key for subject {subject} and no record of its destruction")
        return self._remember(subject, key)

    def _remember(self, subject: str, key: bytes | None) -> tuple[bytes | None, float, AESGCM | None]:
        # The cipher object lives and dies with the cached key: building one costs about as much as
        # sealing a small event, and a destroyed key's object must not outlive the key's cache entry.
        entry = (key, time.monotonic() + self.cache_seconds, None if key is None else AESGCM(key))
        self._cache[subject] = entry
        return entry

    def is_destroyed(self, subject: str) -> bool:
        return bool(self.sql.rows("SELECT 1 FROM {tombstones} WHERE subject = ?", (subject,)))

    def destroyed_subjects(self) -> list[tuple[str, str, str, str]]:
        return self.sql.rows("SELECT subject, destroyed_at, disposition_id, key_fingerprint FROM {tombstones} "
                             "ORDER BY destroyed_at, subject")

    def fingerprint(self, subject: str) -> str | None:
        key = self.key_for_reading(subject)
        return key_fingerprint(key) if key is not None else None

    # -- writing ---------------------------------------------------------------------------
    def key_for_writing(self, subject: str) -> bytes:
        """The subject's data key, made and stored on first use; refused once destroyed."""
        return self._for_writing(subject)[0]

    def cipher_for_writing(self, subject: str) -> AESGCM:
        """The subject's data key as a cipher object (made once per cached key); refused once destroyed."""
        cached = self._cache.get(subject)  # _for_writing's cache test, written out: once per event sealed
        if cached is not None and cached[2] is not None and cached[1] > time.monotonic():
            return cached[2]
        return self._for_writing(subject)[2]

    def _for_writing(self, subject: str) -> tuple[bytes, float, AESGCM]:
        cached = self._cache.get(subject)
        if cached is not None and cached[0] is not None and cached[1] > time.monotonic():
            return cached
        select = "SELECT kek_id, wrapped FROM {keys} WHERE subject = ?"
        with self.sql.transaction() as c:  # one round of statements, whether the key exists or not
            rows = c.rows(select, (subject,))
            if not rows:
                if c.rows("SELECT 1 FROM {tombstones} WHERE subject = ?", (subject,)):
                    raise SubjectErased(subject)
                fresh = AESGCM.generate_key(bit_length=256)
                c.execute("INSERT INTO {keys} (subject, kek_id, wrapped, created_at) VALUES (?, ?, ?, ?) "
                          "ON CONFLICT (subject) DO NOTHING",
                          (subject, self.kek.key_id, self.kek.wrap(subject, fresh), _utc_now()))
                rows = c.rows(select, (subject,))  # whoever inserted first, everyone uses that key
        return self._remember(subject, self._unwrap(subject, rows[0][0], bytes(rows[0][1])))

    def destroy(self, subject: str, *, disposition_id: str, destroyed_at: str) -> str:
        """Destroy the subject's data key; returns its fingerprint. Idempotent once destroyed."""
        with self.sql.transaction() as c:
            done = c.rows("SELECT key_fingerprint FROM {tombstones} WHERE subject = ?", (subject,))
            if done:
                return done[0][0]
            rows = c.rows("SELECT kek_id, wrapped FROM {keys} WHERE subject = ?", (subject,))
            fingerprint = key_fingerprint(self._unwrap(subject, rows[0][0], bytes(rows[0][1]))) if rows else "none"
            if not self.sql.pg:
                c.execute("PRAGMA secure_delete = ON")  # overwrite the deleted cell with zeros
            c.execute("DELETE FROM {keys} WHERE subject = ?", (subject,))
            c.execute("INSERT INTO {tombstones} (subject, destroyed_at, disposition_id, key_fingerprint) "
                      "VALUES (?, ?, ?, ?)", (subject, destroyed_at, disposition_id, fingerprint))
        self._cache[subject] = (None, 0.0, None)
        self.compact()
        return fingerprint

    def compact(self, *, wait_seconds: float = 10.0) -> bool:
        """Rewrite storage so deleted key bytes do not linger in free pages or the write-ahead log.

        On PostgreSQL a deleted row version survives ``VACUUM FULL`` while any transaction that
        started before the delete is still open (it might still see the row), so we wait for those
        first — at most ``wait_seconds``. Returns False if one outlasted the wait; the retention sweep
        compacts again on its next run.
        """
        if not self.sql.pg:
            with self.sql.recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return True
        with self.sql.recorder.datastore.get_connection() as conn:
            since = conn.execute("SELECT now()").fetchone()
            since = since["now"] if isinstance(since, dict) else since[0]
            deadline = time.monotonic() + wait_seconds
            while True:
                older = conn.execute(
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                    "AND datname = current_database() AND backend_xmin IS NOT NULL AND xact_start < %s",
                    (since,)).fetchone()
                clear = (older["n"] if isinstance(older, dict) else older[0]) == 0
                if clear or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            conn.execute(self.sql.render("VACUUM FULL {keys}"))
        return clear

    def _unwrap(self, subject: str, kek_id: str, wrapped: bytes) -> bytes:
        if kek_id != self.kek.key_id:
            raise KeyUnavailable(f"the data key of subject {subject} was wrapped by key-encryption key {kek_id}; "
                                 f"the configured one is {self.kek.key_id}")
        try:
            return self.kek.unwrap(subject, wrapped)
        except InvalidTag:
            raise KeyUnavailable(f"the data key of subject {subject} does not unwrap (altered or wrong KEK)") from None


def _utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class SealingMapper(Mapper):
    """eventsourcing's Mapper, sealing each event's personal part with its subject's data key.

    ``unseal=False`` leaves personal parts sealed when decoding: read models never need them,
    so projections skip the key lookups and the decryption.
    """

    def __init__(self, transcoder: Transcoder, *, keys: SubjectKeys | None = None, unseal: bool = True, **kwargs: Any):
        super().__init__(transcoder, **kwargs)
        self.keys = keys
        self.unseal = unseal

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        personal = getattr(domain_event, "personal", None)
        if not (personal and personal.get("fields")):
            return super().to_stored_event(domain_event)
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        state["personal"] = self.seal(personal, originator_id, originator_version)
        stored_state = self.transcoder.encode(state)
        if self.compressor:
            stored_state = self.compressor.compress(stored_state)
        if self.cipher:
            stored_state = self.cipher.encrypt(stored_state)
        return StoredEvent(originator_id=originator_id, originator_version=originator_version,
                           topic=get_topic(type(domain_event)), state=stored_state)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        personal = vars(event).get("personal")
        if self.unseal and personal and "sealed" in personal:
            vars(event)["personal"] = self.unseal_personal(personal, event.originator_id, event.originator_version)
        return event

    def seal(self, personal: Mapping[str, Any], originator_id: Any, version: int) -> dict[str, Any]:
        if self.keys is None:
            raise KeyUnavailable("no data keys configured: personal data cannot be stored")
        subject = str(personal["subject"])
        fields = personal["fields"]
        if type(fields) is not dict:  # the JSON encoder takes dicts only
            fields = dict(fields)
        nonce = os.urandom(NONCE_BYTES)
        plaintext = _PLAINTEXT.encode(fields).encode()
        ciphertext = self.keys.cipher_for_writing(subject).encrypt(
            nonce, plaintext, _personal_aad(subject, originator_id, version))
        return {"subject": subject, "names": sorted(fields), "sealed": b2a_base64(nonce + ciphertext, newline=False).decode()}

    def unseal_personal(self, sealed: Mapping[str, Any], originator_id: Any, version: int) -> dict[str, Any]:
        subject = str(sealed["subject"])
        cipher = self.keys.cipher_for_reading(subject) if self.keys is not None else None
        if cipher is None:
            return {"subject": subject, "fields": {name: None for name in sealed["names"]}, "destroyed": True}
        blob = base64.b64decode(sealed["sealed"])
        try:
            plaintext = cipher.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:],
                                       _personal_aad(subject, originator_id, version))
        except InvalidTag:
            raise KeyUnavailable(f"the personal data of event {originator_id} v{version} does not decrypt "
                                 "(altered ciphertext or moved between events)") from None
        return {"subject": subject, "fields": json.loads(plaintext)}


def _personal_aad(subject: str, originator_id: Any, version: int) -> bytes:
    return f"caseledger-personal-v1|{subject}|{originator_id}|{version}".encode()
