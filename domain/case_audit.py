"""The case rules of the compliance audit: :class:`CaseAudit` folds each event of a case into the few
facts the rules need (ids and facts, never personal data) and reports :class:`Suspicion` s and
:class:`Clearance` s.

Moved here from ``domain.findings`` (which re-exports it, so its readers are unchanged) to leave
that module to the ``Finding`` aggregate and its rectification cycle. No event class lives here.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple

from domain.policy import Policy
from domain.suspicions import Clearance, Suspicion, finding_key


def _at(e: Any) -> datetime:
    return _moment(e.meta["occurred_at"])


#: Moments by their text, as parsed or made here. The events of one command share their business
#: time (a contact's three, often), and a contact's due times, made when it is received, are read
#: back from its facts by its next events: kept as the very objects made, they share one ``tzinfo``
#: object, and two aware times with one ``tzinfo`` compare field by field — with two, Python asks
#: each for its UTC offset, which costs several times the comparison. Bounded: emptied when full.
_MOMENTS: dict[str, datetime] = {}
_MOMENTS_MAX = 1 << 12


def _moment(text: str) -> datetime:
    moment = _MOMENTS.get(text)
    return _remember(text, datetime.fromisoformat(text)) if moment is None else moment


def _remember(text: str, moment: datetime) -> datetime:
    """Keep ``moment`` as the one ``text`` spells (it must: ``datetime.fromisoformat(text) == moment``)."""
    if len(_MOMENTS) >= _MOMENTS_MAX:
        _MOMENTS.clear()
    _MOMENTS[text] = moment
    return moment


# As a functools cache says it (benchmarks empty every cache between rounds).
_moment.cache_clear = _MOMENTS.clear  # type: ignore[attr-defined]
_moment.cache_info = _MOMENTS.__len__  # type: ignore[attr-defined]


#: A time spelled exactly as ``datetime.isoformat`` spells the moment it parses to: whole seconds, or
#: a fraction of six digits not all zero; an offset in hours and minutes, "-00:00" excepted ("+00:00").
_ISOFORMAT_SPELLING = re.compile(
    r"\d{4}-\d\d-\d\dT([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.(?!000000)\d{6})?([+]|-(?!00:00))([01]\d|2[0-3]):[0-5]\d",
    re.ASCII)


def _isoformat(at: datetime, text: str) -> str:
    """``at.isoformat()``, ``at`` being the moment ``text`` spells: ``text`` itself when it is spelled so
    already, as the ledger writes business times (formatting a time costs several times the check)."""
    return text if _ISOFORMAT_SPELLING.fullmatch(text) else at.isoformat()


def _grace(policy: Policy, rule: str) -> timedelta:
    entry = policy.rule(f"audit.{rule}")
    return timedelta(minutes=float(entry["grace_minutes"]))


_NO_FACTS: Mapping[str, Any] = MappingProxyType({})


class CaseSuspicion(NamedTuple):
    """A case rule's :class:`Suspicion` about the case being folded, before it is told which case
    that is (:meth:`CaseAudit.suspicion`): a read model folding many cases keeps these as they
    come and makes finding ids only for the few still pending at the end of its batch."""

    rule: str
    due_at: datetime
    discriminator: str
    facts: dict[str, Any]


class CaseClearance(NamedTuple):
    """A case rule's :class:`Clearance` of the case being folded (:meth:`CaseAudit.clearance`)."""

    rule: str
    discriminator: str = ""


#: ``CaseSuspicion(rule, due_at, discriminator, facts)`` from a tuple, without the Python-level
#: ``__new__`` of a named tuple (a contact's folds make two of these).
_case_suspicion = functools.partial(tuple.__new__, CaseSuspicion)

#: What a case rule reports on one event (:meth:`CaseAudit.verdicts`).
Verdict = CaseSuspicion | CaseClearance
#: A fold: the audit, the case's facts (changed in place), the event, the related facts; its verdicts.
Fold = Callable[["CaseAudit", dict[str, Any], Any, Mapping[str, Any]], list[Verdict]]


class CaseAudit:
    """The audit rules of one kind of case (interaction, ticket, complaint, disposition) under one policy: they
    fold each event of a case into the few facts the rules need and report what it suspects or clears.

    One per kind and policy, not per case or event (a read model folds every contact, three events
    each): the policy entries the rules read (grace times, the second-review rule) are looked up
    once, as a loaded policy never changes; a case's facts are a plain dict — what the read model
    stores — that :meth:`apply` changes in place.
    """

    KINDS: ClassVar[dict[str, str]] = {"Interaction": "interaction", "Ticket": "ticket", "Complaint": "complaint", "Disposition": "disposition"}

    def __init__(self, kind: str, policy_ref: str, policy: Policy):
        self.kind, self.policy_ref, self.policy = kind, policy_ref, policy

    @staticmethod
    def folds(event_name: str) -> bool:
        """Whether a rule looks at events of this class (its qualname, e.g. ``Ticket.Closed``)."""
        return event_name in _FOLDS

    @staticmethod
    def fold_of(event_name: str) -> Fold | None:
        """The fold of events of this class (its qualname), None if no rule looks at them: called as
        ``fold(audit, facts, event, related)``, it is :meth:`verdicts` without the lookup by class."""
        return _FOLDS.get(event_name)

    def apply(self, case_id: str, facts: dict[str, Any], e: Any,
              related: Mapping[str, Any] = _NO_FACTS) -> list[Suspicion | Clearance]:
        """Fold one event of case ``case_id`` into its ``facts``; ``related``: the facts of the
        interaction a ticket was opened from."""
        return [self.clearance(case_id, v) if type(v) is CaseClearance else self.suspicion(case_id, v)
                for v in self.verdicts(facts, e, related)]

    def verdicts(self, facts: dict[str, Any], e: Any, related: Mapping[str, Any] = _NO_FACTS) -> list[Verdict]:
        """:meth:`apply` without the case's id: what the rules suspect or clear of the case folded."""
        fold = _FOLDS.get(type(e).__qualname__)
        return fold(self, facts, e, related) if fold else []

    def suspicion(self, case_id: str, verdict: CaseSuspicion) -> Suspicion:
        return Suspicion(verdict.rule, self.kind, case_id, self.policy_ref, verdict.due_at, verdict.facts,
                         verdict.discriminator)

    def clearance(self, case_id: str, verdict: CaseClearance) -> Clearance:
        return Clearance(finding_key(verdict.rule, self.kind, case_id, verdict.discriminator))

    @functools.cached_property
    def _register_grace(self) -> timedelta:
        return _grace(self.policy, "contact_not_registered")

    @functools.cached_property
    def _route_grace(self) -> timedelta:
        return _grace(self.policy, "contact_not_routed")

    @functools.cached_property
    def _second_review(self) -> Mapping[str, Any]:
        return self.policy.rule("second_review")

    @staticmethod
    def _suspect(rule: str, at: datetime, discriminator: str = "", **facts: Any) -> CaseSuspicion:
        return _case_suspicion((rule, at, discriminator, facts))

    @staticmethod
    @functools.cache
    def _clear(rule: str) -> CaseClearance:
        return CaseClearance(rule)  # one per rule: a clearance is immutable and the same every time

    def _four_eyes(self, step: str, first: str | None, first_from: Any, e: Any) -> list[CaseSuspicion]:
        """The second person of a four-eyes step acted from the operating-system user and host the first
        acted from (both known only for commands given on the command line): two names, one account."""
        second, second_from = e.meta["actor_id"], _origin(e)
        if second_from is None or second_from != first_from or second == first:
            return []
        return [self._suspect("four_eyes_same_os_user", _at(e), f"v{e.originator_version}", step=step,
                              first=first, second=second, **second_from)]

    # -- interactions: registered and routed within the grace time; first-contact agent kept ----
    def _Interaction_Received(self, facts: dict, e: Any, related: Mapping[str, Any]) -> list:
        at = _at(e)
        register_due, route_due = at + self._register_grace, at + self._route_grace
        register_text = register_due.isoformat()
        # The two graces are usually the same: one moment, spelled once.
        route_text = register_text if route_due == register_due else route_due.isoformat()
        _remember(register_text, register_due)  # read back by the next events (_Interaction_Registered)
        _remember(route_text, route_due)
        _start(facts, {"agent": None, "register_due": register_text, "route_due": route_text})
        received_at = _isoformat(at, e.meta["occurred_at"])
        return [self._suspect("contact_not_registered", register_due, received_at=received_at),
                self._suspect("contact_not_routed", route_due, received_at=received_at)]

    def _Interaction_Registered(self, facts: dict, e: Any, related: Mapping[str, Any]) -> list:
        out: list[Verdict] = []
        at, first = _at(e), facts.get("agent")
        if first is not None and first != e.agent_id:
            out.append(self._suspect("first_contact_owner_changed", at, f"v{e.originator_version}",
                                     first_contact_agent=first, registered_again_by=e.agent_id))
        else:
            facts["agent"] = e.agent_id
        if at <= _moment(facts["register_due"]):
            out.append(self._clear("contact_not_registered"))
        return out

    def _Interaction_Routed(self, facts: dict, e: Any, related: Mapping[str, Any]) -> list:
        if _at(e) <= _moment(facts["route_due"]):
            return [self._clear("contact_not_routed")]
        return []

    # -- tickets: acceptance before closing, second review, first-contact owner ---------------------
    def _Ticket_Received(self, facts: dict, e: Any, related: Mapping[str, Any]) -> list:
        _start(facts, {"owner": e.first_contact_owner, "handler": None, "accepted": False, "needs_review": False,
                       "resolved_by": None})
        agent = related.get("agent")
        if e.interaction_id and agent and agent != e.first_contact_owner:
            return [self._suspect("first_contact_owner_changed", _at(e),
                                  first_contact_owner=e.first_contact_owner, interaction_id=e.interaction_id,
                                  first_contact_agent=agent)]
        return []

    def _Ticket_Classified(self, facts: dict, e: Any, related: Mapping[str, Any]) -> list:
        review = self._second_review
        facts["needs_review"] = e.complexity in review["complexities"] or (bool(review.get("high_risk"))
                                                                         and bool(e.high_risk))
        facts["classification"] = {"complexity": e.complexity, "high_risk": bool(e.high_risk)}
        return []

    def _Ticket_Assigned(self, facts: dict, e: Any, related: Mapping[str, Any]) -> list:
        facts["handler"] = e.handler
        return []

    def _Ticket_Resolved(self, facts: dict, e: Any, related: Mapping[str, Any]) -> list:
        facts["resolved_by"] = e.meta["actor_id"]
        _keep_origin(facts, "resolved_from", e)
        if not e.review_required and facts.get("needs_review"):
            return [self._suspect("second_review_missing", _at(e), f"v{e.originator_version}",
                                  resolved_by=e.meta["actor_id"], reviewed=False, **facts.get("classification", {}))]
        return []

    def _Ticket_Reviewed(self, facts: dict, e: Any, related: Mapping[str, Any]) -> list:
        reviewer = e.meta["actor_id"]
        if e.approved and reviewer in {facts.get("resolved_by"), facts.get("handler")}:
            return [self._suspect("second_review_missing", _at(e), f"v{e.originator_version}", reviewed=True,
                                  reviewer=reviewer, resolved_by=facts.get("resolved_by"))]
        if e.approved:
            return self._four_eyes("ticket.review", facts.get("resolved_by"), facts.get("resolved_from"), e)
        return []

    def _Ticket_AcceptanceRecorded(self, facts: dict, e: Any, related: Mapping[str, Any]) -> list:
        facts["accepted"] = bool(e.accepted)
        return []

    def _Ticket_Reopened(self, facts: dict, e: Any, related: Mapping[str, Any]) -> list:
        facts["accepted"] = False
        return []

    def _Ticket_Closed(self, facts: dict, e: Any, related: Mapping[str, Any]) -> list:
        if not facts.get("accepted"):
            return [self._suspect("closed_without_acceptance", _at(e), f"v{e.originator_version}")]
        return []

    def _Ticket_ClosedUnconfirmed(self, facts: dict, e: Any, related: Mapping[str, Any]) -> list:
        """Closed by the stalled-cases job because the customer never confirmed (rules.customer_silence):
        a closure the policy sanctions and the event names, not a closure without acceptance. Known here
        on purpose, so that nobody "fixes" the rule by treating it as one."""
        return []

    # -- complaints: evidence, remedy, notification and evaluation before archiving ----------------
    def _Complaint_Accepted(self, facts: dict, e: Any, related: Mapping[str, Any]) -> list:
        _start(facts, {"evidence": 0, "remedied": False, "notified": False, "evaluated": False})
        return []

    def _Complaint_EvidenceAdded(self, facts: dict, e: Any, related: Mapping[str, Any]) -> list:
        facts["evidence"] += 1
        return []

    def _Complaint_RemedyDecided(self, facts: dict, e: Any, related: Mapping[str, Any]) -> list:
        facts["remedied"] = True
        return []

    def _Complaint_CustomerNotified(self, facts: dict, e: Any, related: Mapping[str, Any]) -> list:
        facts["notified"] = True
        return []

    def _Complaint_Evaluated(self, facts: dict, e: Any, related: Mapping[str, Any]) -> list:
        facts["evaluated"] = True
        return []

    def _Complaint_ClosedUnevaluated(self, facts: dict, e: Any, related: Mapping[str, Any]) -> list:
        """Closed by the stalled-cases job because the customer, told the outcome, never evaluated it
        (rules.customer_silence): the evaluation the customer withheld is not the handler's gap, so
        archiving it later is no "archived without evaluation". Stored as its own fact, never as evaluated."""
        facts["unevaluated_closure"] = True
        return []

    def _Complaint_Archived(self, facts: dict, e: Any, related: Mapping[str, Any]) -> list:
        missing = {"evidence": not facts["evidence"], "remedy": not facts["remedied"],
                   "notification": not facts["notified"],
                   "evaluation": not (facts["evaluated"] or facts.get("unevaluated_closure"))}
        return [self._suspect(f"complaint_archived_without_{what}", _at(e))
                for what, gap in missing.items() if gap]

    # -- dispositions: proposer and approver are two people (four eyes) ------------------------
    def _Disposition_Proposed(self, facts: dict, e: Any, related: Mapping[str, Any]) -> list:
        _start(facts, {"proposer": e.proposer})
        _keep_origin(facts, "proposed_from", e)
        return []

    def _Disposition_Approved(self, facts: dict, e: Any, related: Mapping[str, Any]) -> list:
        return self._four_eyes("disposition.approve", facts.get("proposer"), facts.get("proposed_from"), e)


#: The fold of each event class a case rule looks at: ``Ticket.Closed`` → ``CaseAudit._Ticket_Closed``.
_FOLDS = {name[1:].replace("_", ".", 1): fold for name, fold in vars(CaseAudit).items()
          if name[1:].partition("_")[0] in CaseAudit.KINDS}


def _start(facts: dict[str, Any], first: dict[str, Any]) -> None:
    """A case's first event: its facts are these, whatever they were."""
    facts.clear()
    facts.update(first)


def _origin(e: Any) -> dict[str, str] | None:
    """The operating-system user and host an event's command came from, when it says (``via`` cli)."""
    os_user, host = e.meta.get("os_user"), e.meta.get("host")
    return {"os_user": os_user, "host": host} if os_user and host else None


def _keep_origin(facts: dict[str, Any], key: str, e: Any) -> None:
    """Remember where the first step of a four-eyes pair came from; no key when unknown (so the facts
    of cases given otherwise stay as they were)."""
    origin = _origin(e)
    if origin is None:
        facts.pop(key, None)
    else:
        facts[key] = origin
