"""Complaint (投诉): accepted, classified, investigated, escalated, remedied, closed with the customer.

Lifecycle (003 ch.3, 002 ch.4, 004): accepted → classified (type, level) → investigation
(evidence gathered) → remedy decided → customer notified → customer evaluation → archived →
root-cause analysis after closure. Escalation climbs the policy's ladder one rung at a time
(frontline → team lead / technical → management) while the complaint is being handled.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.case import Case
from domain.context import Context, personal
from domain.errors import InvalidValue, require
from domain.feedback import require_not_by_handler
from domain.policy import Policy


class ComplaintStatus:
    ACCEPTED = "accepted"
    CLASSIFIED = "classified"
    INVESTIGATING = "investigating"
    REMEDIED = "remedied"
    NOTIFIED = "notified"
    EVALUATED = "evaluated"
    UNEVALUATED = "unevaluated"  # closed without the customer's evaluation (rules.customer_silence)
    ARCHIVED = "archived"

    HANDLING = frozenset({CLASSIFIED, INVESTIGATING})
    OPEN = frozenset({ACCEPTED, CLASSIFIED, INVESTIGATING, REMEDIED, NOTIFIED, EVALUATED, UNEVALUATED})
    #: Closed with the customer (evaluated, or silent past the deadline): what remains is archiving.
    CLOSED = frozenset({EVALUATED, UNEVALUATED})
    ALL = OPEN | {ARCHIVED}


S = ComplaintStatus


class Complaint(Case):
    @event("Accepted")
    def __init__(self, id: UUID, customer_id: str, channel: str, ticket_id: str | None, handler: str,
                 rung: str, policy_ref: str, personal: dict[str, Any], meta: dict[str, Any]):
        self.customer_id = customer_id
        self.channel = channel
        self.ticket_id = ticket_id
        self.handler = handler
        self.rung = rung
        self.policy_ref = policy_ref
        self.status = S.ACCEPTED
        self.complaint_type: str | None = None
        self.level: int | None = None
        self.evidence_count = 0
        self.escalations = 0
        self.remedy_kind: str | None = None
        self.satisfied: bool | None = None
        self.root_cause_recorded = False
        self.service_type: str | None = None
        self.first_responded = False
        self.notified_at: str | None = None
        self.closed_at: str | None = None

    @classmethod
    def accept(cls, *, id: UUID, customer_id: str, channel: str, policy: Policy, ctx: Context,
               description: str | None = None, ticket_id: str | None = None) -> Complaint:
        policy.check("channel", channel)
        first_rung = policy.rule("escalation_ladder")["rungs"][0]
        return cls(id=id, customer_id=str(customer_id), channel=channel, ticket_id=ticket_id, handler=ctx.person,
                   rung=first_rung, policy_ref=policy.ref, personal=personal(customer_id, description=description),
                   meta=ctx.meta(policy.ref))

    def classify(self, *, complaint_type: str, level: int, policy: Policy, ctx: Context,
                 service_type: str | None = None) -> None:
        """Type, level (004 §4.3: 1 urgent, 2 general, 3 routine — a level-1 complaint gets the
        stricter first-response limit) and, under policies with that vocabulary, the service type
        (default: complaint)."""
        self._governed_by(policy)
        self._require_status({S.ACCEPTED, S.CLASSIFIED, S.INVESTIGATING}, "classify", rule="complaint.classify")
        policy.check("complaint_type", complaint_type)
        policy.check("complaint_level", level)
        if service_type is None and "service_type" in policy.vocabularies:
            service_type = "complaint"
        if service_type is not None:
            policy.check("service_type", service_type)
        self._classified(complaint_type, level, self._meta(ctx), service_type)

    @event("Classified")
    def _classified(self, complaint_type: str, level: int, meta: dict[str, Any], service_type: str | None = None) -> None:
        # service_type has a default: Classified events stored before it existed replay without it.
        self.complaint_type, self.level = complaint_type, level
        self.service_type = service_type
        if self.status == S.ACCEPTED:
            self.status = S.CLASSIFIED

    def respond_first(self, *, policy: Policy, ctx: Context, message: str | None = None) -> None:
        """The first response to the complaining customer (002 §2.2: within 1 h for complaints)."""
        self._governed_by(policy)
        require(not getattr(self, "first_responded", False), "the first response is already recorded",
                rule="complaint.first_response_once")
        self._require_status({S.ACCEPTED, S.CLASSIFIED, S.INVESTIGATING}, "record a first response on",
                             rule="complaint.first_response")
        self._first_responded(self._personal(message=message), self._meta(ctx))

    @event("FirstResponded")
    def _first_responded(self, personal: dict[str, Any], meta: dict[str, Any]) -> None:
        self.first_responded = True

    def reassign(self, *, handler: str, policy: Policy, ctx: Context) -> None:
        """Hand the complaint to another handler, with a reason; the escalation rung does not change."""
        self._governed_by(policy)
        self._require_status({S.ACCEPTED, S.CLASSIFIED, S.INVESTIGATING, S.REMEDIED, S.NOTIFIED}, "reassign",
                             rule="complaint.reassign_while_open")
        require(bool(handler), "a reassignment needs a handler", rule="complaint.reassign_handler")
        require(handler != self.handler, f"{handler} already handles this complaint", rule="complaint.reassign_same")
        require(bool(ctx.reason), "a reassignment needs a reason", rule="complaint.reassign_reason")
        self._handler_reassigned(handler, self.handler, self._meta(ctx))

    @event("HandlerReassigned")
    def _handler_reassigned(self, handler: str, previous_handler: str, meta: dict[str, Any]) -> None:
        self.handler = handler

    def start_investigation(self, *, policy: Policy, ctx: Context) -> None:
        """Initial handling: the complaint-handling clock (initial handling) stops here."""
        self._governed_by(policy)
        self._require_status({S.CLASSIFIED}, "start investigating", rule="complaint.investigate_requires_classification",
                             clause=_handling_clause(policy))
        self._investigation_started(self._meta(ctx))

    @event("InvestigationStarted")
    def _investigation_started(self, meta: dict[str, Any]) -> None:
        self.status = S.INVESTIGATING

    def add_evidence(self, *, kind: str, policy: Policy, ctx: Context, description: str | None = None,
                     reference: str | None = None) -> None:
        self._governed_by(policy)
        self._require_status({S.INVESTIGATING}, "add evidence to", rule="complaint.evidence_during_investigation")
        require(bool(kind), "evidence needs a kind", rule="complaint.evidence_kind")
        self._evidence_added(kind, reference, self._personal(description=description), self._meta(ctx))

    @event("EvidenceAdded")
    def _evidence_added(self, kind: str, reference: str | None, personal: dict[str, Any], meta: dict[str, Any]) -> None:
        self.evidence_count += 1

    def escalate(self, *, to_rung: str, policy: Policy, ctx: Context) -> None:
        """Climb the escalation ladder by one rung; a parallel rung (technical) counts as the same step."""
        self._governed_by(policy)
        ladder = policy.rule("escalation_ladder")
        clause = str(ladder.get("source", ""))
        self._require_status(S.HANDLING, "escalate", rule="complaint.escalate_while_handling", clause=clause)
        policy.check("escalation_rung", to_rung)
        require(bool(ctx.reason), "an escalation needs a reason", rule="complaint.escalation_reason")
        step = _rung_index(ladder, to_rung)
        current = _rung_index(ladder, self.rung)
        require(step == current + 1,
                f"escalation goes one rung at a time: from {self.rung} the next is "
                f"{' or '.join(_rungs_at(ladder, current + 1)) or 'nothing (top of the ladder)'}",
                rule="complaint.escalation_ladder", clause=clause)
        self._escalated(self.rung, to_rung, self._meta(ctx))

    @event("Escalated")
    def _escalated(self, from_rung: str, to_rung: str, meta: dict[str, Any]) -> None:
        self.rung = to_rung
        self.escalations += 1

    def decide_remedy(self, *, kind: str, policy: Policy, ctx: Context, details: str | None = None,
                      amount: str | None = None) -> None:
        """Compensation, rectification, remedial action — or none, with a reason — after evidence."""
        self._governed_by(policy)
        self._require_status({S.INVESTIGATING}, "decide a remedy for", rule="complaint.remedy_requires_investigation")
        policy.check("remedy_kind", kind)
        require(self.evidence_count > 0, "a remedy is decided on gathered evidence; add evidence first",
                rule="complaint.remedy_requires_evidence", clause=policy.vocabulary("remedy_kind").source)
        if kind == "none":
            require(bool(ctx.reason), "deciding on no remedy needs a reason", rule="complaint.no_remedy_reason")
        if amount is not None:
            amount = _money(amount)
            require(kind == "compensation", "only compensation carries an amount", rule="complaint.amount")
        self._remedy_decided(kind, amount, self._personal(details=details), self._meta(ctx))

    @event("RemedyDecided")
    def _remedy_decided(self, kind: str, amount: str | None, personal: dict[str, Any], meta: dict[str, Any]) -> None:
        self.remedy_kind = kind
        self.status = S.REMEDIED

    def notify_customer(self, *, channel: str, policy: Policy, ctx: Context) -> None:
        self._governed_by(policy)
        policy.check("channel", channel)
        self._require_status({S.REMEDIED}, "notify the customer of", rule="complaint.notify_requires_remedy",
                             clause=policy.clock("complaint.closed_loop").source)
        self._customer_notified(channel, self._meta(ctx))

    @event("CustomerNotified")
    def _customer_notified(self, channel: str, meta: dict[str, Any]) -> None:
        self.status = S.NOTIFIED
        self.notified_at = meta["occurred_at"]

    def record_evaluation(self, *, satisfied: bool, score: int | None, policy: Policy, ctx: Context,
                          comment: str | None = None) -> None:
        self._governed_by(policy)
        self._require_status({S.NOTIFIED}, "record the customer's evaluation of", rule="complaint.evaluation_requires_notice")
        # The evaluation judges the handler's work: the handler may not key it in (as for surveys), from
        # the policy version that states the rule on (sop-2025@2 and the policies extending it); a
        # complaint pinned to an earlier version keeps the rules it was opened under.
        if "survey_independence" in policy.rules:
            require_not_by_handler(policy, ctx, frozenset({self.handler}))
        if score is not None:
            scales = policy.rule("survey_scales")
            if not scales["csat_min"] <= score <= scales["csat_max"]:
                raise InvalidValue(f"score must be between {scales['csat_min']} and {scales['csat_max']}",
                                   rule="complaint.score", clause=str(scales.get("source", "")))
        self._evaluated(satisfied, score, self._personal(comment=comment), self._meta(ctx))

    @event("Evaluated")
    def _evaluated(self, satisfied: bool, score: int | None, personal: dict[str, Any], meta: dict[str, Any]) -> None:
        self.satisfied = satisfied
        self.status = S.EVALUATED
        self.closed_at = meta["occurred_at"]

    def close_unevaluated(self, *, due_at: datetime, policy: Policy, ctx: Context) -> None:
        """The customer, told the outcome, never evaluated it: close without an evaluation once
        ``due_at`` (:func:`domain.stalled.evaluation_due`) has passed (rules.customer_silence)."""
        self._require_silence_due(policy, ctx, due_at, {S.NOTIFIED}, "close as unevaluated", "evaluate",
                                  rule="complaint.silence_requires_notice", due_rule="complaint.silence_not_due")
        self._closed_unevaluated(due_at.isoformat(), self._meta(ctx))

    @event("ClosedUnevaluated")
    def _closed_unevaluated(self, due_at: str, meta: dict[str, Any]) -> None:
        self.status = S.UNEVALUATED
        self.closed_at = meta["occurred_at"]

    def archive(self, *, policy: Policy, ctx: Context) -> None:
        self._governed_by(policy)
        self._require_status(S.CLOSED, "archive", rule="complaint.archive_requires_evaluation",
                             clause=policy.record_class("complaint_file").source)
        self._archived(self._meta(ctx))

    @event("Archived")
    def _archived(self, meta: dict[str, Any]) -> None:
        self.status = S.ARCHIVED

    def record_root_cause(self, *, category: str, policy: Policy, ctx: Context, analysis: str | None = None) -> None:
        """Post-closure root-cause analysis: only on an archived complaint."""
        self._governed_by(policy)
        self._require_status({S.ARCHIVED}, "record the root cause of", rule="complaint.root_cause_after_closure")
        require(bool(category), "a root cause needs a category", rule="complaint.root_cause_category")
        self._root_cause_recorded(category, analysis, self._meta(ctx))

    @event("RootCauseRecorded")
    def _root_cause_recorded(self, category: str, analysis: str | None, meta: dict[str, Any]) -> None:
        self.root_cause_recorded = True


def _handling_clause(policy: Policy) -> str:
    """The clause of the policy's complaint-handling clock (enterprise-2025@2 measures handling to the
    remedy, complaint.handling, and has no initial-handling clock)."""
    clock = policy.clocks.get("complaint.initial_handling") or policy.clocks.get("complaint.handling")
    return clock.source if clock else ""


def _rung_index(ladder: Any, rung: str) -> int:
    rungs = list(ladder["rungs"])
    if rung in rungs:
        return rungs.index(rung)
    for main, parallels in dict(ladder.get("parallel", {})).items():
        if rung in parallels:
            return rungs.index(main)
    raise InvalidValue(f"{rung!r} is not on the escalation ladder", rule="complaint.escalation_ladder",
                       clause=str(ladder.get("source", "")))


def _rungs_at(ladder: Any, index: int) -> list[str]:
    rungs = list(ladder["rungs"])
    if index >= len(rungs):
        return []
    main = rungs[index]
    return [main, *dict(ladder.get("parallel", {})).get(main, [])]


def _money(amount: str) -> str:
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise InvalidValue(f"amount {amount!r} is not a decimal number", rule="complaint.amount") from None
    if not value.is_finite() or value < 0:
        raise InvalidValue("amount must be a non-negative number", rule="complaint.amount")
    return str(value)
