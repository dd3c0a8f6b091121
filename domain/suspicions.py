"""What the compliance audit's rules report: the rules themselves, :class:`Suspicion` s and
:class:`Clearance` s, and the deterministic id of the finding each suspicion would become.

A module of its own so that both ``domain.findings`` (the case rules and the ``Finding``
aggregate) and ``domain.event_rules`` (the rules one event decides on its own) can use these
without importing each other; ``domain.findings`` re-exports them for the audit's readers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping
from uuid import UUID

from domain.ids import uuid5_text

FINDING_NAMESPACE = UUID("e46d053d-e242-44b4-bca4-4c6cd679759d")


@dataclass(frozen=True)
class Rule:
    key: str
    subject: str
    title: str
    #: The policy entry holding the rule's clause; default ``audit.<key>``. A rule that applies another
    #: entry's terms cites that entry instead.
    entry: str = ""

    @property
    def policy_entry(self) -> str:
        return self.entry or f"audit.{self.key}"


RULES: dict[str, Rule] = {r.key: r for r in (
    Rule("closed_without_acceptance", "ticket", "ticket closed without the customer's acceptance"),
    Rule("complaint_archived_without_evidence", "complaint", "complaint archived without evidence"),
    Rule("complaint_archived_without_remedy", "complaint", "complaint archived without a remedy decision"),
    Rule("complaint_archived_without_notification", "complaint", "complaint archived without notifying the customer"),
    Rule("complaint_archived_without_evaluation", "complaint", "complaint archived without the customer's evaluation"),
    Rule("sla_breach", "case", "an SLA clock passed its limit"),
    Rule("second_review_missing", "ticket", "complex or high-risk ticket resolved without a second reviewer"),
    Rule("contact_not_registered", "interaction", "contact received but not registered within the grace time"),
    Rule("contact_not_routed", "interaction", "contact received but not routed within the grace time"),
    Rule("first_contact_owner_changed", "ticket", "first-contact owner differs from the agent who took the contact"),
    Rule("personal_data_access_without_need", "data_access", "personal data read unmasked by a role without need"),
    Rule("retention_not_disposed", "customer", "records past retention and disposable, not destroyed"),
    Rule("integrity_check_failed", "log", "the integrity verification of the transparency log failed"),
    Rule("four_eyes_same_os_user", "case", "both persons of a four-eyes step acted as one OS user on one host"),
    Rule("business_time_ahead", "event", "an event dated later than it was stored, beyond the clock skew"),
    # Issue 20: the supervision cycle (services/rectification.py).
    Rule("rectification_overdue", "finding", "a finding assigned for rectification was not rectified by its due date"),
    Rule("calendar_data_missing", "calendar", "a year begins soon without the State Council's holiday notice loaded"),
    # Issue 19: incidents that miss their policy targets (004 §4.3; services/incidents.py decides at audit time).
    Rule("incident_recovery_late", "incident", "a service fault was not recovered within the recovery target"),
    Rule("security_incident_late", "incident", "a security incident or data leak was not handled within its target"),
    # Issue 19: a case pinned to a policy version without rules.customer_silence / rules.archive_watch is
    # never closed or archived by the stalled-cases job; once it has waited past the windows of the version
    # in force, it is a finding (services/stalled.py). Cites the rule whose windows it applies.
    Rule("stalled_under_superseded_policy", "case", "a case under a policy version without the stalled-case "
         "rules waited past the windows of the version in force", entry="customer_silence"),
)}


def finding_id(rule: str, subject_kind: str, subject_id: str, discriminator: str = "") -> UUID:
    return UUID(finding_key(rule, subject_kind, subject_id, discriminator))


@functools.lru_cache(maxsize=1 << 14)
def finding_key(rule: str, subject_kind: str, subject_id: str, discriminator: str) -> str:
    """:func:`finding_id` as text (what read models key by). Cached: a suspicion's clearance (the
    case's next events) asks for the same id again."""
    return uuid5_text(FINDING_NAMESPACE, f"finding:{rule}:{subject_kind}:{subject_id}:{discriminator}")


@dataclass(frozen=True)
class Suspicion:
    """Rule ``rule`` is broken by the subject from ``due_at`` on, unless a clearance comes first."""

    rule: str
    subject_kind: str
    subject_id: str
    policy_ref: str
    due_at: datetime
    facts: Mapping[str, Any] = field(default_factory=dict)
    discriminator: str = ""

    @property
    def finding_id(self) -> UUID:
        return finding_id(self.rule, self.subject_kind, self.subject_id, self.discriminator)

    @property
    def finding_key(self) -> str:
        return finding_key(self.rule, self.subject_kind, self.subject_id, self.discriminator)


@dataclass(frozen=True)
class Clearance:
    """The pending suspicion with this finding id (as text, :func:`finding_key`) turned out fine."""

    finding_key: str
