"""A rebuild in one process writes rows and positions only every FLUSH_NOTIFICATIONS notifications
(projections.rebuilding); this changes when rows are written, never what. Attacked here as the
other runner, the failing handler, the refusing database and the crash would: the result always
equals incremental processing, and no event is applied twice. Both backends."""

from __future__ import annotations

import pytest
from read_model_fixtures import BrokenTicketList, event_total

from projections import rebuilding
from projections.cases import TicketList
from projections.catalog import runner_for
from projections.event_counts import EventCounts
from projections.rowcache import RowCache
from projections.runtime import ProjectionRunner, ProjectionStalled
from projections.store import TRACKING_TABLE, ViewDatabase

pytestmark = pytest.mark.integration
FLUSH = 5  # notifications between writes here: a handful of flushes over the scenario


@pytest.fixture(autouse=True)
def small_flushes(monkeypatch):
    monkeypatch.setattr(rebuilding, "FLUSH_NOTIFICATIONS", FLUSH)


@pytest.fixture
def redone(monkeypatch) -> list[tuple[ProjectionRunner, str]]:
    """(runner, read model) of every batch the ordinary processing applies (ProjectionRunner._apply)."""
    applied = []
    real_apply = ProjectionRunner._apply
    monkeypatch.setattr(ProjectionRunner, "_apply", lambda self, projection, *args: (
        applied.append((self, projection.name)), real_apply(self, projection, *args))[1])
    return applied


def head(ledger) -> int:
    return ledger.recorder.max_notification_id()


def incremental_digests(ledger) -> dict[str, str]:
    runner = runner_for(ledger, batch_size=3)
    runner.catch_up()
    digests = runner.digests()
    runner.close()
    return digests


class WatchedTickets(TicketList):
    """The ticket list, noting the position its database row shows (read on a connection of its
    own) each time it applies a batch."""

    seen: list[int]
    probe: ViewDatabase

    def apply_batch(self, events, rows) -> None:
        with self.probe.reading() as cur:
            found = cur.execute(f"SELECT position FROM {TRACKING_TABLE} WHERE name = ?", (self.name,)).fetchone()
        self.seen.append(int(found[0]))
        super().apply_batch(events, rows)


def test_positions_move_only_at_flushes_and_the_result_equals_incremental_processing(ledger, scenario):
    expected = incremental_digests(ledger)
    watched = WatchedTickets(ledger)
    watched.seen, watched.probe = [], ViewDatabase.for_ledger(ledger)
    runner = ProjectionRunner(ledger, [watched, EventCounts(ledger)], batch_size=2)
    runner.rebuild(workers=1)
    watched.probe.close()
    assert watched.seen[0] == 0 and watched.seen == sorted(watched.seen)
    moves = [b - a for a, b in zip(watched.seen, watched.seen[1:]) if b != a]
    assert moves and all(step >= FLUSH for step in moves)  # written every FLUSH notifications, not every batch
    assert len(set(watched.seen)) < len(watched.seen)  # so some batches saw no write before them
    assert runner.positions() == {"ticket_list": head(ledger), "event_counts": head(ledger)}
    digests = runner.digests()
    assert digests["ticket_list"] == expected["ticket_list"]
    assert digests["event_counts"] == expected["event_counts"]
    runner.close()


class Interfering(EventCounts):
    """Event counts that, at its second batch, lets a second runner (its own connection) catch the
    same read model up first — as the API process would while a rebuild runs."""

    calls = 0

    def apply_batch(self, events, rows) -> None:
        type(self).calls += 1
        if type(self).calls == 2:
            other = ProjectionRunner(self.ledger, [EventCounts(self.ledger)], batch_size=4)
            other.catch_up()
            other.close()
        super().apply_batch(events, rows)


def test_another_runner_moving_a_position_meanwhile_voids_the_unwritten_work(ledger, scenario, monkeypatch,
                                                                                redone):
    monkeypatch.setattr(Interfering, "calls", 0)
    expected = incremental_digests(ledger)
    redone.clear()  # from here on: the rebuild's, and the interfering runner's
    refused = []  # writes the database refused: there must be none (nobody writes over another's rows)
    real_commit = ProjectionRunner._commit

    def commit(self, *args):
        try:
            return real_commit(self, *args)
        except Exception as error:
            refused.append(error)
            raise

    monkeypatch.setattr(ProjectionRunner, "_commit", commit)
    runner = ProjectionRunner(ledger, [Interfering(ledger), TicketList(ledger)], batch_size=2)
    runner.rebuild(workers=1)
    assert Interfering.calls >= 2
    # The voided read model was already complete (the other runner's work); the ticket list was
    # not disturbed: both were finished without the ordinary processing redoing anything.
    assert [name for who, name in redone if who is runner] == [] and refused == []
    assert {name for who, name in redone} == {"event_counts"}  # the other runner's batches
    assert event_total(runner) == head(ledger)  # every event counted once, though two runners applied them
    assert runner.digests() == {name: expected[name] for name in ("event_counts", "ticket_list")}
    runner.close()


def test_a_failing_handler_stalls_where_incremental_processing_stalls(ledger, scenario):
    incremental = ProjectionRunner(ledger, [BrokenTicketList(ledger)], batch_size=3)
    incremental.catch_up(strict=False)
    expected_stall, expected_position = incremental.stalls()["broken_ticket_list"], incremental.positions()
    expected_digest = incremental.digests()
    incremental.close()

    runner = ProjectionRunner(ledger, [BrokenTicketList(ledger), EventCounts(ledger)], batch_size=2)
    with pytest.raises(ProjectionStalled):  # as every rebuild that leaves a read model stalled
        runner.rebuild(workers=1)
    stall = runner.stalls()["broken_ticket_list"]
    assert (stall.position, stall.topic) == (expected_stall.position, "domain.ticket:Ticket.Classified")
    assert runner.positions() == {**expected_position, "event_counts": head(ledger)}
    assert runner.digests()["broken_ticket_list"] == expected_digest["broken_ticket_list"]  # the events before it
    assert event_total(runner) == head(ledger)
    runner.close()


def test_rows_the_database_refuses_at_a_flush_leave_that_read_model_to_ordinary_processing(
        ledger, scenario, monkeypatch, redone):
    expected = incremental_digests(ledger)
    real_write, refused = RowCache.write, []

    def refuse_once(cur, changed):
        if not refused:
            refused.append(True)
            raise ValueError("row refused")
        real_write(cur, changed)

    monkeypatch.setattr(RowCache, "write", staticmethod(refuse_once))
    runner = ProjectionRunner(ledger, [EventCounts(ledger), TicketList(ledger)], batch_size=2)
    runner.rebuild(workers=1)
    assert refused
    # the refused read model only; the other stayed in memory
    assert {name for who, name in redone if who is runner} == {"event_counts"}
    assert runner.stalls() == {}  # the refusal was this once only: nothing to stall on
    assert runner.digests() == {name: expected[name] for name in ("event_counts", "ticket_list")}
    assert event_total(runner) == head(ledger)
    runner.close()


class CrashingTickets(TicketList):
    """The process dies (KeyboardInterrupt stands for kill) at the given batch of a rebuild."""

    batches = 0
    crash_at = 8

    def apply_batch(self, events, rows) -> None:
        type(self).batches += 1
        if type(self).batches == self.crash_at:
            raise KeyboardInterrupt
        super().apply_batch(events, rows)


def test_a_crash_mid_rebuild_keeps_the_last_flush_and_resuming_completes_it(ledger, scenario, monkeypatch):
    monkeypatch.setattr(CrashingTickets, "batches", 0)
    expected = incremental_digests(ledger)
    runner = ProjectionRunner(ledger, [CrashingTickets(ledger), EventCounts(ledger)], batch_size=2)
    with pytest.raises(KeyboardInterrupt):
        runner.rebuild(workers=1)
    positions, counted = runner.positions(), event_total(runner)
    runner.close()
    # Batches 1-7 were read (14 notifications): the flushes after the 6th and the 12th are written.
    twelfth = [position for position, _ in ledger.log(limit=12)][-1]
    assert positions == {"ticket_list": twelfth, "event_counts": twelfth} and counted == 12
    resumed = runner_for(ledger, batch_size=4)
    resumed.catch_up()
    assert resumed.digests() == expected
    resumed.close()
