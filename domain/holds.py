"""Legal holds: while a hold is active, nothing it covers may be disposed of.

A hold names its target (a customer, ticket or complaint), the data subject the target belongs to,
the authority that ordered it (a court order, a regulator's letter, internal counsel) and why.
Placing and releasing are events, so the hold history is part of the audit trail.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.case import Case
from domain.context import Context
from domain.errors import require
from domain.policy import Policy

HOLDABLE_KINDS = ("customer", "ticket", "complaint")


class LegalHold(Case):
    @event("Placed")
    def __init__(self, id: UUID, target_kind: str, target_id: str, subject: str, authority: str, reason: str,
                 policy_ref: str, meta: dict[str, Any]):
        self.target_kind = target_kind
        self.target_id = target_id
        self.subject = subject
        self.authority = authority
        self.reason = reason
        self.policy_ref = policy_ref
        self.status = "active"

    @classmethod
    def place(cls, *, id: UUID, target_kind: str, target_id: str, subject: str, authority: str, policy: Policy,
              ctx: Context) -> LegalHold:
        rule = policy.rule("disposition")
        clause = str(rule.get("source", ""))
        require(target_kind in HOLDABLE_KINDS, f"a legal hold covers a {', '.join(HOLDABLE_KINDS)}, not {target_kind!r}",
                rule="hold.target_kind")
        require(ctx.actor_role in rule["hold_roles"], f"a {ctx.actor_role} cannot place a legal hold "
                f"(allowed: {', '.join(rule['hold_roles'])})", rule="hold.role", clause=clause)
        require(bool(authority and authority.strip()), "a legal hold needs the authority that ordered it",
                rule="hold.authority")
        require(bool(ctx.reason and ctx.reason.strip()), "a legal hold needs a reason", rule="hold.reason")
        return cls(id=id, target_kind=target_kind, target_id=str(target_id), subject=str(subject),
                   authority=authority.strip(), reason=ctx.reason, policy_ref=policy.ref, meta=ctx.meta(policy.ref))

    def release(self, *, policy: Policy, ctx: Context) -> None:
        self._governed_by(policy)
        rule = policy.rule("disposition")
        require(self.status == "active", "this legal hold was already released", rule="hold.release_once")
        require(ctx.actor_role in rule["hold_roles"], f"a {ctx.actor_role} cannot release a legal hold",
                rule="hold.role", clause=str(rule.get("source", "")))
        require(bool(ctx.reason and ctx.reason.strip()), "releasing a legal hold needs a reason", rule="hold.reason")
        self._released(self._meta(ctx))

    @event("Released")
    def _released(self, meta: dict[str, Any]) -> None:
        self.status = "released"

    @property
    def subject_id(self) -> str:
        return self.subject
