"""Idempotency keys: a retried POST gets the first attempt's response instead of a second write.

A table beside the events (``idempotency_keys``, both backends) holds one row per (caller, key):
the request's fingerprint, and once the request finished, its status, headers and body.

- **Claim by unique constraint.** The first request with a key inserts the row (``ON CONFLICT DO
  NOTHING``, primary key ``(caller, key)``) with a random claim id and then runs; everyone else
  finds the row. The database decides the race, so this holds across threads, processes and
  hosts.
- **Same key, same request** (fingerprint: method, path, query, content type and body): the stored
  response is returned. While the first request is still running, later ones *wait* for it (up
  to ``wait_seconds``, polling) and then return its response; if it is still running after that,
  they get ``pending`` (the API answers 409 with Retry-After).
- **Same key, different request**: ``mismatch`` (the API answers 422).
- A response with a 5xx status is not kept: the claim is released, so the client may retry.
- Keys are kept for ``ttl`` (default 24 hours) and then forgotten. A claim whose process died
  before it finished stays ``pending`` until then — never re-run, since the write may have
  happened.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ledger.sqlaccess import SqlAccess

TABLE = "idempotency_keys"
TTL = timedelta(hours=24)


@dataclass(frozen=True)
class Outcome:
    """What to do with a request carrying a key: ``run`` it (we hold claim ``claim``), ``replay``
    the stored response, or refuse it (``mismatch``, ``pending``)."""

    kind: str
    claim: str = ""
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class IdempotencyStore:
    def __init__(self, ledger: Any, *, ttl: timedelta = TTL, wait_seconds: float = 10.0):
        self.sql = SqlAccess(ledger.recorder, {"keys": TABLE})
        self.ttl = ttl
        self.wait_seconds = wait_seconds
        body = "BYTEA" if self.sql.pg else "BLOB"
        with self.sql.schema_transaction() as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {{keys}} (caller TEXT NOT NULL, key TEXT NOT NULL, "
                        f"fingerprint TEXT NOT NULL, claim TEXT NOT NULL, created_at TEXT NOT NULL, status INTEGER, "
                        f"headers TEXT, body {body}, PRIMARY KEY (caller, key))")
            cur.execute(f"CREATE INDEX IF NOT EXISTS ix_{TABLE}_created_at ON {{keys}} (created_at)")

    def begin(self, caller: str, key: str, fingerprint: str) -> Outcome:
        """Claim the key, or wait for whoever holds it and return their response."""
        claim = secrets.token_hex(16)
        deadline = time.monotonic() + self.wait_seconds
        pause, outcome = 0.01, Outcome("gone")
        while True:
            if outcome.kind == "gone":  # first try, or the holder failed and released it: claim it
                self._claim(caller, key, fingerprint, claim)
            outcome = self._look(caller, key, fingerprint, claim)
            if outcome.kind not in ("pending", "gone") or time.monotonic() >= deadline:
                return Outcome("pending") if outcome.kind == "gone" else outcome
            time.sleep(pause)
            pause = min(pause * 2, 0.2)

    def _claim(self, caller: str, key: str, fingerprint: str, claim: str) -> None:
        now = datetime.now(timezone.utc)
        with self.sql.transaction() as cur:
            cur.execute("DELETE FROM {keys} WHERE created_at < ?", (_stamp(now - self.ttl),))
            cur.execute("INSERT INTO {keys} (caller, key, fingerprint, claim, created_at) VALUES (?, ?, ?, ?, ?) "
                        "ON CONFLICT (caller, key) DO NOTHING", (caller, key, fingerprint, claim, _stamp(now)))

    def _look(self, caller: str, key: str, fingerprint: str, claim: str) -> Outcome:
        rows = self.sql.rows("SELECT fingerprint, claim, status, headers, body FROM {keys} "
                             "WHERE caller = ? AND key = ?",
                             (caller, key))
        if not rows:
            return Outcome("gone")
        stored_fingerprint, holder, status, headers, body = rows[0]
        if stored_fingerprint != fingerprint:
            return Outcome("mismatch")
        if holder == claim:
            return Outcome("run", claim=claim)
        if status is None:
            return Outcome("pending")
        return Outcome("replay", status=int(status), headers=json.loads(headers or "{}"), body=bytes(body or b""))

    def complete(self, caller: str, key: str, claim: str, status: int, headers: dict[str, str], body: bytes) -> None:
        """Keep the response of the request holding ``claim`` (or release the key after a 5xx)."""
        if status >= 500:
            self.release(caller, key, claim)
            return
        self.sql.execute("UPDATE {keys} SET status = ?, headers = ?, body = ? "
                         "WHERE caller = ? AND key = ? AND claim = ?",
                         (status, json.dumps(headers), body, caller, key, claim))

    def release(self, caller: str, key: str, claim: str) -> None:
        self.sql.execute("DELETE FROM {keys} WHERE caller = ? AND key = ? AND claim = ?", (caller, key, claim))


def fingerprint(*parts: str | bytes) -> str:
    """SHA-256 over the length-prefixed parts of a request (so no two requests collide by concatenation)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big") + data)
    return base64.b64encode(digest.digest()).decode("ascii")
