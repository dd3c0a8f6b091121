"""The compliance audit's rules that one event decides on its own, with no case state: a business
time ahead of the event's recording, an SLA breach, a failed integrity check, an unmasked read by a
role without need. (The rules that follow a case through its events are ``domain.findings.CaseAudit``.)

The business-time rule reads every event of every kind of record. The ledger refuses a business
time later than its wall clock plus the allowed skew before it stores an event
(``ledger.application.CaseLedger._record``), so a stored event dated ahead of its own recording
time (``timestamp``, set when the event was made) beyond that skew was stored before the check
existed, or written to the database directly: only the audit, reading the stored events, finds it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Mapping

from eventsourcing.domain import CanMutateAggregate

from domain.access import ApiToken, DataAccess
from domain.audit import AuditEngagement
from domain.complaint import Complaint
from domain.customer import Customer
from domain.disposition import Disposition
from domain.exports import ExportJob
from domain.feedback import CaseSurvey, Feedback, SurveyResponse
from domain.incident import Incident
from domain.holds import LegalHold
from domain.interaction import Interaction
from domain.jobs import JobRun
from domain.reports import ReviewReport
from domain.sampling import Sample
from domain.sla import SLABreach
from domain.suspicions import Suspicion
from domain.ticket import Ticket
from domain.webhooks import WebhookSubscription

#: Keys of a job run's ``details`` that report an integrity verification (see scheduler/jobs.py).
INTEGRITY_OK, INTEGRITY_PROBLEM, INTEGRITY_PROBLEM_KEY = "integrity_ok", "problem", "problem_key"

#: Kind (as ``ledger.application.KINDS`` names it; a test keeps the two in step) → aggregate class.
#: Without ``finding``: the audit writes findings itself, and its read model takes their events apart.
RECORD_KINDS: dict[str, type] = {
    "customer": Customer, "interaction": Interaction, "ticket": Ticket, "complaint": Complaint,
    "feedback": Feedback, "survey": SurveyResponse, "hold": LegalHold, "disposition": Disposition,
    "api_token": ApiToken, "data_access": DataAccess, "sla_breach": SLABreach, "job_run": JobRun,
}
RECORD_KINDS.update({"review_report": ReviewReport, "export_job": ExportJob})  # issue #20: reviews, export jobs
RECORD_KINDS.update({"incident": Incident, "case_survey": CaseSurvey})  # issue 19: incidents, case surveys
RECORD_KINDS.update({"sample": Sample, "audit": AuditEngagement})  # issue 20: inspection samples, audit engagements
RECORD_KINDS.update({"webhook_subscription": WebhookSubscription})  # issue 23: webhook subscriptions
_KIND_OF_CLASS = {cls.__name__: kind for kind, cls in RECORD_KINDS.items()}

#: The qualname of every event class of every kind above, e.g. ``Ticket.Closed``.
EVERY_EVENT: frozenset[str] = frozenset(
    value.__qualname__ for cls in RECORD_KINDS.values() for value in vars(cls).values()
    if isinstance(value, type) and issubclass(value, CanMutateAggregate))

_ONE_EVENT_RULES = frozenset({"SLABreach.SLABreached", "JobRun.Finished", "DataAccess.PersonalDataDisclosed"})
#: The events (class qualnames) :func:`standalone_suspicions` decides on; it finds nothing in any other.
STANDALONE_EVENTS: frozenset[str] = _ONE_EVENT_RULES | EVERY_EVENT
#: Of those, the ones a rule may find something in even when the event is not dated ahead of its
#: recording (for the others, only the business-time rule can: a read model may skip the call).
ONE_EVENT_RULES: frozenset[str] = _ONE_EVENT_RULES


def _at(e: Any) -> datetime:
    return datetime.fromisoformat(e.meta["occurred_at"])


def standalone_suspicions(e: Any, roles_with_need: frozenset[str] | None = None) -> list[Suspicion]:
    """Rules that one event decides on its own (see the module docstring); ``roles_with_need``: the
    roles the access policy lets unmask personal data (None: no access policy known, that rule is
    inactive)."""
    name = type(e).__qualname__
    if name not in STANDALONE_EVENTS:
        return []
    policy_ref = e.meta.get("policy") or ""
    found = [] if (ahead := _at(e) - e.timestamp) <= timedelta(0) else [_ahead(e, name, policy_ref, ahead)]
    if name not in _ONE_EVENT_RULES:
        return found
    if name == "SLABreach.SLABreached":
        found.append(Suspicion("sla_breach", e.case_kind, e.case_id, e.policy_ref, _at(e),
                               {"clock": e.clock_key, "cycle": e.cycle, "breach_id": str(e.originator_id),
                                "breached_at": e.breached_at, "clause": e.clause}, f"{e.clock_key}:{e.cycle}"))
    elif name == "JobRun.Finished":
        integrity = integrity_suspicion(e.details or {}, str(e.originator_id), policy_ref, _at(e))
        found += [integrity] if integrity else []
    elif roles_with_need is not None and e.meta.get("actor_role") not in roles_with_need:  # a disclosure
        found.append(Suspicion("personal_data_access_without_need", "data_access", str(e.originator_id), policy_ref,
                               _at(e), {"actor_id": e.meta.get("actor_id"), "actor_role": e.meta.get("actor_role"),
                                        "subject": e.subject, "fields": list(e.fields), "resource": e.resource}))
    return found


def _ahead(e: Any, name: str, policy_ref: str, ahead: timedelta) -> Suspicion:
    """An event dated ``ahead`` of its recording: suspected at any lead, due when it was recorded. The
    read model does not know the ledger's clock skew (a setting), so the audit judges it when raising
    (:func:`beyond_skew`)."""
    return Suspicion("business_time_ahead", _KIND_OF_CLASS.get(name.split(".", 1)[0], "event"), str(e.originator_id),
                     policy_ref, e.timestamp, {"event": name, "version": e.originator_version,
                                               "occurred_at": e.meta["occurred_at"],
                                               "recorded_at": e.timestamp.isoformat(),
                                               "ahead_seconds": ahead.total_seconds()}, f"v{e.originator_version}")


def beyond_skew(suspicion: Suspicion, skew: timedelta) -> Suspicion | None:
    """A due suspicion as the audit raises it. An event dated ahead of its recording by no more than
    ``skew`` (the ledger's allowed clock skew) broke no rule: None, and it stays pending, never raised
    (rare: only a caller's fast clock within the skew gets there). Beyond it, the finding also
    records the skew it was judged by."""
    if suspicion.rule != "business_time_ahead":
        return suspicion
    if suspicion.facts["ahead_seconds"] <= skew.total_seconds():
        return None
    return replace(suspicion, facts={**suspicion.facts, "skew_seconds": skew.total_seconds()})


def integrity_suspicion(details: Mapping[str, Any], run_id: str, policy_ref: str, at: datetime) -> Suspicion | None:
    """The finding a failed integrity verification (a job run's details) calls for; one per problem."""
    if details.get(INTEGRITY_OK) is not False:
        return None
    return Suspicion("integrity_check_failed", "log", "transparency-log", policy_ref, at,
                     {"job_run": run_id, "problem": str(details.get(INTEGRITY_PROBLEM, ""))},
                     str(details.get(INTEGRITY_PROBLEM_KEY) or run_id))
