"""The SLA job's use case: record every breach and escalation that is due, each exactly once.

Where to look comes from the SLA clock read model (runs whose ``next_check`` is at or before
``as_of``); what is due is then decided from the case's own events up to ``as_of`` — the event
store is the truth, the read model only an index. Events are decoded with the ledger's facts
mapper: clocks need no personal data (and still work after it was destroyed).

Idempotent, also with two jobs at once: a breach's id is derived from case, clock and cycle, so a
second ``SLABreached`` for the same run conflicts on save; escalations are the breach's next
versions, so a concurrent second escalation conflicts too. A conflict means another run recorded
it first: it is counted (``already_recorded``) and skipped, never written twice.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from uuid import UUID

from domain.context import Context
from domain.errors import DomainError
from domain.sla import CaseClocks, ClockRun, SLABreach
from domain.sla_reading import read, target_multiple
from ledger.errors import ConcurrentUpdate, NotFound
from projections.runtime import ProjectionRunner
from projections.sla_clocks import SLA_CLOCK_TABLE, SlaClocks
from projections.store import ViewDatabase
from projections.timeutil import stamp


class SlaMonitor:
    def __init__(self, ledger: Any, db: ViewDatabase | None = None):
        self.ledger = ledger
        self.runner = ProjectionRunner(ledger, [SlaClocks(ledger)], db)
        self.runner.ensure_tables()
        self.mapper = ledger.facts_mapper()

    def close(self) -> None:
        self.runner.close()

    def run(self, ctx: Context) -> dict[str, int]:
        """Record what is due at ``ctx.occurred_at``; returns counts for the job run."""
        self.runner.catch_up()
        with self.runner.db.reading() as cur:
            cases = cur.execute(f"SELECT DISTINCT case_kind, case_id FROM {SLA_CLOCK_TABLE.name} "
                                "WHERE next_check IS NOT NULL AND next_check <= ? ORDER BY case_id",
                                (stamp(ctx.occurred_at),)).fetchall()
        counts: Counter[str] = Counter(cases_checked=len(cases), breaches=0, escalations=0, already_recorded=0,
                                       refused=0)
        for kind, case_id in cases:
            self.judge(kind, case_id, ctx, counts)
        self.runner.catch_up()  # the read model shows what was just recorded
        return dict(counts)

    def judge(self, kind: str, case_id: str, ctx: Context, counts: Counter[str]) -> None:
        """Record every breach and escalation of one case that is due at ``ctx.occurred_at``."""
        events = [self.mapper.to_domain_event(s) for s in self.ledger.recorder.select_events(UUID(case_id))]
        policy = self.ledger.policies.get(events[0].policy_ref)
        clocks = CaseClocks.fold(kind, events, policy, ctx.occurred_at)
        for run in clocks.runs:
            clock = policy.clocks.get(run.key)
            reading = read(run, clock, self.ledger.calendar, policy.tz, ctx.occurred_at) if clock else None
            if reading is not None and reading.crossed_at is not None:
                self._record(kind, case_id, run, reading, policy, ctx, counts)

    def _record(self, kind: str, case_id: str, run: ClockRun, reading: Any, policy: Any, ctx: Context,
                counts: Counter[str]) -> None:
        breach_id = SLABreach.id_for(case_id, run.key, run.cycle)
        try:
            breach, new = self.ledger.get("sla_breach", breach_id), False
        except NotFound:
            breach, new = SLABreach.record(case_kind=kind, case_id=case_id, reading=reading, policy=policy, ctx=ctx), True
        escalated = 0
        try:
            while (multiple := target_multiple(policy, 1 + breach.escalations)) is not None:
                step = read(run, policy.clock(run.key), self.ledger.calendar, policy.tz, ctx.occurred_at, multiple)
                if step is None or step.crossed_at is None:
                    break
                breach.escalate(step=breach.escalations, due_at=step.crossed_at, policy=self.ledger.policy_of(breach),
                                ctx=ctx)
                escalated += 1
        except DomainError:  # refused before any change, e.g. as_of earlier than the breach's last event
            counts["refused"] += 1
        if not new and not escalated:
            return
        try:
            self.ledger._save(breach)
        except ConcurrentUpdate:
            counts["already_recorded"] += 1
            return
        counts["breaches"] += int(new)
        counts["escalations"] += escalated
