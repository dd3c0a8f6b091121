"""Every dashboard KPI, defined once: its docstring is its definition, its target comes from policy.

A KPI is a function of the summed counters of one group (see :mod:`projections.kpi_counters`
for what is counted and how events are bucketed). It returns ``(value, numerator, denominator)``
or ``None`` when the denominator is zero (no data is not 0 %). Its target and the target's
clause are looked up in the policy in force at the end of the period (``policy.target(key)``);
SLA compliance shows the clock's own clause instead, since the policy states limits, not a
target share.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from domain.errors import PolicyError
from projections import operations_kpis  # noqa: F401 - registers the people, complaint and incident KPIs
from projections.kpi_grouping import grouped_counters
from projections.kpi_registry import KPIS, Counters, Kpi, Result, kpi  # noqa: F401 - re-exported
from projections.kpi_registry import ratio as _ratio
from projections.store import ViewDatabase


@kpi("first_contact_resolution")
def first_contact_resolution(c: Counters, totals: Mapping[str, int]) -> Result:
    """Interactions closed as resolved on first contact ÷ interactions closed; bucket: day the
    interaction was closed, its channel, its routing queue as team."""
    return _ratio(c.get("fcr.resolved", 0), c.get("fcr.closed", 0))


@kpi("csat", target="csat")
def csat(c: Counters, totals: Mapping[str, int]) -> Result:
    """Survey answers with CSAT ≥ survey_scales.csat_satisfied_min ÷ survey answers with a CSAT
    score; bucket: day answered, the surveyed ticket's channel and team."""
    return _ratio(c.get("csat.satisfied", 0), c.get("csat.answered", 0))


@kpi("nps", unit="points")
def nps(c: Counters, totals: Mapping[str, int]) -> Result:
    """% of NPS answers ≥ nps_promoter_min minus % ≤ nps_detractor_max (−100…100); bucket: day
    answered, the surveyed ticket's channel and team. Numerator reported = promoters − detractors."""
    answered = c.get("nps.answered", 0)
    net = c.get("nps.promoters", 0) - c.get("nps.detractors", 0)
    return _ratio(net, answered, 100.0)


@kpi("average_handling_time", unit="seconds")
def average_handling_time(c: Counters, totals: Mapping[str, int]) -> Result:
    """Mean elapsed business time (event occurred_at) from a ticket's receipt to its first
    resolution (after second review when one is required); bucket: day resolved, channel, team at
    resolution. Numerator = total seconds, denominator = tickets resolved."""
    return _ratio(c.get("aht.seconds", 0), c.get("aht.resolved", 0))


@kpi("reopen_rate")
def reopen_rate(c: Counters, totals: Mapping[str, int]) -> Result:
    """Ticket reopenings ÷ ticket closings in the period; bucket: day of the reopen / close event,
    channel, team at that time."""
    return _ratio(c.get("tickets.reopened", 0), c.get("tickets.closed", 0))


@kpi("escalation_rate")
def escalation_rate(c: Counters, totals: Mapping[str, int]) -> Result:
    """Complaints escalated at least once ÷ complaints accepted; cohort bucket: both counted on
    the complaint's acceptance day and channel (team '-')."""
    return _ratio(c.get("complaints.escalated", 0), c.get("complaints.accepted", 0))


@kpi("complaint_rate_per_1000_customers", unit="per_1000", target="complaint_rate")
def complaint_rate(c: Counters, totals: Mapping[str, int]) -> Result:
    """Complaints accepted in the group ÷ all customers registered up to the end of the period,
    × 1,000; bucket: acceptance day and channel. The policy target (a fraction) is shown × 1,000."""
    return _ratio(c.get("complaints.accepted", 0), totals.get("customers", 0), 1000.0)


@kpi("closure_rate")
def closure_rate(c: Counters, totals: Mapping[str, int]) -> Result:
    """Ticket closings ÷ tickets received in the period; bucket: day of the close / receipt event,
    channel, team at that time (receipt: '-', since no team is assigned yet)."""
    return _ratio(c.get("tickets.closed", 0), c.get("tickets.received", 0))


@kpi("intake_completeness", target="intake_completeness")
def intake_completeness(c: Counters, totals: Mapping[str, int]) -> Result:
    """Interactions routed ÷ interactions received (routing requires registration, so routed ≤
    registered ≤ received; received = registered = routed gives 1.0); cohort bucket: the
    interaction's receipt day and channel (team '-'). The three counts are reported too."""
    return _ratio(c.get("intake.routed", 0), c.get("intake.received", 0))


def sla_compliance(c: Counters, clock_key: str) -> Result:
    """Clocks stopped at or before their deadline ÷ clocks stopped, per policy clock (deadline from
    the case's own policy, priority and complexity; pausable clocks extended by the time paused);
    each clock is scored once, at the first time its stop milestone is reached; bucket: day the clock
    stopped, channel, team at that time."""
    return _ratio(c.get(f"sla.{clock_key}.met", 0), c.get(f"sla.{clock_key}.stopped", 0))


SCALE = {"complaint_rate": 1000.0}
#: KPIs whose target is scaled for display (the per-1,000 rate shows the policy's fraction × 1,000).
SCALED = {"complaint_rate_per_1000_customers"}


def dashboard(db: ViewDatabase, ledger: Any, first: date, last: date, group_by: str) -> dict[str, Any]:
    """KPIs for business days ``first``..``last`` (inclusive), one entry per group. ``group_by`` is
    one dimension or several, comma-separated (at most one period): day, week, month, quarter,
    channel, team, agent, service_type, tier, priority — e.g. ``agent,month``."""
    groups, totals = grouped_counters(db, first, last, group_by)
    policy = _policy_at(ledger, last)
    clocks = sorted(policy.clocks)
    return {"from": first.isoformat(), "to": last.isoformat(), "group_by": group_by, "policy": policy.ref,
            "customers": totals["customers"],
            "groups": [{"group": label, "dimensions": dims, "counters": dict(sorted(c.items())),
                        "kpis": _kpis(c, {**totals, **group_totals}, policy, clocks)}
                       for label, dims, c, group_totals in groups]}


def _kpis(c: Counters, totals: Mapping[str, int], policy: Any, clocks: list[str]) -> list[dict[str, Any]]:
    out = []
    for item in KPIS.values():
        target = _target(policy, item.target, SCALE.get(item.target, 1.0) if item.key in SCALED else 1.0)
        out.append(_entry(item.key, item.unit, item.definition, item.compute(c, totals), target))
    definition = " ".join((sla_compliance.__doc__ or "").split())
    for key in clocks:
        clock = policy.clock(key)
        out.append(_entry(f"sla_compliance.{key}", "ratio", definition, sla_compliance(c, key),
                          {"op": None, "value": None, "clause": clock.source, "met": None}))
    return out


def _entry(key: str, unit: str, definition: str, result: Result, target: dict[str, Any] | None) -> dict[str, Any]:
    value, numerator, denominator = result if result else (None, None, None)
    if target is not None and target.get("op") and value is not None:
        target["met"] = _met(target["op"], value, target["value"])
    return {"key": key, "unit": unit, "value": value, "numerator": numerator, "denominator": denominator,
            "definition": definition, "target": target}


def _met(op: str, value: float, goal: float) -> bool:
    return {">=": value >= goal, "<=": value <= goal, ">": value > goal, "<": value < goal}[op]


def _target(policy: Any, key: str | None, scale: float = 1.0) -> dict[str, Any] | None:
    if key is None:
        return None
    try:
        target = policy.target(key)
    except PolicyError:
        return None
    return {"op": target.op, "value": target.value * scale, "clause": target.source, "met": None}


def _policy_at(ledger: Any, day: date) -> Any:
    policy = ledger.policies.versions(ledger.policy_name)[0]
    moment = datetime.combine(day, time(23, 59), tzinfo=policy.tz)
    try:
        return ledger.policies.in_force(moment, ledger.policy_name)
    except PolicyError:
        return policy


def parse_period(first: str | None, last: str | None, today: date) -> tuple[date, date]:
    """Default period: the 30 business days up to today."""
    end = date.fromisoformat(last) if last else today
    start = date.fromisoformat(first) if first else end - timedelta(days=29)
    if start > end:
        raise ValueError("from must not be after to")
    return start, end
