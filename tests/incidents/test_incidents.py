"""Incidents: the domain's rules (with rule and clause), the read model, and the HTTP endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from domain.context import Context
from domain.errors import DomainError, TransitionForbidden
from domain.incident import Incident
from domain.policy import PolicyBook
from projections.catalog import runner_for
from projections.incidents import list_incidents
from services.incidents import report_incident

T0 = datetime(2025, 9, 1, 9, 0, tzinfo=timezone(timedelta(hours=8)))
POLICY = PolicyBook.load().get("sop-2025@1")


def ctx(minutes: float, actor: str = "ops-he", reason: str | None = None) -> Context:
    return Context(actor_id=actor, actor_role="team_lead", occurred_at=T0 + timedelta(minutes=minutes),
                   request_id=uuid.uuid4().hex, reason=reason)


def fault(**kw) -> Incident:
    return Incident.report(id=uuid.uuid4(), incident_kind=kw.pop("kind", "service_fault"), level=kw.pop("level", "L2"),
                           policy=POLICY, ctx=ctx(0), **kw)


def test_a_service_fault_closes_only_after_recovery_citing_the_recovery_clause():
    incident = fault(started_at=T0 - timedelta(minutes=30), summary="core router down")
    assert (incident.status, incident.started_at) == ("reported", (T0 - timedelta(minutes=30)).isoformat())
    with pytest.raises(TransitionForbidden) as refused:
        incident.close(policy=POLICY, ctx=ctx(10))
    assert refused.value.rule == "incident.close_requires_recovery" and refused.value.clause == "003 §4.1"
    incident.note(step="contained", policy=POLICY, ctx=ctx(20), details="traffic rerouted")
    incident.recover(policy=POLICY, ctx=ctx(90))
    with pytest.raises(TransitionForbidden) as twice:
        incident.recover(policy=POLICY, ctx=ctx(91))
    assert twice.value.rule == "incident.recover_once"
    incident.close(policy=POLICY, ctx=ctx(100), resolution="replaced the line card")
    assert (incident.status, incident.timeline_entries, incident.recovered_at) == (
        "closed", 1, (T0 + timedelta(minutes=90)).isoformat())


def test_a_data_leak_is_handled_when_it_closes_and_levels_change_with_a_reason():
    leak = fault(kind="data_leak", level="L1", affected_customers=3)
    with pytest.raises(DomainError) as no_reason:
        leak.change_level(level="L2", policy=POLICY, ctx=ctx(5))
    assert no_reason.value.rule == "incident.level_reason"
    leak.change_level(level="L2", policy=POLICY, ctx=ctx(6, reason="fewer records than feared"))
    leak.close(policy=POLICY, ctx=ctx(60))  # no recovery needed: handled
    assert (leak.level, leak.status) == ("L2", "closed")
    with pytest.raises(TransitionForbidden) as closed:
        leak.note(step="late", policy=POLICY, ctx=ctx(70))
    assert closed.value.rule == "incident.timeline_while_open"


@pytest.mark.parametrize("kw, rule", [
    ({"kind": "flood"}, "incident.kind"),
    ({"level": "L9"}, None),  # the policy's vocabulary check names its own rule
    ({"started_at": T0 + timedelta(minutes=5)}, "incident.started_at"),
    ({"affected_customers": -1}, "incident.affected_customers"),
])
def test_bad_reports_are_refused(kw, rule):
    with pytest.raises(DomainError) as refused:
        fault(**kw)
    if rule:
        assert refused.value.rule == rule


def test_the_incident_list_read_model_and_its_rebuild(ledger):
    reported = report_incident(ledger, ctx(0), incident_kind="service_fault", level="L2",
                               started_at=T0 - timedelta(hours=1))
    ledger.act("incident", reported.id, "recover", ctx(60), {})
    leak = report_incident(ledger, ctx(70), incident_kind="data_leak", level="L1", affected_customers=2)
    runner = runner_for(ledger, batch_size=1)
    try:
        runner.catch_up()
        page = list_incidents(runner.db, {}, limit=1)
        first = page["items"][0]
        # Began at T0 − 1 h, recovered at T0 + 60 min: 2 h = 7,200 s.
        assert (first["incident_id"], first["status"], first["recovery_seconds"]) == (str(reported.id), "recovered", 7200)
        rest = list_incidents(runner.db, {}, cursor=page["next_cursor"], limit=1)
        assert [r["incident_id"] for r in rest["items"]] == [str(leak.id)] and rest["next_cursor"] is None
        assert [r["incident_id"] for r in list_incidents(runner.db, {"incident_kind": ["data_leak"]})["items"]] == [
            str(leak.id)]
        incremental = runner.digests()["incidents"]
        rebuilt = runner_for(ledger, batch_size=500)
        rebuilt.rebuild(["incidents"])
        assert rebuilt.digests()["incidents"] == incremental
        rebuilt.close()
    finally:
        runner.close()


def test_incidents_over_http(api):
    report = {"incident_kind": "security_incident", "level": "L3", "summary": "暴力破解登录"}
    assert api.post("/incidents", as_="agent", json=report).status_code == 403  # agents do not report incidents
    created = api.post("/incidents", as_="lead", json=report)
    assert created.status_code == 201, created.json
    incident_id = created.json["id"]
    assert created.headers["Location"] == f"/incidents/{incident_id}" and "summary" not in created.json
    bad = api.post(f"/incidents/{incident_id}/change-level", as_="lead", json={"level": "L2"})
    assert bad.status_code in (409, 422) and bad.json["rule"] == "incident.level_reason"
    noted = api.post(f"/incidents/{incident_id}/note", as_="compliance", json={"step": "contained"})
    assert noted.status_code == 200 and noted.json["timeline_entries"] == 1
    closed = api.post(f"/incidents/{incident_id}/close", as_="compliance", json={"resolution": "blocked"})
    assert closed.status_code == 200 and closed.json["status"] == "closed"
    listed = api.get("/incidents?status=closed", as_="auditor")
    assert listed.status_code == 200 and [i["incident_id"] for i in listed.json["items"]] == [incident_id]
    assert api.get(f"/incidents/{incident_id}", as_="auditor").json["level"] == "L3"
    assert api.get("/incidents", as_="agent").status_code == 403
    assert api.post("/incidents", as_="lead", json={**report, "incident_kind": "flood"}).status_code == 422
