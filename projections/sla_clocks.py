"""SLA clock state: one row per clock run of every ticket, complaint and feedback (ids and facts only).

The fold is the domain's (:class:`domain.sla.CaseClocks`), kept per case as JSON in
``rm_sla_case``; each run it starts or changes is a row of ``rm_sla_clock`` with its deadline
under the case's own policy and business calendar, its status (running, paused, met, missed),
and — from the SLA job's ``SLABreached`` / ``Escalated`` events — whether it was recorded as
breached and how far it was escalated. The row id is the breach id the run would get.

``deadline`` is NULL while paused; "overdue at T" is ``status = 'running' AND deadline < T``.
``next_check`` is when the SLA job next has something to decide for the run (its breach, or its
next escalation step), NULL when never; the job reads only rows with ``next_check <= as_of``.
``seq`` orders rows for keyset pages: the log position of the event that started the run × 64 +
the run's place among the runs that event started (unique, never reused).

While projecting, a case's ``state`` is the live :class:`CaseClocks` (a codec column): it is
written as JSON once per batch, not parsed and re-written on every event.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Callable

from domain.sla import CREATION, MARKED_EVENTS, CaseClocks, ClockRun, SLABreach, mark_of, next_due, read
from projections.runtime import Projection
from projections.store import Codec, RowCache, Table
from projections.timeutil import occurred_stamp, stamp

_compact_json = json.JSONEncoder(separators=(",", ":")).encode  # = json.dumps(…, separators=(",", ":"))
CLOCKS_CODEC = Codec(encode=lambda clocks: _compact_json(clocks.to_json()),
                     decode=lambda text: CaseClocks.from_json(json.loads(text)))

SLA_CASE_TABLE = Table("rm_sla_case", columns=(("case_id", "TEXT"), ("kind", "TEXT"), ("policy_ref", "TEXT"),
                                               ("state", "TEXT")), key=("case_id",), codecs=(("state", CLOCKS_CODEC),))
SLA_CLOCK_TABLE = Table(
    "rm_sla_clock",
    columns=(("clock_id", "TEXT"), ("seq", "BIGINT"), ("case_kind", "TEXT"), ("case_id", "TEXT"),
             ("clock_key", "TEXT"), ("cycle", "BIGINT"), ("policy_ref", "TEXT"), ("clause", "TEXT"),
             ("status", "TEXT"), ("limit_value", "TEXT"), ("unit", "TEXT"), ("started_at", "TEXT"),
             ("stopped_at", "TEXT"), ("paused_seconds", "BIGINT"), ("deadline", "TEXT"), ("breached", "BIGINT"),
             ("breached_at", "TEXT"), ("rung", "TEXT"), ("escalations", "BIGINT"), ("next_check", "TEXT"),
             ("updated_at", "TEXT")),
    key=("clock_id",),
    indexes=(("seq",), ("next_check",), ("case_id",), ("status", "seq"), ("clock_key", "seq")),
)
#: Runs one event can start (the seq multiplier); no policy has nearly as many clocks per subject.
_SEQ_SLOTS = 64


@functools.lru_cache(maxsize=1 << 16)
def _clock_id(case_id: str, key: str, cycle: int) -> str:
    # A case's later events touch the same runs: their ids (uuid5) are made once.
    return str(SLABreach.id_for(case_id, key, cycle))


class SlaClocks(Projection):
    name = "sla_clocks"
    rebuild_weight = 2
    tables = (SLA_CASE_TABLE, SLA_CLOCK_TABLE)

    def resolve(self, cls: type) -> Callable[..., None] | None:
        qualname = cls.__qualname__
        if qualname.startswith("SLABreach."):
            return self._breach_event
        return self._marked_event if qualname in MARKED_EVENTS else None

    def _marked_event(self, event: Any, position: int, rows: RowCache) -> None:
        mark = mark_of(event)
        if mark is None:
            return
        case_id = str(event.originator_id)
        qualname = type(event).__qualname__
        if qualname in CREATION:
            case = {"case_id": case_id, "kind": CREATION[qualname], "policy_ref": event.policy_ref,
                    "state": CaseClocks(CREATION[qualname])}
        else:
            case = rows.get(SLA_CASE_TABLE.name, case_id)
            if case is None:
                raise LookupError(f"rm_sla_case has no row for {case_id}; its creation event was not seen")
        clocks: CaseClocks = case["state"]
        policy = self.ledger.policies.get(case["policy_ref"])
        touched = clocks.apply(mark, policy)
        rows.put(SLA_CASE_TABLE.name, case)
        started = 0
        for run in touched:
            clock_id = _clock_id(case_id, run.key, run.cycle)
            row = rows.get(SLA_CLOCK_TABLE.name, clock_id)
            if row is None:
                row = {"clock_id": clock_id, "seq": position * _SEQ_SLOTS + started, "case_kind": case["kind"],
                       "case_id": case_id, "clock_key": run.key, "cycle": run.cycle, "policy_ref": case["policy_ref"],
                       "breached": 0, "breached_at": None, "rung": None, "escalations": 0}
                started += 1
            self._refresh(row, run, policy, occurred_stamp(event))
            rows.put(SLA_CLOCK_TABLE.name, row)

    def _refresh(self, row: dict[str, Any], run: ClockRun, policy: Any, updated_at: str) -> None:
        clock = policy.clock(run.key)
        reading = read(run, clock, self.calendar, policy.tz)
        done = (1 + row["escalations"]) if row["breached"] else 0
        if reading is None:
            due = None
        elif done == 0:  # the breach is next: this very reading says when
            due = reading.crossed_at or (reading.deadline if run.stopped_at is None else None)
        else:
            due = next_due(run, clock, policy, self.calendar, done)
        row.update(clause=clock.source, status=reading.state if reading else "no_limit",
                   limit_value=None if reading is None else f"{reading.limit:g}", unit=clock.unit,
                   started_at=stamp(run.started_at), stopped_at=stamp(run.stopped_at) if run.stopped_at else None,
                   paused_seconds=run.paused_seconds(),
                   deadline=stamp(reading.deadline) if reading and reading.deadline else None,
                   next_check=stamp(due) if due else None, updated_at=updated_at)

    def _breach_event(self, event: Any, position: int, rows: RowCache) -> None:
        row = rows.get(SLA_CLOCK_TABLE.name, str(event.originator_id))
        if row is None:
            raise LookupError(f"rm_sla_clock has no run for breach {event.originator_id}")
        if type(event).__qualname__ == "SLABreach.SLABreached":
            row.update(breached=1, breached_at=stamp(event.breached_at), rung=event.rung)
        elif type(event).__qualname__ == "SLABreach.Escalated":
            row.update(rung=event.to_rung, escalations=row["escalations"] + 1)
        case = rows.peek(SLA_CASE_TABLE.name, row["case_id"])  # read only: the run is not changed
        run = case["state"].run(row["clock_key"], row["cycle"])
        self._refresh(row, run, self.ledger.policies.get(row["policy_ref"]), occurred_stamp(event))
        rows.put(SLA_CLOCK_TABLE.name, row)
