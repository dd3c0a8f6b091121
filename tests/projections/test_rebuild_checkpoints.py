"""A rebuild checkpoints SQLite's WAL less often while it runs (ViewDatabase.checkpoints_spaced), and
gives the setting back afterwards; on PostgreSQL it changes nothing. What it builds is the same as
incremental processing. Both backends."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from domain.context import Context
from projections.cases import TicketList
from projections.catalog import runner_for
from projections.runtime import ProjectionRunner
from projections.store import SQLITE_AUTOCHECKPOINT_PAGES, SQLITE_REBUILD_CHECKPOINT_PAGES

T0 = datetime(2025, 9, 1, 9, 0, tzinfo=timezone(timedelta(hours=8)))


def at(minutes: float) -> Context:
    return Context("agent-li", "agent", T0 + timedelta(minutes=minutes), uuid.uuid4().hex)


def autocheckpoint(runner: ProjectionRunner) -> int | None:
    """The connection's WAL autocheckpoint threshold in pages (None on PostgreSQL)."""
    if runner.db.postgres:
        return None
    return runner.db.connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0]


class Watching(TicketList):
    """The ticket list, noting the checkpoint threshold its runner's connection has while it applies."""

    seen: list[int | None]
    runner: ProjectionRunner

    def apply_batch(self, events, rows) -> None:
        self.seen.append(autocheckpoint(self.runner))
        super().apply_batch(events, rows)


def test_a_rebuild_spaces_checkpoints_out_meanwhile_and_restores_them(ledger):
    customer = str(ledger.register_customer(at(0), kind="individual", tier="general", contact={}).id)
    for n in range(4):
        ledger.open_ticket(at(1 + n), customer_id=customer, channel="phone")
    incremental = runner_for(ledger, batch_size=2)
    incremental.catch_up()
    expected = incremental.digests()["ticket_list"]
    incremental.close()

    watching = Watching(ledger)
    watching.seen = []
    runner = ProjectionRunner(ledger, [watching], batch_size=2)
    watching.runner = runner
    runner.rebuild()
    during, after = (None, None) if runner.db.postgres else (SQLITE_REBUILD_CHECKPOINT_PAGES,
                                                            SQLITE_AUTOCHECKPOINT_PAGES)
    assert len(watching.seen) >= 3  # the log's events, two per batch, while rebuilding
    assert set(watching.seen) == {during}
    assert autocheckpoint(runner) == after
    assert runner.digests()["ticket_list"] == expected  # same content as incremental processing
    runner.close()
