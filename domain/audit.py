"""Audit engagements (服务审计, 000 §6.2): scope, period and auditor; observations linked to cases,
findings and samples; a conclusion.

The steps follow 000 §6.2 (prepare → carry out → analyse → report → rectify): an engagement is
opened with its scope and period (审计准备), its auditor records observations (审计实施), each
linked to the cases, findings and samples it rests on, and concludes it (审计报告) with a
conclusion from the policy's vocabulary. Problems it finds become findings, rectified through
their own cycle (``domain.findings``). Only the engagement's auditor records observations and the
conclusion; nothing is recorded after it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence
from uuid import UUID

from eventsourcing.domain import event

from domain.case import Case
from domain.context import Context
from domain.errors import InvalidValue, require
from domain.policy import Policy

#: The policy entry whose clause the engagement's rules cite.
_CLAUSE_ENTRY = "audit_conclusion"


def _clause(policy: Policy) -> str:
    return policy.vocabulary(_CLAUSE_ENTRY).source


class AuditEngagement(Case):
    @event("Opened")
    def __init__(self, id: UUID, title: str, scope: str, period_from: str, period_to: str, auditor: str,
                 policy_ref: str, meta: dict[str, Any]):
        self.title, self.scope, self.auditor = title, scope, auditor
        self.period_from, self.period_to = period_from, period_to
        self.policy_ref = policy_ref
        self.status = "open"
        self.observations: list[dict[str, Any]] = []
        self.conclusion: str | None = None
        self.summary: str | None = None

    @classmethod
    def open(cls, *, id: UUID, title: str, scope: str, period_from: datetime, period_to: datetime, auditor: str,
             policy: Policy, ctx: Context) -> AuditEngagement:
        if period_from.tzinfo is None or period_to.tzinfo is None:
            raise InvalidValue("an audit period's ends must carry a time zone", rule="time.aware")
        if period_from >= period_to:
            raise InvalidValue("an audit period ends after it begins", rule="audit.period", clause=_clause(policy))
        for name, value in (("title", title), ("scope", scope), ("auditor", auditor)):
            if not (value and value.strip()):
                raise InvalidValue(f"an audit needs a {name}", rule=f"audit.{name}_required", clause=_clause(policy))
        return cls(id=id, title=title.strip(), scope=scope.strip(), period_from=period_from.isoformat(),
                   period_to=period_to.isoformat(), auditor=auditor.strip(), policy_ref=policy.ref,
                   meta=ctx.meta(policy.ref))

    def _by_auditor(self, policy: Policy, ctx: Context, action: str) -> None:
        self._governed_by(policy)
        self._require_status({"open"}, action, rule="audit.concluded", clause=_clause(policy))
        require(ctx.person == self.auditor, f"only the engagement's auditor ({self.auditor}) may {action}",
                rule="audit.auditor_only", clause=_clause(policy))

    def observe(self, *, policy: Policy, ctx: Context, text: str, case_ids: Sequence[str] = (),
                finding_ids: Sequence[str] = (), sample_ids: Sequence[str] = ()) -> None:
        self._by_auditor(policy, ctx, "record an observation")
        require(bool(text and text.strip()), "an observation says what was observed", rule="audit.observation_text",
                clause=_clause(policy))
        self._observed(self._meta(ctx), text=text.strip(), case_ids=[str(c) for c in case_ids],
                       finding_ids=[str(f) for f in finding_ids], sample_ids=[str(s) for s in sample_ids])

    @event("Observed")
    def _observed(self, meta: dict[str, Any], text: str, case_ids: list[str], finding_ids: list[str],
                  sample_ids: list[str]) -> None:
        self.observations.append({"number": len(self.observations) + 1, "text": text, "case_ids": list(case_ids),
                                  "finding_ids": list(finding_ids), "sample_ids": list(sample_ids),
                                  "observed_at": meta["occurred_at"]})

    def conclude(self, *, policy: Policy, ctx: Context, conclusion: str, summary: str) -> None:
        self._by_auditor(policy, ctx, "conclude")
        policy.check(_CLAUSE_ENTRY, conclusion, field_name="conclusion")
        require(bool(summary and summary.strip()), "a conclusion has a summary", rule="audit.summary_required",
                clause=_clause(policy))
        self._concluded(self._meta(ctx), conclusion=conclusion, summary=summary.strip())

    @event("Concluded")
    def _concluded(self, meta: dict[str, Any], conclusion: str, summary: str) -> None:
        self.status = "concluded"
        self.conclusion, self.summary = conclusion, summary
