"""Access to the ledger itself: API credentials and the security audit log of personal-data reads.

- :class:`ApiToken` is a caller's bearer credential. Its id is derived (by the ledger) from the
  SHA-256 of the secret, so the secret is never stored anywhere and authenticating is a lookup
  by id. Issue, expiry and revocation are events: who issued or revoked a token, when and why
  is part of the tamper-evident log like every case change.
- :class:`DataAccess` records one disclosure of unmasked personal data (003 §6.3: security audit
  logs of who accessed what): who read whose data (the data subject), which fields, why, and in
  which request. Masked reads are not recorded; they disclose nothing.

Neither holds personal data: a subject is named by its customer id, fields by their names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Collection
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.context import Context
from domain.errors import InvalidValue, require

#: The longest stated reason for reading personal data unmasked (it is stored on every record).
MAX_REASON = 500


class ApiToken(Aggregate):
    @event("Issued")
    def __init__(self, id: UUID, holder: str, role: str, team: str | None, expires_at: str | None,
                 meta: dict[str, Any]):
        self.holder = holder
        self.role = role
        self.team = team
        self.expires_at = expires_at
        self.issued_at = meta["occurred_at"]
        self.revoked_at: str | None = None

    @classmethod
    def issue(cls, *, id: UUID, holder: str, role: str, team: str | None, expires_at: datetime | None,
              roles: Collection[str], policy_ref: str, ctx: Context) -> ApiToken:
        """A credential for ``holder`` acting as ``role`` (one of ``roles``, the access policy's)."""
        if role not in roles:
            raise InvalidValue(f"unknown role {role!r}; roles are {', '.join(sorted(roles))}", rule="token.role")
        if not holder:
            raise InvalidValue("a token needs the actor it speaks for", rule="token.holder")
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise InvalidValue("an expiry must carry a time zone", rule="time.aware")
            if expires_at <= ctx.occurred_at:
                raise InvalidValue("a token cannot expire before it is issued", rule="token.expiry")
        return cls(id=id, holder=holder, role=role, team=team or None,
                   expires_at=expires_at.isoformat() if expires_at else None, meta=ctx.meta(policy_ref))

    def revoke(self, *, policy_ref: str, ctx: Context) -> None:
        require(self.revoked_at is None, f"the token was already revoked at {self.revoked_at}",
                rule="token.revoke_once")
        self._revoked(ctx.meta(policy_ref))

    @event("Revoked")
    def _revoked(self, meta: dict[str, Any]) -> None:
        self.revoked_at = meta["occurred_at"]

    def is_active(self, at: datetime) -> bool:
        """Neither revoked nor expired at ``at`` (the caller's clock: wall time, not business time)."""
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or at < datetime.fromisoformat(self.expires_at)

    @property
    def state(self) -> str:
        return "revoked" if self.revoked_at else "issued"


class DataAccess(Aggregate):
    """One disclosure of one data subject's personal fields, unmasked, to one caller."""

    @event("PersonalDataDisclosed")
    def __init__(self, id: UUID, subject: str, fields: list[str], resource: str, meta: dict[str, Any]):
        self.subject = subject
        self.fields = fields
        self.resource = resource

    @classmethod
    def disclose(cls, *, id: UUID, subject: str, fields: Collection[str], resource: str, policy_ref: str,
                 ctx: Context) -> DataAccess:
        """Record the disclosure; the stated reason (``ctx.reason``) is required."""
        reason = (ctx.reason or "").strip()
        if not reason:
            raise InvalidValue("reading personal data unmasked needs a stated reason", rule="access.reason")
        if len(reason) > MAX_REASON:
            raise InvalidValue(f"a reason has at most {MAX_REASON} characters", rule="access.reason")
        if not subject or not fields:
            raise InvalidValue("a disclosure names its data subject and fields", rule="access.subject")
        return cls(id=id, subject=str(subject), fields=sorted(set(fields)), resource=resource,
                   meta=ctx.meta(policy_ref))
