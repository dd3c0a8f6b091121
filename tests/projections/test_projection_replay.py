"""Auditor replay: timelines, state AS OF a business time or log position, and diffs."""

from __future__ import annotations

import pytest

from ledger.errors import InvalidRequest, NotFound
from services.replay import Point, Replay

pytestmark = pytest.mark.integration


def test_ticket_timeline_has_every_event_in_order_with_actor_role_time_and_policy(ledger, scenario):
    timeline = Replay(ledger).timeline("ticket", scenario["t1"])
    assert [e["type"] for e in timeline] == ["Received", "Classified", "Assigned", "FirstResponded", "WorkStarted",
                                             "Resolved", "ResultFedBack", "AcceptanceRecorded", "Closed"]
    assert [e["version"] for e in timeline] == list(range(1, 10))
    positions = [e["position"] for e in timeline]
    assert positions == sorted(positions) and len(set(positions)) == 9
    resolved = timeline[5]
    assert (resolved["actor_id"], resolved["actor_role"], resolved["policy"]) == ("agent-zhao", "agent", "sop-2025@1")
    assert resolved["occurred_at"].startswith("2025-09-01T10:06")
    # Personal data is named, never shown.
    assert resolved["personal_fields"] == ["resolution"] and "换了光猫" not in str(timeline)


def test_customer_timeline_includes_their_cases(ledger, scenario):
    timeline = Replay(ledger).timeline("customer", scenario["c1"])
    ids = {e["aggregate_id"] for e in timeline}
    assert {scenario["c1"], scenario["i1"], scenario["i3"], scenario["i4"], scenario["t1"], scenario["k1"]} <= ids
    assert scenario["t2"] not in ids and scenario["k2"] not in ids
    assert {"survey", "ticket", "interaction", "complaint", "customer"} == {e["kind"] for e in timeline}
    assert [e["position"] for e in timeline] == sorted(e["position"] for e in timeline)


def test_state_as_of_business_time_and_log_position(ledger, scenario, at):
    replay = Replay(ledger)
    t1 = scenario["t1"]
    assert replay.state("ticket", t1, Point(as_of=at(50).occurred_at))["status"] == "in_progress"
    assert replay.state("ticket", t1, Point(as_of=at(66).occurred_at))["status"] == "resolved"
    classified = next(e for e in replay.timeline("ticket", t1) if e["type"] == "Classified")
    by_position = replay.state("ticket", t1, Point(position=classified["position"]))
    assert (by_position["status"], by_position["version"], by_position["priority"]) == ("classified", 2, "normal")
    with pytest.raises(NotFound):
        replay.state("ticket", t1, Point(as_of=at(1).occurred_at))  # not received yet
    with pytest.raises(NotFound):
        replay.state("complaint", t1, Point(position=10**9))  # a ticket id is not a complaint


def test_diff_between_two_points(ledger, scenario, at):
    diff = Replay(ledger).diff("ticket", scenario["t1"], Point.parse(at(7).occurred_at.isoformat()),
                               Point.parse(at(90).occurred_at.isoformat()))
    assert (diff["from_version"], diff["to_version"]) == (2, 9)
    changed = diff["changed"]
    assert changed["status"] == {"from": "classified", "to": "closed"}
    assert changed["handler"] == {"from": None, "to": "agent-zhao"}
    assert "priority" not in changed and "version" not in changed
    with pytest.raises(InvalidRequest):
        Point.parse("yesterday")
