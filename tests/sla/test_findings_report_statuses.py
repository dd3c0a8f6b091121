"""The compliance audit's report lists every finding that is open work, each with its own status from the
rectification cycle (open, assigned, rectified, reopened), and leaves out the settled ones (closed after
verification, acknowledged as standing); ``open`` in the run's counts is that open work. SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from domain.context import Context
from domain.findings import Suspicion
from services.compliance import ComplianceAudit, record_finding

CST = timezone(timedelta(hours=8))
T = datetime(2026, 2, 2, 9, 0, tzinfo=CST)
OFFICER = ("compliance-xu", "compliance_officer")
OWNER = ("lead-wang", "team_lead")


def at(minutes: int, actor: str, role: str, reason: str | None = None) -> Context:
    return Context(actor, role, T + timedelta(minutes=minutes), uuid.uuid4().hex, reason)


def test_the_report_lists_open_work_in_every_rectification_status(ledger):
    # One finding per status; each its own subject, so its id is its own.
    steps = {
        "open": [],
        "assigned": ["assign"],
        "rectified": ["assign", "rectify"],
        "closed": ["assign", "rectify", "close"],
        "reopened": ["assign", "rectify", "close", "reopen"],
        "acknowledged": ["acknowledge"],
    }
    args = {"assign": (OFFICER, None, {"owner": "lead-wang", "severity": "general", "team": "hotline"}),
            "rectify": (OWNER, None, {"corrective_action": "notice entered", "evidence": ["gazette-page"]}),
            "close": (OFFICER, None, {}),
            "reopen": (OFFICER, "the notice had a wrong date", {}),
            "acknowledge": (OFFICER, "known gap, tracked elsewhere", {})}
    ids: dict[str, str] = {}
    for n, (status, actions) in enumerate(steps.items()):
        suspicion = Suspicion("calendar_data_missing", "calendar", f"cn-{3000 + n}", "sop-2025@2", T, {"year": 3000 + n})
        assert record_finding(ledger, suspicion, at(n, "scheduler", "service"))
        ids[status] = str(suspicion.finding_id)
        for k, action in enumerate(actions):
            (actor, role), reason, body = args[action]
            ledger.act("finding", ids[status], action, at(10 + 10 * n + k, actor, role, reason), body)
        assert ledger.get("finding", ids[status]).status == status

    audit = ComplianceAudit(ledger)
    try:
        counts, _ = audit.run(at(120, "scheduler", "service"))
        listed = {f["finding_id"]: f["status"] for f in audit.report(T + timedelta(hours=2), [])["findings"]}
        with_raised = audit.report(T + timedelta(hours=2), [ids["closed"]])["findings"]
    finally:
        audit.close()
    open_work = ("open", "assigned", "rectified", "reopened")
    assert listed == {ids[s]: s for s in open_work}
    assert counts["open"] == len(open_work) and counts["raised"] == 0
    # a finding this run raised is listed whatever its status, marked as new
    assert [(f["status"], f["new_in_run"]) for f in with_raised if f["finding_id"] == ids["closed"]] == [("closed", True)]
