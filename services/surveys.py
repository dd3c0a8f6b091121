"""Satisfaction surveys of any case: a ticket, a contact resolved at first contact, a complaint.

One survey per case (a deterministic id), once the customer has seen the outcome, and never entered
by someone who handled the case (rules.survey_independence, 000 §4.5.2): a ticket's first-contact
owner, handler or resolver; a contact's first-contact agent; a complaint's handler. Ticket surveys
keep their :class:`domain.feedback.SurveyResponse` and its id (``survey:<ticket id>``), so this is
the one way in for all three and ``CaseLedger.answer_survey`` is only what it was before.
"""

from __future__ import annotations

from typing import Any
from uuid import uuid5

from domain.context import Context
from domain.errors import TransitionForbidden
from domain.feedback import CaseSurvey, SurveyResponse
from ledger.errors import AlreadyExists, ConcurrentUpdate
from ledger.kinds import ID_NAMESPACE

#: Complaint statuses in which the customer has been told the outcome.
_COMPLAINT_TOLD = frozenset({"notified", "evaluated", "unevaluated", "archived"})


def answer_case_survey(ledger: Any, ctx: Context, *, case_kind: str, case_id: str, csat: int | None = None,
                       nps: int | None = None, comment: str | None = None) -> Any:
    case = ledger.get(case_kind, case_id) if case_kind in ("ticket", "interaction", "complaint") else None
    if case is None:
        raise TransitionForbidden(f"surveys are about tickets, contacts and complaints, not {case_kind!r}",
                                  rule="survey.case_kind")
    policy = ledger.policy_for_new_case(ctx)
    handled_by = frozenset(p for p in _handlers(case_kind, case) if p)
    if case_kind == "ticket":
        if not case.can_be_surveyed():
            raise TransitionForbidden(f"a survey needs the result fed back to the customer; the ticket is {case.status}",
                                      rule="survey.requires_result_feedback")
        survey: Any = SurveyResponse.answer(id=uuid5(ID_NAMESPACE, f"survey:{case.id}"), ticket_id=str(case.id),
                                           customer_id=case.customer_id, csat=csat, nps=nps, comment=comment,
                                           policy=policy, ctx=ctx, handled_by=handled_by)
    else:
        _require_outcome_known(case_kind, case)
        survey = CaseSurvey.answer(id=uuid5(ID_NAMESPACE, f"survey:{case_kind}:{case.id}"), case_kind=case_kind,
                                   case_id=str(case.id), customer_id=case.customer_id, csat=csat, nps=nps,
                                   comment=comment, policy=policy, ctx=ctx, handled_by=handled_by)
    try:
        ledger.record(survey)
    except ConcurrentUpdate:
        raise AlreadyExists(f"{case_kind} {case.id} already has a survey answer") from None
    return survey


def _handlers(case_kind: str, case: Any) -> tuple[str | None, ...]:
    if case_kind == "ticket":
        return case.first_contact_owner, case.handler, case.resolved_by
    if case_kind == "interaction":
        return (case.first_contact_agent,)
    return (case.handler,)


def _require_outcome_known(case_kind: str, case: Any) -> None:
    if case_kind == "interaction":
        if case.status != "closed" or not case.resolved_on_first_contact or not case.customer_id:
            raise TransitionForbidden("only a known customer's contact closed as resolved at first contact is "
                                      "surveyed (others are surveyed through their ticket)",
                                      rule="survey.requires_first_contact_resolution")
    elif case.status not in _COMPLAINT_TOLD:
        raise TransitionForbidden(f"a complaint survey needs the customer told the outcome; it is {case.status}",
                                  rule="survey.requires_complaint_outcome")
