"""The stalled-cases job's use case: cases that wait on someone who never comes do not wait forever.

A ticket whose customer never confirms the result fed back is closed as unconfirmed, a complaint
whose customer never evaluates its handling is closed as unevaluated (``rules.customer_silence``),
and a closed case nobody archived is archived (``rules.archive_watch``) — archiving is the milestone
that starts the retention period (``ticket.archived``, ``complaint.archived``), so without this a
silent customer's personal data could never be destroyed. The deadlines are the domain's
(:mod:`domain.stalled`), under each case's own policy version; a version without the rules gives
none, and its cases keep their terms — but once such a case has waited past the windows of the
version in force, the job raises the finding ``stalled_under_superseded_policy`` (once per case and
wait: its id is derived), so every stalled case ends in a terminal state or a finding.

Where to look comes from the ticket and complaint lists (status only); what is due is decided on the
aggregate itself, loaded from the event store. Idempotent: a case already closed or archived by an
earlier or concurrent run is refused by its own status check or conflicts on save, and is counted,
never changed twice.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

from domain.context import Context
from domain.errors import DomainError, PolicyError
from domain.policy import Policy
from domain.stalled import archive_due, confirmation_due, evaluation_due, overdue_under_successor
from ledger.errors import ConcurrentUpdate
from projections.cases import COMPLAINT_TABLE, TICKET_TABLE, ComplaintList, TicketList
from projections.runtime import ProjectionRunner
from projections.store import ViewDatabase
from services.compliance import record_finding

#: (kind, list table, id column, statuses worth a look)
_WATCHED = (
    ("ticket", TICKET_TABLE.name, "ticket_id", ("fed_back", "closed")),
    ("complaint", COMPLAINT_TABLE.name, "complaint_id", ("notified", "evaluated", "unevaluated")),
)


class StalledCases:
    def __init__(self, ledger: Any, db: ViewDatabase | None = None):
        self.ledger = ledger
        self.runner = ProjectionRunner(ledger, [TicketList(ledger), ComplaintList(ledger)], db)
        self.runner.ensure_tables()

    def close(self) -> None:
        self.runner.close()

    def run(self, ctx: Context) -> dict[str, int]:
        """Close and archive what is due at ``ctx.occurred_at``; returns counts for the job run."""
        self.runner.catch_up()
        counts: Counter[str] = Counter(cases_checked=0, closed_unconfirmed=0, closed_unevaluated=0, archived=0,
                                       already_done=0, stalled_findings=0, findings_already_raised=0)
        for kind, table, id_column, statuses in _WATCHED:
            marks = ", ".join("?" for _ in statuses)
            with self.runner.db.reading() as cur:
                ids = [r[0] for r in cur.execute(f"SELECT {id_column} FROM {table} WHERE status IN ({marks}) "
                                                 f"ORDER BY seq", statuses).fetchall()]
            for case_id in ids:
                counts["cases_checked"] += 1
                self._settle(kind, case_id, ctx, counts)
        self.runner.catch_up()  # the lists show what was just recorded
        return dict(counts)

    def _settle(self, kind: str, case_id: str, ctx: Context, counts: Counter[str]) -> None:
        case = self.ledger.get(kind, case_id)
        policy = self.ledger.policy_of(case)
        calendar = self.ledger.calendar
        step: tuple[str, Callable[[], None]] | None = None
        if kind == "ticket" and (due := confirmation_due(case, policy, calendar)) is not None:
            step = ("closed_unconfirmed", lambda: case.close_unconfirmed(due_at=due, policy=policy, ctx=ctx))
        elif kind == "complaint" and (due := evaluation_due(case, policy, calendar)) is not None:
            step = ("closed_unevaluated", lambda: case.close_unevaluated(due_at=due, policy=policy, ctx=ctx))
        elif (due := archive_due(kind, case, policy, calendar)) is not None:
            step = ("archived", lambda: case.archive(policy=policy, ctx=ctx))
        if step is None:
            self._judge_by_successor(kind, case_id, case, policy, ctx, counts)
            return
        if due > ctx.occurred_at:
            return
        try:
            step[1]()
            self.ledger._save(case)
        except (ConcurrentUpdate, DomainError):  # done by another run, or refused before any change
            counts["already_done"] += 1
            return
        counts[step[0]] += 1

    def _judge_by_successor(self, kind: str, case_id: str, case: Any, policy: Policy, ctx: Context,
                            counts: Counter[str]) -> None:
        """A case its own version gives no deadline: a finding once it waited past the windows of the
        version in force (:func:`domain.stalled.overdue_under_successor`); the case is not changed."""
        try:
            successor = self.ledger.policies.in_force(ctx.occurred_at, policy.name)
        except PolicyError:  # no version of its policy in force at all: nothing to judge it by
            return
        suspicion = overdue_under_successor(kind, case_id, case, policy, successor, self.ledger.calendar)
        if suspicion is None or suspicion.due_at > ctx.occurred_at:
            return
        if record_finding(self.ledger, suspicion, ctx):
            counts["stalled_findings"] += 1
        else:
            counts["findings_already_raised"] += 1
