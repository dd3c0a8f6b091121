"""Periodic reviews (issue #20 item 2): the monthly check run twice stores one report, its KPIs are the
dashboard's for that month, the file's signature verifies and a tampered file fails. Both backends."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from domain.context import Context
from domain.errors import DomainError
from domain.reports import Period, report_id
from ledger.integrity.report_note import ReportInvalid, note_path, verify_report
from ledger.integrity.trust import TrustSet
from ledger.keys import LogKeys
from ledger.settings import Settings
from projections.kpi_counters import KpiCounters
from projections.kpis import dashboard
from projections.runtime import ProjectionRunner
from scheduler.runner import run_job

CST = timezone(timedelta(hours=8))
SEPT = datetime(2025, 9, 1, 9, 0, tzinfo=CST)
AFTER_SEPT = datetime(2025, 10, 1, 1, 0, tzinfo=CST)  # the monthly job's slot for September


def at(when: datetime, actor: str = "agent-li", role: str = "agent") -> Context:
    return Context(actor_id=actor, actor_role=role, occurred_at=when, request_id=uuid.uuid4().hex)


@pytest.fixture
def september(ledger, env):
    """Two tickets and a complaint in September, one ticket on 1 October (outside the month), and
    two contacts left unregistered in September: the compliance audit raises two findings on each."""
    LogKeys.from_settings(Settings.from_environ(env)).init()
    customer = str(ledger.register_customer(at(SEPT), kind="individual", tier="vip", contact={"name": "孙八"}).id)
    for day in (2, 15):
        ticket = ledger.open_ticket(at(SEPT + timedelta(days=day)), customer_id=customer, channel="web",
                                    summary="slow")
        ledger.act("ticket", ticket.id, "classify", at(SEPT + timedelta(days=day, minutes=5), "lead-wang", "team_lead"),
                   {"priority": "normal", "complexity": "general", "high_risk": False})
    ledger.accept_complaint(at(SEPT + timedelta(days=20)), customer_id=customer, channel="phone", description="late")
    ledger.open_ticket(at(datetime(2025, 10, 1, 0, 30, tzinfo=CST)), customer_id=customer, channel="web")
    contacts = [str(ledger.receive_interaction(at(SEPT + timedelta(days=25, minutes=m)), channel="phone",
                                               direction="inbound", customer_id=customer).id) for m in (0, 1)]
    outcome = run_job(ledger, "compliance_audit", SEPT + timedelta(days=26), settings=env)
    assert outcome.status == "finished" and outcome.counts["raised"] == 4, outcome  # not registered, not routed
    raised = [e for e in all_events(ledger) if type(e).__qualname__.startswith("Finding.") and e.originator_version == 1]
    closed = raised[0].originator_id  # acknowledged in September: the report counts it closed there
    ledger.act("finding", closed, "acknowledge", Context("compliance-xu", "compliance_officer",
               SEPT + timedelta(days=26, hours=1), uuid.uuid4().hex, reason="known outage"), {})
    from services.sampling import draw_sample

    sample = draw_sample(ledger, at(SEPT + timedelta(days=27), "inspector-qi", "compliance_officer"),
                         {"type": ["ticket"]}, 1, seed=7)
    return {"customer": customer, "contacts": contacts, "sample": sample, "closed": str(closed),
            "closed_rule": next(e.rule for e in raised if e.originator_id == closed)}


def all_events(ledger) -> list:
    found, after = [], 0
    while page := ledger.log(after=after, limit=500):
        found += [e for _, e in page]
        after = page[-1][0]
    return found


def reports(ledger) -> list:
    found, after = [], 0
    while page := ledger.log(after=after, limit=500):
        found += [e for _, e in page if type(e).__qualname__ == "ReviewReport.Issued"]
        after = page[-1][0]
    return found


def test_monthly_review_twice_stores_one_report_with_the_dashboards_kpis(ledger, env, september):
    first = run_job(ledger, "review_monthly_check", AFTER_SEPT, settings=env)
    again = run_job(ledger, "review_monthly_check", AFTER_SEPT + timedelta(hours=2), settings=env)
    assert first.status == again.status == "finished", (first.reason, again.reason)
    assert first.counts == {"issued": 1, "already_issued": 0} and again.counts == {"issued": 0, "already_issued": 1}
    issued = reports(ledger)
    assert len(issued) == 1 and issued[0].originator_id == report_id("monthly_check", "2025-09")
    assert again.details["sha256"] == issued[0].sha256 == first.details["sha256"]
    files = sorted((Path(env["CASELEDGER_HOME"]) / "reports" / "reviews" / "monthly_check").iterdir())
    assert [f.name for f in files] == [Path(first.details["file"]).name, Path(first.details["file"]).name + ".note"]

    report = json.loads(Path(first.details["file"]).read_text())
    assert report["period"]["first_day"] == "2025-09-01" and report["period"]["last_day"] == "2025-09-30"
    assert report["policy"] == "sop-2025@1" and report["clause"] == "004 §6.1"
    runner = ProjectionRunner(ledger, [KpiCounters(ledger)])
    try:
        runner.catch_up()
        expected = dashboard(runner.db, ledger, date(2025, 9, 1), date(2025, 9, 30), "channel")
    finally:
        runner.close()
    assert report["kpis"] == json.loads(json.dumps(expected))
    counters = {g["group"]: g["counters"] for g in report["kpis"]["groups"]}
    assert counters["web"]["tickets.received"] == 2  # the ticket of 1 October is not in September
    assert counters["phone"]["complaints.accepted"] == 1
    csat = next(k for g in report["kpis"]["groups"] for k in g["kpis"] if k["key"] == "csat")
    assert csat["target"]["clause"]  # KPIs against targets, with their clause
    assert report["samples"]["installed"] and report["samples"]["cases"] == sorted(september["sample"].case_ids)
    assert [r["id"] for r in report["samples"]["records"]] == [str(september["sample"].id)]
    opened = {f["subject_id"] for f in report["findings"]["opened"]}
    by_rule = {"contact_not_registered": {"opened": 2, "closed": 0}, "contact_not_routed": {"opened": 2, "closed": 0}}
    by_rule[september["closed_rule"]]["closed"] = 1
    assert opened == set(september["contacts"]) and report["findings"]["by_rule"] == by_rule
    assert [f["finding_id"] for f in report["findings"]["closed"]] == [september["closed"]]


def test_signature_verifies_and_a_tampered_report_fails(ledger, env, september):
    outcome = run_job(ledger, "review_monthly_check", AFTER_SEPT, settings=env)
    path = Path(outcome.details["file"])
    keys = LogKeys.from_settings(Settings.from_environ(env))
    trust = TrustSet([keys.verifier_text()])
    checked = verify_report(path, trust)
    assert checked["kind"] == "monthly_check" and checked["period"] == "2025-09"
    assert checked["sha256"] == outcome.details["sha256"]
    path.write_text(path.read_text().replace('"tickets.received": 2', '"tickets.received": 3'))
    with pytest.raises(ReportInvalid, match="changed after it was signed"):
        verify_report(path, trust)
    note = note_path(path).read_text()
    note_path(path).write_text(note.replace("period 2025-09", "period 2025-08"))
    from ledger.integrity.checkpoint import CheckpointError
    with pytest.raises(CheckpointError):  # the note itself was edited: its signature no longer holds
        verify_report(path, trust)


def test_a_period_not_over_is_refused_and_periods_parse():
    assert Period.parse("quarter", "2026-Q4").first == date(2026, 10, 1)
    assert Period.parse("quarter", "2026-Q4").last == date(2026, 12, 31)
    assert Period.last_complete("month", date(2026, 1, 1)).name == "2025-12"
    assert Period.last_complete("quarter", date(2026, 4, 1)).name == "2026-Q1"
    assert Period.last_complete("quarter", date(2026, 2, 10)).name == "2025-Q4"
    assert Period.last_complete("year", date(2026, 1, 1)).name == "2025"
    with pytest.raises(DomainError, match="written like 2026-11"):
        Period.parse("month", "2026-13")


def test_review_of_a_month_not_over_is_refused(ledger, env):
    from services.reviews import run_review

    LogKeys.from_settings(Settings.from_environ(env)).init()
    with pytest.raises(DomainError, match="not over") as refused:
        run_review(ledger, Settings.from_environ(env), "monthly_check", "2025-09", at(SEPT))
    assert refused.value.rule == "review.period_not_over" and not reports(ledger)


def test_every_review_job_is_registered_with_its_policy_rule(ledger):
    from scheduler.jobs import REGISTRY

    policy = ledger.policies.get("sop-2025@1")
    kinds = sorted(k[len("review."):] for k in policy.rules if k.startswith("review."))
    assert sorted(name[len("review_"):] for name in REGISTRY if name.startswith("review_")) == kinds
    assert {policy.rule(f"review.{k}")["source"] for k in kinds} == {"004 §6.1", "003 §4.2", "001 §6.3", "004 §2.2.1",
                                                                     "003 §6.1"}
