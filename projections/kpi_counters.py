"""The dashboard read model: additive counters per (business day, channel, team, measure).

Every KPI in :mod:`projections.kpis` is a ratio or an average of these counters, so any date
range and any grouping (day, channel or team) is a ``SUM … GROUP BY`` away, and incremental
updates are plain additions. A helper table keeps, per case, only what later events need to be
counted in the right bucket: channel, team, policy, priority/complexity, the first time each
milestone was reached, and pause time — ids and facts, never personal data.

Buckets (also in projections/README.md): ``day`` is the business day, in the case's policy time
zone, of the event that is counted (for cohort measures: of the case's creation); ``channel`` is
the case's channel (surveys: the ticket's); ``team`` is the ticket's team at the time of the
event (interactions: the queue they were routed to; complaints, feedback and cases not yet
assigned: ``-``).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Sequence

from projections.jsontext import json_writer
from projections.runtime import Projection
from projections.store import Codec, RowCache, Table
from projections.timeutil import local_day, occurred, occurred_stamp, parse

NONE = "-"

COUNTER_TABLE = Table("rm_kpi_counter", columns=(("day", "TEXT"), ("channel", "TEXT"), ("team", "TEXT"),
                                                 ("measure", "TEXT"), ("value", "BIGINT")),
                      key=("day", "channel", "team", "measure"), indexes=(("measure", "day"),))
_sorted_json = json_writer(sort_keys=True)
#: attrs and milestones are dicts while projecting, written as sorted JSON once per batch.
_JSON = Codec(encode=_sorted_json, decode=json.loads)
CASE_TABLE = Table("rm_kpi_case", columns=(("case_id", "TEXT"), ("kind", "TEXT"), ("channel", "TEXT"),
                                           ("team", "TEXT"), ("policy_ref", "TEXT"), ("cohort_day", "TEXT"),
                                           ("attrs", "TEXT"), ("milestones", "TEXT"), ("paused_since", "TEXT"),
                                           ("paused_seconds", "BIGINT")),
                   key=("case_id",), codecs=(("attrs", _JSON), ("milestones", _JSON)))


class KpiCounters(Projection):
    name = "kpi_counters"
    rebuild_weight = 2
    tables = (COUNTER_TABLE, CASE_TABLE)

    def __init__(self, ledger: Any):
        super().__init__(ledger)
        self._stops: dict[tuple[str, str, str], list[tuple[str, Any]]] = {}
        self._added: dict[tuple[str, str, str, str], int] = {}  # this batch's additions per counter

    def apply(self, event: Any, position: int, rows: RowCache) -> None:
        self.apply_batch([(position, "", event)], rows)

    def apply_batch(self, events: Sequence[tuple[int, str, Any]], rows: RowCache) -> None:
        """Counters are added up in memory over the batch and written to their rows at its end."""
        self._added = {}
        super().apply_batch(events, rows)
        for key, by in self._added.items():
            row = rows.get(COUNTER_TABLE.name, *key) or dict(zip(COUNTER_TABLE.key, key), value=0)
            row["value"] += by
            rows.put(COUNTER_TABLE.name, row)

    # -- helpers -----------------------------------------------------------------------------------
    def _policy(self, ref: str) -> Any:
        return self.ledger.policies.get(ref)

    def _bump(self, rows: RowCache, day: str, channel: str, team: str, measure: str, by: int = 1) -> None:
        key = (day, channel, team, measure)
        self._added[key] = self._added.get(key, 0) + by  # a counter added 0 still gets its row

    def _open(self, rows: RowCache, e: Any, kind: str, channel: str) -> dict[str, Any]:
        at = occurred(e)
        case = {"case_id": str(e.originator_id), "kind": kind, "channel": channel, "team": NONE,
                "policy_ref": e.policy_ref, "cohort_day": self._day(e.policy_ref, at), "attrs": {},
                "milestones": {}, "paused_since": None, "paused_seconds": 0}
        rows.put(CASE_TABLE.name, case)
        return case

    def _case(self, rows: RowCache, case_id: Any) -> dict[str, Any]:
        case = rows.get(CASE_TABLE.name, str(case_id))
        if case is None:
            raise LookupError(f"no KPI case row for {case_id}; its creation event was not seen")
        return case

    def _day(self, policy_ref: str, at: datetime) -> str:
        return local_day(at, self._policy(policy_ref).tz)

    def _count(self, rows: RowCache, case: dict[str, Any], e: Any, measure: str, by: int = 1, *,
               cohort: bool = False) -> None:
        day = case["cohort_day"] if cohort else self._day(case["policy_ref"], occurred(e))
        self._bump(rows, day, case["channel"], NONE if cohort else case["team"], measure, by)

    def _stopping(self, policy_ref: str, kind: str, name: str) -> list[tuple[str, Any]]:
        """(key, clock) of the policy's clocks of this kind of case that stop at this milestone,
        in key order (computed once per policy, kind and milestone)."""
        found = self._stops.get((policy_ref, kind, name))
        if found is None:
            clocks = self._policy(policy_ref).clocks
            found = self._stops[(policy_ref, kind, name)] = [
                (key, clocks[key]) for key in sorted(clocks)
                if clocks[key].subject == kind and clocks[key].stop == name]
        return found

    def _milestone(self, rows: RowCache, case: dict[str, Any], name: str, e: Any) -> bool:
        """Record the first time a case reaches a milestone, and score every SLA clock it stops."""
        milestones = case["milestones"]
        if name in milestones:
            return False
        milestones[name] = occurred_stamp(e)
        rows.put(CASE_TABLE.name, case)
        stopping = self._stopping(case["policy_ref"], case["kind"], name)
        if not stopping:
            return True
        at = occurred(e)
        policy = self._policy(case["policy_ref"])
        attrs = case["attrs"]
        for key, clock in stopping:
            if clock.start not in milestones:
                continue
            deadline = clock.deadline(parse(milestones[clock.start]), attrs, self.calendar, policy.tz)
            if clock.pausable:
                deadline += timedelta(seconds=case["paused_seconds"])
            self._count(rows, case, e, f"sla.{key}.stopped")
            self._count(rows, case, e, f"sla.{key}.met", 1 if at <= deadline else 0)
        return True

    def _reach(self, rows: RowCache, e: Any, name: str) -> dict[str, Any]:
        case = self._case(rows, e.originator_id)
        self._milestone(rows, case, name, e)
        return case

    # -- customers and interactions ----------------------------------------------------------------
    def on_Customer_Registered(self, e: Any, position: int, rows: RowCache) -> None:
        self._bump(rows, self._day(e.policy_ref, occurred(e)), NONE, NONE, "customers.registered")

    def on_Interaction_Received(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._open(rows, e, "interaction", e.channel)
        self._milestone(rows, case, "received", e)
        self._count(rows, case, e, "intake.received", cohort=True)

    def on_Interaction_Registered(self, e: Any, position: int, rows: RowCache) -> None:
        if self._milestone(rows, case := self._case(rows, e.originator_id), "registered", e):
            self._count(rows, case, e, "intake.registered", cohort=True)

    def on_Interaction_Routed(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        case["team"] = e.queue or NONE
        if self._milestone(rows, case, "routed", e):
            self._count(rows, case, e, "intake.routed", cohort=True)

    def on_Interaction_Closed(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._reach(rows, e, "closed")
        self._count(rows, case, e, "fcr.closed")
        self._count(rows, case, e, "fcr.resolved", 1 if e.resolved_on_first_contact else 0)

    # -- tickets -------------------------------------------------------------------------------
    def on_Ticket_Received(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._open(rows, e, "ticket", e.channel)
        case["attrs"] = {"complexity": None, "priority": None}
        self._milestone(rows, case, "received", e)
        self._count(rows, case, e, "tickets.received")

    def on_Ticket_Classified(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        case["attrs"] = {"complexity": e.complexity, "priority": e.priority}
        self._milestone(rows, case, "classified", e)
        rows.put(CASE_TABLE.name, case)

    def on_Ticket_Assigned(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        case["team"] = e.team or NONE
        self._milestone(rows, case, "assigned", e)
        rows.put(CASE_TABLE.name, case)

    def on_Ticket_FirstResponded(self, e: Any, position: int, rows: RowCache) -> None:
        self._reach(rows, e, "first_responded")

    def on_Ticket_ClockPaused(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        case["paused_since"] = occurred_stamp(e)
        rows.put(CASE_TABLE.name, case)

    def on_Ticket_ClockResumed(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        if case["paused_since"]:
            case["paused_seconds"] += int((occurred(e) - parse(case["paused_since"])).total_seconds())
        case["paused_since"] = None
        rows.put(CASE_TABLE.name, case)

    def _resolved(self, rows: RowCache, e: Any) -> None:
        case = self._case(rows, e.originator_id)
        if self._milestone(rows, case, "resolved", e):
            received = parse(case["milestones"]["received"])
            self._count(rows, case, e, "aht.resolved")
            self._count(rows, case, e, "aht.seconds", int((occurred(e) - received).total_seconds()))

    def on_Ticket_Resolved(self, e: Any, position: int, rows: RowCache) -> None:
        if not e.review_required:
            self._resolved(rows, e)

    def on_Ticket_Reviewed(self, e: Any, position: int, rows: RowCache) -> None:
        if e.approved:
            self._resolved(rows, e)

    def on_Ticket_ResultFedBack(self, e: Any, position: int, rows: RowCache) -> None:
        self._reach(rows, e, "result_fed_back")

    def on_Ticket_AcceptanceRecorded(self, e: Any, position: int, rows: RowCache) -> None:
        if e.accepted:
            self._reach(rows, e, "accepted")

    def on_Ticket_Closed(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._reach(rows, e, "closed")
        self._count(rows, case, e, "tickets.closed")

    def on_Ticket_Reopened(self, e: Any, position: int, rows: RowCache) -> None:
        self._count(rows, self._case(rows, e.originator_id), e, "tickets.reopened")

    def on_Ticket_Archived(self, e: Any, position: int, rows: RowCache) -> None:
        self._reach(rows, e, "archived")

    # -- complaints, feedback, surveys ------------------------------------------------------------
    def on_Complaint_Accepted(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._open(rows, e, "complaint", e.channel)
        self._milestone(rows, case, "accepted", e)
        self._count(rows, case, e, "complaints.accepted", cohort=True)

    def on_Complaint_Classified(self, e: Any, position: int, rows: RowCache) -> None:
        self._reach(rows, e, "classified")

    def on_Complaint_InvestigationStarted(self, e: Any, position: int, rows: RowCache) -> None:
        self._reach(rows, e, "first_handled")

    def on_Complaint_Escalated(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        if self._milestone(rows, case, "escalated", e):
            self._count(rows, case, e, "complaints.escalated", cohort=True)

    def on_Complaint_RemedyDecided(self, e: Any, position: int, rows: RowCache) -> None:
        self._reach(rows, e, "remedied")

    def on_Complaint_CustomerNotified(self, e: Any, position: int, rows: RowCache) -> None:
        self._reach(rows, e, "customer_notified")

    def on_Complaint_Evaluated(self, e: Any, position: int, rows: RowCache) -> None:
        self._reach(rows, e, "evaluated")

    def on_Complaint_Archived(self, e: Any, position: int, rows: RowCache) -> None:
        self._reach(rows, e, "archived")

    def on_Feedback_Submitted(self, e: Any, position: int, rows: RowCache) -> None:
        self._milestone(rows, self._open(rows, e, "feedback", e.channel), "received", e)

    def on_Feedback_Responded(self, e: Any, position: int, rows: RowCache) -> None:
        self._reach(rows, e, "responded")

    def on_Feedback_Replied(self, e: Any, position: int, rows: RowCache) -> None:
        self._reach(rows, e, "replied")

    def on_SurveyResponse_Answered(self, e: Any, position: int, rows: RowCache) -> None:
        ticket = self._case(rows, e.ticket_id)
        scales = self._policy(e.policy_ref).rule("survey_scales")
        if e.csat is not None:
            self._count(rows, ticket, e, "csat.answered")
            self._count(rows, ticket, e, "csat.satisfied", 1 if e.csat >= scales["csat_satisfied_min"] else 0)
        if e.nps is not None:
            self._count(rows, ticket, e, "nps.answered")
            self._count(rows, ticket, e, "nps.promoters", 1 if e.nps >= scales["nps_promoter_min"] else 0)
            self._count(rows, ticket, e, "nps.detractors", 1 if e.nps <= scales["nps_detractor_max"] else 0)

