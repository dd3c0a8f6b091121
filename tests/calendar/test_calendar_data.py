"""Calendar data by year: the State Council's notices override the holidays package, deadlines say which
data they used, and a year without a notice raises a finding 30 days before it begins."""

from __future__ import annotations

import shutil
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from domain.calendar import WeekdayCalendar, deadline_with_ref
from domain.context import Context
from domain.errors import InvalidValue
from ledger.bootstrap import build
from ledger.calendar import CALENDAR_DIR, ChineseBusinessCalendar, load_notices
from projections.catalog import runner_for
from projections.sla_clocks import SLA_CLOCK_TABLE
from zoneinfo import ZoneInfo

CST = timezone(timedelta(hours=8))
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOTICE_2027 = """schema = 1
calendar = "cn"
year = 2027
title = "test notice"
number = "test"
issued = 2026-11-01
[[holidays]]
name = "test holiday"
from = 2027-01-01
to = 2027-01-03
working_days = [2027-01-09]
quote = "test"
"""


def test_loaded_notices_decide_make_up_days_and_name_themselves():
    calendar = ChineseBusinessCalendar()
    assert {2025, 2026} <= calendar.loaded_years()
    # 2026-10-10 is a Saturday made a working day, 2026-10-05 a Monday off (国庆节 10月1日至7日)
    assert calendar.is_working_day(date(2026, 10, 10)) and not calendar.is_working_day(date(2026, 10, 5))
    start = datetime(2026, 10, 9, 10, 0, tzinfo=CST)  # Friday
    deadline, ref = deadline_with_ref(start, 2, "working_days", calendar, SHANGHAI)
    # day 1: Sat 10-10 (make-up), day 2: Mon 10-12 → the end of 10-12
    assert deadline == datetime(2026, 10, 13, 0, 0, tzinfo=SHANGHAI)
    assert ref == calendar.notices[2026].ref and ref.startswith("cn-2026@")
    assert deadline_with_ref(start, 2, "working_days", WeekdayCalendar(), SHANGHAI) == (
        datetime(2026, 10, 14, 0, 0, tzinfo=SHANGHAI), "weekdays")
    assert deadline_with_ref(start, 4, "hours", calendar, SHANGHAI) == (start + timedelta(hours=4), None)
    across = deadline_with_ref(datetime(2026, 12, 31, 10, tzinfo=CST), 3, "working_days", calendar, SHANGHAI)[1]
    assert across.startswith("cn-2026@") and across.endswith("+holidays-" + __import__("holidays").__version__ + ":cn-2027")


def test_a_notice_overrides_the_package_for_its_year(tmp_path):
    shutil.copy(CALENDAR_DIR / "cn-2026.toml", tmp_path)
    (tmp_path / "cn-2027.toml").write_text(NOTICE_2027, encoding="utf-8")
    with_notice, package_only = ChineseBusinessCalendar(tmp_path), ChineseBusinessCalendar(None)
    saturday = date(2027, 1, 9)
    assert with_notice.is_working_day(saturday) and not package_only.is_working_day(saturday)
    assert not with_notice.is_working_day(date(2027, 1, 2)) and package_only.loaded_years() == frozenset()
    (tmp_path / "cn-2027.toml").write_text(NOTICE_2027.replace("2027-01-09", "2027-01-08"), encoding="utf-8")
    with pytest.raises(InvalidValue) as weekday:  # a Friday cannot be a make-up working day
        load_notices(tmp_path)
    assert weekday.value.rule == "calendar.data"


def test_a_complaint_accepted_before_a_make_up_day_gets_its_deadline_from_the_notice(env, wall_clock):
    wall_clock.now = datetime(2026, 10, 20, tzinfo=CST)
    ledger = build({**env, "CASELEDGER_POLICY": "enterprise-2025"})
    ledger.clock = wall_clock
    try:
        ctx = Context(actor_id="cm-zhou", actor_role="complaint_manager", request_id=uuid.uuid4().hex,
                      occurred_at=datetime(2026, 10, 9, 10, 0, tzinfo=CST))
        customer = ledger.register_customer(ctx, kind="enterprise", tier="vip", contact={"name": "周九"})
        complaint = ledger.accept_complaint(ctx, customer_id=str(customer.id), channel="phone")
        policy = ledger.policy_of(complaint)
        clock = policy.clock("complaint.handling")  # 004 §2.3.2: 2 working days
        assert (clock.unit, clock.limit_for({})) == ("working_days", 2)
        runner = runner_for(ledger)
        runner.catch_up()
        with runner.db.reading() as cur:
            (deadline,) = cur.execute(f"SELECT deadline FROM {SLA_CLOCK_TABLE.name} WHERE case_id = ? AND "
                                      "clock_key = 'complaint.handling'", (str(complaint.id),)).fetchone()
        runner.close()
        # Fri 10-09 → Sat 10-10 (make-up working day, 国办 notice) and Mon 10-12: due at the end of 10-12
        assert deadline == "2026-10-12T16:00:00.000000Z"
    finally:
        ledger.close()


def test_a_year_without_its_notice_raises_a_finding_30_days_before_it_begins(ledger, jobs, wall_clock):
    wall_clock.now = datetime(2026, 12, 3, tzinfo=CST)
    before = datetime(2026, 12, 1, 23, 59, tzinfo=CST)  # 30 days before 2027-01-01 00:00 CST is 12-02 00:00
    assert jobs.run("calendar_coverage", when=before).counts == {"missing_years": 0, "raised": 0, "already_raised": 0}
    due = datetime(2026, 12, 2, 6, 0, tzinfo=CST)
    assert jobs.run("calendar_coverage", when=due).counts == {"missing_years": 1, "raised": 1, "already_raised": 0}
    assert jobs.run("calendar_coverage", when=due + timedelta(hours=1)).counts["already_raised"] == 1
    (raised,) = [e for e in jobs.events("Finding.Raised") if e.rule == "calendar_data_missing"]
    assert (raised.subject_kind, raised.subject_id, raised.clause) == ("calendar", "cn-2027", "002 §3.1 item 2; 004 §2.3.2")
    assert raised.facts["loaded_years"] == sorted(ledger.calendar.loaded_years())
