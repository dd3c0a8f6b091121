"""Ticket and complaint lists: filters, overdue at a time, keyset pagination, no personal data."""

from __future__ import annotations

from datetime import timedelta

import pytest

from projections.queries import BadCursor, list_complaints, list_tickets
from projections.timeutil import stamp

pytestmark = pytest.mark.integration


def ids(page, key="ticket_id"):
    return [row[key] for row in page["items"]]


def test_ticket_filters(ledger, runner, scenario, at):
    runner.catch_up()
    now = at(3100).occurred_at
    db = runner.db
    assert ids(list_tickets(db, {}, as_of=now)) == [scenario["t1"], scenario["t2"]]
    assert ids(list_tickets(db, {"status": ["closed"]}, as_of=now)) == [scenario["t1"]]
    assert ids(list_tickets(db, {"priority": ["urgent"], "complexity": ["complex"]}, as_of=now)) == [scenario["t2"]]
    assert ids(list_tickets(db, {"channel": ["web"]}, as_of=now)) == [scenario["t2"]]
    assert ids(list_tickets(db, {"owner": ["agent-li"]}, as_of=now)) == [scenario["t1"], scenario["t2"]]
    assert ids(list_tickets(db, {"handler": ["agent-zhao"], "team": ["mobile"]}, as_of=now)) == [scenario["t2"]]
    assert ids(list_tickets(db, {"customer_id": [scenario["c1"]]}, as_of=now)) == [scenario["t1"]]
    assert ids(list_tickets(db, {"status": ["received"]}, as_of=now)) == []
    row = list_tickets(db, {"customer_id": [scenario["c1"]]}, as_of=now)["items"][0]
    assert row["first_contact_owner"] == "agent-li" and row["interaction_id"] == scenario["i4"]
    # No personal data: the summary/resolution texts are nowhere in the row.
    assert "换了光猫" not in str(row)


def test_overdue_uses_the_policy_deadline_of_the_resolution_clock(ledger, runner, scenario, at):
    runner.catch_up()
    db = runner.db
    # t2 was reopened at minute 3070: its resolution clock restarted, 48 h (sop-2025) -> 3070 + 2880.
    row = list_tickets(db, {"status": ["in_progress"]}, as_of=at(0).occurred_at)["items"][0]
    deadline = at(3070 + 2880).occurred_at
    assert row["resolution_deadline"] == stamp(deadline) == "2025-09-05T04:10:00.000000Z"
    assert ids(list_tickets(db, {}, as_of=deadline - timedelta(minutes=1), overdue=True)) == []
    assert ids(list_tickets(db, {}, as_of=deadline + timedelta(minutes=1), overdue=True)) == [scenario["t2"]]
    assert ids(list_tickets(db, {}, as_of=deadline + timedelta(minutes=1), overdue=False)) == [scenario["t1"]]
    # Pausing stops the clock: a paused ticket is not overdue.
    ledger.act("ticket", scenario["t2"], "pause_clock", at(3080, "agent-zhao", reason="waiting"), {})
    runner.catch_up()
    assert ids(list_tickets(db, {}, as_of=deadline + timedelta(days=9), overdue=True)) == []
    # Resuming after 100 minutes moves the deadline by those 100 minutes.
    ledger.act("ticket", scenario["t2"], "resume_clock", at(3180, "agent-zhao"), {})
    runner.catch_up()
    assert ids(list_tickets(db, {}, as_of=deadline + timedelta(minutes=99), overdue=True)) == []
    assert ids(list_tickets(db, {}, as_of=deadline + timedelta(minutes=101), overdue=True)) == [scenario["t2"]]


def test_complaint_filters_and_overdue(ledger, runner, scenario, at):
    runner.catch_up()
    db = runner.db
    now = at(300).occurred_at
    assert ids(list_complaints(db, {}, as_of=now), "complaint_id") == [scenario["k1"], scenario["k2"]]
    assert ids(list_complaints(db, {"rung": ["team_lead"]}, as_of=now), "complaint_id") == [scenario["k1"]]
    assert ids(list_complaints(db, {"level": [1]}, as_of=now), "complaint_id") == [scenario["k1"]]
    assert ids(list_complaints(db, {"status": ["accepted"]}, as_of=now), "complaint_id") == [scenario["k2"]]
    # closed loop: 72 h from acceptance (minute 200 and 210).
    late = at(210 + 72 * 60 + 1).occurred_at
    assert ids(list_complaints(db, {}, as_of=at(200 + 72 * 60 + 1).occurred_at, overdue=True),
               "complaint_id") == [scenario["k1"]]
    assert ids(list_complaints(db, {}, as_of=late, overdue=True), "complaint_id") == [scenario["k1"], scenario["k2"]]


def test_keyset_pagination_walks_every_row_once(ledger, runner, scenario, at):
    for n in range(9):
        ledger.open_ticket(at(5000 + n), customer_id=scenario["c1"], channel="app")
    runner.catch_up()
    seen, cursor, pages = [], None, 0
    while True:
        page = list_tickets(runner.db, {}, as_of=at(6000).occurred_at, cursor=cursor, limit=4)
        seen += ids(page)
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 11 == len(set(seen))
    with pytest.raises(BadCursor):
        list_tickets(runner.db, {}, as_of=at(0).occurred_at, cursor="not-a-cursor")
    complaint_cursor = list_complaints(runner.db, {}, as_of=at(0).occurred_at, limit=1)["next_cursor"]
    with pytest.raises(BadCursor):
        list_tickets(runner.db, {}, as_of=at(0).occurred_at, cursor=complaint_cursor)
