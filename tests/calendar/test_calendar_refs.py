"""Every computed deadline records the calendar data it used (issue 20): SLA clock runs, SLA breaches and
retention due dates carry ``calendar_ref`` — the loaded State Council notice of the year (``cn-2026@<hash>``)
or, for a year without one, the ``holidays`` package (``holidays-<version>:cn-<year>``); None when no
working day was counted. On SQLite and PostgreSQL (the ``env`` / ``ledger`` fixtures)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import holidays

from domain.context import Context
from domain.sla import SLABreach
from ledger.bootstrap import build
from ledger.calendar import ChineseBusinessCalendar
from projections.sla_clocks import SLA_CLOCK_TABLE
from services.retention import Retention
from services.sla import SlaMonitor

CST = timezone(timedelta(hours=8))
PACKAGE = f"holidays-{holidays.__version__}"


def _ctx(moment: datetime, actor: str = "cm-zhou", role: str = "complaint_manager") -> Context:
    return Context(actor_id=actor, actor_role=role, request_id=uuid.uuid4().hex, occurred_at=moment)


def _clock_rows(monitor: SlaMonitor, case_id: str) -> dict[str, dict]:
    monitor.runner.catch_up()
    names = ("clock_key", "unit", "deadline", "calendar_ref", "breached")
    with monitor.runner.db.reading() as cur:
        rows = cur.execute(f"SELECT {', '.join(names)} FROM {SLA_CLOCK_TABLE.name} WHERE case_id = ?",
                           (case_id,)).fetchall()
    return {r[0]: dict(zip(names, r)) for r in rows}


def test_sla_clocks_and_breaches_name_the_notice_or_the_package_fallback(env, wall_clock):
    wall_clock.now = datetime(2027, 6, 1, tzinfo=CST)
    ledger = build({**env, "CASELEDGER_POLICY": "enterprise-2025"})
    ledger.clock = wall_clock
    monitor = SlaMonitor(ledger)
    try:
        notice_2026 = ledger.calendar.notices[2026].ref
        assert notice_2026.startswith("cn-2026@") and 2027 not in ledger.calendar.loaded_years()
        # Fri 2026-10-09: 2 working days (004 §2.3.2) = Sat 10-10 (make-up day of the 2026 notice), Mon 10-12
        start = datetime(2026, 10, 9, 10, 0, tzinfo=CST)
        customer = ledger.register_customer(_ctx(start), kind="enterprise", tier="vip", contact={"name": "周九"})
        in_2026 = str(ledger.accept_complaint(_ctx(start), customer_id=str(customer.id), channel="phone").id)
        # Mon 2027-03-01: no 2027 notice, the package decides: Tue 03-02, Wed 03-03 → due at the end of 03-03
        in_2027 = str(ledger.accept_complaint(_ctx(datetime(2027, 3, 1, 10, 0, tzinfo=CST)),
                                              customer_id=str(customer.id), channel="phone").id)

        rows_2026, rows_2027 = _clock_rows(monitor, in_2026), _clock_rows(monitor, in_2027)
        assert rows_2026["complaint.handling"]["unit"] == "working_days"
        assert rows_2026["complaint.handling"]["deadline"] == "2026-10-12T16:00:00.000000Z"
        assert rows_2026["complaint.handling"]["calendar_ref"] == notice_2026
        assert rows_2027["complaint.handling"]["deadline"] == "2027-03-03T16:00:00.000000Z"
        assert rows_2027["complaint.handling"]["calendar_ref"] == f"{PACKAGE}:cn-2027"
        in_hours = [r for r in rows_2026.values() if r["unit"] in ("hours", "minutes")]
        assert in_hours and all(r["calendar_ref"] is None for r in in_hours)  # no working day counted

        # The SLA job records the breach of 2026's handling clock with the data its limit was counted with.
        monitor.run(_ctx(datetime(2026, 10, 13, 1, 0, tzinfo=CST), "scheduler", "service"))
        breach = ledger.get("sla_breach", SLABreach.id_for(in_2026, "complaint.handling", 0))
        assert (breach.breached_at, breach.calendar_ref) == ("2026-10-13T00:00:00+08:00", notice_2026)
        assert _clock_rows(monitor, in_2026)["complaint.handling"]["breached"] == 1
        hourly = [SLABreach.id_for(in_2026, key, 0) for key, r in rows_2026.items() if r["unit"] == "hours"]
        assert hourly and all(ledger.get("sla_breach", b).calendar_ref is None for b in hourly)
        incremental = monitor.runner.digests()
        monitor.runner.rebuild()
        assert monitor.runner.digests() == incremental  # a rebuild records the same refs
    finally:
        monitor.close()
        ledger.close()


def test_a_breach_recorded_before_calendar_refs_replays_without_one():
    breach = SLABreach(id=uuid.uuid4(), case_kind="ticket", case_id="t-1", clock_key="ticket.resolution", cycle=0,
                       policy_ref="sop-2025@1", clause="003 §2.2.2", limit=48.0, unit="hours",
                       started_at="2025-09-01T09:00:00+08:00", breached_at="2025-09-03T09:00:00+08:00",
                       stopped_at=None, rung="team_lead", meta={"occurred_at": "2025-09-03T09:05:00+08:00"})
    (created,) = breach.collect_events()
    stored_before = {k: v for k, v in created.__dict__.items() if k != "calendar_ref"}  # an event of the old shape
    old = object.__new__(type(created))
    old.__dict__.update(stored_before)
    replayed = old.mutate(None)
    assert (replayed.calendar_ref, replayed.rung, replayed.clock_key) == (None, "team_lead", "ticket.resolution")


NOTICE_2028 = """schema = 1
calendar = "cn"
year = 2028
title = "test notice"
number = "test"
issued = 2027-11-01
[[holidays]]
name = "test break"
from = 2028-09-27
to = 2028-09-29
working_days = [2028-09-30]
quote = "test"
"""


def test_retention_due_dates_name_the_calendar_data_that_moved_them(ledger, wall_clock, tmp_path):
    # customer_profile (sop-2025@1): 3 years from registration, moved to the next working day. Registered
    # Fri 2025-09-26: anniversary Tue 2028-09-26, so due Wed 2028-09-27 — a working day for the package
    # (no 2028 notice). With a notice making 09-27..29 days off and Sat 09-30 a make-up day: due Sat 09-30.
    wall_clock.now = datetime(2025, 9, 27, tzinfo=CST)
    customer = ledger.register_customer(_ctx(datetime(2025, 9, 26, 10, 0, tzinfo=CST), "agent-li", "agent"),
                                        kind="individual", tier="general", contact={"name": "钱七"})
    retention = Retention(ledger)
    try:
        (row,) = retention.records(subject=str(customer.id))
        assert (row["record_class"], row["due_at"]) == ("customer_profile", "2028-09-26T16:00:00.000000Z")
        assert row["calendar_ref"] == f"{PACKAGE}:cn-2028"
        incremental = retention.runner.digests()
        retention.runner.rebuild()
        assert retention.runner.digests() == incremental
    finally:
        retention.close()

    (tmp_path / "notices").mkdir()
    (tmp_path / "notices" / "cn-2028.toml").write_text(NOTICE_2028, encoding="utf-8")
    ledger.calendar = ChineseBusinessCalendar(tmp_path / "notices")
    rebuilt = Retention(ledger)
    try:
        rebuilt.runner.rebuild()  # the due date is recomputed from the events with the loaded notice
        (row,) = rebuilt.records(subject=str(customer.id))
        assert row["due_at"] == "2028-09-29T16:00:00.000000Z"  # Sat 2028-09-30 00:00 in Shanghai
        assert row["calendar_ref"] == ledger.calendar.notices[2028].ref and row["calendar_ref"].startswith("cn-2028@")
    finally:
        rebuilt.close()
