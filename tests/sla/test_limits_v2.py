"""Hand-computed limits of the version-2 policies (issue 19), on the domain's own fold and reading.

Every expected deadline below is worked out by hand from the policy file's numbers (cited in each
test) and the business times of the test; the calendar is Monday-to-Friday (WeekdayCalendar), and
2026-03-02 is a Monday. Cases opened under version 1 keep version 1's limits (checked once too).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from domain.calendar import WeekdayCalendar
from domain.complaint import Complaint
from domain.context import Context
from domain.policy import PolicyBook
from domain.sla import CaseClocks
from domain.sla_reading import read
from domain.ticket import Ticket

CST = timezone(timedelta(hours=8))
MON = datetime(2026, 3, 2, 9, 0, tzinfo=CST)  # a Monday
CAL = WeekdayCalendar()
BOOK = PolicyBook.load()


def at(moment: datetime, actor: str = "agent-li", role: str = "agent", reason: str | None = None) -> Context:
    return Context(actor, role, moment, uuid.uuid4().hex, reason)


def ticket(ref: str, received: datetime = MON) -> Ticket:
    return Ticket.receive(id=uuid.uuid4(), customer_id="c-1", channel="phone", first_contact_owner="agent-li",
                          policy=BOOK.get(ref), ctx=at(received))


def runs(case, ref: str, subject: str = "ticket"):
    return CaseClocks.fold(subject, case.collect_events(), BOOK.get(ref))


def reading(clocks: CaseClocks, key: str, ref: str, as_of: datetime | None = None):
    policy = BOOK.get(ref)
    return read(clocks.current(key), policy.clock(key), CAL, policy.tz, as_of)


def test_new_cases_from_2026_get_version_2_and_older_cases_keep_version_1():
    assert BOOK.in_force(datetime(2025, 12, 31, 23, 59, tzinfo=CST)).ref == "sop-2025@1"
    assert BOOK.in_force(MON).ref == "sop-2025@2"
    assert BOOK.in_force(MON, "enterprise-2025").ref == "enterprise-2025@2"
    assert BOOK.in_force(MON, "telecom-2024").ref == "telecom-2024@2"


def test_enterprise_technical_ticket_breaches_resolution_at_30_minutes():
    """004 §4.1: technical issues answered in 15 min, solution in 30 min (service_type technical)."""
    ref = "enterprise-2025@2"
    t = ticket(ref)
    t.classify(priority="normal", complexity="general", high_risk=False, service_type="technical",
               policy=BOOK.get(ref), ctx=at(MON + timedelta(minutes=1), "lead-wang", "team_lead"))
    clocks = runs(t, ref)
    resolution = reading(clocks, "ticket.resolution", ref, MON + timedelta(minutes=31))
    assert resolution.limit == 30 and resolution.unit == "minutes"
    assert resolution.crossed_at == MON + timedelta(minutes=30) and resolution.state == "overdue"
    assert reading(clocks, "ticket.resolution", ref, MON + timedelta(minutes=29)).crossed_at is None
    first = reading(clocks, "ticket.first_response", ref, MON + timedelta(minutes=16))
    assert first.limit == 15 and first.crossed_at == MON + timedelta(minutes=15)


def test_enterprise_non_technical_ticket_gets_the_base_24_hours():
    ref = "enterprise-2025@2"
    t = ticket(ref)
    t.classify(priority="normal", complexity="general", high_risk=False, service_type="consultation",
               policy=BOOK.get(ref), ctx=at(MON + timedelta(minutes=1), "lead-wang", "team_lead"))
    resolution = reading(runs(t, ref), "ticket.resolution", ref)
    assert resolution.limit == 1440 and resolution.deadline == MON + timedelta(hours=24)


def test_enterprise_version_1_keeps_its_defect_for_pinned_cases():
    """enterprise-2025@1 selects on a ticket 'kind' that does not exist: 48 h for everyone (kept: cases
    opened under it keep their terms; version 2 corrects it)."""
    ref = "enterprise-2025@1"
    t = ticket(ref, datetime(2025, 9, 1, 9, 0, tzinfo=CST))
    t.classify(priority="normal", complexity="general", high_risk=False, policy=BOOK.get(ref),
               ctx=at(datetime(2025, 9, 1, 9, 1, tzinfo=CST), "lead-wang", "team_lead"))
    assert reading(runs(t, ref), "ticket.resolution", ref).limit == 2880


def drive_to_feedback(t: Ticket, ref: str, *, complexity: str = "general", resolved: datetime,
                      reviewed: datetime | None = None, fed_back: datetime | None = None) -> None:
    policy = BOOK.get(ref)
    t.classify(priority="normal", complexity=complexity, high_risk=False, service_type="consultation",
               policy=policy, ctx=at(MON + timedelta(minutes=1), "lead-wang", "team_lead"))
    t.assign(handler="agent-zhao", team="hotline", policy=policy, ctx=at(MON + timedelta(minutes=2), "lead-wang", "team_lead"))
    t.start_work(policy=policy, ctx=at(MON + timedelta(minutes=3), "agent-zhao"))
    t.resolve(policy=policy, ctx=at(resolved, "agent-zhao"))
    if reviewed is not None:
        t.review(approved=True, policy=policy, ctx=at(reviewed, "lead-wang", "team_lead"))
    if fed_back is not None:
        t.feed_back_result(channel="sms", policy=policy, ctx=at(fed_back, "agent-zhao"))


def test_sop_result_feedback_is_due_48_hours_after_receipt():
    """003 §2.2.2: handled within 24 h, result fed back within 48 h of receipt. Resolved after 40 h, the
    result is due 8 h later (Wed 09:00), not 24 h after the resolution as in version 1 (Thu 01:00)."""
    ref = "sop-2025@2"
    t = ticket(ref)
    drive_to_feedback(t, ref, resolved=MON + timedelta(hours=40))
    clocks = runs(t, ref)
    feedback = reading(clocks, "ticket.result_feedback", ref)
    assert feedback.limit == 48 and feedback.deadline == datetime(2026, 3, 4, 9, 0, tzinfo=CST)
    after = reading(clocks, "ticket.result_feedback_after_resolution", ref)  # 003 §3.2.2 still applies
    assert after.deadline == datetime(2026, 3, 5, 1, 0, tzinfo=CST)
    resolution = reading(clocks, "ticket.resolution", ref)
    assert resolution.limit == 24 and resolution.state == "missed"
    assert resolution.crossed_at == datetime(2026, 3, 3, 9, 0, tzinfo=CST)


def test_version_1_let_the_result_wait_72_hours():
    ref = "sop-2025@1"
    start = datetime(2025, 9, 1, 9, 0, tzinfo=CST)
    t = ticket(ref, start)
    policy = BOOK.get(ref)
    t.classify(priority="normal", complexity="general", high_risk=False, policy=policy,
               ctx=at(start + timedelta(minutes=1), "lead-wang", "team_lead"))
    t.assign(handler="agent-zhao", team=None, policy=policy, ctx=at(start + timedelta(minutes=2), "lead-wang", "team_lead"))
    t.start_work(policy=policy, ctx=at(start + timedelta(minutes=3), "agent-zhao"))
    t.resolve(policy=policy, ctx=at(start + timedelta(hours=48), "agent-zhao"))
    feedback = reading(runs(t, ref), "ticket.result_feedback", ref)
    assert feedback.deadline == start + timedelta(hours=72)


def test_second_review_and_customer_confirmation_each_get_48_hours():
    """002 §3.3 item 2: 复核与确认 within 48 h — the review from the resolution proposed (complex: 003
    §2.2.2), the customer's confirmation from the result fed back."""
    ref = "sop-2025@2"
    t = ticket(ref)
    resolved, reviewed, fed_back = MON + timedelta(hours=5), MON + timedelta(hours=60), MON + timedelta(hours=61)
    drive_to_feedback(t, ref, complexity="complex", resolved=resolved, reviewed=reviewed, fed_back=fed_back)
    clocks = runs(t, ref)
    review = reading(clocks, "ticket.second_review", ref)
    assert review.run.started_at == resolved and review.run.stopped_at == reviewed
    assert review.deadline == resolved + timedelta(hours=48) and review.state == "missed"
    confirmation = reading(clocks, "ticket.acceptance_confirmation", ref)
    assert confirmation.run.started_at == fed_back and confirmation.deadline == fed_back + timedelta(hours=48)
    assert "ticket.review" not in BOOK.get(ref).clocks


def test_enterprise_major_result_feedback_is_one_working_day_and_the_rest_is_in_hours():
    """004 §2.3.2: major issues fed back within 1 working day — resolved Friday 18:00, due at the end of
    Monday (Tue 00:00). The 24 h of 003 §3.2.2 runs in hours: Saturday 18:00 (version 1 said '1 working
    day' for it, i.e. Monday night)."""
    ref = "enterprise-2025@2"
    t = ticket(ref)
    friday = datetime(2026, 3, 6, 18, 0, tzinfo=CST)
    drive_to_feedback(t, ref, complexity="major", resolved=MON + timedelta(hours=4), reviewed=friday)
    clocks = runs(t, ref)
    major = reading(clocks, "ticket.major_result_feedback", ref)
    assert major.deadline == datetime(2026, 3, 10, 0, 0, tzinfo=CST)
    after = reading(clocks, "ticket.result_feedback_after_resolution", ref)
    assert after.deadline == datetime(2026, 3, 7, 18, 0, tzinfo=CST)
    minor = ticket(ref)
    drive_to_feedback(minor, ref, resolved=MON + timedelta(hours=4))
    assert reading(runs(minor, ref), "ticket.major_result_feedback", ref) is None  # applies to major only


def test_tracking_must_start_within_24_hours():
    """002 §3.2 item 2: the first progress update 25 h after receipt misses the 24 h."""
    ref = "sop-2025@2"
    t = ticket(ref)
    t.update_progress(channel="sms", message="已派单", policy=BOOK.get(ref), ctx=at(MON + timedelta(hours=25)))
    tracking = reading(runs(t, ref), "ticket.tracking", ref)
    assert tracking.state == "missed" and tracking.crossed_at == MON + timedelta(hours=24)


def complaint(ref: str, level: int) -> Complaint:
    policy = BOOK.get(ref)
    c = Complaint.accept(id=uuid.uuid4(), customer_id="c-1", channel="phone", policy=policy,
                         ctx=at(MON, "cm-sun", "complaint_manager"))
    c.classify(complaint_type="process", level=level, policy=policy, ctx=at(MON + timedelta(minutes=2), "cm-sun", "complaint_manager"))
    return c


@pytest.mark.parametrize("ref", ["sop-2025@2", "telecom-2024@2", "enterprise-2025@2"])
@pytest.mark.parametrize(("level", "minutes"), [(1, 10), (2, 60), (3, 60)])
def test_complaint_first_response_by_level(ref: str, level: int, minutes: int):
    """002 §2.2: complaints 1 h; a level-1 (urgent, 004 §4.3) complaint 10 min, the strictest wins."""
    c = complaint(ref, level)
    assert c.service_type == "complaint"
    r = reading(runs(c, ref, "complaint"), "complaint.first_response", ref)
    assert r.limit == minutes and r.deadline == MON + timedelta(minutes=minutes)


def test_enterprise_complaint_handled_in_two_working_days_means_the_remedy_decided():
    """004 §2.3.2: accepted Monday 09:00, handled by the end of Wednesday (Thu 00:00); starting the
    investigation does not stop the clock, deciding the remedy does."""
    ref = "enterprise-2025@2"
    policy = BOOK.get(ref)
    c = complaint(ref, 2)
    cm = lambda h: at(MON + timedelta(hours=h), "cm-sun", "complaint_manager")  # noqa: E731
    c.start_investigation(policy=policy, ctx=cm(1))
    c.add_evidence(kind="call_recording", policy=policy, ctx=cm(2))
    events = c.collect_events()
    handling = reading(CaseClocks.fold("complaint", events, policy), "complaint.handling", ref)
    assert handling.run.stopped_at is None and handling.deadline == datetime(2026, 3, 5, 0, 0, tzinfo=CST)
    c.decide_remedy(kind="rectification", policy=policy, ctx=cm(70))  # Thu 07:00: 7 h late
    clocks = CaseClocks.fold("complaint", events + c.collect_events(), policy)
    handling = reading(clocks, "complaint.handling", ref)
    assert handling.run.stopped_at == MON + timedelta(hours=70) and handling.state == "missed"
    assert handling.crossed_at == datetime(2026, 3, 5, 0, 0, tzinfo=CST)
    assert "complaint.initial_handling" not in policy.clocks


def test_complaint_closed_loop_is_not_pausable_in_version_2():
    assert BOOK.get("sop-2025@1").clock("complaint.closed_loop").pausable
    for ref in ("sop-2025@2", "telecom-2024@2", "enterprise-2025@2"):
        assert not BOOK.get(ref).clock("complaint.closed_loop").pausable


def test_telecom_keeps_002_result_feedback_and_gets_the_new_clocks():
    policy = BOOK.get("telecom-2024@2")
    feedback = policy.clock("ticket.result_feedback")
    assert (feedback.start, feedback.unit, feedback.limits[-1].limit) == ("resolved", "working_days", 2)
    assert "ticket.result_feedback_after_resolution" not in policy.clocks and "ticket.review" not in policy.clocks
    assert policy.clock("ticket.acceptance_confirmation").limits[-1].limit == 48
    assert policy.clock("ticket.tracking").limits[-1].limit == 24
