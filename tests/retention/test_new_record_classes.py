"""Retention rows of the records issue 19 added (both backends): a survey of a contact resolved at first
contact (record class ``case_survey``) and an incident (``incident_record``), under sop-2025@2; and the
retention read model rebuilt gives the digest it reached incrementally."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from domain.context import Context
from projections.catalog import runner_for
from services.incidents import report_incident
from services.retention import Retention
from services.surveys import answer_case_survey

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=CST)  # a Monday; cases opened now are pinned to sop-2025@2


def at(minutes: float, actor: str = "agent-li", role: str = "agent") -> Context:
    return Context(actor_id=actor, actor_role=role, occurred_at=T0 + timedelta(minutes=minutes),
                   request_id=uuid.uuid4().hex)


def test_case_surveys_and_incidents_get_their_record_class_and_due_date(ledger):
    customer = str(ledger.register_customer(at(0), kind="individual", tier="vip", contact={"name": "张三"}).id)
    contact = ledger.receive_interaction(at(1), channel="phone", direction="inbound", customer_id=customer,
                                         agent_id="agent-li", queue="broadband")
    ledger.act("interaction", contact.id, "close", at(2), {"resolved_on_first_contact": True})
    survey = answer_case_survey(ledger, at(60, "qa-sun"), case_kind="interaction", case_id=str(contact.id), csat=5)
    incident = report_incident(ledger, at(0, "lead-wang", "team_lead"), incident_kind="service_fault", level="L2",
                               started_at=T0 - timedelta(hours=1), summary="core router down")
    ledger.act("incident", incident.id, "recover", at(90, "lead-wang", "team_lead"), {})

    retention = Retention(ledger)
    try:
        rows = {(r["kind"], r["record_id"]): r for r in retention.records()}
        answered = rows["case_survey", str(survey.id)]
        assert (answered["subject"], answered["record_class"], answered["policy_ref"]) == (
            customer, "case_survey", "sop-2025@2")
        assert answered["clause"] == "none — product default (period from 003 §5.1 item 4)"
        # Answered 2026-03-02 10:00 (+08): at least 3 years → 2029-03-02 ends the period, due the next
        # day, 2029-03-03, a Saturday → the next working day, Monday 2029-03-05, 00:00 local time.
        assert (answered["trigger_milestone"], answered["trigger_at"][:16]) == ("case_survey.answered",
                                                                                "2026-03-02T02:00")
        assert answered["due_at"][:16] == "2029-03-04T16:00"  # 2029-03-05 00:00 +08, stored in UTC

        # An incident is its own subject (it has no customer); its period starts when it is closed.
        reported = rows["incident", str(incident.id)]
        assert (reported["subject"], reported["record_class"], reported["trigger_at"], reported["due_at"]) == (
            str(incident.id), "incident_record", None, None)
        ledger.act("incident", incident.id, "close", at(120, "lead-wang", "team_lead"), {})
        closed = {r["record_id"]: r for r in retention.records(subject=str(incident.id))}[str(incident.id)]
        # Closed 2026-03-02 11:00 (+08): the same anniversary arithmetic as the survey → 2029-03-05 00:00 +08.
        assert (closed["trigger_milestone"], closed["trigger_at"][:16], closed["due_at"][:16]) == (
            "incident.closed", "2026-03-02T03:00", "2029-03-04T16:00")
    finally:
        retention.close()

    runner = runner_for(ledger, batch_size=2)
    try:
        runner.catch_up()
        incremental = runner.digests()["retention"]
        rebuilt = runner_for(ledger)
        rebuilt.rebuild(["retention"])
        assert rebuilt.digests()["retention"] == incremental
        rebuilt.close()
    finally:
        runner.close()
