"""Retention: when each record reaches the end of its retention period, and whether a data subject's
personal data may be destroyed.

A *record* is one case (interaction, ticket, complaint, feedback, survey answer, customer profile)
of one record class (policy data: ``record_classes``). Its period starts at the record class's
trigger milestone (e.g. ``ticket.archived``) and lasts ``period_years``; the record is *due* at
the start of the day after the anniversary (the whole anniversary day still counts, so a minimum
period is never cut short), moved to the next working day when the class says ``next_working_day``.

Personal data is encrypted with one key per data subject, so it is destroyed per subject: a
subject is *disposable* at time T when every one of their records is due at T and no legal hold
covers any of them. A record without its trigger yet (an open case) is never due.

A record keeps the policy version of its case (``policy_ref``): a later policy version applies to
new records only, never recomputes old ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Iterable
from zoneinfo import ZoneInfo

from domain.calendar import BusinessCalendar
from domain.policy import Policy, RecordClass

def record_class_for(policy: Policy, kind: str) -> RecordClass | None:
    """The record class of a kind of case: the class whose trigger milestone starts with ``<kind>.``."""
    for record_class in policy.record_classes.values():
        if any(trigger.split(".", 1)[0] == kind for trigger in record_class.triggers):
            return record_class
    return None


def milestone(kind: str, event_name: str) -> str:
    """``Ticket.Archived`` on a ticket → ``ticket.archived`` (CamelCase becomes snake_case)."""
    snake = "".join("_" + c.lower() if c.isupper() else c for c in event_name).lstrip("_")
    return f"{kind}.{snake}"


def due_at(record_class: RecordClass, trigger_at: datetime, calendar: BusinessCalendar, tz: ZoneInfo) -> datetime:
    """The moment a record of ``record_class`` whose period started at ``trigger_at`` becomes due."""
    start = trigger_at.astimezone(tz).date()
    anniversary = _add_years(start, record_class.period_years)
    day = anniversary + timedelta(days=1)
    if record_class.due_on == "next_working_day":
        for _ in range(60):
            if calendar.is_working_day(day):
                break
            day += timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=tz)


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year that has none: the period ends on 28 February
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True)
class RecordDue:
    """One record of a subject, as the retention read model sees it."""

    kind: str
    record_id: str
    record_class: str
    clause: str
    due_at: datetime | None  # None: the trigger milestone has not happened yet
    held_by: tuple[str, ...] = ()

    def describe(self) -> dict[str, object]:
        return {"kind": self.kind, "id": self.record_id, "record_class": self.record_class, "clause": self.clause,
                "due_at": self.due_at.isoformat() if self.due_at else None}


@dataclass(frozen=True)
class Assessment:
    subject: str
    as_of: datetime
    records: tuple[RecordDue, ...]
    blockers: tuple[str, ...]

    @property
    def disposable(self) -> bool:
        return not self.blockers


def assess(subject: str, records: Iterable[RecordDue], subject_holds: Iterable[str], as_of: datetime) -> Assessment:
    """May ``subject``'s personal data be destroyed at ``as_of``? Lists every reason why not."""
    records = tuple(sorted(records, key=lambda r: (r.kind, r.record_id)))
    blockers: list[str] = [f"legal hold {hold} covers the customer" for hold in sorted(subject_holds)]
    if not records:
        blockers.append("no records of this subject are known")
    for r in records:
        if r.held_by:
            blockers.append(f"{r.kind} {r.record_id} is under legal hold {', '.join(sorted(r.held_by))}")
        if r.due_at is None:
            blockers.append(f"{r.kind} {r.record_id} ({r.record_class}) has not reached its retention trigger")
        elif r.due_at > as_of:
            blockers.append(f"{r.kind} {r.record_id} ({r.record_class}, {r.clause}) is kept until "
                            f"{r.due_at.isoformat()}")
    return Assessment(subject, as_of, records, tuple(blockers))
