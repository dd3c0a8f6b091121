"""Part of the KPI counters' handlers: customers (tier, activity), incidents (recovery, downtime,
security handling, data leaks), the complaint response, archiving and surveys of any case.

A mixin of :class:`projections.kpi_counters.KpiCounters` (kept apart only for the module length
limit): it uses that class's ``_open``, ``_case``, ``_count``, ``_count_cohort``, ``_milestone``,
``_terms``, ``_added`` and the batch's answers ``_tiers`` and ``_activity``. Incidents have no
channel, team, agent or customer: their counters are
in the ``-`` bucket of those dimensions, on the business day (policy time zone) of the event;
downtime is split over the business days it spans, so availability per day is right.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from domain.incident import IncidentKind
from projections.rowcache import RowCache
from projections.store import Table
from projections.timeutil import local_day, occurred, parse

NONE = "-"
#: A customer's tier now (counters take the tier at the time of the event they count).
CUSTOMER_TABLE = Table("rm_kpi_customer", columns=(("customer_id", "TEXT"), ("tier", "TEXT")), key=("customer_id",))
#: Business days on which a customer opened something (contact, ticket, complaint, feedback): churn.
ACTIVITY_TABLE = Table("rm_kpi_activity", columns=(("day", "TEXT"), ("customer_id", "TEXT")),
                       key=("day", "customer_id"))


class OperationsCounters:
    # -- customers ---------------------------------------------------------------------------------
    def _tier(self, rows: RowCache | None, customer_id: str | None) -> str:
        if not customer_id or rows is None:
            return NONE
        tier = self._tiers.get(customer_id)
        if tier is None:  # once per customer and batch (a tier put in the batch forgets it)
            row = rows.peek(CUSTOMER_TABLE.name, customer_id)
            tier = self._tiers[customer_id] = row["tier"] if row else NONE
        return tier

    def _active(self, rows: RowCache, customer_id: str, day: str) -> None:
        if (day, customer_id) in self._activity:
            return
        self._activity.add((day, customer_id))
        if rows.peek(ACTIVITY_TABLE.name, day, customer_id) is None:
            rows.put(ACTIVITY_TABLE.name, {"day": day, "customer_id": customer_id})

    def on_Customer_Registered(self, e: Any, position: int, rows: RowCache) -> None:
        customer_id, day = str(e.originator_id), self._terms(e.policy_ref).day(e)
        rows.put(CUSTOMER_TABLE.name, {"customer_id": customer_id, "tier": e.tier})
        self._tiers.pop(customer_id, None)
        self._active(rows, customer_id, day)
        self._added[(day, NONE, NONE, NONE, NONE, e.tier, NONE, "customers.registered")] += 1

    def on_Customer_TierChanged(self, e: Any, position: int, rows: RowCache) -> None:
        customer_id = str(e.originator_id)
        rows.put(CUSTOMER_TABLE.name, {"customer_id": customer_id, "tier": e.to_tier})
        self._tiers.pop(customer_id, None)

    def _elapsed(self, case: dict[str, Any], since: str, e: Any) -> int:
        """Whole seconds from milestone ``since`` of the case to event ``e``."""
        return int((occurred(e) - parse(case["milestones"][since])).total_seconds())

    def _closed_for_archive(self, case: dict[str, Any], e: Any) -> None:
        """A record's first closure: counted in its closure bucket, where its archiving is counted too."""
        bucket = list(self._bucket(case, e))
        case["attrs"] = {**case["attrs"], "closure_bucket": bucket}
        self._changed_case(case)
        self._added[(*bucket, "archive.closed")] += 1

    def _archived(self, case: dict[str, Any]) -> None:
        bucket = case["attrs"].get("closure_bucket")
        if bucket:
            self._added[(*bucket, "archive.archived")] += 1

    def _survey(self, case: dict[str, Any], e: Any) -> None:
        """CSAT / NPS answers, in the bucket of the surveyed case (its channel, team, agent…)."""
        scales = self._terms(e.policy_ref).policy.rule("survey_scales")
        if e.csat is not None:
            self._count(case, e, "csat.answered")
            self._count(case, e, "csat.satisfied", 1 if e.csat >= scales["csat_satisfied_min"] else 0)
        if e.nps is not None:
            self._count(case, e, "nps.answered")
            self._count(case, e, "nps.promoters", 1 if e.nps >= scales["nps_promoter_min"] else 0)
            self._count(case, e, "nps.detractors", 1 if e.nps <= scales["nps_detractor_max"] else 0)

    def on_CaseSurvey_Answered(self, e: Any, position: int, rows: RowCache) -> None:
        """A contact's or complaint's survey: in the bucket of the surveyed case, like a ticket's."""
        self._survey(self._case(rows, e.case_id), e)

    # -- complaint response (004 §4.3 item 2: average ≤ 2 h) ---------------------------------------
    def _complaint_response(self, case: dict[str, Any], e: Any) -> None:
        """The complaint's first response to the customer: the first of a recorded first response or
        the start of its handling (investigation), counted once."""
        attrs = case["attrs"]
        if attrs.get("responded"):
            return
        case["attrs"] = {**attrs, "responded": True}
        self._changed_case(case)
        self._count(case, e, "complaint_response.count")
        self._count(case, e, "complaint_response.seconds", self._elapsed(case, "accepted", e))

    def on_Complaint_FirstResponded(self, e: Any, position: int, rows: RowCache) -> None:
        self._complaint_response(self._reach(rows, e, "first_responded"), e)

    def on_Complaint_HandlerReassigned(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        case["agent"] = getattr(e, "handler", None) or getattr(e, "to_handler", None) or case["agent"]
        self._changed_case(case)

    # -- incidents ---------------------------------------------------------------------------------
    def _incident_count(self, case: dict[str, Any], day: str, measure: str, by: int = 1) -> None:
        self._added[(day, NONE, NONE, NONE, NONE, NONE, NONE, measure)] += by

    def on_Incident_Reported(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._open(e, "incident", "reported", {"incident_kind": e.incident_kind, "started_at": e.started_at})
        if e.incident_kind == IncidentKind.DATA_LEAK:
            self._count_cohort(case, "incidents.leaks.reported")

    def on_Incident_Recovered(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        if not self._milestone(case, "recovered", e) or case["attrs"]["incident_kind"] != IncidentKind.SERVICE_FAULT:
            return
        terms = self._terms(case["policy_ref"])
        began, ended = parse(case["attrs"]["started_at"]), occurred(e)
        day = terms.day(e)
        self._incident_count(case, day, "incidents.faults.recovered")
        self._incident_count(case, day, "incidents.faults.recovery_seconds", int((ended - began).total_seconds()))
        for downtime_day, seconds in _split_by_day(began, ended, terms.tz):
            self._incident_count(case, downtime_day, "incidents.downtime_seconds", seconds)

    def on_Incident_Closed(self, e: Any, position: int, rows: RowCache) -> None:
        case = self._case(rows, e.originator_id)
        if not self._milestone(case, "closed", e):
            return
        kind = case["attrs"]["incident_kind"]
        if kind in IncidentKind.SECURITY_KINDS:
            began = parse(case["attrs"]["started_at"])
            day = self._terms(case["policy_ref"]).day(e)
            self._incident_count(case, day, "incidents.security.handled")
            self._incident_count(case, day, "incidents.security.handling_seconds",
                                 int((occurred(e) - began).total_seconds()))
        if kind == IncidentKind.DATA_LEAK:
            self._count_cohort(case, "incidents.leaks.handled")


def _split_by_day(began: datetime, ended: datetime, tz: Any) -> list[tuple[str, int]]:
    """Seconds of [began, ended) on each business day (local midnight to midnight) it spans."""
    out: list[tuple[str, int]] = []
    start = began.astimezone(tz)
    end = ended.astimezone(tz)
    while start < end:
        midnight = datetime.combine(start.date() + timedelta(days=1), datetime.min.time(), tzinfo=tz)
        stop = min(midnight, end)
        out.append((local_day(start, tz), int((stop - start).total_seconds())))
        start = stop
    return out
