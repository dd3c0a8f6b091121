"""A finding is rectified: open → assigned → rectified → closed by another person (four eyes), reopened;
an overdue rectification is itself a finding; KPIs open / overdue / closed by rule and team."""

from __future__ import annotations

import pytest

from domain.errors import InvalidValue, TransitionForbidden
from projections.catalog import runner_for
from projections.compliance_queries import get_finding
from projections.rectification import finding_kpis, get_rectification

CLAUSE = "000 §6.1 item 4; 000 §6.2 item 5; 002 §5.3; 003 §7.1; 003 §7.3; 004 §6.1"
OFFICER = ("compliance-xu", "compliance_officer")


def _finding(ledger, jobs, at, customer, minutes: float = 0) -> str:
    """One open finding: a ticket's first response (15 min, 003 §2.2.2) missed."""
    before = {str(e.originator_id) for e in jobs.events("Finding.Raised")}
    ledger.open_ticket(at(minutes), customer_id=customer, channel="phone")
    jobs.run("sla_clocks", minutes + 20)
    jobs.run("compliance_audit", minutes + 20)
    (new,) = {str(e.originator_id) for e in jobs.events("Finding.Raised")} - before
    return new


def _views(ledger):
    runner = runner_for(ledger)
    runner.catch_up()
    return runner


def test_a_finding_goes_open_assigned_rectified_closed_by_another_person_and_reopens(ledger, jobs, at, customer):
    finding = _finding(ledger, jobs, at, customer)
    ledger.act("finding", finding, "assign", at(30, *OFFICER),
               {"owner": "lead-wang", "severity": "general", "team": "team-a", "corrective_action": "retrain"})
    with pytest.raises(TransitionForbidden) as not_owner:
        ledger.act("finding", finding, "rectify", at(40, "agent-li", "agent"),
                   {"corrective_action": "did it", "evidence": ["doc-1"]})
    assert (not_owner.value.rule, not_owner.value.clause) == ("finding.rectify_by_owner", CLAUSE)
    with pytest.raises(TransitionForbidden) as no_evidence:
        ledger.act("finding", finding, "rectify", at(41, "lead-wang", "team_lead"),
                   {"corrective_action": "did it", "evidence": [" "]})
    assert no_evidence.value.rule == "finding.evidence_required"
    rectified = ledger.act("finding", finding, "rectify", at(42, "lead-wang", "team_lead"),
                           {"corrective_action": "team retrained on first response", "evidence": ["training-2025-09"]})
    assert (rectified.status, rectified.evidence, rectified.rectified_by) == ("rectified", ["training-2025-09"],
                                                                             "lead-wang")
    with pytest.raises(TransitionForbidden) as own_close:
        ledger.act("finding", finding, "close", at(50, "lead-wang", "team_lead"), {})
    assert (own_close.value.rule, own_close.value.clause) == ("finding.close_four_eyes", CLAUSE)
    closed = ledger.act("finding", finding, "close", at(51, *OFFICER), {})
    assert (closed.status, closed.closed_by, closed.version) == ("closed", "compliance-xu", 4)

    runner = _views(ledger)
    assert get_finding(runner.db, finding)["status"] == "closed"
    row = get_rectification(runner.db, finding)
    assert (row["owner"], row["team"], row["severity"], row["evidence_count"], row["closed_by"]) == (
        "lead-wang", "team-a", "general", 1, "compliance-xu")
    # general: 30 days (policy findings.rectification.due_days) from the assignment: 2025-09-01 09:30 CST
    assert row["due_at"] == "2025-10-01T01:30:00.000000Z"
    assert finding_kpis(runner.db, at(60).occurred_at) == [
        {"rule": "sla_breach", "team": "team-a", "open": 0, "overdue": 0, "closed": 1}]

    with pytest.raises(TransitionForbidden) as no_reason:
        ledger.act("finding", finding, "reopen", at(70, *OFFICER), {})
    assert no_reason.value.rule == "finding.reopen_reason"
    reopened = ledger.act("finding", finding, "reopen", at(71, *OFFICER, reason="same miss again in week 2"), {})
    assert (reopened.status, reopened.reopen_count, reopened.closed_by) == ("reopened", 1, None)
    runner.catch_up()
    assert finding_kpis(runner.db, at(72).occurred_at, ("rule",)) == [
        {"rule": "sla_breach", "open": 1, "overdue": 0, "closed": 0}]
    runner.close()


def test_assignment_checks_severity_and_due_date(ledger, jobs, at, customer):
    finding = _finding(ledger, jobs, at, customer)
    with pytest.raises(InvalidValue) as severity:
        ledger.act("finding", finding, "assign", at(30, *OFFICER), {"owner": "lead-wang", "severity": "huge"})
    assert severity.value.rule == "vocabulary.finding_severity" and severity.value.clause == "000 §6.3 item 2"
    with pytest.raises(TransitionForbidden) as past:
        ledger.act("finding", finding, "assign", at(31, *OFFICER),
                   {"owner": "lead-wang", "severity": "minor", "due_at": at(0).occurred_at})
    assert past.value.rule == "finding.due_in_future"
    with pytest.raises(TransitionForbidden) as not_yet:
        ledger.act("finding", finding, "close", at(32, *OFFICER), {})
    assert not_yet.value.rule == "finding.close_when_rectified"


def test_an_overdue_rectification_raises_a_finding_once(ledger, jobs, at, customer):
    finding = _finding(ledger, jobs, at, customer)
    ledger.act("finding", finding, "assign", at(30, *OFFICER), {"owner": "lead-wang", "severity": "major", "team": "t1"})
    week = 7 * 24 * 60  # major: 7 days (policy findings.rectification.due_days)
    assert jobs.run("rectification_overdue", 30 + week - 1).counts == {"overdue": 0, "raised": 0, "already_raised": 0}
    assert jobs.run("rectification_overdue", 30 + week + 1).counts == {"overdue": 1, "raised": 1, "already_raised": 0}
    assert jobs.run("rectification_overdue", 30 + week + 61).counts == {"overdue": 1, "raised": 0, "already_raised": 1}
    (raised,) = [e for e in jobs.events("Finding.Raised") if e.rule == "rectification_overdue"]
    assert (raised.subject_kind, raised.subject_id, raised.clause) == (
        "finding", finding, "000 §6.2 item 5; 002 §5.3; 003 §7.1; 003 §7.3")
    assert (raised.facts["owner"], raised.facts["severity"], raised.facts["rule"]) == ("lead-wang", "major", "sla_breach")
    runner = _views(ledger)
    kpis = finding_kpis(runner.db, at(30 + week + 62).occurred_at)
    assert kpis == [{"rule": "rectification_overdue", "team": None, "open": 1, "overdue": 0, "closed": 0},
                    {"rule": "sla_breach", "team": "t1", "open": 1, "overdue": 1, "closed": 0}]
    # rectified late: no longer overdue, and the overdue finding stays on record
    ledger.act("finding", finding, "rectify", at(30 + week + 70, "lead-wang", "team_lead"),
               {"corrective_action": "fixed late", "evidence": ["memo-7"]})
    runner.catch_up()
    assert [k["overdue"] for k in finding_kpis(runner.db, at(30 + week + 71).occurred_at)] == [0, 0]
    runner.close()
