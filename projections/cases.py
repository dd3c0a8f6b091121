"""Ticket list and complaint list: one row per case, ids and facts only (no personal data).

Rows hold what a supervisor filters on — status, priority, complexity, channel, owner, handler,
team, customer id — plus the deadline of the case's main clock, computed from the policy the
case records, so "overdue at time T" is a plain comparison in SQL. The ``personal`` part of events
(names, phones, free text) is never read here: it will be crypto-shredded, and a read model must
not keep a copy of it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from domain.complaint import ComplaintStatus
from domain.policy import selection_attributes
from domain.ticket import TicketStatus
from projections.rowcache import RowCache
from projections.runtime import Projection
from projections.store import Table
from projections.timeutil import occurred, occurred_stamp, parse, stamp

#: Ticket statuses in which the resolution clock runs (it stops when the ticket becomes resolved).
RESOLUTION_RUNNING = frozenset({TicketStatus.RECEIVED, TicketStatus.CLASSIFIED, TicketStatus.ASSIGNED,
                                TicketStatus.IN_PROGRESS, TicketStatus.AWAITING_REVIEW})
#: Complaint statuses in which the closed-loop clock runs (it stops when the customer is notified).
CLOSED_LOOP_RUNNING = frozenset({ComplaintStatus.ACCEPTED, ComplaintStatus.CLASSIFIED,
                                 ComplaintStatus.INVESTIGATING, ComplaintStatus.REMEDIED})

TICKET_TABLE = Table(
    "rm_ticket_list",
    columns=(("ticket_id", "TEXT"), ("seq", "BIGINT"), ("customer_id", "TEXT"), ("interaction_id", "TEXT"),
             ("channel", "TEXT"), ("status", "TEXT"), ("priority", "TEXT"), ("complexity", "TEXT"),
             ("high_risk", "BIGINT"), ("service_type", "TEXT"), ("first_contact_owner", "TEXT"), ("handler", "TEXT"),
             ("team", "TEXT"),
             ("policy_ref", "TEXT"), ("received_at", "TEXT"), ("clock_started_at", "TEXT"),
             ("paused_since", "TEXT"), ("paused_seconds", "BIGINT"), ("resolution_deadline", "TEXT"),
             ("resolved_at", "TEXT"), ("closed_at", "TEXT"), ("reopen_count", "BIGINT"), ("rework_count", "BIGINT"),
             ("version", "BIGINT"), ("updated_at", "TEXT")),
    key=("ticket_id",),
    indexes=(("seq",), ("status", "seq"), ("customer_id", "seq"), ("first_contact_owner", "seq"),
             ("handler", "seq"), ("resolution_deadline",)),
)

COMPLAINT_TABLE = Table(
    "rm_complaint_list",
    columns=(("complaint_id", "TEXT"), ("seq", "BIGINT"), ("customer_id", "TEXT"), ("ticket_id", "TEXT"),
             ("channel", "TEXT"), ("status", "TEXT"), ("complaint_type", "TEXT"), ("level", "BIGINT"),
             ("service_type", "TEXT"), ("rung", "TEXT"), ("handler", "TEXT"), ("escalations", "BIGINT"), ("evidence_count", "BIGINT"),
             ("remedy_kind", "TEXT"), ("satisfied", "BIGINT"), ("root_cause_recorded", "BIGINT"),
             ("policy_ref", "TEXT"), ("accepted_at", "TEXT"), ("closed_loop_deadline", "TEXT"),
             ("notified_at", "TEXT"), ("archived_at", "TEXT"), ("version", "BIGINT"), ("updated_at", "TEXT")),
    key=("complaint_id",),
    indexes=(("seq",), ("status", "seq"), ("customer_id", "seq"), ("handler", "seq"), ("closed_loop_deadline",)),
)


class _CaseList(Projection):
    table: Table

    def _touch(self, rows: RowCache, case_id: Any, event: Any, **changes: Any) -> dict[str, Any]:
        row = rows.get(self.table.name, str(case_id))
        if row is None:
            raise LookupError(f"{self.table.name} has no row for {case_id}; its creation event was not seen")
        row.update(changes, version=event.originator_version, updated_at=occurred_stamp(event))
        rows.put(self.table.name, row)
        return row


class TicketList(_CaseList):
    """One row per ticket. ``resolution_deadline`` is the ``ticket.resolution`` clock's deadline.

    The clock starts at receipt, is re-computed when the ticket is (re)classified (limits depend
    on priority and complexity), is extended by the time spent paused (NULL while paused: a
    paused clock cannot run late), and restarts from the reopen time when a closed ticket is
    reopened.
    """

    name = "ticket_list"
    version = 2  # 2: service_type; limits selected by domain.policy.selection_attributes; closed unconfirmed
    rebuild_weight = 7
    table = TICKET_TABLE
    tables = (TICKET_TABLE,)

    def _deadline(self, row: dict[str, Any]) -> str | None:
        if row["paused_since"] is not None:
            return None
        policy = self.ledger.policies.get(row["policy_ref"])
        clock = policy.clock("ticket.resolution")
        attrs = selection_attributes("ticket", row)
        deadline = clock.deadline(parse(row["clock_started_at"]), attrs, self.calendar, policy.tz)
        return stamp(deadline + timedelta(seconds=row["paused_seconds"]))

    def on_Ticket_Received(self, e: Any, position: int, rows: RowCache) -> None:
        at = occurred_stamp(e)
        row = {"ticket_id": str(e.originator_id), "seq": position, "customer_id": e.customer_id,
               "interaction_id": e.interaction_id, "channel": e.channel, "status": TicketStatus.RECEIVED,
               "priority": None, "complexity": None, "high_risk": 0, "service_type": None,
               "first_contact_owner": e.first_contact_owner,
               "handler": None, "team": None, "policy_ref": e.policy_ref, "received_at": at, "clock_started_at": at,
               "paused_since": None, "paused_seconds": 0, "resolved_at": None, "closed_at": None,
               "reopen_count": 0, "rework_count": 0, "version": e.originator_version, "updated_at": at}
        row["resolution_deadline"] = self._deadline(row)
        rows.put(self.table.name, row)

    def on_Ticket_Classified(self, e: Any, position: int, rows: RowCache) -> None:
        row = self._touch(rows, e.originator_id, e, priority=e.priority, complexity=e.complexity,
                          high_risk=int(bool(e.high_risk)), service_type=getattr(e, "service_type", None))
        if row["status"] == TicketStatus.RECEIVED:
            row["status"] = TicketStatus.CLASSIFIED
        row["resolution_deadline"] = self._deadline(row)

    def on_Ticket_Assigned(self, e: Any, position: int, rows: RowCache) -> None:
        row = self._touch(rows, e.originator_id, e, handler=e.handler, team=e.team)
        if row["status"] == TicketStatus.CLASSIFIED:
            row["status"] = TicketStatus.ASSIGNED

    def on_Ticket_FirstResponded(self, e: Any, position: int, rows: RowCache) -> None:
        self._touch(rows, e.originator_id, e)

    def on_Ticket_WorkStarted(self, e: Any, position: int, rows: RowCache) -> None:
        self._touch(rows, e.originator_id, e, status=TicketStatus.IN_PROGRESS)

    def on_Ticket_ClockPaused(self, e: Any, position: int, rows: RowCache) -> None:
        row = self._touch(rows, e.originator_id, e, paused_since=occurred_stamp(e))
        row["resolution_deadline"] = None

    def on_Ticket_ClockResumed(self, e: Any, position: int, rows: RowCache) -> None:
        row = rows.get(self.table.name, str(e.originator_id))
        paused = int((occurred(e) - parse(row["paused_since"])).total_seconds()) if row and row["paused_since"] else 0
        row = self._touch(rows, e.originator_id, e, paused_since=None)
        row["paused_seconds"] += paused
        row["resolution_deadline"] = self._deadline(row)

    def on_Ticket_Resolved(self, e: Any, position: int, rows: RowCache) -> None:
        status = TicketStatus.AWAITING_REVIEW if e.review_required else TicketStatus.RESOLVED
        row = self._touch(rows, e.originator_id, e, status=status)
        if status == TicketStatus.RESOLVED:
            row["resolved_at"] = row["updated_at"]

    def on_Ticket_Reviewed(self, e: Any, position: int, rows: RowCache) -> None:
        status = TicketStatus.RESOLVED if e.approved else TicketStatus.IN_PROGRESS
        row = self._touch(rows, e.originator_id, e, status=status)
        if e.approved:
            row["resolved_at"] = row["updated_at"]

    def on_Ticket_ResultFedBack(self, e: Any, position: int, rows: RowCache) -> None:
        self._touch(rows, e.originator_id, e, status=TicketStatus.FED_BACK)

    def on_Ticket_AcceptanceRecorded(self, e: Any, position: int, rows: RowCache) -> None:
        row = self._touch(rows, e.originator_id, e,
                          status=TicketStatus.ACCEPTED if e.accepted else TicketStatus.IN_PROGRESS)
        if not e.accepted:
            row["rework_count"] += 1

    def on_Ticket_Closed(self, e: Any, position: int, rows: RowCache) -> None:
        row = self._touch(rows, e.originator_id, e, status=TicketStatus.CLOSED)
        row["closed_at"] = row["updated_at"]

    def on_Ticket_ClosedUnconfirmed(self, e: Any, position: int, rows: RowCache) -> None:
        row = self._touch(rows, e.originator_id, e, status=TicketStatus.CLOSED)
        row["closed_at"] = row["updated_at"]

    def on_Ticket_ProgressUpdated(self, e: Any, position: int, rows: RowCache) -> None:
        self._touch(rows, e.originator_id, e)

    def on_Ticket_Reopened(self, e: Any, position: int, rows: RowCache) -> None:
        row = self._touch(rows, e.originator_id, e, status=TicketStatus.IN_PROGRESS, closed_at=None,
                          resolved_at=None, paused_since=None, paused_seconds=0)
        row["reopen_count"] += 1
        row["clock_started_at"] = row["updated_at"]
        row["resolution_deadline"] = self._deadline(row)

    def on_Ticket_Archived(self, e: Any, position: int, rows: RowCache) -> None:
        self._touch(rows, e.originator_id, e, status=TicketStatus.ARCHIVED)


class ComplaintList(_CaseList):
    """One row per complaint. ``closed_loop_deadline`` is the ``complaint.closed_loop`` deadline
    (accepted → customer notified)."""

    name = "complaint_list"
    version = 2  # 2: service_type, first response, reassignment, closed unevaluated
    table = COMPLAINT_TABLE
    tables = (COMPLAINT_TABLE,)

    def on_Complaint_Accepted(self, e: Any, position: int, rows: RowCache) -> None:
        at = occurred(e)
        policy = self.ledger.policies.get(e.policy_ref)
        deadline = policy.clock("complaint.closed_loop").deadline(at, {}, self.calendar, policy.tz)
        rows.put(self.table.name, {
            "complaint_id": str(e.originator_id), "seq": position, "customer_id": e.customer_id,
            "ticket_id": e.ticket_id, "channel": e.channel, "status": ComplaintStatus.ACCEPTED, "complaint_type": None,
            "level": None, "service_type": None, "rung": e.rung, "handler": e.handler, "escalations": 0, "evidence_count": 0,
            "remedy_kind": None, "satisfied": None, "root_cause_recorded": 0, "policy_ref": e.policy_ref,
            "accepted_at": stamp(at), "closed_loop_deadline": stamp(deadline), "notified_at": None,
            "archived_at": None, "version": e.originator_version, "updated_at": stamp(at)})

    def on_Complaint_Classified(self, e: Any, position: int, rows: RowCache) -> None:
        row = self._touch(rows, e.originator_id, e, complaint_type=e.complaint_type, level=int(e.level),
                          service_type=getattr(e, "service_type", None))
        if row["status"] == ComplaintStatus.ACCEPTED:
            row["status"] = ComplaintStatus.CLASSIFIED

    def on_Complaint_InvestigationStarted(self, e: Any, position: int, rows: RowCache) -> None:
        self._touch(rows, e.originator_id, e, status=ComplaintStatus.INVESTIGATING)

    def on_Complaint_EvidenceAdded(self, e: Any, position: int, rows: RowCache) -> None:
        self._touch(rows, e.originator_id, e)["evidence_count"] += 1

    def on_Complaint_Escalated(self, e: Any, position: int, rows: RowCache) -> None:
        self._touch(rows, e.originator_id, e, rung=e.to_rung)["escalations"] += 1

    def on_Complaint_RemedyDecided(self, e: Any, position: int, rows: RowCache) -> None:
        self._touch(rows, e.originator_id, e, status=ComplaintStatus.REMEDIED, remedy_kind=e.kind)

    def on_Complaint_CustomerNotified(self, e: Any, position: int, rows: RowCache) -> None:
        row = self._touch(rows, e.originator_id, e, status=ComplaintStatus.NOTIFIED)
        row["notified_at"] = row["updated_at"]

    def on_Complaint_Evaluated(self, e: Any, position: int, rows: RowCache) -> None:
        self._touch(rows, e.originator_id, e, status=ComplaintStatus.EVALUATED, satisfied=int(bool(e.satisfied)))

    def on_Complaint_ClosedUnevaluated(self, e: Any, position: int, rows: RowCache) -> None:
        self._touch(rows, e.originator_id, e, status=ComplaintStatus.UNEVALUATED)

    def on_Complaint_FirstResponded(self, e: Any, position: int, rows: RowCache) -> None:
        self._touch(rows, e.originator_id, e)

    def on_Complaint_HandlerReassigned(self, e: Any, position: int, rows: RowCache) -> None:
        self._touch(rows, e.originator_id, e, handler=e.handler)

    def on_Complaint_Archived(self, e: Any, position: int, rows: RowCache) -> None:
        row = self._touch(rows, e.originator_id, e, status=ComplaintStatus.ARCHIVED)
        row["archived_at"] = row["updated_at"]

    def on_Complaint_RootCauseRecorded(self, e: Any, position: int, rows: RowCache) -> None:
        self._touch(rows, e.originator_id, e, root_cause_recorded=1)
