"""Incremental processing equals a rebuild for every read model, over the events issues 19 and 20
added: service types, progress updates, complaint first responses and reassignment, incidents,
case surveys, samples and audit engagements, under the version-2 policies (business time in 2026).

Incremental processing runs in batches of 3, caught up twice, so batches cut through cases; the
rebuild reads everything in one batch. Both backends."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from domain.context import Context
from projections.cases import COMPLAINT_TABLE, TICKET_TABLE
from projections.catalog import runner_for
from services.incidents import report_incident
from services.sampling import draw_sample, open_audit
from services.surveys import answer_case_survey

pytestmark = pytest.mark.integration

#: Monday 2026-10-12 09:00 China time: under the version-2 policies (effective 2026-01-01).
T0 = datetime(2026, 10, 12, 9, 0, tzinfo=timezone(timedelta(hours=8)))


def at(minutes: float, actor: str = "agent-li", role: str = "agent", reason: str | None = None) -> Context:
    return Context(actor_id=actor, actor_role=role, occurred_at=T0 + timedelta(minutes=minutes),
                   request_id=uuid.uuid4().hex, reason=reason)


def first_half(ledger) -> dict[str, str]:
    customer = str(ledger.register_customer(at(0), kind="individual", tier="vip", contact={"name": "王五"}).id)
    ticket = str(ledger.open_ticket(at(1), customer_id=customer, channel="phone").id)
    steps = [("classify", at(2), {"priority": "normal", "complexity": "general", "high_risk": False,
                                  "service_type": "technical"}),
             ("assign", at(3, "lead-wang", "team_lead"), {"handler": "agent-zhao", "team": "broadband"}),
             ("respond_first", at(5, "agent-zhao"), {}),
             ("update_progress", at(30, "agent-zhao"), {"channel": "phone"}),
             ("start_work", at(31, "agent-zhao"), {}),
             ("resolve", at(40, "agent-zhao"), {"resolution": "重启光猫"}),
             ("feed_back_result", at(45, "agent-zhao"), {"channel": "phone"}),
             ("record_acceptance", at(50, "agent-zhao"), {"accepted": True}),
             ("close", at(55, "agent-zhao"), {})]
    for action, ctx, args in steps:
        ledger.act("ticket", ticket, action, ctx, args)
    return {"customer": customer, "ticket": ticket}


def second_half(ledger, ids: dict[str, str]) -> None:
    cm = ("cm-zhou", "complaint_manager")
    complaint = str(ledger.accept_complaint(at(60, *cm), customer_id=ids["customer"], channel="web",
                                            description="处理太慢").id)
    ledger.act("complaint", complaint, "classify", at(61, *cm), {"complaint_type": "technical", "level": 1,
                                                                "service_type": "complaint"})
    ledger.act("complaint", complaint, "respond_first", at(65, *cm), {})
    ledger.act("complaint", complaint, "reassign", at(70, *cm, reason="specialist needed"), {"handler": "cm-li"})
    ledger.act("complaint", complaint, "start_investigation", at(71, "cm-li", "complaint_manager"), {})
    answer_case_survey(ledger, at(80, "agent-qian"), case_kind="ticket", case_id=ids["ticket"], csat=4, nps=8)
    incident = report_incident(ledger, at(90, "lead-wang", "team_lead"), incident_kind="service_fault", level="L2",
                               started_at=T0 + timedelta(minutes=85), affected_customers=12, summary="光纤中断")
    ledger.act("incident", incident.id, "recover", at(200, "lead-wang", "team_lead"), {})
    officer = ("compliance-xu", "compliance_officer")
    draw_sample(ledger, at(300, *officer), {}, 1, seed=20261012)
    open_audit(ledger, at(301, "auditor-he", "auditor"), title="Q4 service review", scope="tickets",
               period_from=T0, period_to=T0 + timedelta(days=1), auditor="auditor-he")


def test_incremental_processing_equals_a_rebuild_over_the_new_events(ledger):
    incremental = runner_for(ledger, batch_size=3)
    ids = first_half(ledger)
    incremental.catch_up()
    second_half(ledger, ids)
    incremental.catch_up()
    head = ledger.recorder.max_notification_id()
    assert set(incremental.positions().values()) == {head}  # nothing stalled on the new events
    rebuilt = runner_for(ledger, batch_size=1000)
    rebuilt.rebuild()
    try:
        assert rebuilt.digests() == incremental.digests()
        # The new events reached the read models (a digest of empty tables would match too).
        with rebuilt.db.reading() as cur:
            tables = {name for p in rebuilt.projections for name in (t.name for t in p.tables)}
            filled = {name for name in tables if cur.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0]}
            service_types = cur.execute(f"SELECT service_type FROM {TICKET_TABLE.name}").fetchall()
            complaint_handlers = cur.execute(f"SELECT service_type, handler FROM {COMPLAINT_TABLE.name}").fetchall()
        assert [tuple(r) for r in service_types] == [("technical",)]
        assert [tuple(r) for r in complaint_handlers] == [("complaint", "cm-li")]  # the reassignment applied
        assert {"rm_sample", "rm_audit"} <= filled, sorted(filled)
        assert any("incident" in name for name in filled) and any("work" in name or "queue" in name
                                                                  for name in tables), sorted(filled)
    finally:
        incremental.close()
        rebuilt.close()
