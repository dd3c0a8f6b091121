"""Surveys of any case: contacts resolved at first contact, complaints, tickets; never entered by
someone who handled the case (rules.survey_independence); counted in the surveyed case's bucket."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from domain.context import Context
from domain.errors import TransitionForbidden
from projections.catalog import runner_for
from projections.kpis import dashboard
from services.surveys import answer_case_survey

T0 = datetime(2025, 9, 1, 9, 0, tzinfo=timezone(timedelta(hours=8)))


def at(minutes: float, actor: str = "agent-li", role: str = "agent", reason: str | None = None) -> Context:
    return Context(actor_id=actor, actor_role=role, occurred_at=T0 + timedelta(minutes=minutes),
                   request_id=uuid.uuid4().hex, reason=reason)


def test_the_handler_may_not_enter_the_survey_of_their_own_case(ledger):
    c1 = str(ledger.register_customer(at(0), kind="individual", tier="vip", contact={"name": "张三"}).id)
    contact = ledger.receive_interaction(at(1), channel="phone", direction="inbound", customer_id=c1,
                                         agent_id="agent-li", queue="broadband")
    with pytest.raises(TransitionForbidden) as open_contact:
        answer_case_survey(ledger, at(2, "qa-sun"), case_kind="interaction", case_id=str(contact.id), csat=5)
    assert open_contact.value.rule == "survey.requires_first_contact_resolution"
    ledger.act("interaction", contact.id, "close", at(3), {"resolved_on_first_contact": True})
    with pytest.raises(TransitionForbidden) as own:
        answer_case_survey(ledger, at(4, "agent-li"), case_kind="interaction", case_id=str(contact.id), csat=5)
    assert own.value.rule == "survey.not_by_handler"
    survey = answer_case_survey(ledger, at(5, "qa-sun"), case_kind="interaction", case_id=str(contact.id),
                                csat=4, nps=10)
    assert (survey.case_kind, survey.case_id, survey.customer_id) == ("interaction", str(contact.id), c1)
    # A complaint: surveyed once its customer was told the outcome, never by its handler.
    cm = ("cm-zhou", "complaint_manager")
    k1 = str(ledger.accept_complaint(at(10, *cm), customer_id=c1, channel="phone").id)
    with pytest.raises(TransitionForbidden) as untold:
        answer_case_survey(ledger, at(11, "qa-sun"), case_kind="complaint", case_id=k1, csat=2)
    assert untold.value.rule == "survey.requires_complaint_outcome"
    ledger.act("complaint", k1, "classify", at(12, *cm), {"complaint_type": "technical", "level": 2})
    ledger.act("complaint", k1, "start_investigation", at(13, *cm), {})
    ledger.act("complaint", k1, "add_evidence", at(14, *cm), {"kind": "call_recording"})
    ledger.act("complaint", k1, "decide_remedy", at(15, *cm), {"kind": "rectification"})
    ledger.act("complaint", k1, "notify_customer", at(16, *cm), {"channel": "phone"})
    with pytest.raises(TransitionForbidden):
        answer_case_survey(ledger, at(17, *cm), case_kind="complaint", case_id=k1, csat=2)
    answer_case_survey(ledger, at(18, "qa-sun"), case_kind="complaint", case_id=k1, csat=2, nps=3)
    # A ticket: its first-contact owner may not survey it either.
    t1 = str(ledger.open_ticket(at(20), customer_id=c1, channel="phone").id)
    for step, (action, args, who) in enumerate((
            ("classify", {"priority": "normal", "complexity": "general", "high_risk": False}, "lead"),
            ("assign", {"handler": "agent-wu", "team": "mobile"}, "lead"),
            ("start_work", {}, "agent-wu"), ("resolve", {}, "agent-wu"),
            ("feed_back_result", {"channel": "phone"}, "agent-wu"))):
        ledger.act("ticket", t1, action, at(21 + step, who, "team_lead" if who == "lead" else "agent"), args)
    for person in ("agent-li", "agent-wu"):
        with pytest.raises(TransitionForbidden) as by_handler:
            answer_case_survey(ledger, at(40, person), case_kind="ticket", case_id=t1, csat=5)
        assert by_handler.value.rule == "survey.not_by_handler"
    answer_case_survey(ledger, at(41, "qa-sun"), case_kind="ticket", case_id=t1, csat=5)
    # Counted in the surveyed cases' buckets: the contact's agent (agent-li: CSAT 4 of 5 satisfied),
    # the complaint's handler (cm-zhou: CSAT 2 not; NPS 3 a detractor), the ticket's handler (agent-wu).
    runner = runner_for(ledger)
    try:
        runner.catch_up()
        body = dashboard(runner.db, ledger, date(2025, 9, 1), date(2025, 9, 1), "agent")
        groups = {g["group"]: {k["key"]: k["value"] for k in g["kpis"]} for g in body["groups"]}
        assert groups["agent-li"]["csat"] == 1.0 and groups["agent-li"]["nps"] == 100.0
        assert groups["cm-zhou"]["csat"] == 0.0 and groups["cm-zhou"]["nps"] == -100.0
        assert groups["agent-wu"]["csat"] == 1.0
    finally:
        runner.close()


def test_case_surveys_over_http(api, customer_id):
    contact = api.post("/interactions", json={"channel": "phone", "direction": "inbound", "customer_id": customer_id,
                                              "agent_id": "agent-li", "queue": "hotline"})
    assert contact.status_code == 201, contact.json
    assert api.post(f"/interactions/{contact.json['id']}/close", json={"resolved_on_first_contact": True}).status_code == 200
    body = {"case_kind": "interaction", "case_id": contact.json["id"], "csat": 5}
    own = api.post("/case-surveys", as_="agent", json=body)
    assert own.status_code in (409, 422) and own.json["rule"] == "survey.not_by_handler"
    created = api.post("/case-surveys", as_="agent2", json=body)
    assert created.status_code == 201, created.json
    assert api.get(created.headers["Location"], as_="auditor").json["csat"] == 5
    assert api.post("/case-surveys", as_="agent2", json=body).status_code == 409  # one survey per case
