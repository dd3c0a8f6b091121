"""The dashboard read model: additive counters per (business day, channel, team, agent, service
type, customer tier, priority, measure).

Every KPI in :mod:`projections.kpis` is a ratio or an average of these counters, so any date
range and any grouping (by period — day, week, month, quarter — and by any of the dimensions) is a
``SUM … GROUP BY`` away (:mod:`projections.kpi_grouping`), and incremental updates are plain
additions. ``agent`` is the person answerable for the case at the time of the event: a contact's
first-contact agent, a ticket's handler (before assignment its first-contact owner), a
complaint's handler; ``service_type`` and ``priority`` are the case's classification then
(complaints and contacts have no priority: ``-``); ``tier`` is the customer's tier then.
Cohort measures (counted on the case's creation day) keep the bucket of the creation: its
channel, agent and tier then, team, service type and priority ``-``. A helper table keeps, per case, only what later events need to be
counted in the right bucket: channel, team, policy, priority/complexity, the first time each
milestone was reached, and pause time — ids and facts, never personal data.

Buckets (also in projections/README.md): ``day`` is the business day, in the case's policy time
zone, of the event that is counted (for cohort measures: of the case's creation); ``channel`` is
the case's channel (surveys: the ticket's); ``team`` is the ticket's team at the time of the
event (interactions: the queue they were routed to; complaints, feedback and cases not yet
assigned: ``-``).

Cost: a rebuild runs a handler per event, most of them for interactions (three events each,
all counted in the cohort bucket their case row already holds). So what depends only on the
policy version — its time zone, the clocks that stop at a milestone and their counter names —
is looked up once per version (:class:`_Terms`); stamps and business days are worked out once per
hour of event time (:mod:`projections.timeutil`); customers' tiers and activity rows are looked
up once per batch; a case row changed by several events of a batch is put once, at its end; and
its JSON columns are written by encoders that know their shapes (:mod:`projections.kpi_encoding`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, NamedTuple

from domain.policy import selection_attributes
from projections.kpi_encoding import ATTRS_CODEC, COHORT_CODEC, MILESTONES_CODEC
from projections.kpi_operations import (
    ACTIVITY_TABLE,
    CUSTOMER_TABLE,
    NONE,
    OperationsCounters,
)
from projections.rowcache import RowCache
from projections.runtime import Projection
from projections.store import Table
from projections.timeutil import BusinessDays, business_days, occurred, parse, stamp

#: The dimensions a counter is bucketed by besides its day (see the module docstring).
DIMENSIONS = ("channel", "team", "agent", "service_type", "tier", "priority")
COUNTER_TABLE = Table("rm_kpi_counter", columns=(("day", "TEXT"), *((d, "TEXT") for d in DIMENSIONS),
                                                 ("measure", "TEXT"), ("value", "BIGINT")),
                      key=("day", *DIMENSIONS, "measure"), indexes=(("measure", "day"),))
#: attrs and milestones are dicts while projecting, cohort a tuple (a list once read back); each is
#: written as sorted JSON once per batch.
CASE_TABLE = Table("rm_kpi_case", columns=(("case_id", "TEXT"), ("kind", "TEXT"), ("channel", "TEXT"),
                                           ("team", "TEXT"), ("agent", "TEXT"), ("service_type", "TEXT"),
                                           ("priority", "TEXT"), ("customer_id", "TEXT"), ("cohort", "TEXT"),
                                           ("policy_ref", "TEXT"), ("cohort_day", "TEXT"),
                                           ("attrs", "TEXT"), ("milestones", "TEXT"), ("paused_since", "TEXT"),
                                           ("paused_seconds", "BIGINT")),
                   key=("case_id",), codecs=(("attrs", ATTRS_CODEC), ("milestones", MILESTONES_CODEC),
                                                      ("cohort", COHORT_CODEC)))
_CASES = CASE_TABLE.name
#: The selection attributes of a ticket not classified yet (all None): the same for every ticket.
_UNCLASSIFIED_TICKET = selection_attributes("ticket", {})


class _Stop(NamedTuple):
    """A clock that stops at a milestone, with the names of the two counters it scores."""

    clock: Any
    stopped: str
    met: str


class _Terms:
    """What the handlers need of one policy version, looked up once per version."""

    def __init__(self, policy: Any):
        self.policy = policy
        self.tz = policy.tz
        self.days: BusinessDays = business_days(policy.tz)
        #: milestone -> the clocks (of any kind of case) that stop there, in key order
        self.stops: dict[str, list[_Stop]] = {}
        for key in sorted(policy.clocks):
            clock = policy.clocks[key]
            self.stops.setdefault(clock.stop, []).append(_Stop(clock, f"sla.{key}.stopped", f"sla.{key}.met"))

    def day(self, e: Any) -> str:
        """The business day, in this policy's time zone, on which event ``e`` happened."""
        return self.days.of(e.meta["occurred_at"])


class KpiCounters(OperationsCounters, Projection):
    name = "kpi_counters"
    version = 2  # 2: agent, service type, tier and priority dimensions; people, complaint and incident KPIs
    rebuild_weight = 17
    tables = (COUNTER_TABLE, CASE_TABLE, CUSTOMER_TABLE, ACTIVITY_TABLE)

    def __init__(self, ledger: Any):
        super().__init__(ledger)
        self._terms_of: dict[str, _Terms] = {}  # per policy ref
        #: Milestones at which some clock of some policy version stops: reaching any other one
        #: scores nothing, whatever the case's policy.
        self._stop_names = {clock.stop for policy in ledger.policies.policies.values()
                            for clock in policy.clocks.values()}
        self._added: defaultdict[tuple[str, ...], int] = defaultdict(int)  # this batch's, per counter
        self._changed: dict[str, dict[str, Any]] = {}  # case rows this batch changed (put at its end), by id
        self._rows: RowCache | None = None
        #: This batch's answers of its row cache (which only this read model's handlers change):
        #: customers' tiers, and the activity rows known to exist.
        self._tiers: dict[str, str] = {}
        self._activity: set[tuple[str, str]] = set()

    def apply(self, event: Any, position: int, rows: RowCache) -> None:
        self.apply_batch([(position, "", event)], rows)

    def apply_batch(self, events: Sequence[tuple[int, str, Any]], rows: RowCache) -> None:
        """Counters are added up in memory over the batch and written to their rows at its end, with
        the case rows the batch changed."""
        self._added = defaultdict(int)  # a counter added 0 still gets its row
        self._changed = {}
        self._rows = rows  # for the customer's tier, read when a counter is bucketed
        self._tiers, self._activity = {}, set()  # a new batch may have a new cache (another runner went ahead)
        super().apply_batch(events, rows)
        put = rows.put
        for case in self._changed.values():
            put(_CASES, case)
        counters, key_columns = COUNTER_TABLE.name, COUNTER_TABLE.key
        for key, by in self._added.items():
            row = rows.get(counters, *key) or dict(zip(key_columns, key), value=0)
            row["value"] += by
            put(counters, row)

    # -- helpers -----------------------------------------------------------------------------------
    def _terms(self, policy_ref: str) -> _Terms:
        terms = self._terms_of.get(policy_ref)
        if terms is None:
            terms = self._terms_of[policy_ref] = _Terms(self.ledger.policies.get(policy_ref))
        return terms

    def _open(self, e: Any, kind: str, milestone: str, attrs: dict[str, Any] | None = None, *,
              agent: str | None = None, rows: RowCache | None = None) -> dict[str, Any]:
        """The case row of a case's first event, which reaches its first milestone. Its cohort
        bucket (creation day, channel, agent and customer tier then) is kept with it, so every
        cohort counter of the case lands in the same bucket whatever happens later."""
        customer_id = getattr(e, "customer_id", None)
        customer_id = str(customer_id) if customer_id else None
        policy_ref = e.policy_ref
        terms = self._terms_of.get(policy_ref) or self._terms(policy_ref)
        day = terms.days.of(e.meta["occurred_at"])
        channel, agent = getattr(e, "channel", None) or NONE, agent or NONE
        case = {"case_id": str(e.originator_id), "kind": kind, "channel": channel, "team": NONE, "agent": agent,
                "service_type": NONE, "priority": NONE, "customer_id": customer_id,
                "cohort": (day, channel, NONE, agent, NONE, self._tier(rows, customer_id), NONE),
                "policy_ref": policy_ref, "cohort_day": day, "attrs": attrs or {}, "milestones": {},
                "paused_since": None, "paused_seconds": 0}
        if rows is not None and customer_id:
            self._active(rows, customer_id, day)
        self._milestone(case, milestone, e)
        return case

    def _case(self, rows: RowCache, case_id: Any) -> dict[str, Any]:
        """A case's row: as this batch changed it, or as the cache holds it (to read only; a handler
        that changes it marks it :meth:`_changed_case`)."""
        case_id = str(case_id)
        case = self._changed.get(case_id) or rows.peek(_CASES, case_id)
        if case is None:
            raise LookupError(f"no KPI case row for {case_id}; its creation event was not seen")
        return case

    def _changed_case(self, case: dict[str, Any]) -> None:
        """Mark a case row as changed: it is put once, at the end of the batch."""
        self._changed[case["case_id"]] = case

    def _bucket(self, case: dict[str, Any], e: Any, rows: RowCache | None = None) -> tuple[str, ...]:
        """The bucket of event ``e``: its day, the case's channel, team, agent, service type and
        priority now, and its customer's tier now."""
        policy_ref = case["policy_ref"]
        terms = self._terms_of.get(policy_ref) or self._terms(policy_ref)
        return (terms.days.of(e.meta["occurred_at"]), case["channel"], case["team"], case["agent"],
                case["service_type"], self._tier(rows, case["customer_id"]), case["priority"])

    def _count(self, case: dict[str, Any], e: Any, measure: str, by: int = 1, rows: RowCache | None = None) -> None:
        """Add to a counter of the day of event ``e`` and the case's dimensions now."""
        self._added[(*self._bucket(case, e, rows or self._rows), measure)] += by

    def _count_cohort(self, case: dict[str, Any], measure: str, by: int = 1) -> None:
        """Add to a counter of the case's cohort bucket (creation day, channel, agent and tier then)."""
        self._added[(*case["cohort"], measure)] += by

    def _milestone(self, case: dict[str, Any], name: str, e: Any) -> bool:
        """Record the first time a case reaches a milestone, and score every SLA clock of its kind
        that stops there. False if it had reached it before (nothing changes)."""
        milestones = case["milestones"]
        if name in milestones:
            return False
        milestones[name] = stamp(e.meta["occurred_at"])
        self._changed[case["case_id"]] = case
        if name not in self._stop_names:
            return True
        terms = self._terms(case["policy_ref"])
        at, bucket = occurred(e), None
        for stop in terms.stops.get(name, ()):
            clock = stop.clock
            if clock.subject != case["kind"] or clock.start not in milestones:
                continue
            deadline = clock.deadline(parse(milestones[clock.start]), case["attrs"], self.calendar, terms.tz)
            if clock.pausable and case["paused_seconds"]:
                deadline += timedelta(seconds=case["paused_seconds"])
            bucket = bucket or self._bucket(case, e, self._rows)  # the same for every clock stopped here
            self._added[(*bucket, stop.stopped)] += 1
            self._added[(*bucket, stop.met)] += 1 if at <= deadline else 0
        return True

    def _reach(self, rows: RowCache, e: Any, name: str) -> dict[str, Any]:
        case = self._case(rows, e.originator_id)
        self._milestone(case, name, e)
        return case

    # -- customers and interactions ----------------------------------------------------------------
    def on_Interaction_Received(self, e: Any, position: int, rows: RowCache) -> None:
        self._count_cohort(self._open(e, "interaction", "received", rows=rows), "intake.received")

    # Registered and routed follow every received contact: written out (no helper calls), their
    # counters in the cohort bucket the case row holds.
    def on_Interaction_Registered(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        case["agent"] = e.agent_id or NONE
        self._changed[case["case_id"]] = case
        if "registered" not in case["milestones"] and self._milestone(case, "registered", e):
            self._added[(*case["cohort"], "intake.registered")] += 1

    def on_Interaction_Routed(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        case["team"] = e.queue or NONE
        self._changed[case["case_id"]] = case
        if "routed" not in case["milestones"] and self._milestone(case, "routed", e):
            self._added[(*case["cohort"], "intake.routed")] += 1

    def on_Interaction_Closed(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._reach(rows, e, "closed")
        self._count(case, e, "fcr.closed")
        self._count(case, e, "fcr.resolved", 1 if e.resolved_on_first_contact else 0)

    # -- tickets -------------------------------------------------------------------------------
    def on_Ticket_Received(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._open(e, "ticket", "received", dict(_UNCLASSIFIED_TICKET), agent=e.first_contact_owner, rows=rows)
        self._count(case, e, "tickets.received")

    def on_Ticket_Classified(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        case["attrs"] = {**case["attrs"], **selection_attributes("ticket", e)}
        case["priority"] = e.priority or NONE
        case["service_type"] = _service_type(e, case)
        self._changed_case(case)
        self._milestone(case, "classified", e)

    def on_Ticket_Assigned(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        case["team"] = e.team or NONE
        case["agent"] = e.handler or case["agent"]
        self._changed_case(case)
        self._milestone(case, "assigned", e)

    def on_Ticket_FirstResponded(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        if self._milestone(case, "first_responded", e):
            self._count(case, e, "response.count")
            self._count(case, e, "response.seconds", self._elapsed(case, "received", e))

    def on_Ticket_ClockPaused(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        case["paused_since"] = stamp(e.meta["occurred_at"])
        self._changed_case(case)

    def on_Ticket_ClockResumed(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        if case["paused_since"]:
            case["paused_seconds"] += int((occurred(e) - parse(case["paused_since"])).total_seconds())
        case["paused_since"] = None
        self._changed_case(case)

    def _resolved(self, rows: RowCache, e: Any) -> None:
        case = self._case(rows, e.originator_id)
        if self._milestone(case, "resolved", e):
            self._count(case, e, "aht.resolved")
            self._count(case, e, "aht.seconds", self._elapsed(case, "received", e))

    def on_Ticket_Resolved(self, e: Any, position: int, rows: RowCache) -> None:
        self._count(self._case(rows, e.originator_id), e, "resolutions.proposed")
        if not e.review_required:
            self._resolved(rows, e)

    def on_Ticket_Reviewed(self, e: Any, position: int, rows: RowCache) -> None:
        if e.approved:
            self._resolved(rows, e)
        else:
            self._count(self._case(rows, e.originator_id), e, "resolutions.rejected")

    def on_Ticket_ResultFedBack(self, e: Any, position: int, rows: RowCache) -> None:
        self._reach(rows, e, "result_fed_back")

    def on_Ticket_AcceptanceRecorded(self, e: Any, position: int, rows: RowCache) -> None:
        if e.accepted:
            self._reach(rows, e, "accepted")
        else:
            self._count(self._case(rows, e.originator_id), e, "resolutions.rejected")

    def on_Ticket_Closed(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        if self._milestone(case, "closed", e):
            self._closed_for_archive(case, e)
        self._count(case, e, "tickets.closed")

    def on_Ticket_ClosedUnconfirmed(self, e: Any, position: int, rows: RowCache) -> None:
        """Closed because the customer never confirmed (rules.customer_silence): a closing all the same."""
        self.on_Ticket_Closed(e, position, rows)
        self._count(self._case(rows, e.originator_id), e, "tickets.closed_unconfirmed")

    def on_Ticket_ProgressUpdated(self, e: Any, position: int, rows: RowCache) -> None:
        self._reach(rows, e, "tracking_started")

    def on_Ticket_Reopened(self, e: Any, position: int, rows: RowCache) -> None:
        self._count(self._case(rows, e.originator_id), e, "tickets.reopened")

    def on_Ticket_Archived(self, e: Any, position: int, rows: RowCache) -> None:
        self._archived(self._reach(rows, e, "archived"))

    # -- complaints, feedback, surveys ------------------------------------------------------------
    def on_Complaint_Accepted(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._open(e, "complaint", "accepted", agent=e.handler, rows=rows)
        self._count_cohort(case, "complaints.accepted")
        self._count_cohort(case, "loop.opened")

    def on_Complaint_Classified(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        case["service_type"] = _service_type(e, case)
        case["attrs"] = {**case["attrs"], **selection_attributes("complaint", e)}
        self._changed_case(case)
        self._milestone(case, "classified", e)

    def on_Complaint_InvestigationStarted(self, e: Any, position: int, rows: RowCache) -> None:
        self._complaint_response(self._reach(rows, e, "first_handled"), e)

    def on_Complaint_Escalated(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        if self._milestone(case, "escalated", e):
            self._count_cohort(case, "complaints.escalated")

    def on_Complaint_RemedyDecided(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        if self._milestone(case, "remedied", e):
            self._count_cohort(case, "complaints.handled")

    def on_Complaint_CustomerNotified(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        if self._milestone(case, "customer_notified", e):
            self._count_cohort(case, "loop.closed")

    def on_Complaint_Evaluated(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        if self._milestone(case, "evaluated", e):
            self._closed_for_archive(case, e)
        self._count(case, e, "complaint_eval.answered")
        self._count(case, e, "complaint_eval.satisfied", 1 if e.satisfied else 0)

    def on_Complaint_ClosedUnevaluated(self, e: Any, position: int, rows: RowCache) -> None:
        """Closed because the customer never evaluated (rules.customer_silence): closed, not evaluated."""
        case = self._case(rows, e.originator_id)
        if self._milestone(case, "closed_unevaluated", e):
            self._closed_for_archive(case, e)

    def on_Complaint_Archived(self, e: Any, position: int, rows: RowCache) -> None:
        self._archived(self._reach(rows, e, "archived"))

    def on_Feedback_Submitted(self, e: Any, position: int, rows: RowCache) -> None:
        self._count_cohort(self._open(e, "feedback", "received", rows=rows), "loop.opened")

    def on_Feedback_Responded(self, e: Any, position: int, rows: RowCache) -> None:
        self._reach(rows, e, "responded")

    def on_Feedback_Replied(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        if self._milestone(case, "replied", e):
            self._count_cohort(case, "loop.closed")

    def on_SurveyResponse_Answered(self, e: Any, position: int, rows: RowCache) -> None:
        self._survey(self._case(rows, e.ticket_id), e)


def _service_type(e: Any, case: dict[str, Any]) -> str:
    """The service type set at classification (events written before it existed have none)."""
    return getattr(e, "service_type", None) or case["service_type"] or NONE
