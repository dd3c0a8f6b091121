"""KPIs for people and groups, complaints, incidents and the service as a whole (issue 19).

Each is registered in :data:`projections.kpi_registry.KPIS`; the counters they read are made by
:mod:`projections.kpi_counters` (and its mixin :mod:`projections.kpi_operations`). Durations are
reported in the unit of their policy target; the numerator of an average is its total in seconds.
Availability and churn describe the whole service in a period, so they have a value only in
groups made by period alone (day, week, month, quarter).
"""

from __future__ import annotations

from collections.abc import Mapping

from projections.kpi_registry import Counters, Result, kpi, ratio

MINUTE, HOUR = 60.0, 3600.0


def _average(total_seconds: int, count: int, unit_seconds: float) -> Result:
    return None if not count else (total_seconds / unit_seconds / count, total_seconds, count)


@kpi("team_average_response", unit="minutes", target="team_average_response_minutes")
def team_average_response(c: Counters, totals: Mapping[str, int]) -> Result:
    """Mean minutes from a ticket's receipt to its first response to the customer; bucket: day of
    the first response, the team (and agent) handling it then. Numerator = total seconds."""
    return _average(c.get("response.seconds", 0), c.get("response.count", 0), MINUTE)


@kpi("complaint_average_response", unit="hours", target="complaint_avg_response_hours")
def complaint_average_response(c: Counters, totals: Mapping[str, int]) -> Result:
    """Mean hours from a complaint's acceptance to its first response — the first of a recorded first
    response or the start of its investigation; bucket: day of that response, the complaint's handler.
    Numerator = total seconds."""
    return _average(c.get("complaint_response.seconds", 0), c.get("complaint_response.count", 0), HOUR)


@kpi("complaint_handling_satisfaction", target="complaint_handling_satisfaction")
def complaint_handling_satisfaction(c: Counters, totals: Mapping[str, int]) -> Result:
    """Complaint evaluations in which the customer was satisfied ÷ complaint evaluations (the
    customer's own evaluation of the handling); bucket: day evaluated, the complaint's handler."""
    return ratio(c.get("complaint_eval.satisfied", 0), c.get("complaint_eval.answered", 0))


@kpi("complaint_rate", target="complaint_rate")
def complaint_rate(c: Counters, totals: Mapping[str, int]) -> Result:
    """Complaints accepted in the group's period ÷ all customers registered up to the end of the
    dashboard period, as a fraction; judged per group, so per week / month / quarter when grouped
    by one (the target is a rate per period, not per day); cohort bucket: acceptance day."""
    return ratio(c.get("complaints.accepted", 0), totals.get("customers", 0))


@kpi("complaint_handling_rate")
def complaint_handling_rate(c: Counters, totals: Mapping[str, int]) -> Result:
    """Complaints with a remedy decided (handled) ÷ complaints accepted; cohort bucket: the
    complaint's acceptance day, channel, accepting handler and customer tier."""
    return ratio(c.get("complaints.handled", 0), c.get("complaints.accepted", 0))


@kpi("closed_loop_rate")
def closed_loop_rate(c: Counters, totals: Mapping[str, int]) -> Result:
    """Complaints whose customer was told the outcome plus feedback replied to ÷ complaints accepted
    plus feedback submitted (闭环处理率); cohort bucket: the case's creation day."""
    return ratio(c.get("loop.closed", 0), c.get("loop.opened", 0))


@kpi("archiving_rate")
def archiving_rate(c: Counters, totals: Mapping[str, int]) -> Result:
    """Tickets and complaints archived ÷ those closed (a ticket's first closing, a complaint's
    evaluation); both counted in the bucket of the closure (its day, the handler then)."""
    return ratio(c.get("archive.archived", 0), c.get("archive.closed", 0))


@kpi("error_rate", target="error_rate")
def error_rate(c: Counters, totals: Mapping[str, int]) -> Result:
    """Proposed ticket resolutions found wrong — refused by the second reviewer or rejected by the
    customer at acceptance — ÷ resolutions proposed (the ledger records no other operation errors);
    bucket: day of the event, the handler then."""
    return ratio(c.get("resolutions.rejected", 0), c.get("resolutions.proposed", 0))


@kpi("availability", target="availability")
def availability(c: Counters, totals: Mapping[str, int]) -> Result:
    """1 − downtime ÷ time in the period, where downtime is the time from the start of each service
    fault (incident of kind service_fault) to its recovery, split over the days it spans (the
    ledger records no uptime probes: faults are what it knows). Period groups only; numerator =
    seconds up, denominator = seconds in the period (24 h a day)."""
    period = totals.get("period_seconds", 0)
    return ratio(max(period - c.get("incidents.downtime_seconds", 0), 0), period)


@kpi("churn_rate")
def churn_rate(c: Counters, totals: Mapping[str, int]) -> Result:
    """Customers active (registered or opened a contact, ticket, complaint or feedback) in the
    preceding period of the same length and not in this one ÷ customers active in the preceding
    period (the ledger records no churn events: inactivity is what it knows). Period groups only."""
    return ratio(totals.get("churned", 0), totals.get("active_before", 0))


@kpi("incident_recovery", unit="hours", target="incident_recovery_hours")
def incident_recovery(c: Counters, totals: Mapping[str, int]) -> Result:
    """Mean hours from the start of a service fault to its recovery; bucket: day recovered.
    Numerator = total seconds."""
    return _average(c.get("incidents.faults.recovery_seconds", 0), c.get("incidents.faults.recovered", 0), HOUR)


@kpi("security_incident_handling", unit="hours", target="security_incident_hours")
def security_incident_handling(c: Counters, totals: Mapping[str, int]) -> Result:
    """Mean hours from the start of a security incident or data leak to its closure (handled);
    bucket: day closed. Numerator = total seconds."""
    return _average(c.get("incidents.security.handling_seconds", 0), c.get("incidents.security.handled", 0), HOUR)


@kpi("data_leak_handling_rate", target="data_leak_handling_rate")
def data_leak_handling_rate(c: Counters, totals: Mapping[str, int]) -> Result:
    """Customer-data leaks closed (handled) ÷ customer-data leaks reported; cohort bucket: the day
    the leak was reported."""
    return ratio(c.get("incidents.leaks.handled", 0), c.get("incidents.leaks.reported", 0))
