"""The kinds of record the ledger keeps, and the commands callers may invoke on each.

A new aggregate is registered here: its kind name (used in URLs, permissions, history imports and
replay) and the domain methods that act on one existing record of it."""
from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.access import ApiToken, DataAccess
from domain.audit import AuditEngagement
from domain.sampling import Sample
from domain.complaint import Complaint
from domain.customer import Customer
from domain.disposition import Disposition
from domain.exports import ExportJob
from domain.feedback import CaseSurvey, Feedback, SurveyResponse
from domain.findings import Finding
from domain.holds import LegalHold
from domain.incident import Incident
from domain.interaction import Interaction
from domain.jobs import JobRun
from domain.reports import ReviewReport
from domain.sla import SLABreach
from domain.ticket import Ticket
from domain.webhooks import WebhookSubscription

#: Namespace of deterministic ids (imports with an external reference, one survey per ticket).
ID_NAMESPACE = UUID("6f1c1f2e-7d55-4b8e-9a8a-3c7f0e2b9d41")

KINDS: dict[str, type[Aggregate]] = {
    "customer": Customer,
    "interaction": Interaction,
    "ticket": Ticket,
    "complaint": Complaint,
    "feedback": Feedback,
    "survey": SurveyResponse,
    "hold": LegalHold,
    "disposition": Disposition,
    # Access control (services/tokens.py, services/access_log.py): API credentials and disclosures.
    "api_token": ApiToken,
    "data_access": DataAccess,
    # Scheduled compliance jobs (scheduler/, services/sla.py, services/compliance.py).
    "sla_breach": SLABreach,
    "finding": Finding,
    "job_run": JobRun,
    # Periodic review reports (services/reviews.py) and auditors' export jobs (services/export_jobs.py).
    "review_report": ReviewReport,
    "export_job": ExportJob,
    # Webhook subscriptions of ops apps (services/webhooks.py), managed by administrators.
    "webhook_subscription": WebhookSubscription,
    # Service faults, security incidents, customer-data leaks (services/incidents.py reports them).
    "incident": Incident,
    # Surveys of contacts resolved at first contact and of complaints (services/surveys.py).
    "case_survey": CaseSurvey,
}

#: Commands that act on one existing aggregate: kind -> the domain methods callers may invoke.
ACTIONS: dict[str, frozenset[str]] = {
    "customer": frozenset({"change_tier", "update_contact", "set_consents"}),
    "interaction": frozenset({"register", "route", "close"}),
    "ticket": frozenset({"classify", "assign", "respond_first", "start_work", "pause_clock", "resume_clock",
                         "resolve", "review", "feed_back_result", "record_acceptance", "close", "reopen",
                         "archive", "update_progress"}),
    "complaint": frozenset({"classify", "start_investigation", "add_evidence", "escalate", "decide_remedy",
                            "notify_customer", "record_evaluation", "archive", "record_root_cause",
                            "respond_first", "reassign"}),
    "feedback": frozenset({"respond", "reply"}),
    "survey": frozenset(),
    "hold": frozenset(),  # holds and dispositions change through services.retention only
    "disposition": frozenset(),
    "api_token": frozenset(),  # issued and revoked through services.tokens only
    "data_access": frozenset(),
    "sla_breach": frozenset(),  # recorded and escalated by the SLA job only
    "finding": frozenset({"acknowledge", "assign", "rectify", "close", "reopen"}),  # rectification: issue 20
    "job_run": frozenset(),
    "review_report": frozenset(),  # issued by services.reviews only
    "export_job": frozenset(),  # requested, completed and downloaded through services.export_jobs only
    "webhook_subscription": frozenset(),  # created, changed and removed through services.webhooks only
    "incident": frozenset({"change_level", "note", "recover", "close"}),  # reported through services.incidents
    "case_survey": frozenset(),  # answered through services.surveys only
}
# Inspection samples and audit engagements (issue 20): drawn and opened through services.sampling.
KINDS.update({"sample": Sample, "audit": AuditEngagement})
ACTIONS.update({"sample": frozenset({"inspect"}), "audit": frozenset({"observe", "conclude"})})
