"""Retention read model: every record with its class, trigger, due date; legal holds; destructions.

One row per case (customer profile, interaction, ticket, complaint, feedback, survey answer, incident) with
the record class its policy gives that kind, when its retention trigger happened and when it is
due (``domain.retention.due_at``), with the calendar data that moved it to a working day
(``calendar_ref``; NULL for a class that does not move its due date, or before its trigger). Holds and destroyed subjects are tables of their own, joined
when queried (``services.retention``), so placing a hold never rewrites record rows.

Like every read model it holds ids and facts only, never personal data.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from domain.calendar import BusinessCalendar, calendar_ref
from domain.policy import RecordClass
from domain.retention import due_at, milestone, record_class_for
from projections.rowcache import RowCache
from projections.runtime import Projection
from projections.store import Table
from projections.timeutil import occurred, occurred_stamp, parse, stamp

RECORD_TABLE = Table(
    "rm_retention_records",
    columns=(("kind", "TEXT"), ("record_id", "TEXT"), ("subject", "TEXT"), ("record_class", "TEXT"),
             ("clause", "TEXT"), ("policy_ref", "TEXT"), ("created_at", "TEXT"), ("trigger_milestone", "TEXT"),
             ("trigger_at", "TEXT"), ("due_at", "TEXT"), ("seq", "BIGINT"), ("calendar_ref", "TEXT")),
    key=("kind", "record_id"),
    indexes=(("subject",), ("due_at",)),
)
_RECORDS = RECORD_TABLE.name
HOLD_TABLE = Table(
    "rm_legal_holds",
    columns=(("hold_id", "TEXT"), ("target_kind", "TEXT"), ("target_id", "TEXT"), ("subject", "TEXT"),
             ("authority", "TEXT"), ("reason", "TEXT"), ("placed_by", "TEXT"), ("placed_at", "TEXT"),
             ("released_by", "TEXT"), ("released_at", "TEXT"), ("status", "TEXT"), ("seq", "BIGINT")),
    key=("hold_id",),
    indexes=(("subject",),),
)
DESTROYED_TABLE = Table(
    "rm_destroyed_subjects",
    columns=(("subject", "TEXT"), ("disposition_id", "TEXT"), ("destroyed_at", "TEXT"), ("key_fingerprint", "TEXT"),
             ("tree_size", "BIGINT"), ("proposer", "TEXT"), ("approver", "TEXT"), ("executor", "TEXT")),
    key=("subject",),
)

DISPOSITION_TABLE = Table(
    "rm_dispositions",
    columns=(("disposition_id", "TEXT"), ("subject", "TEXT"), ("status", "TEXT"), ("proposer", "TEXT"),
             ("approver", "TEXT"), ("proposed_at", "TEXT"), ("updated_at", "TEXT")),
    key=("disposition_id",),
    indexes=(("subject",),),
)

#: Aggregate class name → the kind name used in policy milestones and the API.
KIND_OF_CLASS = {"Customer": "customer", "Interaction": "interaction", "Ticket": "ticket", "Complaint": "complaint",
                 "Feedback": "feedback", "SurveyResponse": "survey"}
# Issue 19: surveys of contacts and complaints, and incidents (record classes case_survey and
# incident_record, sop-2025@2; an incident's personal part is its own subject, it has no customer).
KIND_OF_CLASS.update({"CaseSurvey": "case_survey", "Incident": "incident"})


class RetentionRecords(Projection):
    name = "retention"
    version = 3  # 3: case surveys and incidents (issue 19); 2: calendar_ref of each due date (issue 20)
    rebuild_weight = 9
    handled_only = True  # apply_batch below dispatches as any read model's does
    tables = (RECORD_TABLE, HOLD_TABLE, DESTROYED_TABLE, DISPOSITION_TABLE)

    def __init__(self, ledger: Any):
        super().__init__(ledger)
        #: The (kind, id) of the record the batch's last record event was about: its row exists.
        self._last_record: tuple[str, str] | None = None
        self._class_of_kind: dict[tuple[str, str], RecordClass | None] = {}  # (policy ref, kind)
        self._class_by_key: dict[tuple[str, str], tuple[Any, RecordClass]] = {}  # (policy ref, key) -> policy, class
        #: Milestones that start the period of some record class of some policy version: only
        #: events reaching one of these can change an existing row.
        self._triggers = {trigger for policy in ledger.policies.policies.values()
                          for record_class in policy.record_classes.values() for trigger in record_class.triggers}

    def resolve(self, cls: type) -> Callable[..., None] | None:
        owner, _, event_name = cls.__qualname__.partition(".")
        kind = KIND_OF_CLASS.get(owner)
        if kind is not None:  # every event of a case: the first creates its row, one may trigger its period
            reached = milestone(kind, event_name)
            return functools.partial(self._record_event, kind, reached if reached in self._triggers else None)
        return super().resolve(cls)

    def _record_class_for(self, policy_ref: str, kind: str) -> RecordClass | None:
        key = (policy_ref, kind)
        if key not in self._class_of_kind:
            self._class_of_kind[key] = record_class_for(self.ledger.policies.get(policy_ref), kind)
        return self._class_of_kind[key]

    def _record_class(self, policy_ref: str, record_class: str) -> tuple[Any, RecordClass]:
        key = (policy_ref, record_class)
        if key not in self._class_by_key:
            policy = self.ledger.policies.get(policy_ref)
            self._class_by_key[key] = (policy, policy.record_class(record_class))
        return self._class_by_key[key]

    def apply(self, event: Any, position: int, rows: RowCache) -> None:
        self.apply_batch([(position, "", event)], rows)

    def apply_batch(self, events: Sequence[tuple[int, str, Any]], rows: RowCache) -> None:
        # Per batch (a new batch may have a new cache): see _record_event.
        self._last_record = None
        super().apply_batch(events, rows)

    def _record_event(self, kind: str, reached: str | None, e: Any, position: int, rows: RowCache) -> None:
        """Any event of a case; ``reached``: its milestone if that starts some record class's period."""
        record_id = str(e.originator_id)
        last = self._last_record
        if reached is None and last is not None and last[1] == record_id and last[0] == kind:
            return  # a case's events come one after another, and its row, once there, is never deleted
        row = rows.peek(_RECORDS, kind, record_id)
        if row is None:  # the case's first event
            row = self._new_row(kind, record_id, e, position)
            if reached is not None:
                self._trigger(row, reached, e)
            rows.put(_RECORDS, row)
        elif reached is not None and self._trigger(row, reached, e):
            rows.put(_RECORDS, row)
        # Most events change nothing: no write.
        self._last_record = (kind, record_id)

    def _new_row(self, kind: str, record_id: str, e: Any, position: int) -> dict[str, Any]:
        if e.originator_version != 1:
            raise LookupError(f"{kind} {record_id} has no retention row; its creation event was not seen")
        record_class = self._record_class_for(e.policy_ref, kind)
        return {"kind": kind, "record_id": record_id, "subject": _subject(kind, e),
                "record_class": record_class.key if record_class else None,
                "clause": record_class.source if record_class else None, "policy_ref": e.policy_ref,
                "created_at": occurred_stamp(e), "trigger_milestone": None, "trigger_at": None, "due_at": None,
                "seq": position, "calendar_ref": None}

    def _trigger(self, row: dict[str, Any], reached: str, e: Any) -> bool:
        """Start the record's retention period if ``reached`` is its record class's trigger."""
        if row["record_class"] is None:
            return False
        policy, record_class = self._record_class(row["policy_ref"], row["record_class"])
        if reached not in record_class.triggers:
            return False
        due, ref = due_with_ref(record_class, occurred(e), self.calendar, policy.tz)
        row.update(trigger_milestone=reached, trigger_at=occurred_stamp(e), due_at=stamp(due), calendar_ref=ref)
        return True

    def on_LegalHold_Placed(self, e: Any, position: int, rows: RowCache) -> None:
        rows.put(HOLD_TABLE.name, {
            "hold_id": str(e.originator_id), "target_kind": e.target_kind, "target_id": e.target_id,
            "subject": e.subject, "authority": e.authority, "reason": e.reason, "placed_by": e.meta["actor_id"],
            "placed_at": occurred_stamp(e), "released_by": None, "released_at": None, "status": "active",
            "seq": position})

    def on_LegalHold_Released(self, e: Any, position: int, rows: RowCache) -> None:
        row = rows.get(HOLD_TABLE.name, str(e.originator_id))
        if row is None:
            raise LookupError(f"legal hold {e.originator_id} was released but never placed")
        row.update(status="released", released_by=e.meta["actor_id"], released_at=occurred_stamp(e))
        rows.put(HOLD_TABLE.name, row)

    def on_Disposition_Proposed(self, e: Any, position: int, rows: RowCache) -> None:
        at = occurred_stamp(e)
        rows.put(DISPOSITION_TABLE.name, {"disposition_id": str(e.originator_id), "subject": e.subject,
                                          "status": "proposed", "proposer": e.proposer, "approver": None,
                                          "proposed_at": at, "updated_at": at})

    def _disposition_step(self, e: Any, rows: RowCache, status: str) -> dict[str, Any]:
        row = rows.get(DISPOSITION_TABLE.name, str(e.originator_id))
        if row is None:
            raise LookupError(f"disposition {e.originator_id} has no row; its proposal was not seen")
        row.update(status=status, updated_at=occurred_stamp(e))
        rows.put(DISPOSITION_TABLE.name, row)
        return row

    def on_Disposition_Approved(self, e: Any, position: int, rows: RowCache) -> None:
        self._disposition_step(e, rows, "approved")["approver"] = e.meta["actor_id"]

    def on_Disposition_Rejected(self, e: Any, position: int, rows: RowCache) -> None:
        self._disposition_step(e, rows, "rejected")

    def on_Disposition_DestructionCertified(self, e: Any, position: int, rows: RowCache) -> None:
        self._disposition_step(e, rows, "executed")
        c = e.certificate
        rows.put(DESTROYED_TABLE.name, {
            "subject": c["subject"], "disposition_id": str(e.originator_id), "destroyed_at": stamp(parse(c["destroyed_at"])),
            "key_fingerprint": c["key_fingerprint"], "tree_size": c["tree_size"], "proposer": c["proposer"],
            "approver": c["approver"], "executor": c["executor"]})


def due_with_ref(record_class: RecordClass, trigger_at: datetime, calendar: BusinessCalendar,
                 tz: ZoneInfo) -> tuple[datetime, str | None]:
    """``domain.retention.due_at``, and the calendar data that decided it (issue 20: every computed
    deadline records it): the days from the day after the anniversary (the due date before any move)
    to the due date were asked of the calendar. None when the class does not move to a working day."""
    due = due_at(record_class, trigger_at, calendar, tz)
    if record_class.due_on != "next_working_day":
        return due, None
    unmoved = due_at(replace(record_class, due_on="calendar_day"), trigger_at, calendar, tz)
    return due, calendar_ref(calendar, unmoved.date(), due.date())


def _subject(kind: str, e: Any) -> str:
    """The data subject of a case: its customer, or (an anonymous contact, a customer) itself."""
    if kind != "customer" and getattr(e, "customer_id", None):
        return str(e.customer_id)
    return str(e.originator_id)
