"""Policy data: loading, inheritance, effective dates, citations, and working-day deadlines."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from domain.calendar import WeekdayCalendar, add_working_days
from domain.errors import PolicyError
from domain.policy import POLICY_DIR, PolicyBook
from ledger.calendar import ChineseBusinessCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
CLOCK_KEYS = ["ticket.acceptance", "ticket.first_response", "ticket.resolution", "ticket.result_feedback",
              "ticket.review", "complaint.initial_handling", "complaint.closed_loop", "feedback.response",
              "feedback.reply"]
VOCABULARIES = ["customer_kind", "customer_tier", "channel", "direction", "priority", "complexity",
                "complaint_type", "complaint_level", "remedy_kind", "feedback_kind", "incident_level",
                "data_grade", "escalation_rung"]
#: Version 2 (issue 19) retires ticket.review (it measured the customer's confirmation: now
#: ticket.acceptance_confirmation, beside ticket.second_review); enterprise-2025@2 measures complaint
#: handling to the remedy (complaint.handling) instead of complaint.initial_handling.
CLOCK_KEYS_V2 = [k for k in CLOCK_KEYS if k not in {"ticket.review", "complaint.initial_handling"}] + [
    "ticket.acceptance_confirmation", "ticket.second_review", "ticket.tracking", "complaint.first_response"]
#: Clocks that apply to some cases only (no fallback limit): 004 §2.3.2's major-issue feedback.
PARTIAL_CLOCKS = {"ticket.major_result_feedback"}
RULES = ["second_review", "escalation_ladder", "first_contact_responsibility", "acceptance_required_to_close",
         "survey_scales"]


def test_default_policy_is_complete_and_every_entry_cites_a_source(policies):
    assert policies.default_name == "sop-2025"
    for policy in policies.policies.values():
        for key in CLOCK_KEYS if policy.version == 1 else CLOCK_KEYS_V2:
            assert key in policy.clocks, (policy.ref, key)
        for key, clock in policy.clocks.items():
            assert clock.source and clock.limits, (policy.ref, key)
            if key not in PARTIAL_CLOCKS:
                assert clock.limits[-1].when == {}, f"{policy.ref} {key}: last limit must be the fallback"
        for key in VOCABULARIES:
            assert policy.vocabulary(key).values, (policy.ref, key)
        for key in RULES:
            assert policy.rule(key).get("source"), (policy.ref, key)
        for key in ("communication_record", "service_archive", "complaint_file"):
            assert policy.record_class(key).source and policy.record_class(key).period_years > 0
        for target in policy.targets.values():
            assert target.source, (policy.ref, target.key)


def test_record_retention_periods_match_the_sources(policies):
    policy = policies.get("sop-2025@1")
    assert policy.record_class("communication_record").period_years == 3
    assert policy.record_class("communication_record").minimum
    assert policy.record_class("service_archive").period_years == 5


def test_conflicting_sources_are_separate_named_policies(policies):
    sop, telecom = policies.get("sop-2025@1"), policies.get("telecom-2024@1")
    assert telecom.extends == "sop-2025@1"
    normal = {"priority": "normal", "complexity": "general"}
    assert sop.clock("ticket.first_response").limit_for(normal) != telecom.clock("ticket.first_response").limit_for(normal)
    # what telecom does not override, it inherits
    assert telecom.record_class("service_archive") == sop.record_class("service_archive")


def test_policy_in_force_by_effective_date(tmp_path: Path):
    shutil.copytree(POLICY_DIR, tmp_path, dirs_exist_ok=True)
    text = (tmp_path / "sop-2025@1.toml").read_text(encoding="utf-8")
    text = text.replace("version = 1", "version = 2", 1).replace("effective_from = 2025-01-01", "effective_from = 2026-07-01", 1)
    (tmp_path / "sop-2025@2.toml").write_text(text, encoding="utf-8")
    book = PolicyBook.load(tmp_path)
    assert book.in_force(datetime(2026, 6, 30, 23, 0, tzinfo=SHANGHAI)).ref == "sop-2025@1"
    assert book.in_force(datetime(2026, 7, 1, 0, 30, tzinfo=SHANGHAI)).ref == "sop-2025@2"
    # 2026-06-30 17:00 UTC is already 1 July in Shanghai: the policy's own time zone decides
    assert book.in_force(datetime(2026, 6, 30, 17, 0, tzinfo=timezone.utc)).ref == "sop-2025@2"
    with pytest.raises(PolicyError) as e:
        book.in_force(datetime(2019, 1, 1, tzinfo=SHANGHAI))
    assert e.value.rule == "policy.not_in_force"


def test_file_name_must_match_content(tmp_path: Path):
    shutil.copytree(POLICY_DIR, tmp_path, dirs_exist_ok=True)
    shutil.copy(tmp_path / "sop-2025@1.toml", tmp_path / "sop-2025@9.toml")
    with pytest.raises(PolicyError):
        PolicyBook.load(tmp_path)


def test_limits_pick_the_first_matching_selector(policies):
    clock = policies.get("telecom-2024@1").clock("ticket.first_response")
    urgent = clock.limit_for({"priority": "urgent", "complexity": "general"})
    normal = clock.limit_for({"priority": "normal", "complexity": "general"})
    assert urgent < normal


@pytest.mark.parametrize("start,days,expected", [
    # Friday before National Day 2025: Sat 27 Sep is off, Sun 28 Sep is a make-up working day.
    (datetime(2025, 9, 26, 10, 0, tzinfo=SHANGHAI), 2, datetime(2025, 9, 30, 0, 0, tzinfo=SHANGHAI)),
    # Across the 1–8 Oct holiday: 9 and 10 Oct count.
    (datetime(2025, 9, 30, 15, 0, tzinfo=SHANGHAI), 2, datetime(2025, 10, 11, 0, 0, tzinfo=SHANGHAI)),
    # Started on a holiday: the first working day after it is day 1.
    (datetime(2025, 10, 3, 9, 0, tzinfo=SHANGHAI), 1, datetime(2025, 10, 10, 0, 0, tzinfo=SHANGHAI)),
    # Sat 11 Oct 2025 is a make-up working day.
    (datetime(2025, 10, 10, 9, 0, tzinfo=SHANGHAI), 1, datetime(2025, 10, 12, 0, 0, tzinfo=SHANGHAI)),
    # Late evening UTC is already the next day in Shanghai.
    (datetime(2025, 9, 25, 17, 0, tzinfo=timezone.utc), 1, datetime(2025, 9, 29, 0, 0, tzinfo=SHANGHAI)),
])
def test_working_day_deadlines_over_chinese_holidays(start, days, expected):
    assert add_working_days(start, days, ChineseBusinessCalendar(), SHANGHAI) == expected


def test_working_day_clock_deadline_from_policy(policies):
    clock = policies.get("sop-2025@1").clock("ticket.result_feedback")
    start = datetime(2025, 9, 30, 15, 0, tzinfo=SHANGHAI)
    deadline = clock.deadline(start, {}, ChineseBusinessCalendar(), SHANGHAI)
    if clock.unit == "working_days":
        assert deadline == add_working_days(start, int(clock.limit_for({})), ChineseBusinessCalendar(), SHANGHAI)
        assert deadline > start + timedelta(days=8)  # the holiday week does not count
    else:
        assert deadline > start


def test_weekday_calendar_skips_weekends():
    friday = datetime(2025, 3, 7, 12, 0, tzinfo=SHANGHAI)
    assert add_working_days(friday, 1, WeekdayCalendar(), SHANGHAI) == datetime(2025, 3, 11, 0, 0, tzinfo=SHANGHAI)


def test_a_policy_is_named_by_name_or_as_listed(policies):
    """``CASELEDGER_POLICY`` takes ``enterprise-2025`` or ``enterprise-2025@1`` (what ``caseledger policies`` lists)."""
    at = datetime(2025, 9, 1, 9, 0, tzinfo=SHANGHAI)
    assert [p.ref for p in policies.versions("enterprise-2025@1")] == ["enterprise-2025@1"]
    assert policies.versions("enterprise-2025@9") == [] and policies.versions("nope@1") == []
    assert policies.in_force(at, "enterprise-2025@1").ref == "enterprise-2025@1"
    assert policies.in_force(at, "enterprise-2025").ref == "enterprise-2025@1"
    with pytest.raises(PolicyError):
        policies.in_force(datetime(2020, 1, 1, tzinfo=SHANGHAI), "enterprise-2025@1")  # not yet in force
