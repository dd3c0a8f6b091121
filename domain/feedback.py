"""Feedback (complaint / suggestion / praise) and satisfaction surveys (CSAT 1–5, NPS 0–10): of
tickets (:class:`SurveyResponse`), and of contacts resolved at first contact and complaints
(:class:`CaseSurvey`). Nobody who handled a case may enter its survey (rules.survey_independence)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.case import Case
from domain.context import Context, personal
from domain.errors import InvalidValue, TransitionForbidden, require
from domain.policy import Policy


class FeedbackStatus:
    RECEIVED = "received"
    RESPONDED = "responded"
    REPLIED = "replied"
    ALL = frozenset({RECEIVED, RESPONDED, REPLIED})


S = FeedbackStatus


class Feedback(Case):
    @event("Submitted")
    def __init__(self, id: UUID, kind: str, customer_id: str, channel: str, ticket_id: str | None,
                 policy_ref: str, personal: dict[str, Any], meta: dict[str, Any]):
        self.kind = kind
        self.customer_id = customer_id
        self.channel = channel
        self.ticket_id = ticket_id
        self.policy_ref = policy_ref
        self.status = S.RECEIVED
        self.complaint_id: str | None = None

    @classmethod
    def submit(cls, *, id: UUID, kind: str, customer_id: str, channel: str, policy: Policy, ctx: Context,
               content: str | None = None, ticket_id: str | None = None) -> Feedback:
        policy.check("feedback_kind", kind)
        policy.check("channel", channel)
        return cls(id=id, kind=kind, customer_id=str(customer_id), channel=channel, ticket_id=ticket_id,
                   policy_ref=policy.ref, personal=personal(customer_id, content=content), meta=ctx.meta(policy.ref))

    def respond(self, *, policy: Policy, ctx: Context, note: str | None = None) -> None:
        self._governed_by(policy)
        self._require_status({S.RECEIVED}, "respond to", rule="feedback.respond_once",
                             clause=policy.clock("feedback.response").source)
        self._responded(self._personal(note=note), self._meta(ctx))

    @event("Responded")
    def _responded(self, personal: dict[str, Any], meta: dict[str, Any]) -> None:
        self.status = S.RESPONDED

    def reply(self, *, policy: Policy, ctx: Context, note: str | None = None) -> None:
        """Processed and replied: the feedback loop is closed."""
        self._governed_by(policy)
        self._require_status({S.RESPONDED}, "reply to", rule="feedback.reply_after_response",
                             clause=policy.clock("feedback.reply").source)
        self._replied(self._personal(note=note), self._meta(ctx))

    @event("Replied")
    def _replied(self, personal: dict[str, Any], meta: dict[str, Any]) -> None:
        self.status = S.REPLIED

    def escalate_to_complaint(self, *, complaint_id: str, policy: Policy, ctx: Context) -> None:
        """Feedback of kind complaint becomes a formal complaint (saved together with it)."""
        self._governed_by(policy)
        require(self.kind == "complaint", f"only complaint feedback becomes a complaint; this is {self.kind}",
                rule="feedback.complaint_kind")
        require(self.complaint_id is None, "this feedback already became a complaint", rule="feedback.complaint_once")
        self._escalated_to_complaint(str(complaint_id), self._meta(ctx))

    @event("EscalatedToComplaint")
    def _escalated_to_complaint(self, complaint_id: str, meta: dict[str, Any]) -> None:
        self.complaint_id = complaint_id


class SurveyResponse(Case):
    """One customer's answers about one ticket: CSAT on 1–5 and/or NPS on 0–10."""

    @event("Answered")
    def __init__(self, id: UUID, ticket_id: str, customer_id: str, csat: int | None, nps: int | None,
                 policy_ref: str, personal: dict[str, Any], meta: dict[str, Any]):
        self.ticket_id = ticket_id
        self.customer_id = customer_id
        self.csat = csat
        self.nps = nps
        self.policy_ref = policy_ref
        self.status = "answered"

    @classmethod
    def answer(cls, *, id: UUID, ticket_id: str, customer_id: str, csat: int | None, nps: int | None,
               policy: Policy, ctx: Context, comment: str | None = None,
               handled_by: frozenset[str] = frozenset()) -> SurveyResponse:
        """``handled_by``: the people who handled the ticket, none of whom may enter its survey."""
        check_answers(csat, nps, policy, ctx, handled_by)
        return cls(id=id, ticket_id=str(ticket_id), customer_id=str(customer_id), csat=csat, nps=nps,
                   policy_ref=policy.ref, personal=personal(customer_id, comment=comment), meta=ctx.meta(policy.ref))


def check_answers(csat: int | None, nps: int | None, policy: Policy, ctx: Context, handled_by: frozenset[str]) -> None:
    """The rules every survey answer obeys: a score in range, and not entered by the case's handler
    (rules.survey_independence: the customer's word, not the judged agent's; the rule holds under
    every policy version, its clause is cited where the policy states it)."""
    scales = policy.rule("survey_scales")
    clause = str(scales.get("source", ""))
    require(csat is not None or nps is not None, "a survey answer needs a CSAT or NPS score",
            rule="survey.empty", clause=clause)
    _in_range(csat, scales["csat_min"], scales["csat_max"], "csat", clause)
    _in_range(nps, scales["nps_min"], scales["nps_max"], "nps", clause)
    require_not_by_handler(policy, ctx, handled_by)


def require_not_by_handler(policy: Policy, ctx: Context, handled_by: frozenset[str]) -> None:
    """rules.survey_independence: the customer's answer — a survey, a complaint evaluation — is not
    entered by someone who handled the case. Refused under every policy version; the clause is cited
    where the policy states it."""
    if ctx.person in handled_by:
        raise TransitionForbidden(f"{ctx.person} handled this case and may not enter its survey",
                                  rule="survey.not_by_handler",
                                  clause=str(policy.rules.get("survey_independence", {}).get("source", "")) or None)


class CaseSurvey(Case):
    """One customer's answers about a contact resolved at first contact or a complaint's handling
    (the ticket survey is :class:`SurveyResponse`): CSAT 1–5 and/or NPS 0–10."""

    KINDS = frozenset({"interaction", "complaint"})

    @event("Answered")
    def __init__(self, id: UUID, case_kind: str, case_id: str, customer_id: str, csat: int | None, nps: int | None,
                 policy_ref: str, personal: dict[str, Any], meta: dict[str, Any]):
        self.case_kind = case_kind
        self.case_id = case_id
        self.customer_id = customer_id
        self.csat = csat
        self.nps = nps
        self.policy_ref = policy_ref
        self.status = "answered"

    @classmethod
    def answer(cls, *, id: UUID, case_kind: str, case_id: str, customer_id: str, csat: int | None,
               nps: int | None, policy: Policy, ctx: Context, handled_by: frozenset[str],
               comment: str | None = None) -> CaseSurvey:
        require(case_kind in cls.KINDS, f"a case survey is about a contact or a complaint, not a {case_kind}",
                rule="survey.case_kind")
        check_answers(csat, nps, policy, ctx, handled_by)
        return cls(id=id, case_kind=case_kind, case_id=str(case_id), customer_id=str(customer_id), csat=csat,
                   nps=nps, policy_ref=policy.ref, personal=personal(customer_id, comment=comment),
                   meta=ctx.meta(policy.ref))


def _in_range(value: int | None, low: int, high: int, name: str, clause: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidValue(f"{name} must be a whole number from {low} to {high}", rule=f"survey.{name}", clause=clause)
