"""Auditor replay: a case's timeline, its state as of any moment, and what changed between two.

Everything here is read from the event store itself, never from a read model or a snapshot:
the timeline is the stream's events in order, and a past state is the aggregate rebuilt by
``repository.get(id, version=v)`` — i.e. by folding the stream's events up to version ``v``.
A point in time is either a business time (``occurred_at`` of the events, what happened in the
world) or a log position (notification id, what the ledger knew).

Log positions of a stream's events are read from the events table directly (``rowid`` on
SQLite, ``notification_id`` on PostgreSQL), since domain events do not carry them.

Personal data is not shown: a timeline entry lists which personal fields an event carried
(``personal_fields``), never their values, so the replay stays valid after crypto-shredding.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.complaint import Complaint
from domain.feedback import Feedback, SurveyResponse
from domain.interaction import Interaction
from domain.ticket import Ticket
from ledger.application import KINDS
from ledger.errors import InvalidRequest, NotFound
from ledger.records import event_record, plain
from projections.store import ViewDatabase
from projections.timeutil import parse

_KIND_OF_CLASS = {cls.__name__: kind for kind, cls in KINDS.items()}
#: Creation events of the cases that belong to a customer (each carries ``customer_id``).
_CUSTOMER_CASE_TOPICS = [get_topic(c) for c in (Interaction.Received, Ticket.Received, Complaint.Accepted,
                                                Feedback.Submitted, SurveyResponse.Answered)]


@dataclass(frozen=True)
class Point:
    """A moment to replay to: a business time or a log position (exactly one of them)."""

    as_of: datetime | None = None
    position: int | None = None

    @classmethod
    def parse(cls, text: str) -> Point:
        """``"1234"`` is a log position, anything else must be an ISO time with a time zone."""
        text = text.strip()
        if text.isdigit():
            return cls(position=int(text))
        try:
            return cls(as_of=parse(text))
        except ValueError:
            raise InvalidRequest(f"{text!r} is neither a log position nor an ISO time with a time zone") from None

    def describe(self) -> str:
        return f"position {self.position}" if self.position is not None else f"{self.as_of.isoformat()}"


class Replay:
    def __init__(self, ledger: Any, db: ViewDatabase | None = None):
        self.ledger = ledger
        self.db = db or ViewDatabase.for_ledger(ledger)

    # -- streams -------------------------------------------------------------------------------------
    def _positions(self, aggregate_id: UUID) -> dict[int, int]:
        table = self.ledger.recorder.events_table_name
        if self.db.postgres:
            sql, key = f"SELECT originator_version, notification_id FROM {table} WHERE originator_id = ?", aggregate_id
        else:
            sql, key = f"SELECT originator_version, rowid FROM {table} WHERE originator_id = ?", aggregate_id.hex
        with self.db.reading() as cur:
            return {int(v): int(p) for v, p in cur.execute(sql, (key,)).fetchall()}

    def stream(self, kind: str, aggregate_id: UUID | str) -> list[tuple[int, Any]]:
        """(position, event) of one aggregate, oldest first; NotFound for an unknown id or kind."""
        current = self.ledger.get(kind, aggregate_id)
        positions = self._positions(current.id)
        return [(positions.get(e.originator_version, 0), e) for e in self.ledger.events.get(current.id)]

    def related(self, customer_id: UUID) -> list[tuple[str, UUID]]:
        """The customer's interactions, tickets, complaints, feedback and surveys (from their creation events)."""
        found, after = [], 0
        while True:
            page = self.ledger.recorder.select_notifications(start=after + 1, limit=1000, topics=_CUSTOMER_CASE_TOPICS)
            if not page:
                return found
            for notification in page:
                event = self.ledger.mapper.to_domain_event(notification)
                if getattr(event, "customer_id", None) == str(customer_id):
                    found.append((_kind(event), event.originator_id))
            after = page[-1].id

    # -- timeline ------------------------------------------------------------------------------------
    def timeline(self, kind: str, aggregate_id: UUID | str) -> list[dict[str, Any]]:
        """Every event in log order with actor, role, business time and policy version. For a
        customer, also the events of their interactions, tickets, complaints, feedback and surveys."""
        entries = self.stream(kind, aggregate_id)
        if kind == "customer":
            for other_kind, other_id in self.related(UUID(str(aggregate_id))):
                entries += self.stream(other_kind, other_id)
        entries.sort(key=lambda pair: pair[0])
        return [entry(position, event) for position, event in entries]

    # -- state as of ---------------------------------------------------------------------------------
    def version_at(self, kind: str, aggregate_id: UUID | str, point: Point) -> int:
        version = 0
        for position, event in self.stream(kind, aggregate_id):
            if point.position is not None and position > point.position:
                break
            if point.as_of is not None and parse(event.meta["occurred_at"]) > point.as_of:
                break
            version = event.originator_version
        if not version:
            raise NotFound(f"{kind} {aggregate_id} did not exist yet at {point.describe()}")
        return version

    def state(self, kind: str, aggregate_id: UUID | str, point: Point) -> dict[str, Any]:
        version = self.version_at(kind, aggregate_id, point)
        return plain_state(self.ledger.get(kind, aggregate_id, version=version))

    def diff(self, kind: str, aggregate_id: UUID | str, before: Point, after: Point) -> dict[str, Any]:
        """Attributes whose value differs between two points (``from``/``to``), plus both versions."""
        old = self.state(kind, aggregate_id, before)
        new = self.state(kind, aggregate_id, after)
        ignore = {"version", "modified_on"}
        changed = {key: {"from": old.get(key), "to": new.get(key)} for key in sorted(set(old) | set(new))
                   if key not in ignore and old.get(key) != new.get(key)}
        return {"from_version": old["version"], "to_version": new["version"], "changed": changed}


def entry(position: int, event: Any) -> dict[str, Any]:
    record = event_record(event, position)
    meta = record["meta"]
    personal = record.pop("personal") or {}
    return {"position": position, "kind": _kind(event), "aggregate_id": record["aggregate_id"],
            "version": record["version"], "type": record["type"], "occurred_at": meta.get("occurred_at"),
            "recorded_at": record["recorded_at"], "actor_id": meta.get("actor_id"),
            "actor_role": meta.get("actor_role"), "policy": meta.get("policy"), "reason": meta.get("reason"),
            "data": {k: v for k, v in record["data"].items()},
            "personal_fields": sorted((personal.get("fields") or {}).keys())}


def plain_state(aggregate: Any) -> dict[str, Any]:
    data = {k: plain(v) for k, v in vars(aggregate).items() if not k.startswith("_")}
    data.update(id=str(aggregate.id), version=aggregate.version, created_on=aggregate.created_on.isoformat(),
                modified_on=aggregate.modified_on.isoformat())
    return data


def _kind(event: Any) -> str:
    return _KIND_OF_CLASS.get(type(event).__qualname__.split(".")[0], "unknown")
