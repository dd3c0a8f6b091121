"""Work queues (read model, keyset pages over HTTP with Link rel=next) and need-to-know unmasking."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from domain.context import Context
from projections.catalog import runner_for
from projections.work_queues import list_work

T0 = datetime(2025, 9, 1, 9, 0, tzinfo=timezone(timedelta(hours=8)))
REASON = {"X-Access-Reason": "客户来电要求核实联系方式"}


def at(minutes: float, actor: str = "agent-li", role: str = "agent", reason: str | None = None) -> Context:
    return Context(actor_id=actor, actor_role=role, occurred_at=T0 + timedelta(minutes=minutes),
                   request_id=uuid.uuid4().hex, reason=reason)


def queue_ids(runner, queue, **kw):
    runner.catch_up()
    return [row["case_id"] for row in list_work(runner.db, queue, **kw)["items"]]


def test_queues_follow_the_cases(ledger):
    cm, cm2 = ("cm-zhou", "complaint_manager"), ("cm-qian", "complaint_manager")
    c1 = str(ledger.register_customer(at(0), kind="individual", tier="vip", contact={"name": "张三"}).id)
    waiting = ledger.receive_interaction(at(1), channel="phone", direction="inbound", customer_id=c1)
    taken = ledger.receive_interaction(at(2), channel="web", direction="inbound", customer_id=c1)
    feedback = ledger.submit_feedback(at(3), kind="suggestion", customer_id=c1, channel="app")
    answered = ledger.submit_feedback(at(4), kind="praise", customer_id=c1, channel="app")
    k1 = ledger.accept_complaint(at(5, *cm), customer_id=c1, channel="phone")
    k2 = ledger.accept_complaint(at(6, *cm), customer_id=c1, channel="web")
    runner = runner_for(ledger, batch_size=2)
    try:
        assert queue_ids(runner, "unregistered_contacts") == [str(waiting.id), str(taken.id)]
        ledger.act("interaction", taken.id, "register", at(10), {"agent_id": "agent-li"})
        assert queue_ids(runner, "unregistered_contacts") == [str(waiting.id)]
        ledger.act("feedback", answered.id, "respond", at(11, "agent-wu"), {})
        assert queue_ids(runner, "open_feedback", owner="agent-wu") == [str(answered.id)]
        assert queue_ids(runner, "open_feedback", owner="agent-li") == [str(feedback.id)]
        ledger.act("feedback", answered.id, "reply", at(12, "agent-wu"), {})
        assert queue_ids(runner, "open_feedback") == [str(feedback.id)]
        ledger.act("complaint", k2.id, "reassign", at(13, *cm, reason="workload"), {"handler": "cm-qian"})
        assert queue_ids(runner, "complaints", owner="cm-zhou") == [str(k1.id)]
        assert queue_ids(runner, "complaints", owner="cm-qian") == [str(k2.id)]
        ledger.act("complaint", k2.id, "classify", at(14, *cm2), {"complaint_type": "process", "level": 2})
        runner.catch_up()
        rows = {r["case_id"]: r for r in list_work(runner.db, "complaints")["items"]}
        assert rows[str(k2.id)]["status"] == "classified" and rows[str(k1.id)]["status"] == "accepted"
        incremental = runner.digests()["work_queues"]
        rebuilt = runner_for(ledger)
        rebuilt.rebuild(["work_queues"])
        assert rebuilt.digests()["work_queues"] == incremental
        rebuilt.close()
    finally:
        runner.close()


def test_queues_over_http_are_keyset_paginated_and_scoped(api, customer_id):
    for n in range(3):
        assert api.post("/interactions", json={"channel": "phone", "direction": "inbound",
                                               "customer_id": customer_id}).status_code == 201
    first = api.get("/work/unregistered-contacts?limit=2")
    assert first.status_code == 200 and len(first.json["items"]) == 2 and first.json["next_cursor"]
    link = first.headers["Link"]
    assert link.startswith("</work/unregistered-contacts?") and 'rel="next"' in link
    second = api.get(link[1:link.index(">")])
    assert len(second.json["items"]) == 1 and second.json["next_cursor"] is None
    assert {i["seq"] for i in first.json["items"]}.isdisjoint({i["seq"] for i in second.json["items"]})
    # An agent lists only their own work (the shared intake queue above excepted); a lead lists all.
    assert api.get("/work/complaints").status_code == 403
    assert api.get("/work/complaints?owner=agent-li").status_code == 200
    assert api.get("/work/complaints", as_="lead").status_code == 200
    assert api.get("/work/nothing", as_="lead").status_code == 404
    assert api.get("/work/complaints?cursor=bm9wZQ", as_="lead").status_code == 400


def test_an_agent_sees_personal_data_only_of_customers_of_their_own_cases(api, customer_id):
    """003 §6.3: a reason alone is not enough; owning or handling a case of the customer is. (The
    ``customer_id`` fixture is registered by agent-li, who owns that customer record.)"""
    assert api.get(f"/customers/{customer_id}", as_="agent", headers=REASON).json["contact"]["phone"] == "13811112222"
    assert api.get(f"/customers/{customer_id}", as_="agent2", headers=REASON).json["contact"]["phone"] == "138****2222"
    ticket = api.post("/tickets", as_="agent", json={"customer_id": customer_id, "channel": "phone"})
    assert ticket.status_code == 201
    # agent-li owns the ticket (first-contact owner); agent-zhao still has no case of this customer.
    assert api.get(f"/customers/{customer_id}", as_="agent2", headers=REASON).json["contact"]["phone"] == "138****2222"
    ticket_id = ticket.json["id"]
    assert api.post(f"/tickets/{ticket_id}/classify", as_="lead", json={
        "priority": "normal", "complexity": "general", "high_risk": False}).status_code == 200
    assert api.post(f"/tickets/{ticket_id}/assign", as_="lead", json={"handler": "agent-zhao"}).status_code == 200
    # Assigned now: agent-zhao may see it; a team lead needs no case at all.
    assert api.get(f"/customers/{customer_id}", as_="agent2", headers=REASON).json["contact"]["phone"] == "13811112222"
    assert api.get(f"/customers/{customer_id}", as_="lead", headers=REASON).json["contact"]["phone"] == "13811112222"
    log = api.get(f"/access-events?subject={customer_id}", as_="compliance").json["items"]
    assert sorted(e["actor_id"] for e in log) == ["agent-li", "agent-zhao", "lead-wang"]  # masked reads log nothing
