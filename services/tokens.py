"""Bearer tokens for API callers, kept in the ledger as :class:`domain.access.ApiToken` aggregates.

A token is ``cl_`` + 256 random bits. Only its SHA-256 is ever used, and only to derive the
aggregate id (``uuid5(TOKEN_NAMESPACE, sha256)``), so the secret is stored nowhere and a lookup
is one repository ``get``. A plain SHA-256 is enough for secrets of this entropy (no password to
guess; a slow hash would only slow every request down).

Issue, expiry and revocation are events (who, when, why). Each token speaks for one actor in one
role (and team); the actor on every event comes from here, never from a request body.

Lookups of valid tokens are cached per process for ``cache_seconds`` (default
:data:`CACHE_SECONDS`, at most :data:`CACHE_SIZE` tokens). Expiry is checked on every request,
cached or not; a revocation takes effect at once in the process that revoked the token and within
``cache_seconds`` in every other process (e.g. after ``caseledger tokens revoke``). Unknown tokens
are never cached, so a new token works at once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator
from uuid import UUID

from cachetools import TTLCache
from eventsourcing.utils import get_topic

from domain.access import ApiToken
from domain.context import Context
from domain.permissions import AccessPolicy
from ledger.errors import NotFound

TOKEN_NAMESPACE = UUID("0b0c5a52-3a8e-4f8f-8d2c-6a1d4c3e9b17")
CACHE_SECONDS = 5.0
CACHE_SIZE = 10_000
_NAME = re.compile(r"^[A-Za-z0-9_.@:-]{1,64}$")


@dataclass(frozen=True)
class Caller:
    actor_id: str
    role: str
    team: str | None = None
    token_id: UUID | None = None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_id(token: str) -> UUID:
    return uuid.uuid5(TOKEN_NAMESPACE, token_hash(token))


def wall_clock() -> datetime:
    return datetime.now(timezone.utc)


class TokenService:
    """Issue, revoke, list and check API tokens of one ledger."""

    def __init__(self, ledger: Any, access: AccessPolicy | None = None, *, now: Callable[[], datetime] = wall_clock,
                 cache_seconds: float = CACHE_SECONDS, cache_timer: Callable[[], float] = time.monotonic):
        self.ledger = ledger
        self.access = access or AccessPolicy.load()
        self.now = now
        self._cache: TTLCache = TTLCache(maxsize=CACHE_SIZE, ttl=cache_seconds, timer=cache_timer)
        self._lock = threading.Lock()

    # -- checking -------------------------------------------------------------------------------
    def caller(self, token: str) -> Caller | None:
        """The caller a token speaks for, or None if it is unknown, expired or revoked."""
        tid = token_id(token)
        with self._lock:
            cached = self._cache.get(tid)
        if cached is None:
            record = self._find(tid)
            if record is None or record.revoked_at is not None:
                return None
            expires = datetime.fromisoformat(record.expires_at) if record.expires_at else None
            cached = (Caller(record.holder, record.role, record.team, tid), expires)
            with self._lock:
                self._cache[tid] = cached
        caller, expires = cached
        return caller if expires is None or self.now() < expires else None

    def _find(self, tid: UUID) -> ApiToken | None:
        try:
            return self.ledger.get("api_token", tid)
        except NotFound:
            return None

    # -- managing -------------------------------------------------------------------------------
    def issue(self, holder: str, role: str, team: str | None = None, *, expires_at: datetime | None = None,
              ctx: Context) -> tuple[str, ApiToken]:
        """A new token for ``holder``; returns the secret (shown once) and the stored record."""
        for name in (holder, team or "team"):
            if not _NAME.match(name):
                raise ValueError(f"{name!r}: use letters, digits and . _ @ : - (at most 64)")
        secret = "cl_" + secrets.token_urlsafe(32)
        record = ApiToken.issue(id=token_id(secret), holder=holder, role=role, team=team, expires_at=expires_at,
                                roles=self.access.roles, policy_ref=self.access.ref, ctx=ctx)
        self.ledger.save(record)
        return secret, record

    def revoke(self, tid: UUID | str, ctx: Context) -> ApiToken:
        record = self.ledger.get("api_token", tid)
        record.revoke(policy_ref=self.access.ref, ctx=ctx)
        self.ledger.save(record)
        with self._lock:
            self._cache.pop(record.id, None)
        return record

    def tokens(self) -> Iterator[ApiToken]:
        """Every token ever issued, oldest first, in its current state."""
        topic, after = get_topic(ApiToken.Issued), 0
        while True:
            page = self.ledger.recorder.select_notifications(start=after + 1, limit=500, topics=[topic])
            if not page:
                return
            for notification in page:
                yield self.ledger.get("api_token", notification.originator_id)
            after = page[-1].id


def system_context(actor: str, role: str = "administrator", reason: str | None = None) -> Context:
    """Context of a command given outside HTTP (CLI, demo): wall time, a fresh request id."""
    return Context(actor_id=actor, actor_role=role, occurred_at=wall_clock(),
                   request_id=f"cli-{uuid.uuid4().hex[:12]}", reason=reason)
