"""Retention due dates, checked against dates worked out by hand on the 2025 Chinese calendar."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from domain.retention import RecordDue, assess, due_at, milestone, record_class_for
from ledger.calendar import ChineseBusinessCalendar

CST = timezone(timedelta(hours=8))
CAL = ChineseBusinessCalendar()


@pytest.fixture
def sop(policies):
    return policies.get("sop-2025@1")


def due(policy, key, trigger):
    return due_at(policy.record_class(key), trigger, CAL, policy.tz)


def test_due_day_after_anniversary_moves_past_national_day(sop):
    # Closed 2022-09-30 15:00: kept at least 3 years, so through 2025-09-30. 2025-10-01..08 is the
    # National Day / Mid-Autumn break, so the first day it may be destroyed is Thursday 2025-10-09.
    assert due(sop, "communication_record", datetime(2022, 9, 30, 15, 0, tzinfo=CST)) == datetime(2025, 10, 9, tzinfo=CST)


def test_make_up_working_day_counts_as_working(sop):
    # Anniversary Saturday 2025-09-27; Sunday 2025-09-28 is a make-up working day (调休), so it is due then.
    assert due(sop, "communication_record", datetime(2022, 9, 27, 10, 0, tzinfo=CST)) == datetime(2025, 9, 28, tzinfo=CST)


def test_trigger_late_in_the_evening_counts_in_local_time(sop):
    # 2022-09-26 23:30 in Shanghai is still the 26th there (15:30 UTC): anniversary 2025-09-26 (Friday),
    # due Saturday 27th → not a working day → Sunday 28th (make-up working day).
    trigger = datetime(2022, 9, 26, 15, 30, tzinfo=timezone.utc)
    assert due(sop, "communication_record", trigger) == datetime(2025, 9, 28, tzinfo=CST)


def test_calendar_day_rule_does_not_move(sop):
    plain = replace(sop.record_class("communication_record"), due_on="calendar_day")
    assert due_at(plain, datetime(2022, 9, 30, 15, 0, tzinfo=CST), CAL, sop.tz) == datetime(2025, 10, 1, tzinfo=CST)


def test_five_year_service_archive_and_leap_day(sop):
    # Archived 2020-02-29: five years later there is no 29 February, so the period ends 2025-02-28
    # (Friday) and the record is due Saturday 1 March → next working day Monday 2025-03-03.
    assert due(sop, "service_archive", datetime(2020, 2, 29, 12, 0, tzinfo=CST)) == datetime(2025, 3, 3, tzinfo=CST)


def test_record_classes_by_kind(sop):
    assert record_class_for(sop, "interaction").key == "communication_record"
    assert record_class_for(sop, "ticket").key == "service_archive"
    assert record_class_for(sop, "complaint").key == "complaint_file"
    assert record_class_for(sop, "survey").key == record_class_for(sop, "feedback").key == "survey"
    assert record_class_for(sop, "customer").key == "customer_profile"
    assert record_class_for(sop, "hold") is None
    assert milestone("survey", "Answered") == "survey.answered"
    assert milestone("ticket", "ResultFedBack") == "ticket.result_fed_back"


def test_assessment_lists_every_reason():
    at = datetime(2030, 1, 1, tzinfo=CST)
    records = [RecordDue("ticket", "t1", "service_archive", "003 §2.4.1", datetime(2031, 1, 1, tzinfo=CST)),
               RecordDue("interaction", "i1", "communication_record", "003 §5.1", None),
               RecordDue("complaint", "c1", "complaint_file", "002 §1.5", datetime(2029, 1, 1, tzinfo=CST), ("h1",))]
    result = assess("s1", records, ["h0"], at)
    assert not result.disposable
    text = "\n".join(result.blockers)
    assert "h0" in text and "t1" in text and "i1" in text and "h1" in text
    assert assess("s1", records[2:3], [], at).blockers == ("complaint c1 is under legal hold h1",)
    assert assess("s1", [replace(records[2], held_by=())], [], at).disposable
