"""Reading SLA clock runs against their policy: when a run crosses its limit (or a multiple of it,
for escalation steps), its deadline, and what the SLA job must decide next.

Pure functions of a run (:class:`domain.sla.ClockRun`), a clock of the policy and the business
calendar — shared by the SLA job (``services/sla.py``), the ``SLABreach`` aggregate and the SLA read
model. Split from ``domain/sla.py``, which folds events into runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping, NamedTuple, Protocol
from zoneinfo import ZoneInfo

from domain.calendar import BusinessCalendar, deadline_with_ref
from domain.errors import PolicyError
from domain.policy import Clock, Policy


class ClockRun(Protocol):
    """What judging needs of a run: :class:`domain.sla.ClockRun` (a protocol here, so this module
    does not import the one that imports it)."""

    started_at: datetime
    stopped_at: datetime | None
    attrs: dict[str, Any]
    pauses: list[list[datetime | None]]

    @property
    def paused(self) -> bool: ...


def crossing(run: ClockRun, base: datetime, as_of: datetime | None = None) -> tuple[datetime | None, datetime | None]:
    """``(crossed_at, deadline)`` of a run against ``base``, its deadline if it were never paused.

    ``crossed_at``: the moment the running clock passed the deadline (None if it has not, by
    ``as_of`` or by its stop). ``deadline``: the deadline moved by the pauses so far (None while
    paused: a paused clock has no fixed deadline).
    """
    deadline = base
    for start, end in run.pauses:
        if start > deadline:
            return deadline, deadline
        if end is None:
            return None, None
        deadline += end - start
    end = run.stopped_at or as_of
    if end is not None and end > deadline:
        return deadline, deadline
    return None, deadline


class Reading(NamedTuple):
    """A clock run judged by its policy at ``as_of`` (or, for the read model, by its events only)."""

    run: ClockRun
    limit: float
    unit: str
    clause: str
    deadline: datetime | None
    crossed_at: datetime | None
    #: The calendar data the limit's working days were counted with (``cn-2026@<hash>``, or the
    #: ``holidays`` package for a year without a notice); None for limits in minutes or hours.
    calendar_ref: str | None = None

    @property
    def state(self) -> str:
        """running | paused | met | missed (stopped after its deadline) | overdue (running, past it)."""
        if self.run.stopped_at is not None:
            return "missed" if self.crossed_at else "met"
        if self.crossed_at is not None:
            return "overdue"
        return "paused" if self.run.paused else "running"


def read(run: ClockRun, clock: Clock, calendar: BusinessCalendar, tz: ZoneInfo, as_of: datetime | None = None,
         multiple: int = 1) -> Reading | None:
    """The run against ``multiple`` × its limit; None when no limit of the clock applies to the case."""
    try:
        limit = clock.limit_for(run.attrs)
    except PolicyError:
        return None
    base, calendar_ref = deadline_with_ref(run.started_at, limit * multiple, clock.unit, calendar, tz)
    crossed, deadline = crossing(run, base, as_of)
    return Reading(run, limit, clock.unit, clock.source, deadline, crossed, calendar_ref)


def escalation_steps(policy: Policy) -> list[Mapping[str, Any]]:
    return list(policy.rule("sla_escalation")["steps"])


def target_multiple(policy: Policy, target: int) -> int | None:
    """Limits counted by target ``target`` (0: the breach, k: escalation step k-1); None past the last."""
    if target == 0:
        return 1
    steps = escalation_steps(policy)
    return 1 + int(steps[target - 1]["overdue_limits"]) if target <= len(steps) else None


def next_due(run: ClockRun, clock: Clock, policy: Policy, calendar: BusinessCalendar, done: int,
             as_of: datetime | None = None) -> datetime | None:
    """When the next target (``done`` of them recorded) is or will be due; None if it never will be
    (no more steps, the clock stopped in time, or it is paused)."""
    multiple = target_multiple(policy, done)
    if multiple is None:
        return None
    reading = read(run, clock, calendar, policy.tz, as_of, multiple)
    if reading is None:
        return None
    if reading.crossed_at is not None:
        return reading.crossed_at
    return None if run.stopped_at is not None else reading.deadline
