"""Console sessions: an API token exchanged for a server-side session row, named by a cookie.

The cookie holds 256 random bits; the database keeps only their SHA-256 (like API tokens), with the
token's id, the caller it speaks for, the session's CSRF token and its expiry. A session ends at
sign-out, after :data:`IDLE` without a request, after :data:`LIFETIME` in any case, and as soon as
its token is revoked or expires (checked on every request against the token's own record).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from ledger.errors import NotFound
from ledger.sqlaccess import SqlAccess
from services.tokens import Caller

TABLE = "console_sessions"
#: A session unused this long is over (a console left open on a desk).
IDLE = timedelta(minutes=30)
#: No session lasts longer than a working day, however busy.
LIFETIME = timedelta(hours=10)

_CREATE = ("CREATE TABLE IF NOT EXISTS {sessions} (session_hash TEXT PRIMARY KEY, token_id TEXT NOT NULL, "
           "actor_id TEXT NOT NULL, role TEXT NOT NULL, team TEXT, csrf TEXT NOT NULL, created_at TEXT NOT NULL, "
           "last_seen TEXT NOT NULL, ended_at TEXT)")
_COLUMNS = "token_id, actor_id, role, team, csrf, created_at, last_seen, ended_at"


@dataclass(frozen=True)
class Session:
    key_hash: str
    caller: Caller
    csrf: str
    created_at: datetime
    last_seen: datetime


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class SessionStore:
    """Sessions of one ledger's console. ``now``: the wall clock that judges expiry."""

    def __init__(self, ledger: Any, now: Callable[[], datetime], *, idle: timedelta = IDLE,
                 lifetime: timedelta = LIFETIME):
        self.ledger, self.now, self.idle, self.lifetime = ledger, now, idle, lifetime
        self.sql = SqlAccess(ledger.recorder, {"sessions": TABLE})
        with self.sql.schema_transaction() as cursor:
            cursor.execute(_CREATE)

    def start(self, caller: Caller) -> tuple[str, Session]:
        """A new session for ``caller``: (the cookie's secret, the session)."""
        secret, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), self.now()
        self.sql.execute("INSERT INTO {sessions} (session_hash, token_id, actor_id, role, team, csrf, created_at, "
                         "last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (_hash(secret), str(caller.token_id), caller.actor_id, caller.role, caller.team, csrf,
                          now.isoformat(), now.isoformat()))
        return secret, Session(_hash(secret), caller, csrf, now, now)

    def find(self, secret: str | None) -> tuple[Session | None, str | None]:
        """(the live session the cookie names, None) or (None, why it is not live); (None, None): no cookie."""
        if not secret:
            return None, None
        key = _hash(secret)
        rows = self.sql.rows(f"SELECT {_COLUMNS} FROM {{sessions}} WHERE session_hash = ?", (key,))
        if not rows:
            return None, "unknown session"
        token_id, actor, role, team, csrf, created, seen, ended = rows[0]
        now, created_at, last_seen = self.now(), datetime.fromisoformat(created), datetime.fromisoformat(seen)
        if ended:
            return None, "signed out"
        if now - last_seen > self.idle or now - created_at > self.lifetime:
            self.end(secret)
            return None, "your session has expired: sign in again"
        if not self._token_valid(token_id, now):
            self.end(secret)
            return None, "the token behind your session was revoked or has expired"
        self.sql.execute("UPDATE {sessions} SET last_seen = ? WHERE session_hash = ?", (now.isoformat(), key))
        return Session(key, Caller(actor, role, team, UUID(token_id)), csrf, created_at, now), None

    def _token_valid(self, token_id: str, now: datetime) -> bool:
        try:
            record = self.ledger.get("api_token", token_id)
        except NotFound:
            return False
        expires = datetime.fromisoformat(record.expires_at) if record.expires_at else None
        return record.revoked_at is None and (expires is None or now < expires)

    def end(self, secret: str) -> None:
        self.sql.execute("UPDATE {sessions} SET ended_at = ? WHERE session_hash = ? AND ended_at IS NULL",
                         (self.now().isoformat(), _hash(secret)))
