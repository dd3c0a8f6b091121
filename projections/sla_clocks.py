"""SLA clock state: one row per clock run of every ticket, complaint and feedback (ids and facts only).

The fold is the domain's (:class:`domain.sla.CaseClocks`), kept per case as JSON in
``rm_sla_case``; each run it starts or changes is a row of ``rm_sla_clock`` with its deadline
under the case's own policy and business calendar, its status (running, paused, met, missed),
and — from the SLA job's ``SLABreached`` / ``Escalated`` events — whether it was recorded as
breached and how far it was escalated. The row id is the breach id the run would get.

``deadline`` is NULL while paused; "overdue at T" is ``status = 'running' AND deadline < T``.
``next_check`` is when the SLA job next has something to decide for the run (its breach, or its
next escalation step), NULL when never; the job reads only rows with ``next_check <= as_of``.
``calendar_ref`` names the calendar data a deadline in working days was counted with (the year's
State Council notice, ``cn-2026@<hash>``, or the ``holidays`` package for a year without one);
NULL for limits in minutes or hours, which need no calendar.
``seq`` orders rows for keyset pages: the log position of the event that started the run × 64 +
the run's place among the runs that event started (unique, never reused).

While projecting, a case's ``state`` is the live :class:`CaseClocks` (a codec column): it is
written as JSON once per batch, not parsed and re-written on every event.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Any, Callable, Mapping, NamedTuple
from zoneinfo import ZoneInfo

import orjson

from domain.policy import Clock, Policy
from domain.sla import CREATION, MARKED_EVENTS, CaseClocks, ClockRun, breach_key, mark_of
from domain.sla_reading import next_due, read
from projections.rowcache import RowCache
from projections.runtime import Projection
from projections.store import Codec, Table
from projections.timeutil import occurred_stamp, stamp, stamp_once

_compact_json = json.JSONEncoder(separators=(",", ":")).encode  # = json.dumps(…, separators=(",", ":"))
_SCALARS = frozenset({str, int, bool, type(None)})


def _state_text(clocks: CaseClocks) -> str:
    """``json.dumps(clocks.to_json(), separators=(",", ":"))``, mostly written by orjson (several
    times faster).

    For dicts, lists, text, integers, booleans and None, orjson writes that very text except that
    it leaves non-ASCII characters and DEL unescaped (json escapes them), and it writes floats its
    own way. ``to_json`` makes only text, integers and None, but the case's attributes are event
    values: they go to orjson when they are of those kinds, and its text is kept when it is ASCII
    without DEL. Anything else is written by json itself.
    """
    data = clocks.to_json()
    if all(type(v) in _SCALARS for v in clocks.attrs.values()) and \
            all(type(v) in _SCALARS for run in clocks.runs for v in run.attrs.values()):
        try:
            text = orjson.dumps(data).decode()
        except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits, a key that is not text
            pass
        else:
            if text.isascii() and "\x7f" not in text:
                return text
    return _compact_json(data)


CLOCKS_CODEC = Codec(encode=_state_text, decode=lambda text: CaseClocks.from_json(json.loads(text)))

SLA_CASE_TABLE = Table("rm_sla_case", columns=(("case_id", "TEXT"), ("kind", "TEXT"), ("policy_ref", "TEXT"),
                                               ("state", "TEXT")), key=("case_id",), codecs=(("state", CLOCKS_CODEC),))
SLA_CLOCK_TABLE = Table(
    "rm_sla_clock",
    columns=(("clock_id", "TEXT"), ("seq", "BIGINT"), ("case_kind", "TEXT"), ("case_id", "TEXT"),
             ("clock_key", "TEXT"), ("cycle", "BIGINT"), ("policy_ref", "TEXT"), ("clause", "TEXT"),
             ("status", "TEXT"), ("limit_value", "TEXT"), ("unit", "TEXT"), ("started_at", "TEXT"),
             ("stopped_at", "TEXT"), ("paused_seconds", "BIGINT"), ("deadline", "TEXT"), ("breached", "BIGINT"),
             ("breached_at", "TEXT"), ("rung", "TEXT"), ("escalations", "BIGINT"), ("next_check", "TEXT"),
             ("updated_at", "TEXT"), ("calendar_ref", "TEXT")),
    key=("clock_id",),
    indexes=(("seq",), ("next_check",), ("case_id",), ("status", "seq"), ("clock_key", "seq")),
)
_CASES, _CLOCKS = SLA_CASE_TABLE.name, SLA_CLOCK_TABLE.name
#: Runs one event can start (the seq multiplier); no policy has nearly as many clocks per subject.
_SEQ_SLOTS = 64


@functools.lru_cache(maxsize=1 << 16)
def _clock_id(case_id: str, key: str, cycle: int) -> str:
    # A case's later events touch the same runs: their ids (uuid5) are made once.
    return breach_key(case_id, key, cycle)


@functools.lru_cache(maxsize=1 << 8)
def _limit_text(limit: float) -> str:
    return f"{limit:g}"  # a policy has a handful of limits


class _Terms(NamedTuple):
    """A policy version as every row under it asks for it: looked up once per policy."""

    policy: Policy
    tz: ZoneInfo
    clocks: Mapping[str, Clock]
    calendar: Any  # the ledger's business calendar (the same for every policy; here to save a lookup per run)

    def clock(self, key: str) -> Clock:
        return self.clocks.get(key) or self.policy.clock(key)  # the latter raises for an unknown key


class SlaClocks(Projection):
    name = "sla_clocks"
    # 3: calendar_ref, the calendar data a working-day deadline was counted with (issue 20);
    # 2: limits selected by domain.policy.selection_attributes (service type); new milestones
    version = 3
    rebuild_weight = 18
    tables = (SLA_CASE_TABLE, SLA_CLOCK_TABLE)

    def __init__(self, ledger: Any):
        super().__init__(ledger)
        self._terms: dict[str, _Terms] = {}

    def resolve(self, cls: type) -> Callable[..., None] | None:
        qualname = cls.__qualname__
        if qualname.startswith("SLABreach."):
            return self._breach_event
        return self._marked_event if qualname in MARKED_EVENTS else None

    def _terms_of(self, policy_ref: str) -> _Terms:
        terms = self._terms.get(policy_ref)
        if terms is None:
            policy = self.ledger.policies.get(policy_ref)
            terms = self._terms[policy_ref] = _Terms(policy, policy.tz, policy.clocks, self.calendar)
        return terms

    def _marked_event(self, event: Any, position: int, rows: RowCache) -> None:
        mark = mark_of(event)
        if mark is None:
            return
        case_id = str(event.originator_id)
        subject = CREATION.get(type(event).__qualname__)
        if subject is not None:
            case = {"case_id": case_id, "kind": subject, "policy_ref": event.policy_ref, "state": CaseClocks(subject)}
        else:
            case = rows.get(_CASES, case_id)
            if case is None:
                raise LookupError(f"rm_sla_case has no row for {case_id}; its creation event was not seen")
        policy_ref = case["policy_ref"]
        terms = self._terms.get(policy_ref) or self._terms_of(policy_ref)
        touched = case["state"].apply(mark, terms.policy)
        rows.put(_CASES, case)
        if not touched:
            return
        now = occurred_stamp(event)  # the stamp of mark.at: the times of the runs this event started or stopped
        at = mark.at
        started = 0
        for run in touched:
            clock_id = _clock_id(case_id, run.key, run.cycle)
            row = rows.get(_CLOCKS, clock_id)
            if row is None:
                row = {"clock_id": clock_id, "seq": position * _SEQ_SLOTS + started, "case_kind": case["kind"],
                       "case_id": case_id, "clock_key": run.key, "cycle": run.cycle, "policy_ref": policy_ref,
                       "started_at": now if run.started_at is at else stamp(run.started_at), "stopped_at": None,
                       "breached": 0, "breached_at": None, "rung": None, "escalations": 0}
                started += 1
            self._refresh(row, run, terms, now, at)
            rows.put(_CLOCKS, row)

    def _refresh(self, row: dict[str, Any], run: ClockRun, terms: _Terms, updated_at: str,
                 moment: datetime | None = None) -> None:
        """The row's reading of the run, at an event of time ``moment`` (stamped ``updated_at``).
        A run's start and stop times never change once set: they are stamped once."""
        stopped_at = run.stopped_at
        if row["stopped_at"] is None and stopped_at is not None:
            row["stopped_at"] = updated_at if stopped_at is moment else stamp(stopped_at)
        clock = terms.clocks.get(run.key) or terms.clock(run.key)
        reading = read(run, clock, terms.calendar, terms.tz)
        row["clause"] = clock.source
        row["unit"] = clock.unit
        row["paused_seconds"] = run.paused_seconds() if run.pauses else 0
        row["updated_at"] = updated_at
        if reading is None:
            row["status"] = "no_limit"
            row["limit_value"] = row["deadline"] = row["next_check"] = row["calendar_ref"] = None
            return
        row["calendar_ref"] = reading.calendar_ref
        deadline = reading.deadline
        row["status"] = reading.state
        row["limit_value"] = _limit_text(reading.limit)
        # A run's deadline moves with its attributes and pauses: seldom stamped twice, so no cache to fill.
        row["deadline"] = deadline_text = None if deadline is None else stamp_once(deadline)
        done = (1 + row["escalations"]) if row["breached"] else 0
        if done == 0:  # the breach is next: this very reading says when
            due = reading.crossed_at or (deadline if stopped_at is None else None)
        else:
            due = next_due(run, clock, terms.policy, terms.calendar, done)
        row["next_check"] = None if due is None else deadline_text if due is deadline else stamp(due)

    def _breach_event(self, event: Any, position: int, rows: RowCache) -> None:
        row = rows.get(_CLOCKS, str(event.originator_id))
        if row is None:
            raise LookupError(f"rm_sla_clock has no run for breach {event.originator_id}")
        if type(event).__qualname__ == "SLABreach.SLABreached":
            row.update(breached=1, breached_at=stamp(event.breached_at), rung=event.rung)
        elif type(event).__qualname__ == "SLABreach.Escalated":
            row.update(rung=event.to_rung, escalations=row["escalations"] + 1)
        case = rows.peek(_CASES, row["case_id"])  # read only: the run is not changed
        run = case["state"].run(row["clock_key"], row["cycle"])
        self._refresh(row, run, self._terms_of(row["policy_ref"]), occurred_stamp(event))
        rows.put(_CLOCKS, row)
