"""Reporting an incident (service fault, security incident, customer-data leak).

Incidents belong to no customer and no existing case, so :class:`ledger.application.CaseLedger`
has no creation method for them: this use case builds one under the policy in force and saves it
with ``ledger.record``. Later steps (level, timeline, recovery, closure) are ordinary actions
(``ledger.act("incident", id, …)``, listed in ``ledger.kinds.ACTIONS``).

:func:`late_incidents` is the compliance audit's rule for incidents that miss their policy targets
(registered in ``services.compliance.EXTERNAL_RULES``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from domain.context import Context
from domain.incident import Incident, IncidentKind
from domain.suspicions import Suspicion, finding_key
from projections.findings import FINDING_TABLE
from projections.incidents import INCIDENT_TABLE, IncidentList
from projections.runtime import ProjectionRunner
from projections.timeutil import parse


def report_incident(ledger: Any, ctx: Context, *, incident_kind: str, level: str,
                    started_at: datetime | None = None, affected_customers: int = 0,
                    summary: str | None = None) -> Incident:
    incident = Incident.report(id=uuid4(), incident_kind=incident_kind, level=level,
                               policy=ledger.policy_for_new_case(ctx), ctx=ctx, started_at=started_at,
                               affected_customers=affected_customers, summary=summary)
    ledger.record(incident)
    return incident


# -- the compliance audit's incident rules (004 §4.3; rules."audit.incident_recovery_late" and
# rules."audit.security_incident_late"): decided at audit time from the incidents read model ----
#: rule → (incident kinds it judges, the target, the read model's column where the clock stops).
_LATE_RULES = {
    "incident_recovery_late": (frozenset({IncidentKind.SERVICE_FAULT}), "incident_recovery_hours", "recovered_at"),
    "security_incident_late": (IncidentKind.SECURITY_KINDS, "security_incident_hours", "closed_at"),
}


def late_incidents(ledger: Any, as_of: datetime) -> list[Suspicion]:
    """One suspicion per incident that missed its target by ``as_of``: a service fault not recovered,
    a security incident or data leak not closed, within the hours its own policy's target allows from
    the impact's start (still open past the deadline, or ended late). Incidents already found are
    skipped; the finding cites the target's clause."""
    runner = ProjectionRunner(ledger, [IncidentList(ledger)])
    try:
        runner.ensure_tables()
        runner.catch_up()
        with runner.db.reading() as cur:
            names = INCIDENT_TABLE.column_names
            rows = [dict(zip(names, r)) for r in cur.execute(
                f"SELECT {', '.join(names)} FROM {INCIDENT_TABLE.name} ORDER BY seq").fetchall()]
            found = _already_found(cur)
    finally:
        runner.close()
    out: list[Suspicion] = []
    for row in rows:
        for rule, (kinds, target_key, ended_column) in _LATE_RULES.items():
            if row["incident_kind"] not in kinds or finding_key(rule, "incident", row["incident_id"], "") in found:
                continue
            suspicion = _late(ledger, rule, target_key, row, row[ended_column], as_of)
            if suspicion is not None:
                out.append(suspicion)
    return out


def _already_found(cur: Any) -> set[str]:
    """Findings of these rules already raised (the audit catches the findings read model up first)."""
    marks = ", ".join("?" for _ in _LATE_RULES)
    return {str(key) for (key,) in cur.execute(
        f"SELECT finding_id FROM {FINDING_TABLE.name} WHERE rule IN ({marks})", tuple(_LATE_RULES)).fetchall()}


def _late(ledger: Any, rule: str, target_key: str, row: dict[str, Any], ended: str | None,
          as_of: datetime) -> Suspicion | None:
    started = parse(row["started_at"])
    if ended is None and as_of - started <= timedelta(hours=_shortest(ledger, target_key)):
        return None  # open, but no policy's target can have passed yet: no need to load the incident
    incident = ledger.get("incident", row["incident_id"])
    policy = ledger.policy_of(incident)
    target = policy.target(target_key)
    due = started + timedelta(hours=target.value)
    took = (parse(ended) if ended else as_of) - started
    if (ended is None and as_of <= due) or (ended is not None and target.met(took.total_seconds() / 3600)):
        return None
    facts: dict[str, Any] = {"clause": target.source, "target": target_key, "limit_hours": target.value,
                             "incident_kind": row["incident_kind"], "level": row["level"],
                             "started_at": started.isoformat(), "ended_at": parse(ended).isoformat() if ended else None,
                             "hours": round(took.total_seconds() / 3600, 2)}
    if row["incident_kind"] == IncidentKind.DATA_LEAK and "data_leak_handling_rate" in policy.targets:
        facts["also"] = {"target": "data_leak_handling_rate", "clause": policy.target("data_leak_handling_rate").source}
    return Suspicion(rule, "incident", row["incident_id"], policy.ref, due, facts)


def _shortest(ledger: Any, target_key: str) -> float:
    """The smallest value any loaded policy gives ``target_key`` (hours)."""
    values = [p.targets[target_key].value for p in ledger.policies.policies.values() if target_key in p.targets]
    return min(values, default=0.0)
