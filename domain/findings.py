"""Compliance findings (合规发现): one audit rule per check, each citing its clause.

The audit reads the event stream — not the domain's refusals — so it also catches what the
commands prevent today but data imported, or written under an older policy, may still contain
(defence in depth). Rules name a policy entry ``audit.<rule>`` that holds the clause and any
number the rule needs (grace times); code holds neither.

- :class:`CaseAudit` folds a case's events into the few facts the rules need (ids and facts,
  never personal data) and reports :class:`Suspicion` s (a rule may be broken from ``due_at`` on)
  and :class:`Clearance` s (a pending suspicion turned out fine, e.g. the contact was registered
  within its grace time). :func:`standalone_suspicions` covers events that need no case state
  (``domain.event_rules``); the rules, suspicions and finding ids are in ``domain.suspicions``.
  Both are imported here too: this module is where the audit's readers find them.
- :class:`Finding` records one broken rule once (deterministic id from rule, subject and
  discriminator) and can be acknowledged with a reason — never deleted. It is then rectified
  (整改, 000 §6.2 item 5): assigned to an owner with a severity, a due date and the planned
  corrective action; rectified by the owner with the action taken and its evidence; closed by
  another person, who verifies it (four eyes); reopened with a reason. Each step is an event.
  The case rules (:class:`CaseAudit`) live in ``domain.case_audit``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Sequence
from uuid import UUID

from eventsourcing.domain import event

from domain.case import Case
from domain.case_audit import CaseAudit
from domain.context import Context, person
from domain.errors import InvalidValue, TransitionForbidden, require
from domain.event_rules import (INTEGRITY_OK, INTEGRITY_PROBLEM, INTEGRITY_PROBLEM_KEY, STANDALONE_EVENTS, beyond_skew,
                                integrity_suspicion, standalone_suspicions)
from domain.policy import Policy
from domain.suspicions import FINDING_NAMESPACE, RULES, Clearance, Rule, Suspicion, finding_id, finding_key

__all__ = ["FINDING_NAMESPACE", "INTEGRITY_OK", "INTEGRITY_PROBLEM", "INTEGRITY_PROBLEM_KEY", "RULES",
           "STANDALONE_EVENTS", "CaseAudit", "Clearance", "Finding", "Rule", "Suspicion", "beyond_skew", "finding_id",
           "finding_key", "integrity_suspicion", "standalone_suspicions"]


class Finding(Case):
    """One broken rule, raised once by the compliance audit; acknowledged with a reason, never deleted."""

    @event("Raised")
    def __init__(self, id: UUID, rule: str, clause: str, subject_kind: str, subject_id: str, facts: dict[str, Any],
                 due_at: str, policy_ref: str, meta: dict[str, Any]):
        self.rule, self.clause = rule, clause
        # What the finding is about (not ``subject_id``: on a Case that names a data subject).
        self.about_kind, self.about_id = subject_kind, subject_id
        self.facts = facts
        self.policy_ref = policy_ref
        self.status = "open"
        self.acknowledged_by: str | None = None
        self._no_rectification_yet()

    def _no_rectification_yet(self) -> None:
        self.owner: str | None = None
        self.team: str | None = None
        self.severity: str | None = None
        self.rectify_due_at: str | None = None
        self.corrective_action: str | None = None
        self.evidence: list[str] = []
        self.rectified_by: str | None = None
        self.closed_by: str | None = None
        self.reopen_count = 0

    @classmethod
    def record(cls, *, suspicion: Suspicion, policy: Policy, ctx: Context) -> Finding:
        rule = RULES.get(suspicion.rule)
        if rule is None:
            raise InvalidValue(f"unknown audit rule {suspicion.rule!r}", rule="finding.rule")
        require(suspicion.due_at <= ctx.occurred_at, f"{rule.key} is not due before {suspicion.due_at.isoformat()}",
                rule="finding.not_due")
        clause = str(suspicion.facts.get("clause") or policy.clause(rule.policy_entry))
        return cls(id=suspicion.finding_id, rule=rule.key, clause=clause, subject_kind=suspicion.subject_kind,
                   subject_id=suspicion.subject_id, facts=dict(suspicion.facts), due_at=suspicion.due_at.isoformat(),
                   policy_ref=policy.ref, meta=ctx.meta(policy.ref))

    def acknowledge(self, *, policy: Policy, ctx: Context) -> None:
        """A person responsible has seen the finding and says why it stands as it is (a reason is required)."""
        self._governed_by(policy)
        entry = policy.rule("audit.acknowledge")
        clause = str(entry.get("source", ""))
        self._require_status({"open"}, "acknowledge", rule="finding.acknowledge_once", clause=clause)
        require(ctx.actor_role in entry["roles"],
                f"only {', '.join(entry['roles'])} may acknowledge a finding, not {ctx.actor_role}",
                rule="finding.acknowledge_role", clause=clause)
        require(bool(ctx.reason and ctx.reason.strip()), "acknowledging a finding needs a reason",
                rule="finding.acknowledge_reason", clause=clause)
        self._acknowledged(self._meta(ctx))

    @event("Acknowledged")
    def _acknowledged(self, meta: dict[str, Any]) -> None:
        self.status = "acknowledged"
        self.acknowledged_by = meta["actor_id"]

    # -- rectification (整改): assign → rectify → close (four eyes) → reopen ----------------------
    #: Statuses from which each step may be taken.
    ASSIGNABLE = frozenset({"open", "assigned", "reopened"})
    RECTIFIABLE = frozenset({"assigned", "reopened"})
    CLOSABLE = frozenset({"rectified"})
    REOPENABLE = frozenset({"rectified", "closed"})

    def assign(self, *, policy: Policy, ctx: Context, owner: str, severity: str, team: str | None = None,
               due_at: datetime | None = None, corrective_action: str | None = None) -> None:
        """Give the finding an owner who must rectify it by ``due_at`` (default: the policy's days for
        the severity, from now); again to reassign it. Who may assign: the permission matrix."""
        self._governed_by(policy)
        clause = policy.clause(_RECTIFICATION)
        self._require_status(self.ASSIGNABLE, "assign", rule="finding.assign_when_open", clause=clause)
        policy.check("finding_severity", severity, field_name="severity")
        require(bool(owner and owner.strip()), "a finding is assigned to a named owner", rule="finding.owner_required",
                clause=clause)
        if due_at is None:
            due_at = ctx.occurred_at + timedelta(days=float(policy.rule(_RECTIFICATION)["due_days"][severity]))
        if due_at.tzinfo is None:
            raise InvalidValue("due_at must carry a time zone", rule="time.aware")
        require(due_at > ctx.occurred_at, "a rectification is due after it is assigned", rule="finding.due_in_future",
                clause=clause)
        self._assigned(self._meta(ctx), owner=owner.strip(), team=team, severity=severity,
                       due_at=due_at.isoformat(), corrective_action=corrective_action)

    @event("Assigned")
    def _assigned(self, meta: dict[str, Any], owner: str, team: str | None, severity: str, due_at: str,
                  corrective_action: str | None) -> None:
        self.status = "assigned"
        self.owner, self.team, self.severity, self.rectify_due_at = owner, team, severity, due_at
        self.corrective_action = corrective_action

    def rectify(self, *, policy: Policy, ctx: Context, corrective_action: str, evidence: Sequence[str]) -> None:
        """The owner says what was done and shows the evidence (references: documents, records, hashes)."""
        self._governed_by(policy)
        clause = policy.clause(_RECTIFICATION)
        self._require_status(self.RECTIFIABLE, "rectify", rule="finding.rectify_when_assigned", clause=clause)
        require(ctx.person == self.owner, f"only the owner ({self.owner}) rectifies this finding, not {ctx.person}",
                rule="finding.rectify_by_owner", clause=clause)
        require(bool(corrective_action and corrective_action.strip()), "a rectification states the corrective action",
                rule="finding.corrective_action_required", clause=clause)
        items = [str(e).strip() for e in evidence if str(e).strip()]
        require(bool(items), "a rectification needs evidence", rule="finding.evidence_required", clause=clause)
        self._rectified(self._meta(ctx), corrective_action=corrective_action.strip(), evidence=items)

    @event("Rectified")
    def _rectified(self, meta: dict[str, Any], corrective_action: str, evidence: list[str]) -> None:
        self.status = "rectified"
        self.corrective_action, self.evidence = corrective_action, list(evidence)
        self.rectified_by = person(meta)

    def close(self, *, policy: Policy, ctx: Context) -> None:
        """Another person than the owner (and the rectifier) verifies the rectification and closes it."""
        self._governed_by(policy)
        clause = policy.clause(_RECTIFICATION)
        self._require_status(self.CLOSABLE, "close", rule="finding.close_when_rectified", clause=clause)
        if ctx.person in {self.owner, self.rectified_by}:
            raise TransitionForbidden(f"{ctx.person} owns or rectified this finding; another person must verify and "
                                      "close it (four eyes)", rule="finding.close_four_eyes", clause=clause)
        self._closed(self._meta(ctx))

    @event("Closed")
    def _closed(self, meta: dict[str, Any]) -> None:
        self.status = "closed"
        self.closed_by = person(meta)

    def reopen(self, *, policy: Policy, ctx: Context) -> None:
        """A rectification that did not hold (or was not verified): back to its owner, with a reason."""
        self._governed_by(policy)
        clause = policy.clause(_RECTIFICATION)
        self._require_status(self.REOPENABLE, "reopen", rule="finding.reopen_when_rectified", clause=clause)
        require(bool(ctx.reason and ctx.reason.strip()), "reopening a finding needs a reason",
                rule="finding.reopen_reason", clause=clause)
        self._reopened(self._meta(ctx))

    @event("Reopened")
    def _reopened(self, meta: dict[str, Any]) -> None:
        self.status = "reopened"
        self.closed_by = None
        self.reopen_count += 1


#: The policy entry of the rectification cycle (its clause; the due days by severity).
_RECTIFICATION = "findings.rectification"
