"""Disposition: the authorised destruction of one data subject's personal data (ISO 15489 style).

proposed (records manager, with the retention assessment) → approved (a *different* person in the
compliance role) → executed, which records the destruction certificate. Or rejected. Each step
re-checks what can have changed since the last: a new record, a legal hold, the due dates.

Each step is given an assessment made on the wall clock (``services.retention``), never on the
command's business time: a business time is what the caller says, and saying a later one must not
make data due. The business time must not precede a due date either, so that no step, and no
certificate, is dated before the data was due.

The certificate (the ``DestructionCertified`` event) is kept forever: what was destroyed (the
subject's records, each with its record class and clause), who proposed, approved and executed,
when, the fingerprint of the destroyed data key and the size of the transparency log at that moment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.case import Case
from domain.context import Context
from domain.errors import require
from domain.policy import Policy
from domain.retention import Assessment


class DispositionStatus:
    PROPOSED = "proposed"
    APPROVED = "approved"
    EXECUTED = "executed"
    REJECTED = "rejected"


S = DispositionStatus


class Disposition(Case):
    @event("Proposed")
    def __init__(self, id: UUID, subject: str, as_of: str, records: list[dict[str, Any]], proposer: str,
                 policy_ref: str, meta: dict[str, Any]):
        self.subject = subject
        self.as_of = as_of
        self.records = records
        self.proposer = proposer
        self.approver: str | None = None
        self.policy_ref = policy_ref
        self.status = S.PROPOSED
        self.certificate: dict[str, Any] | None = None

    @classmethod
    def propose(cls, *, id: UUID, assessment: Assessment, policy: Policy, ctx: Context) -> Disposition:
        rule = policy.rule("disposition")
        _require_role(ctx, rule, "proposer_roles", "propose a disposition")
        _require_disposable(assessment, ctx.occurred_at)
        return cls(id=id, subject=assessment.subject, as_of=assessment.as_of.isoformat(),
                   records=[r.describe() for r in assessment.records], proposer=ctx.actor_id,
                   policy_ref=policy.ref, meta=ctx.meta(policy.ref))

    def approve(self, *, assessment: Assessment, policy: Policy, ctx: Context) -> None:
        self._governed_by(policy)
        rule = policy.rule("disposition")
        self._require_status({S.PROPOSED}, "approve", rule="disposition.approve")
        _require_role(ctx, rule, "approver_roles", "approve a disposition")
        require(ctx.actor_id != self.proposer, "the approver must be a different person from the proposer "
                f"({self.proposer})", rule="disposition.four_eyes", clause=str(rule.get("source", "")))
        self._require_same_subject(assessment)
        _require_disposable(assessment, ctx.occurred_at)
        self._approved(self._meta(ctx))

    @event("Approved")
    def _approved(self, meta: dict[str, Any]) -> None:
        self.approver = meta["actor_id"]
        self.status = S.APPROVED

    def reject(self, *, policy: Policy, ctx: Context) -> None:
        self._governed_by(policy)
        self._require_status({S.PROPOSED, S.APPROVED}, "reject", rule="disposition.reject")
        _require_role(ctx, policy.rule("disposition"), "approver_roles", "reject a disposition")
        require(bool(ctx.reason and ctx.reason.strip()), "rejecting a disposition needs a reason",
                rule="disposition.reason")
        self._rejected(self._meta(ctx))

    @event("Rejected")
    def _rejected(self, meta: dict[str, Any]) -> None:
        self.status = S.REJECTED

    def certify_destruction(self, *, assessment: Assessment, key_fingerprint: str, tree_size: int, policy: Policy,
                            ctx: Context) -> None:
        """Record the destruction certificate; the key is destroyed right after this is saved."""
        self._governed_by(policy)
        rule = policy.rule("disposition")
        self._require_status({S.APPROVED}, "execute", rule="disposition.execute_requires_approval",
                             clause=str(rule.get("source", "")))
        _require_role(ctx, rule, "executor_roles", "execute a disposition")
        self._require_same_subject(assessment)
        _require_disposable(assessment, ctx.occurred_at)
        certificate = {
            "subject": self.subject,
            "records": [r.describe() for r in assessment.records],
            "clauses": sorted({r.clause for r in assessment.records}),
            "proposer": self.proposer,
            "approver": self.approver,
            "executor": ctx.actor_id,
            "destroyed_at": ctx.occurred_at.isoformat(),
            "assessed_at": assessment.as_of.isoformat(),  # the wall-clock time due dates and holds were checked
            "key_fingerprint": key_fingerprint,
            "tree_size": tree_size,
            "method": "crypto-shredding: AES-256-GCM data key destroyed",
        }
        self._destruction_certified(certificate, self._meta(ctx))

    @event("DestructionCertified")
    def _destruction_certified(self, certificate: dict[str, Any], meta: dict[str, Any]) -> None:
        self.certificate = certificate
        self.status = S.EXECUTED

    @property
    def subject_id(self) -> str:
        return self.subject

    def _require_same_subject(self, assessment: Assessment) -> None:
        require(assessment.subject == self.subject, "the assessment is of another subject",
                rule="disposition.subject")


def _require_role(ctx: Context, rule: Any, key: str, action: str) -> None:
    allowed = rule[key]
    require(ctx.actor_role in allowed, f"a {ctx.actor_role} cannot {action} (allowed: {', '.join(allowed)})",
            rule=f"disposition.{key.removesuffix('_roles')}_role", clause=str(rule.get("source", "")))


def _require_disposable(assessment: Assessment, at: datetime) -> None:
    require(assessment.disposable, "the personal data cannot be destroyed yet: " + "; ".join(assessment.blockers),
            rule="disposition.not_disposable")
    due = max((r.due_at for r in assessment.records if r.due_at is not None), default=None)
    require(due is None or due <= at, f"the step is dated {at.isoformat()}, before the records are due "
            f"({due.isoformat() if due else ''})", rule="disposition.before_due")
