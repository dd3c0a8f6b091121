"""Stalled cases end in a terminal state or a finding (issue 19 item 4), on SQLite and PostgreSQL.

- A case opened under sop-2025@1 (no rules.customer_silence / rules.archive_watch) keeps its terms: the
  stalled-cases job never closes it, but once it has waited past the windows of sop-2025@2 (in force from
  2026-01-01) it raises ``stalled_under_superseded_policy`` — once — citing the rule whose window it applied.
- The audit knows the job's closures (``Ticket.ClosedUnconfirmed``, ``Complaint.ClosedUnevaluated``): they are
  policy-sanctioned, so neither "closed without acceptance" nor "archived without evaluation" is raised.

Hand-computed windows (ledger calendar, the 2026 notice: 1–3 January off, Sunday 4 January a make-up
working day): a ticket fed back Mon 2025-12-29 10:00 → 48 h (ticket.acceptance_confirmation) → Wed 12-31
10:00 → 5 working days: Sun 01-04, Mon 05, Tue 06, Wed 07, Thu 08 → Fri 2026-01-09 00:00. A complaint
notified Mon 2025-12-29 12:00 → 5 working days: Tue 12-30, Wed 12-31, Sun 01-04, Mon 05, Tue 06 → Wed
2026-01-07 00:00. A ticket fed back Mon 2025-12-01 10:00 → Wed 12-03 10:00 → Thu 04, Fri 05, Mon 08, Tue 09,
Wed 10 → Thu 2025-12-11 00:00, before sop-2025@2 took effect: due when it did, 2026-01-01 00:00.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from domain.context import Context
from domain.findings import CaseAudit, Suspicion, finding_id
from services.compliance import ComplianceAudit
from services.stalled import StalledCases

CST = timezone(timedelta(hours=8))
SILENCE_CLAUSE = "003 §2.4.1 (confirmation and archiving together); 002 §3.3 item 2 (48 h to confirm)"
RULE = "stalled_under_superseded_policy"


def at(moment: datetime, actor: str = "agent-li", role: str = "agent", reason: str | None = None) -> Context:
    return Context(actor, role, moment, uuid.uuid4().hex, reason)


def job(moment: datetime) -> Context:
    return at(moment, "scheduler", "service")


def _fed_back_ticket(ledger, customer_id: str, fed_back: datetime, **classification) -> str:
    t = str(ledger.open_ticket(at(fed_back - timedelta(hours=2)), customer_id=customer_id, channel="phone").id)
    steps = [("classify", "lead-wang", "team_lead", {"priority": "normal", "complexity": "general",
                                                      "high_risk": False, **classification}),
             ("assign", "lead-wang", "team_lead", {"handler": "agent-li", "team": "hotline"}),
             ("start_work", "agent-li", "agent", {}), ("resolve", "agent-li", "agent", {})]
    for n, (action, actor, role, args) in enumerate(steps):
        ledger.act("ticket", t, action, at(fed_back - timedelta(hours=1, minutes=-10 * n), actor, role), args)
    ledger.act("ticket", t, "feed_back_result", at(fed_back), {"channel": "sms"})
    return t


def _notified_complaint(ledger, customer_id: str, notified: datetime) -> str:
    manager = ("cm-sun", "complaint_manager")
    c = str(ledger.accept_complaint(at(notified - timedelta(hours=3), *manager), customer_id=customer_id,
                                    channel="phone").id)
    steps = [("classify", {"complaint_type": "process", "level": 2}), ("start_investigation", {}),
             ("add_evidence", {"kind": "call_recording"}), ("decide_remedy", {"kind": "rectification"})]
    for n, (action, args) in enumerate(steps):
        ledger.act("complaint", c, action, at(notified - timedelta(hours=2, minutes=-10 * n), *manager), args)
    ledger.act("complaint", c, "notify_customer", at(notified, *manager), {"channel": "phone"})
    return c


def _customer(ledger, moment: datetime) -> str:
    return str(ledger.register_customer(at(moment), kind="individual", tier="general",
                                        contact={"name": "王五", "phone": "13900001111"}).id)


def test_a_case_under_version_1_that_waited_past_version_2_windows_is_a_finding_not_a_change(ledger):
    cid = _customer(ledger, datetime(2025, 11, 30, 9, 0, tzinfo=CST))
    early = _fed_back_ticket(ledger, cid, datetime(2025, 12, 1, 10, 0, tzinfo=CST))
    late = _fed_back_ticket(ledger, cid, datetime(2025, 12, 29, 10, 0, tzinfo=CST))
    complaint = _notified_complaint(ledger, cid, datetime(2025, 12, 29, 12, 0, tzinfo=CST))
    assert {ledger.get("ticket", late).policy_ref, ledger.get("complaint", complaint).policy_ref} == {"sop-2025@1"}
    versions = {late: ledger.get("ticket", late).version, complaint: ledger.get("complaint", complaint).version}

    stalled = StalledCases(ledger)
    try:
        before = stalled.run(job(datetime(2025, 12, 31, 23, 59, tzinfo=CST)))  # sop-2025@1 still in force
        assert before["stalled_findings"] == 0 and before["cases_checked"] == 3
        new_year = stalled.run(job(datetime(2026, 1, 1, 0, 0, tzinfo=CST)))
        assert (new_year["stalled_findings"], new_year["closed_unconfirmed"]) == (1, 0)  # the early ticket only
        assert stalled.run(job(datetime(2026, 1, 6, 23, 59, tzinfo=CST)))["stalled_findings"] == 0
        assert stalled.run(job(datetime(2026, 1, 7, 0, 0, tzinfo=CST)))["stalled_findings"] == 1  # the complaint
        assert stalled.run(job(datetime(2026, 1, 8, 23, 59, tzinfo=CST)))["stalled_findings"] == 0
        last = stalled.run(job(datetime(2026, 1, 9, 0, 0, tzinfo=CST)))
        assert (last["stalled_findings"], last["findings_already_raised"]) == (1, 2)  # reruns never duplicate
    finally:
        stalled.close()

    def finding(kind: str, case_id: str, stage: str, since_attr: str):
        since = getattr(ledger.get(kind, case_id), since_attr)
        return ledger.get("finding", finding_id(RULE, kind, case_id, f"{stage}:{since}"))

    for kind, case_id, stage, since_attr, due in (
            ("ticket", early, "confirmation", "fed_back_at", "2026-01-01T00:00:00+08:00"),
            ("ticket", late, "confirmation", "fed_back_at", "2026-01-09T00:00:00+08:00"),
            ("complaint", complaint, "evaluation", "notified_at", "2026-01-07T00:00:00+08:00")):
        raised = finding(kind, case_id, stage, since_attr)
        assert (raised.rule, raised.clause, raised.about_kind, raised.policy_ref) == (RULE, SILENCE_CLAUSE, kind,
                                                                                     "sop-2025@2")
        assert (raised.facts["case_policy_ref"], raised.facts["waiting_for"]) == ("sop-2025@1", stage)
        assert datetime.fromisoformat(raised.facts["window_ends"]) <= datetime.fromisoformat(due)
    assert finding("ticket", early, "confirmation", "fed_back_at").facts["window_ends"] == "2025-12-11T00:00:00+08:00"
    # the cases themselves are untouched: same status, same version
    assert (ledger.get("ticket", late).status, ledger.get("ticket", late).version) == ("fed_back", versions[late])
    assert (ledger.get("complaint", complaint).status, ledger.get("complaint", complaint).version) == (
        "notified", versions[complaint])


def test_closures_by_the_stalled_job_are_not_audit_violations(ledger):
    cid = _customer(ledger, datetime(2026, 3, 2, 8, 0, tzinfo=CST))
    # sop-2025@2: fed back Mon 2026-03-02 10:00 → closed unconfirmed from Thu 03-12 00:00; notified Mon 12:00 →
    # closed unevaluated from Tue 03-10 00:00; both archived 5 working days after their closure at 03-12 00:00.
    ticket = _fed_back_ticket(ledger, cid, datetime(2026, 3, 2, 10, 0, tzinfo=CST), service_type="technical")
    complaint = _notified_complaint(ledger, cid, datetime(2026, 3, 2, 12, 0, tzinfo=CST))
    stalled = StalledCases(ledger)
    try:
        closed = stalled.run(job(datetime(2026, 3, 12, 0, 0, tzinfo=CST)))
        assert (closed["closed_unconfirmed"], closed["closed_unevaluated"]) == (1, 1)
        assert stalled.run(job(datetime(2026, 3, 20, 0, 0, tzinfo=CST)))["archived"] == 2
    finally:
        stalled.close()
    assert ledger.get("ticket", ticket).closure == "unconfirmed" and ledger.get("complaint", complaint).status == "archived"

    audit = ComplianceAudit(ledger)
    try:
        audit.run(job(datetime(2026, 3, 21, 0, 0, tzinfo=CST)))
        report = audit.report(datetime(2026, 3, 21, 0, 0, tzinfo=CST), [])
    finally:
        audit.close()
    about = {(f["subject_id"], f["rule"]) for f in report["findings"]}
    assert not {r for s, r in about if s in (ticket, complaint)}, about

    # Without knowing the job's closure, the same complaint's archiving would be "without evaluation".
    events = _events(ledger, complaint)
    audit_rules = CaseAudit("complaint", "sop-2025@2", ledger.policies.get("sop-2025@2"))

    def rules_raised(stream) -> set[str]:
        facts: dict = {}
        return {s.rule for e in stream for s in audit_rules.apply(complaint, facts, e) if isinstance(s, Suspicion)}

    assert "complaint_archived_without_evaluation" not in rules_raised(events)
    unnamed = [e for e in events if type(e).__qualname__ != "Complaint.ClosedUnevaluated"]
    assert rules_raised(unnamed) == {"complaint_archived_without_evaluation"}


def _events(ledger, case_id: str) -> list:
    mapper = ledger.facts_mapper()
    return [mapper.to_domain_event(s) for s in ledger.recorder.select_events(uuid.UUID(case_id))]
