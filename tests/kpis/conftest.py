"""A small fixed data set for the people, complaint and incident KPIs; the tests compute its numbers
by hand from the times written here (minutes after T0 = Mon 2025-09-01 09:00 +08:00, sop-2025@1)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from read_model_fixtures import T0, act, at, runner_fixture  # noqa: F401 - ``at`` is a fixture, found by name

from services.incidents import report_incident

DAY = 24 * 60

runner = runner_fixture(batch_size=5)  # small batches: many transactions even on a small data set


@pytest.fixture
def people(ledger, at) -> dict[str, str]:
    """Two agents, two complaint handlers, two customers, three incidents."""
    lead, cm, cm2, rm = ("lead-wang", "team_lead"), ("cm-zhou", "complaint_manager"), \
        ("cm-qian", "complaint_manager"), ("rm-sun", "records_manager")
    c1 = str(ledger.register_customer(at(-5), kind="individual", tier="vip", contact={"name": "张三"}).id)
    c2 = str(ledger.register_customer(at(-4), kind="individual", tier="general", contact={"name": "李四"}).id)
    # tA1, agent-li (first-contact owner and handler), team broadband, normal: responds after 10 min,
    # proposes at 60 (rejected by the customer at 80), again at 100, accepted, closed, archived.
    t1 = str(ledger.open_ticket(at(0), customer_id=c1, channel="phone").id)
    act(ledger, "ticket", t1, "classify", at(1, *lead), priority="normal", complexity="general", high_risk=False)
    act(ledger, "ticket", t1, "assign", at(2, *lead), handler="agent-li", team="broadband")
    act(ledger, "ticket", t1, "respond_first", at(10))
    act(ledger, "ticket", t1, "start_work", at(11))
    act(ledger, "ticket", t1, "resolve", at(60))
    act(ledger, "ticket", t1, "feed_back_result", at(70), channel="phone")
    act(ledger, "ticket", t1, "record_acceptance", at(80), accepted=False)
    act(ledger, "ticket", t1, "resolve", at(100))
    act(ledger, "ticket", t1, "feed_back_result", at(110), channel="phone")
    act(ledger, "ticket", t1, "record_acceptance", at(120), accepted=True)
    act(ledger, "ticket", t1, "close", at(130))
    act(ledger, "ticket", t1, "archive", at(140, *rm))
    # tA2, opened by agent-li, handled by agent-wu in team mobile, urgent: responds after 30 min,
    # resolves at 90 (received at 20: 70 min), accepted, closed, not archived.
    t2 = str(ledger.open_ticket(at(20), customer_id=c2, channel="web").id)
    act(ledger, "ticket", t2, "classify", at(21, *lead), priority="urgent", complexity="general", high_risk=False)
    act(ledger, "ticket", t2, "assign", at(22, *lead), handler="agent-wu", team="mobile")
    act(ledger, "ticket", t2, "respond_first", at(50, "agent-wu"))
    act(ledger, "ticket", t2, "start_work", at(51, "agent-wu"))
    act(ledger, "ticket", t2, "resolve", at(90, "agent-wu"))
    act(ledger, "ticket", t2, "feed_back_result", at(95, "agent-wu"), channel="web")
    act(ledger, "ticket", t2, "record_acceptance", at(100, "agent-wu"), accepted=True)
    act(ledger, "ticket", t2, "close", at(105, "agent-wu"))
    # k1, cm-zhou: investigation starts 30 min after acceptance, remedied, notified, the customer is
    # satisfied (entered by cm-qian), archived. k2, cm-qian: first response after 120 min, open.
    k1 = str(ledger.accept_complaint(at(200, *cm), customer_id=c1, channel="phone").id)
    act(ledger, "complaint", k1, "classify", at(201, *cm), complaint_type="technical", level=2)
    act(ledger, "complaint", k1, "start_investigation", at(230, *cm))
    ledger.act("complaint", k1, "add_evidence", at(231, *cm), {"kind": "call_recording"})
    ledger.act("complaint", k1, "decide_remedy", at(232, *cm), {"kind": "rectification"})
    act(ledger, "complaint", k1, "notify_customer", at(233, *cm), channel="phone")
    act(ledger, "complaint", k1, "record_evaluation", at(240, *cm2), satisfied=True, score=5)
    act(ledger, "complaint", k1, "archive", at(250, *rm))
    k2 = str(ledger.accept_complaint(at(300, *cm2), customer_id=c2, channel="web").id)
    act(ledger, "complaint", k2, "classify", at(301, *cm2), complaint_type="process", level=3)
    act(ledger, "complaint", k2, "respond_first", at(420, *cm2))
    # A service fault from 19:00 (minute 600) to 01:00 the next day (minute 960): 6 h down, 5 h on
    # Sep 1 and 1 h on Sep 2. A security incident handled in 1.5 h; two data leaks, one handled
    # (2.5 h after it began), one not.
    ops = ("ops-he", "team_lead")
    fault = report_incident(ledger, at(610, *ops), incident_kind="service_fault", level="L2",
                            started_at=T0 + timedelta(minutes=600), summary="core router down")
    act(ledger, "incident", fault.id, "note", at(700, *ops), step="contained")
    act(ledger, "incident", fault.id, "recover", at(960, *ops))
    act(ledger, "incident", fault.id, "close", at(970, *ops))
    security = report_incident(ledger, at(1000, *ops), incident_kind="security_incident", level="L3")
    act(ledger, "incident", security.id, "close", at(1090, *ops))
    leak = report_incident(ledger, at(1100, *ops), incident_kind="data_leak", level="L1", affected_customers=3)
    act(ledger, "incident", leak.id, "close", at(1250, *ops))
    open_leak = report_incident(ledger, at(1260, *ops), incident_kind="data_leak", level="L2")
    # The next week only c1 comes back (feedback on Mon Sep 8): c2 churned.
    ledger.submit_feedback(at(7 * DAY + 60), kind="suggestion", customer_id=c1, channel="app")
    return {"c1": c1, "c2": c2, "t1": t1, "t2": t2, "k1": k1, "k2": k2, "fault": str(fault.id),
            "leak": str(leak.id), "open_leak": str(open_leak.id), "security": str(security.id)}
