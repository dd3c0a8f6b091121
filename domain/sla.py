"""SLA clocks (时限) of a case, and their breaches.

A clock of the case's policy (:class:`domain.policy.Clock`: subject, start and stop milestones,
unit, limits, pausable) runs from the first time its start milestone is reached to the first time
its stop milestone is reached after that. Pure: time is always passed in.

- Events become *marks* (:func:`mark_of`): a milestone, a classification (the attributes that
  pick a limit), a pause, a resume or a reopen. :class:`CaseClocks` folds a case's marks into
  clock runs; the read model and the SLA job use the same fold.
- **Pauses** (tickets: ``pause_clock`` / ``resume_clock``, waiting for the customer) do not count
  on pausable clocks: a pause moves the deadline later by its length. A clock that passed its
  deadline before a pause began stays breached — pausing never undoes a breach.
- **Reopen** starts a new *cycle*: the milestones after resolution are cleared, and a clock whose
  stop milestone was cleared runs again — from the reopen if its start milestone still stands
  (resolution), otherwise from the next time its start milestone is reached (result feedback).
- **Targets**: target 0 is the limit itself (the breach); target k is step k of the policy's
  ``rules.sla_escalation`` (limit × (1 + overdue_limits)). A target is due at the moment the run
  *crossed* it while still running, so what is due depends only on the case's events, never on
  when the job happened to look.

:class:`SLABreach` records one breached run (deterministic id: case, clock, cycle — a second
recording conflicts) and its escalations up the ladder, one step at a time, each once. Judging a
run against its limit (deadline, crossing, next target) is in :mod:`domain.sla_reading`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping, NamedTuple
from uuid import UUID

from eventsourcing.domain import event

from domain.case import Case
from domain.complaint import _rung_index
from domain.context import Context
from domain.errors import require
from domain.ids import uuid5_text
from domain.policy import Clock, Policy, selection_attributes
from domain.sla_reading import Reading, escalation_steps

SLA_NAMESPACE = UUID("5a226ca1-75e4-4680-88ae-14dd42ec8ec0")


def breach_key(case_id: str, clock_key: str, cycle: int) -> str:
    """The id (as text) of the breach of run ``cycle`` of clock ``clock_key`` of a case: what
    ``SLABreach.id_for`` gives, and what the SLA read model keys the run's row by."""
    return uuid5_text(SLA_NAMESPACE, f"sla-breach:{case_id}:{clock_key}:{cycle}")

#: Milestones a reopened ticket has to reach again.
_AFTER_RESOLUTION = ("resolved", "result_fed_back", "accepted", "closed", "review_requested", "reviewed")


class Mark(NamedTuple):
    """What one event means for the clocks of its case (a named tuple: one is made per event)."""

    at: datetime
    milestone: str | None = None
    attrs: Mapping[str, Any] | None = None
    pause: bool = False
    resume: bool = False
    clears: tuple[str, ...] = ()
    also: tuple[str, ...] = ()  # further milestones the same event reaches, after ``milestone``


def _at(e: Any) -> datetime:
    return _moment(e.meta["occurred_at"])


@functools.lru_cache(maxsize=1 << 16)
def _moment(text: str) -> datetime:
    # Parsed once per text: the events of one command share their business time, and a run's times
    # are its marks' times, so one object serves them all (datetimes are immutable).
    return datetime.fromisoformat(text)


def _reach(name: str) -> Callable[[Any], Mark]:
    return lambda e: Mark(_at(e), name)


def _reviewed(e: Any) -> Mark:
    return Mark(_at(e), "reviewed", also=("resolved",) if e.approved else ())


def _classified(subject: str, *always: str) -> Callable[[Any], Mark]:
    """A classification's mark. Fields every stored classification has had (``always``) are read
    strictly: a classification without them is corrupt, and the clocks stop at it (the read model
    stalls, named) rather than quietly selecting the fallback limit. Fields added later (the service
    type) may be absent from old events."""

    def mark(e: Any) -> Mark:
        for name in always:
            getattr(e, name)
        return Mark(_at(e), "classified", attrs=selection_attributes(subject, e))

    return mark


#: Event (class qualname) → its mark. Resolution counts once the second review approved it; a
#: resolution that needs the review reaches ``review_requested`` (the second-review clock starts).
#: Classifications carry the attributes that select limits: :func:`domain.policy.selection_attributes`.
_MARKS: dict[str, Callable[[Any], Mark | None]] = {
    "Ticket.Received": _reach("received"),
    "Ticket.Classified": _classified("ticket", "priority", "complexity", "high_risk"),
    "Ticket.ProgressUpdated": _reach("tracking_started"),
    "Ticket.Assigned": _reach("assigned"),
    "Ticket.FirstResponded": _reach("first_responded"),
    "Ticket.ClockPaused": lambda e: Mark(_at(e), pause=True),
    "Ticket.ClockResumed": lambda e: Mark(_at(e), resume=True),
    "Ticket.Resolved": lambda e: Mark(_at(e), "review_requested" if e.review_required else "resolved"),
    "Ticket.Reviewed": _reviewed,
    "Ticket.ResultFedBack": _reach("result_fed_back"),
    "Ticket.AcceptanceRecorded": lambda e: Mark(_at(e), "accepted") if e.accepted else None,
    "Ticket.Closed": _reach("closed"),
    "Ticket.ClosedUnconfirmed": _reach("closed"),
    "Ticket.Reopened": lambda e: Mark(_at(e), clears=_AFTER_RESOLUTION),
    "Ticket.Archived": _reach("archived"),
    "Complaint.Accepted": _reach("accepted"),
    "Complaint.Classified": _classified("complaint", "complaint_type", "level"),
    "Complaint.FirstResponded": _reach("first_responded"),
    "Complaint.InvestigationStarted": _reach("first_handled"),
    "Complaint.Escalated": _reach("escalated"),
    "Complaint.RemedyDecided": _reach("remedied"),
    "Complaint.CustomerNotified": _reach("customer_notified"),
    "Complaint.Evaluated": _reach("evaluated"),
    "Complaint.Archived": _reach("archived"),
    "Feedback.Submitted": lambda e: Mark(_at(e), "received", attrs=selection_attributes("feedback", e)),
    "Feedback.Responded": _reach("responded"),
    "Feedback.Replied": _reach("replied"),
}
#: Events (class qualnames) that can mean something to the clocks: ``mark_of`` is None for any other.
MARKED_EVENTS = frozenset(_MARKS)
#: Creation events of the cases that have clocks, and the subject (clock.subject) they open.
CREATION = {"Ticket.Received": "ticket", "Complaint.Accepted": "complaint", "Feedback.Submitted": "feedback"}


def mark_of(e: Any) -> Mark | None:
    make = _MARKS.get(type(e).__qualname__)
    return make(e) if make else None


@dataclass
class ClockRun:
    """One run of one clock: started, maybe paused (``pauses``: [start, end or None]), maybe stopped."""

    key: str
    cycle: int
    started_at: datetime
    attrs: dict[str, Any]
    stopped_at: datetime | None = None
    pauses: list[list[datetime | None]] = field(default_factory=list)

    @property
    def paused(self) -> bool:
        return bool(self.pauses) and self.pauses[-1][1] is None

    def paused_seconds(self, as_of: datetime | None = None) -> int:
        total = 0.0
        for start, end in self.pauses:
            end = end or as_of
            if end is not None and start is not None:
                total += (end - start).total_seconds()
        return int(total)

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "cycle": self.cycle, "started_at": _iso(self.started_at),
                "attrs": self.attrs, "stopped_at": _iso(self.stopped_at),
                "pauses": [[_iso(s), _iso(e)] for s, e in self.pauses]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClockRun:
        return cls(data["key"], data["cycle"], _moment(data["started_at"]), dict(data["attrs"]),
                   _time(data["stopped_at"]), [[_time(s), _time(e)] for s, e in data["pauses"]])


def _iso(value: datetime | None) -> str | None:
    return None if value is None else _iso_text(value, id(value.tzinfo), value.fold)


@functools.lru_cache(maxsize=1 << 16)
def _iso_text(value: datetime, tzinfo_id: int, fold: int) -> str:
    # Written each time a case's state is saved. Equal datetimes in other time zones or folds are
    # equal keys on their own, so the key also holds the very tzinfo (kept alive by ``value``).
    return value.isoformat()


def _time(value: str | None) -> datetime | None:
    return None if value is None else _moment(value)


class CaseClocks:
    """Every clock run of one case, folded from its marks (see the module docstring)."""

    def __init__(self, subject: str, *, reached: dict[str, datetime] | None = None, cycle: int = 0,
                 paused_since: datetime | None = None, attrs: dict[str, Any] | None = None,
                 runs: list[ClockRun] | None = None):
        self.subject = subject
        self.reached = dict(reached or {})
        self.cycle = cycle
        self.paused_since = paused_since
        self.attrs = dict(attrs or {})
        self.runs = list(runs or [])

    def current(self, key: str) -> ClockRun | None:
        """The clock's run in the current cycle, if it has started."""
        for run in reversed(self.runs):
            if run.key == key:
                return run if run.cycle == self.cycle else None
        return None

    def run(self, key: str, cycle: int) -> ClockRun | None:
        return next((r for r in self.runs if r.key == key and r.cycle == cycle), None)

    def apply(self, mark: Mark, policy: Policy) -> list[ClockRun]:
        """Fold one mark in; returns the runs it started or changed."""
        terms = _terms(policy, self.subject)
        clocks = terms.clocks
        touched: list[ClockRun] = []
        changes_open_runs = mark.attrs is not None or mark.pause or mark.resume  # most marks are milestones only
        open_runs = [r for r in self.runs if r.stopped_at is None] if changes_open_runs else []
        if mark.attrs is not None:
            self.attrs.update(mark.attrs)
            for run in open_runs:
                run.attrs = dict(self.attrs)
                touched.append(run)
        if mark.pause and self.paused_since is None:
            self.paused_since = mark.at
            for run in open_runs:
                if run.key in clocks and clocks[run.key].pausable:
                    run.pauses.append([mark.at, None])
                    touched.append(run)
        if mark.resume and self.paused_since is not None:
            self.paused_since = None
            for run in open_runs:
                if run.paused:
                    run.pauses[-1][1] = mark.at
                    touched.append(run)
        if mark.clears:
            self.cycle += 1
            for name in mark.clears:
                self.reached.pop(name, None)
            for key, clock in clocks.items():
                if clock.stop in mark.clears and clock.start in self.reached:
                    touched.append(self._start(key, clock, mark.at))
        for milestone in (mark.milestone, *mark.also) if mark.milestone else ():
            if milestone in self.reached:
                continue
            self.reached[milestone] = mark.at
            for key, clock in terms.at_milestone.get(milestone, ()):
                run = self.current(key)
                if run is None and clock.start == milestone:
                    touched.append(self._start(key, clock, mark.at))
                elif run is not None and run.stopped_at is None and clock.stop == milestone:
                    if run.paused:
                        run.pauses[-1][1] = mark.at
                    run.stopped_at = mark.at
                    touched.append(run)
        return list({id(r): r for r in touched}.values()) if len(touched) > 1 else touched

    def _start(self, key: str, clock: Clock, at: datetime) -> ClockRun:
        run = ClockRun(key, self.cycle, at, dict(self.attrs))
        if clock.pausable and self.paused_since is not None:
            run.pauses.append([at, None])
        self.runs.append(run)
        return run

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "cycle": self.cycle, "paused_since": _iso(self.paused_since),
                "attrs": self.attrs, "reached": {k: _iso(v) for k, v in self.reached.items()},
                "runs": [r.to_json() for r in self.runs]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CaseClocks:
        return cls(data["subject"], reached={k: _moment(v) for k, v in data["reached"].items()},
                   cycle=data["cycle"], paused_since=_time(data["paused_since"]), attrs=data["attrs"],
                   runs=[ClockRun.from_json(r) for r in data["runs"]])

    @classmethod
    def fold(cls, subject: str, events: Any, policy: Policy, as_of: datetime | None = None) -> CaseClocks:
        """The clocks as they stood at ``as_of`` (default: after every event)."""
        clocks = cls(subject)
        for e in events:
            mark = mark_of(e)
            if mark is None:
                continue
            if as_of is not None and mark.at > as_of:
                break  # business time is monotonic per case
            clocks.apply(mark, policy)
        return clocks


class _SubjectTerms(NamedTuple):
    """The clocks of one subject under one policy, as the fold asks for them on every mark."""

    clocks: dict[str, Clock]  # in key order
    at_milestone: dict[str, list[tuple[str, Clock]]]  # milestone -> the clocks it starts or stops, in key order


#: id(policy) -> (the policy, {subject: its terms}); the policy is kept, so its id stays its own.
_TERMS: dict[int, tuple[Policy, dict[str, _SubjectTerms]]] = {}


def _terms(policy: Policy, subject: str) -> _SubjectTerms:
    """The policy's clocks of one subject (remembered per policy: every mark asks); not to be changed."""
    entry = _TERMS.get(id(policy))
    if entry is None or entry[0] is not policy:
        entry = _TERMS[id(policy)] = (policy, {})
    by_subject = entry[1]
    if subject not in by_subject:
        clocks = {k: c for k, c in sorted(policy.clocks.items()) if c.subject == subject}
        at_milestone: dict[str, list[tuple[str, Clock]]] = {}
        for key, clock in clocks.items():
            for milestone in dict.fromkeys((clock.start, clock.stop)):
                at_milestone.setdefault(milestone, []).append((key, clock))
        by_subject[subject] = _SubjectTerms(clocks, at_milestone)
    return by_subject[subject]


class SLABreach(Case):
    """A clock run that passed its limit, recorded once, then escalated up the ladder."""

    @event("SLABreached")
    def __init__(self, id: UUID, case_kind: str, case_id: str, clock_key: str, cycle: int, policy_ref: str,
                 clause: str, limit: float, unit: str, started_at: str, breached_at: str, stopped_at: str | None,
                 rung: str, meta: dict[str, Any], calendar_ref: str | None = None):
        # calendar_ref (issue 20): the calendar data the limit's working days were counted with; last and
        # optional, so breaches recorded before it existed replay unchanged (None: not known / not needed).
        self.case_kind, self.case_id, self.clock_key, self.cycle = case_kind, case_id, clock_key, cycle
        self.calendar_ref = calendar_ref
        self.policy_ref = policy_ref
        self.clause = clause
        self.breached_at = breached_at
        self.rung = rung
        self.escalations = 0
        self.status = "breached"

    @staticmethod
    def id_for(case_id: str, clock_key: str, cycle: int) -> UUID:
        return UUID(breach_key(case_id, clock_key, cycle))

    @classmethod
    def record(cls, *, case_kind: str, case_id: str, reading: Reading, policy: Policy, ctx: Context) -> SLABreach:
        run = reading.run
        require(reading.crossed_at is not None and reading.crossed_at <= ctx.occurred_at,
                f"clock {run.key} has not passed its limit at {ctx.occurred_at.isoformat()}",
                rule="sla.not_breached", clause=reading.clause)
        first_rung = policy.rule("escalation_ladder")["rungs"][0]
        return cls(id=cls.id_for(case_id, run.key, run.cycle), case_kind=case_kind, case_id=str(case_id),
                   clock_key=run.key, cycle=run.cycle, policy_ref=policy.ref, clause=reading.clause,
                   limit=reading.limit, unit=reading.unit, started_at=run.started_at.isoformat(),
                   breached_at=reading.crossed_at.isoformat(), stopped_at=_iso(run.stopped_at), rung=first_rung,
                   meta=ctx.meta(policy.ref), calendar_ref=reading.calendar_ref)

    def escalate(self, *, step: int, due_at: datetime, policy: Policy, ctx: Context) -> None:
        """Escalation step ``step`` of ``rules.sla_escalation``: the next rung, in order, once."""
        self._governed_by(policy)
        ladder = policy.rule("escalation_ladder")
        clause = str(ladder.get("source", ""))
        steps = escalation_steps(policy)
        require(step == self.escalations, f"escalation step {step} is not the next one ({self.escalations})",
                rule="sla.escalation_order", clause=clause)
        require(step < len(steps), "the breach is at the top of the escalation ladder", rule="sla.escalation_top",
                clause=clause)
        to_rung = steps[step]["rung"]
        require(_rung_index(ladder, to_rung) == _rung_index(ladder, self.rung) + 1,
                f"escalation goes one rung at a time: {self.rung} to {to_rung} skips a rung",
                rule="sla.escalation_ladder", clause=clause)
        require(due_at <= ctx.occurred_at, f"escalation step {step} is due only at {due_at.isoformat()}",
                rule="sla.escalation_not_due", clause=clause)
        self._escalated(step, self.rung, to_rung, due_at.isoformat(), self._meta(ctx))

    @event("Escalated")
    def _escalated(self, step: int, from_rung: str, to_rung: str, due_at: str, meta: dict[str, Any]) -> None:
        self.rung = to_rung
        self.escalations += 1
