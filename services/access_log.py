"""The security audit log: every unmasked read of personal data, stored as events in the ledger.

One :class:`domain.access.DataAccess` aggregate per data subject per request, saved in one
transaction with the others of the same request, so the records are covered by the transparency
log like any other event. Listing reads the notification log filtered by the record's topic.
"""

from __future__ import annotations

import uuid
from typing import Any, Iterator, Mapping

from eventsourcing.utils import get_topic

from domain.access import DataAccess
from domain.context import Context
from domain.permissions import AccessPolicy

_TOPIC = get_topic(DataAccess.PersonalDataDisclosed)
_PAGE = 500


class AccessLog:
    def __init__(self, ledger: Any, access: AccessPolicy):
        self.ledger = ledger
        self.access = access

    def record(self, ctx: Context, disclosed: Mapping[str, set[str]], resource: str) -> list[DataAccess]:
        """Record that ``ctx``'s actor read these subjects' fields unmasked (``ctx.reason`` says why)."""
        records = [DataAccess.disclose(id=uuid.uuid4(), subject=subject, fields=fields, resource=resource,
                                       policy_ref=self.access.ref, ctx=ctx)
                   for subject, fields in sorted(disclosed.items()) if fields]
        if records:
            self.ledger.save(*records)
        return records

    def entries(self, *, after: int = 0, limit: int = 100, subject: str | None = None,
                actor: str | None = None) -> tuple[list[dict[str, Any]], int | None]:
        """Up to ``limit`` records after log position ``after`` (optionally of one subject or actor),
        and the position to continue from (None at the end of the log)."""
        found: list[dict[str, Any]] = []
        last = after
        for position, event in self._scan(after):
            last = position
            entry = as_entry(position, event)
            if (subject is None or entry["subject"] == subject) and (actor is None or entry["actor_id"] == actor):
                found.append(entry)
                if len(found) == limit:
                    return found, last
        return found, None

    def _scan(self, after: int) -> Iterator[tuple[int, Any]]:
        while True:
            page = self.ledger.recorder.select_notifications(start=after + 1, limit=_PAGE, topics=[_TOPIC])
            if not page:
                return
            for notification in page:
                yield notification.id, self.ledger.mapper.to_domain_event(notification)
            after = page[-1].id


def as_entry(position: int, event: Any) -> dict[str, Any]:
    meta = event.meta
    return {"position": position, "id": str(event.originator_id), "subject": event.subject,
            "fields": list(event.fields), "resource": event.resource, "reason": meta.get("reason"),
            "actor_id": meta.get("actor_id"), "actor_role": meta.get("actor_role"),
            "request_id": meta.get("request_id"), "occurred_at": meta.get("occurred_at")}
