"""Historical import: an organisation's history from its previous helpdesk, every case kind.

The file is NDJSON, one case a line, in UTF-8; blank lines are ignored. Each line has ``kind``,
``ref`` (the old system's id: unique per kind), ``at`` (the original business time, ISO 8601
with a time zone) and the kind's fields; tickets, complaints, feedback, customers and interactions
have ``steps``, their lifecycle after creation, each ``{"action", "at", "actor", "reason", …}``
with the parameters of the domain command of that name (``ledger.application.ACTIONS``).
``actor`` is the old system's name of the person, a plain attribute; ``reason`` is required where
the live command requires one (pausing a clock, escalating, reopening, deciding on no remedy).
A line refers to a customer or ticket by its ``ref``, on an earlier line or in an earlier import::

    {"kind": "customer", "ref": "C-1", "at": "2019-03-01T09:00:00+08:00", "customer_kind": "individual", "tier": "general", "contact": {"name": "王芳", "phone": "13800138000"}}
    {"kind": "interaction", "ref": "CALL-7", "at": "2019-03-04T09:00:00+08:00", "channel": "phone", "direction": "inbound", "customer": "C-1", "steps": [{"action": "register", "at": "2019-03-04T09:01:00+08:00", "agent_id": "Li Wei"}, {"action": "route", "at": "2019-03-04T09:02:00+08:00", "queue": "billing"}]}
    {"kind": "ticket", "ref": "T-1001", "at": "2019-03-04T09:05:00+08:00", "customer": "C-1", "channel": "phone", "actor": "Li Wei", "steps": [{"action": "classify", "at": "2019-03-04T10:00:00+08:00", "actor": "Zhang Min", "priority": "normal", "complexity": "general", "high_risk": false}, {"action": "assign", "at": "2019-03-04T10:05:00+08:00", "actor": "Zhang Min", "handler": "Chen Jie", "team": "billing"}, …, {"action": "archive", "at": "2019-03-08T09:00:00+08:00"}]}
    {"kind": "complaint", "ref": "K-12", "at": "2019-03-05T14:00:00+08:00", "customer": "C-1", "ticket": "T-1001", "channel": "phone", "steps": [{"action": "classify", "at": "2019-03-05T15:00:00+08:00", "complaint_type": "process", "level": 2}, {"action": "start_investigation", "at": "2019-03-05T16:00:00+08:00"}, …, {"action": "archive", "at": "2019-03-20T09:00:00+08:00"}]}
    {"kind": "feedback", "ref": "F-3", "at": "2019-04-01T08:00:00+08:00", "customer": "C-1", "feedback_kind": "suggestion", "channel": "web", "content": "…", "steps": [{"action": "respond", "at": "2019-04-01T12:00:00+08:00"}, {"action": "reply", "at": "2019-04-02T09:00:00+08:00"}]}
    {"kind": "survey", "ticket": "T-1001", "at": "2019-03-07T12:00:00+08:00", "csat": 4, "nps": 8}

The fields of each kind are ``services.history_records.CREATE`` (a ticket's ``actor``, its
first-contact owner, is required). A survey has no ``ref`` and no steps: a ticket has at most one
survey, so the ticket is its identity.

How it is imported, and why:

- **All or nothing.** Every line is checked before anything is written, by building every case in
  memory with the real domain commands (as ``CaseLedger.check_interactions`` does), so each
  lifecycle rule, vocabulary and the policy's clauses apply as they do live. One bad line refuses
  the whole file; each refusal names its line and rule.
- **Business time is the original one**, never later than now and in order within a case. Each
  step has a context of its own (``context(at, reason, person)``, given by the caller, who sets
  ``imported`` to the file name and hash), so every event says it was imported and from where.
- **The recorded actor is the importer**, never a name from the file. The file's names go where
  the domain has a field for the person (a ticket's first-contact owner, an assignment's
  ``handler``, an interaction's ``agent_id``) and, for every step, into the event's
  ``meta.performed_by``: who did it in the old system. Rules about people compare those names, so
  an imported second-person review by someone other than the resolver is accepted, and one by the
  resolver is refused as it would be live.
- **Idempotent by reference**: a case's id is ``uuid5(ID_NAMESPACE, "<kind>:<ref>")`` (an
  interaction's is the one ``import-interactions`` gives it; a survey's is ``answer_survey``'s), so
  importing the file again skips what is stored. Cases are saved in batches, each case whole in
  one transaction; an import stopped half-way is completed by running it again.
- **Policy**: the version in force at the case's time; history older than every version is
  governed by the earliest one, so the outcome does not depend on the day of the import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterator
from uuid import UUID, uuid5

from domain import text
from domain.complaint import Complaint
from domain.context import Context
from domain.customer import Customer
from domain.errors import DomainError, PolicyError
from domain.feedback import Feedback, SurveyResponse
from domain.interaction import Interaction
from domain.policy import Policy
from domain.ticket import Ticket
from ledger.application import ID_NAMESPACE, KINDS, CaseLedger
from ledger.errors import ConcurrentUpdate, LedgerError
from services.history_records import KINDS_IN_ORDER, LineRefused, Record, parse_line

#: The context of one imported command, at its original time: ``(at, reason) -> Context``.
ContextFor = Callable[[datetime, "str | None"], Context]
#: Most refusals listed; a file with thousands of bad lines needs fixing at the source anyway.
MAX_ERRORS = 50


@dataclass
class Known:
    """A case another line may refer to: its id, customer, and status over (business) time."""

    id: UUID
    line: int | None  # None: imported before, not on this file
    customer_id: str | None
    timeline: list[tuple[datetime, str]]

    @property
    def at(self) -> datetime:
        return self.timeline[0][0]

    def status_at(self, at: datetime) -> str | None:
        status = None
        for when, value in self.timeline:
            if when > at:
                break
            status = value
        return status


@dataclass
class Planned:
    record: Record
    id: UUID
    build: Callable[[], Any]
    aggregate: Any


@dataclass
class Plan:
    lines: int = 0
    cases: list[Planned] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)
    more_errors: int = 0


def case_id(kind: str, ref: str) -> UUID:
    return uuid5(ID_NAMESPACE, f"{kind}:{ref}")


class HistoryImport:
    def __init__(self, ledger: CaseLedger, context: ContextFor, *, now: datetime):
        self.ledger = ledger
        self.context = context
        self.now = now
        self.mapper = ledger.facts_mapper()  # reading earlier imports needs no personal data
        self._earlier: dict[UUID, Known | None] = {}
        keys = ledger.subject_keys
        # Subjects whose data key is destroyed: nothing more may be written for them (read once).
        self._destroyed = {row[0] for row in keys.destroyed_subjects()} if keys is not None else set()

    # -- checking --------------------------------------------------------------------------
    def check(self, data: bytes) -> Plan:
        """Every line parsed and every case built in memory; nothing written."""
        plan = Plan()
        known: dict[tuple[str, str], Known] = {}
        refused: dict[tuple[str, str], int] = {}
        for number, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1):
            if not raw.strip():
                continue
            plan.lines += 1
            try:
                plan.cases.append(self._plan(parse_line(number, raw, self.now), known, refused))
            except LineRefused as e:
                self._refuse(plan, number, f"{e} (rule {e.rule})")
                if (key := _named(raw)) is not None:
                    refused[key] = number  # lines naming it are refused as such, not as unknown
        if not plan.lines:
            self._refuse(plan, 0, "the file holds no lines to import")
        return plan

    def _refuse(self, plan: Plan, number: int, message: str) -> None:
        if len(plan.errors) < MAX_ERRORS:
            plan.errors.append((number, message))
        else:
            plan.more_errors += 1

    def _plan(self, record: Record, known: dict[tuple[str, str], Known],
              refused: dict[tuple[str, str], int]) -> Planned:
        key = _key(record)
        if key in known:
            raise LineRefused(f"{_name(*key)} is already on line {known[key].line}", "import.duplicate")
        customer = self._reference(record, "customer", known, refused)
        ticket = self._reference(record, "ticket", known, refused)
        if ticket is not None:
            if record.kind == "survey":
                customer = Known(UUID(ticket.customer_id), None, None, [(ticket.at, "")])
            elif customer is not None and ticket.customer_id != str(customer.id):
                raise LineRefused(f"ticket {record.fields['ticket']!r} belongs to another customer",
                                  "import.reference")
        if customer is not None and str(customer.id) in self._destroyed:
            raise LineRefused("the customer's personal data was destroyed; nothing more is recorded for them",
                              "import.subject_destroyed")
        new_id = case_id("survey", str(ticket.id)) if record.kind == "survey" else case_id(record.kind, record.ref)
        policy = self._policy(record.at)
        timeline: list[tuple[datetime, str]] = []
        build = lambda: self._build(record, new_id, policy, customer, ticket, timeline)
        aggregate = build()
        known[key] = Known(new_id, record.line, getattr(aggregate, "customer_id", None), list(timeline))
        return Planned(record, new_id, build, aggregate)

    def _reference(self, record: Record, kind: str, known: dict[tuple[str, str], Known],
                   refused: dict[tuple[str, str], int]) -> Known | None:
        """The case ``record`` names in its ``kind`` field: from this file (an earlier line) or stored."""
        ref = record.fields.get(kind)
        if ref is None:
            return None
        target = known.get((kind, ref))
        if target is None and (kind, ref) in refused:
            raise LineRefused(f"{_name(kind, ref)} (line {refused[(kind, ref)]}) was refused", "import.reference")
        if target is None:
            target = self._stored(kind, ref)
        if target is None:
            raise LineRefused(f"unknown {kind} reference {ref!r}: not on an earlier line, nor imported before",
                              "import.reference")
        if target.at > record.at:
            raise LineRefused(f"{_name(kind, ref)} begins at {target.at.isoformat()}, after this "
                              f"{record.kind} ({record.at.isoformat()})", "import.time_order")
        return target

    def _stored(self, kind: str, ref: str) -> Known | None:
        """A case of an earlier import, replayed from its events (facts only) for its timeline."""
        uid = case_id(kind, ref)
        if uid in self._earlier:
            return self._earlier[uid]
        aggregate, timeline = None, []
        for stored in self.ledger.recorder.select_events(uid):
            aggregate = self.mapper.to_domain_event(stored).mutate(aggregate)
            timeline.append((datetime.fromisoformat(aggregate.last_occurred_at), aggregate.status))
        found = None
        if isinstance(aggregate, KINDS[kind]):
            found = Known(uid, None, getattr(aggregate, "customer_id", None), timeline)
        self._earlier[uid] = found
        return found

    def _policy(self, at: datetime) -> Policy:
        try:
            return self.ledger.policies.in_force(at, self.ledger.policy_name)
        except PolicyError:
            # Older than every version: the earliest governs, whatever the day of the import.
            versions = self.ledger.policies.versions(self.ledger.policy_name)
            return min(versions, key=lambda p: (p.effective_from, p.version))

    # -- building --------------------------------------------------------------------------
    def _build(self, record: Record, new_id: UUID, policy: Policy, customer: Known | None, ticket: Known | None,
               timeline: list[tuple[datetime, str]]) -> Any:
        """The case, created and driven through its steps by the domain's own commands, in memory."""
        timeline.clear()
        f = record.fields
        ctx = self.context(record.at, record.reason, record.actor)
        customer_id = str(customer.id) if customer else None
        ticket_id = str(ticket.id) if ticket else None
        try:
            if record.kind == "customer":
                aggregate: Any = Customer.register(id=new_id, kind=f["customer_kind"], tier=f["tier"],
                                                   contact=f["contact"] or {}, consents=f["consents"] or {},
                                                   policy=policy, ctx=ctx)
            elif record.kind == "interaction":
                aggregate = Interaction.receive(id=new_id, channel=f["channel"], direction=f["direction"],
                                                customer_id=customer_id, content=f["content"],
                                                external_ref=record.ref, policy=policy, ctx=ctx)
            elif record.kind == "ticket":
                aggregate = Ticket.receive(id=new_id, customer_id=customer_id, channel=f["channel"],
                                           first_contact_owner=record.actor, summary=f["summary"], policy=policy,
                                           ctx=ctx)
            elif record.kind == "complaint":
                aggregate = Complaint.accept(id=new_id, customer_id=customer_id, channel=f["channel"],
                                             description=f["description"], ticket_id=ticket_id, policy=policy,
                                             ctx=ctx)
            elif record.kind == "feedback":
                aggregate = Feedback.submit(id=new_id, kind=f["feedback_kind"], customer_id=customer_id,
                                            channel=f["channel"], content=f["content"], ticket_id=ticket_id,
                                            policy=policy, ctx=ctx)
            else:
                self._require_surveyable(ticket, record)
                aggregate = SurveyResponse.answer(id=new_id, ticket_id=ticket_id, customer_id=customer_id,
                                                  csat=f["csat"], nps=f["nps"], comment=f["comment"], policy=policy,
                                                  ctx=ctx)
        except (DomainError, LedgerError) as e:
            raise LineRefused(str(e), getattr(e, "rule", "import.refused")) from None
        timeline.append((record.at, aggregate.status))
        for step in record.steps:
            try:
                getattr(aggregate, step.action)(policy=policy, ctx=self.context(step.at, step.reason, step.actor),
                                                   **step.args)
            except (DomainError, LedgerError) as e:
                raise LineRefused(f"step {step.number} ({step.action}): {e}",
                                  getattr(e, "rule", "import.refused")) from None
            timeline.append((step.at, aggregate.status))
        return aggregate

    @staticmethod
    def _require_surveyable(ticket: Known | None, record: Record) -> None:
        """``CaseLedger.answer_survey``'s rule, on the ticket as it was at the survey's time."""
        status = ticket.status_at(record.at) if ticket else None
        if status not in {"fed_back", "accepted", "closed", "archived"}:
            raise LineRefused(f"a survey needs the result fed back to the customer; at {record.at.isoformat()} "
                              f"the ticket was {status}", "survey.requires_result_feedback")

    # -- writing ---------------------------------------------------------------------------
    def preview(self, plan: Plan) -> dict[str, Any]:
        """What :meth:`save` would do now (``--dry-run``)."""
        report = _report(plan)
        for case in plan.cases:
            _count(report, case, stored=self._is_stored(case.id))
        return report

    def save(self, plan: Plan, *, batch_size: int = 200) -> dict[str, Any]:
        """Save the checked cases, ``batch_size`` to a transaction, skipping those stored before."""
        if plan.errors:
            raise ValueError("a refused file is never imported")  # the caller shows plan.errors instead
        report = _report(plan)
        for chunk in _chunks(plan.cases, batch_size):
            aggregates = [case.aggregate for case in chunk]
            stored: set[UUID] = set()
            try:
                self.ledger._save(*aggregates)
            except ConcurrentUpdate:
                # Some were imported before. The failed save consumed the pending events: build the
                # others again from their records (same ids, same checks, fresh contexts).
                stored = {case.id for case in chunk if self._is_stored(case.id)}
                aggregates = [case.build() for case in chunk if case.id not in stored]
                if aggregates:
                    self.ledger._save(*aggregates)
            for case in chunk:
                _count(report, case, stored=case.id in stored)
            report["events"] += sum(a.version for a in aggregates)
        return report

    def _is_stored(self, aggregate_id: UUID) -> bool:
        return bool(self.ledger.recorder.select_events(aggregate_id, limit=1))


def _report(plan: Plan) -> dict[str, Any]:
    return {"lines": plan.lines, "imported": 0, "skipped": 0, "events": 0,
            "by_kind": {kind: {"imported": 0, "skipped": 0} for kind in KINDS_IN_ORDER}}


def _count(report: dict[str, Any], case: Planned, *, stored: bool) -> None:
    outcome = "skipped" if stored else "imported"
    report[outcome] += 1
    report["by_kind"][case.record.kind][outcome] += 1


def _chunks(cases: list[Planned], size: int) -> Iterator[list[Planned]]:
    for start in range(0, len(cases), max(1, size)):
        yield cases[start:start + size]


def _key(record: Record) -> tuple[str, str]:
    return (record.kind, record.ref) if record.ref is not None else ("survey", str(record.fields["ticket"]))


def _named(raw: bytes) -> tuple[str, str] | None:
    """The (kind, ref) a refused line names, if it names one."""
    try:
        value = text.loads(raw)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    kind, ref = value.get("kind"), value.get("ticket") if value.get("kind") == "survey" else value.get("ref")
    return (kind, ref) if isinstance(kind, str) and isinstance(ref, str) else None


def _name(kind: str, ref: str) -> str:
    return f"the survey of ticket {ref!r}" if kind == "survey" else f"{kind} {ref!r}"

