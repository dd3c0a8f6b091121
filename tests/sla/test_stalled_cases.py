"""A case whose customer never answers reaches a terminal state, is archived, and its retention
period starts (rules.customer_silence, rules.archive_watch of sop-2025@2), on SQLite and PostgreSQL.

Hand-computed deadlines (the ledger's Chinese business calendar; 2026-03-02 is a Monday with no
holiday in the weeks used): result fed back Mon 10:00 → confirmation window 48 h → Wed 10:00 → plus
5 working days → end of Wed 11 March (Thu 12 March 00:00). Closed then → archived 5 working days
later: end of Thu 19 March (Fri 20 March 00:00). Complaint notified Mon 2 March 12:00 → 5 working
days → Tue 10 March 00:00.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from domain.context import Context
from services.retention import Retention
from services.stalled import StalledCases

CST = timezone(timedelta(hours=8))
MON = datetime(2026, 3, 2, 9, 0, tzinfo=CST)


def at(moment: datetime, actor: str = "agent-li", role: str = "agent", reason: str | None = None) -> Context:
    return Context(actor, role, moment, uuid.uuid4().hex, reason)


def job(moment: datetime) -> Context:
    return at(moment, "scheduler", "service")


def test_silent_customers_cases_are_closed_archived_and_start_retention(ledger):
    cid = str(ledger.register_customer(at(MON), kind="individual", tier="general",
                                       contact={"name": "王五", "phone": "13900001111"}).id)
    t = ledger.open_ticket(at(MON), customer_id=cid, channel="phone", summary="宽带断了")
    assert t.policy_ref == "sop-2025@2"
    step = lambda action, moment, actor="agent-li", role="agent", **args: ledger.act(  # noqa: E731
        "ticket", t.id, action, at(moment, actor, role), args)
    step("classify", MON + timedelta(minutes=5), "lead-wang", "team_lead", priority="normal",
         complexity="general", high_risk=False, service_type="technical")
    step("assign", MON + timedelta(minutes=6), "lead-wang", "team_lead", handler="agent-li", team="hotline")
    step("start_work", MON + timedelta(minutes=7))
    step("update_progress", MON + timedelta(minutes=8), channel="sms", message="处理中")
    step("resolve", MON + timedelta(minutes=50))
    step("feed_back_result", MON + timedelta(hours=1), channel="sms")  # Mon 10:00

    c = ledger.accept_complaint(at(MON, "cm-sun", "complaint_manager"), customer_id=cid, channel="phone")
    cstep = lambda action, hours, **args: ledger.act(  # noqa: E731
        "complaint", c.id, action, at(MON + timedelta(hours=hours), "cm-sun", "complaint_manager",
                                      reason="handover" if action == "reassign" else None), args)
    cstep("classify", 0.1, complaint_type="process", level=2)
    cstep("respond_first", 0.2, message="已受理")
    cstep("reassign", 0.3, handler="cm-zhou")
    cstep("start_investigation", 0.4)
    cstep("add_evidence", 0.5, kind="call_recording")
    cstep("decide_remedy", 1, kind="rectification")
    cstep("notify_customer", 3, channel="phone")  # Mon 12:00
    assert ledger.get("complaint", c.id).handler == "cm-zhou"

    stalled = StalledCases(ledger)
    try:
        early = stalled.run(job(datetime(2026, 3, 9, 23, 59, tzinfo=CST)))
        assert early["closed_unconfirmed"] == early["closed_unevaluated"] == early["archived"] == 0
        assert ledger.get("ticket", t.id).status == "fed_back"

        first = stalled.run(job(datetime(2026, 3, 12, 0, 0, tzinfo=CST)))
        assert (first["closed_unconfirmed"], first["closed_unevaluated"]) == (1, 1)
        ticket = ledger.get("ticket", t.id)
        assert (ticket.status, ticket.closure) == ("closed", "unconfirmed")
        assert ledger.get("complaint", c.id).status == "unevaluated"
        assert stalled.run(job(datetime(2026, 3, 12, 1, 0, tzinfo=CST)))["closed_unconfirmed"] == 0  # once

        retention = Retention(ledger)
        try:
            before = {r["kind"]: r for r in retention.records(subject=cid)}
            assert before["ticket"]["trigger_at"] is None and before["complaint"]["trigger_at"] is None

            # archived 5 working days after closure (both closed Thu 12 March 00:00): Fri 20 March 00:00
            assert stalled.run(job(datetime(2026, 3, 19, 23, 59, tzinfo=CST)))["archived"] == 0
            assert stalled.run(job(datetime(2026, 3, 20, 0, 0, tzinfo=CST)))["archived"] == 2
            assert ledger.get("ticket", t.id).status == ledger.get("complaint", c.id).status == "archived"

            after = {r["kind"]: r for r in retention.records(subject=cid)}
            assert after["ticket"]["trigger_milestone"] == "ticket.archived"
            assert after["ticket"]["trigger_at"].startswith("2026-03-19T16:00")  # stamped in UTC
            assert after["complaint"]["trigger_milestone"] == "complaint.archived"
            # 5 years (003 §2.4.1): from local day 2026-03-20, due 2031-03-21 (a Friday, a working day):
            # 2031-03-21 00:00 Shanghai = 2031-03-20 16:00 UTC
            assert after["ticket"]["due_at"].startswith("2031-03-20T16:00")
        finally:
            retention.close()
    finally:
        stalled.close()
