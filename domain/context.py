"""Who does what, when and why: the context every command carries into its event's metadata."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.errors import InvalidValue


@dataclass(frozen=True)
class Context:
    """The circumstances of one command.

    ``occurred_at`` is business time (when it happened in the world), passed in by the caller;
    the domain never reads a clock. The actor comes from authentication, never from a request
    body.
    """

    actor_id: str
    actor_role: str
    occurred_at: datetime
    request_id: str
    reason: str | None = None
    #: The id a client sent for its request (X-Request-Id), kept beside ours, never instead of it:
    #: ``request_id`` is always made by the server, so no client can give its event another's id.
    client_request_id: str | None = None
    #: How the command came in when not over HTTP: ``via`` ("cli"), the operating-system user and
    #: host that gave it (a four-eyes step whose two people share one OS user is a finding).
    via: str | None = None
    os_user: str | None = None
    host: str | None = None
    #: Set only by a historical import: the business time is the original one, in the past, and
    #: ``imported`` says from where (``file sha256``), so nobody mistakes it for a live event.
    imported: str | None = None
    #: Only with ``imported``: who did it in the system the history comes from (its name for the
    #: person). The recorded actor stays the importer; rules about *people* (a second person must
    #: review) compare these names, so a migrated review by someone else is still one.
    performed_by: str | None = None

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None or self.occurred_at.utcoffset() is None:
            raise InvalidValue("occurred_at must carry a time zone", rule="time.aware")
        if not self.actor_id or not self.actor_role:
            raise InvalidValue("an actor id and role are required", rule="actor.required")
        if self.performed_by is not None and self.imported is None:
            raise InvalidValue("performed_by names a person of an imported history only", rule="actor.performed_by")

    @property
    def person(self) -> str:
        """Who did it: the actor, or for an imported event the person the history names."""
        return self.performed_by or self.actor_id

    def meta(self, policy_ref: str) -> dict[str, str | None]:
        """The metadata stored on every event: plain JSON values, readable without the code."""
        return {
            "actor_id": self.actor_id,
            "actor_role": self.actor_role,
            "request_id": self.request_id,
            "occurred_at": self.occurred_at.isoformat(),
            "policy": policy_ref,
            "reason": self.reason,
            # Only when set: events written before these fields existed keep their exact shape.
            **{name: value for name, value in (("client_request_id", self.client_request_id), ("via", self.via),
                                               ("os_user", self.os_user), ("host", self.host),
                                               ("imported", self.imported),
                                               ("performed_by", self.performed_by)) if value is not None},
        }


def person(meta: dict[str, object]) -> str:
    """Who did what an event records (see ``Context.person``), from its metadata."""
    return str(meta.get("performed_by") or meta["actor_id"])


def personal(subject_id: str, **fields: object) -> dict[str, object]:
    """Wrap personal data of one data subject (a customer) in the shape events store it in.

    Personal data is kept apart from the rest of an event so that it can be encrypted with the
    subject's own key and destroyed by destroying that key, while the facts around it survive.
    Empty fields are dropped (data minimisation, 004 §2.2.1).
    """
    return {"subject": str(subject_id), "fields": {k: v for k, v in fields.items() if v not in (None, "")}}
