"""Exactly-once processing, determinism (incremental == rebuild), and failures that stop, never skip."""

from __future__ import annotations

import pytest
from read_model_fixtures import BrokenTicketList, event_total

from projections.catalog import runner_for
from projections.runtime import ProjectionFailed, ProjectionRunner

pytestmark = pytest.mark.integration


def test_incremental_processing_and_rebuild_from_zero_give_the_same_digests(ledger, at, scenario, runner):
    # Incrementally: catch up, add more events, catch up again (batches of 7 cut through cases).
    runner.catch_up()
    ledger.act("complaint", scenario["k2"], "classify", at(4000, "cm-zhou", "complaint_manager"),
               {"complaint_type": "process", "level": 2})
    ledger.act("ticket", scenario["t2"], "pause_clock", at(4001, "agent-zhao", reason="waiting for the customer"), {})
    runner.catch_up()
    head = ledger.recorder.max_notification_id()
    assert set(runner.positions().values()) == {head}
    incremental = runner.digests()
    assert event_total(runner) == head

    rebuilt = runner_for(ledger, batch_size=1000)
    rebuilt.rebuild()
    assert rebuilt.digests() == incremental
    assert event_total(rebuilt) == head
    rebuilt.close()


def index_names(runner) -> set[str]:
    sql = ("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()" if runner.db.postgres else
           "SELECT name FROM sqlite_master WHERE type = 'index'")
    with runner.db.reading() as cur:
        return {name for (name,) in cur.execute(sql).fetchall() if name.startswith("ix_")}


def test_a_rebuild_adds_secondary_indexes_once_the_tables_are_full(ledger, scenario, runner):
    declared = {f"ix_{t.name}_{'_'.join(index)}" for p in runner.projections for t in p.tables for index in t.indexes}
    runner.catch_up()
    assert index_names(runner) >= declared
    seen_while_building = []
    runner.rebuild(progress=lambda count: seen_while_building.append(index_names(runner) & declared))
    assert seen_while_building and seen_while_building[0] == set()
    assert index_names(runner) >= declared


def test_digest_changes_when_content_changes(ledger, at, scenario, runner):
    runner.catch_up()
    before = runner.digests()
    ledger.act("ticket", scenario["t2"], "pause_clock", at(4001, "agent-zhao", reason="waiting"), {})
    runner.catch_up()
    after = runner.digests()
    assert after["ticket_list"] != before["ticket_list"]
    assert after["complaint_list"] == before["complaint_list"]


def test_two_runners_on_one_database_never_apply_an_event_twice(ledger, scenario):
    first, second = runner_for(ledger, batch_size=5), runner_for(ledger, batch_size=3)
    # Interleave batches; each locks the tracking row and skips what the other already applied.
    while first.run_batch() + second.run_batch():
        pass
    assert event_total(first) == ledger.recorder.max_notification_id()
    first.close(), second.close()


def test_a_failing_projection_names_position_and_topic_and_keeps_its_position(ledger, scenario):
    broken = ProjectionRunner(ledger, [BrokenTicketList(ledger)], batch_size=4)
    broken.ensure_tables()
    classified = [pos for pos, e in ledger.log(limit=1000) if type(e).__qualname__ == "Ticket.Classified"]
    with pytest.raises(ProjectionFailed) as failure:
        broken.catch_up()
    error = failure.value
    assert error.position == classified[0]
    assert error.topic == "domain.ticket:Ticket.Classified"
    assert f"position {classified[0]}" in str(error) and "Ticket.Classified" in str(error)
    stuck_at = broken.positions()["broken_ticket_list"]
    assert stuck_at < classified[0]  # the failed batch was rolled back, nothing after it is marked done
    with pytest.raises(ProjectionFailed) as again:  # and it stops there again: never skips the event
        broken.catch_up()
    assert again.value.position == classified[0] and broken.positions()["broken_ticket_list"] == stuck_at
    broken.close()


def test_following_waits_out_a_database_that_went_away(ledger, ctx, runner, monkeypatch):
    """A database restart or failover is waited for and reconnected to, not a reason to exit (the
    process would otherwise need restarting); an error that will not pass still stops it."""
    import threading

    import psycopg

    from projections import runtime

    monkeypatch.setattr(runtime, "RECONNECT_FIRST", 0.01)
    ledger.register_customer(ctx(), kind="individual", tier="vip", contact={"name": "钱七"})
    real, failures, stop = runner.run_batch, [], threading.Event()

    def flaky() -> int:
        if len(failures) < 3:
            failures.append(1)
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        done = real()
        if not done:
            stop.set()
        return done

    monkeypatch.setattr(runner, "run_batch", flaky)
    runner.follow(stop, poll_seconds=0.01)
    assert len(failures) == 3 and runner.status()[0].lag == 0  # caught up after reconnecting

    def broken() -> int:
        raise ValueError("a bug, not an outage")

    monkeypatch.setattr(runner, "run_batch", broken)
    with pytest.raises(ValueError):
        runner.follow(threading.Event(), poll_seconds=0.01)
