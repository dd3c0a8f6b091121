"""The compliance endpoints: SLA clock state for the dashboard, findings (acknowledged over HTTP),
job history — with an access policy that grants and grades them, and absent without one."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from api import compliance, create_app
from domain.permissions import AccessPolicy, Role
from services.tokens import TokenService, system_context

_spec = importlib.util.spec_from_file_location("api_test_fixtures_compliance",
                                               Path(__file__).parents[1] / "api" / "conftest.py")
_api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_api)
tokens, app, client = _api.tokens, _api.app, _api.api  # callers: compliance (officer), auditor, agent, …


def test_an_access_policy_that_does_not_know_them_leaves_the_endpoints_out(ledger, env, clock):
    """Fail closed: without grants and grades for them, the app starts and the endpoints are absent."""
    base = AccessPolicy.load()
    roles = {name: Role(role.name, role.title, {a: s for a, s in role.grants.items()
                                                if a not in set(compliance.ACTIONS.values())})
             for name, role in base.roles.items()}
    service = TokenService(ledger, AccessPolicy(base.name, base.version, roles, base.grades))
    token = service.issue("auditor-he", "auditor", None, ctx=system_context("test-setup"))[0]
    response = create_app(env, ledger, tokens=service, clock=clock).test_client().get(
        "/compliance/findings", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404 and response.content_type == "application/problem+json"


@pytest.fixture
def overdue(ledger, jobs, at, customer) -> str:
    """A ticket whose first response (15 min) is late; the SLA job and the audit have run."""
    ticket = str(ledger.open_ticket(at(0), customer_id=customer, channel="phone").id)
    jobs.run("sla_clocks", 20)
    jobs.run("compliance_audit", 20)
    return ticket


def test_sla_clock_state_for_the_dashboard(client, overdue):
    clocks = client.get("/compliance/sla-clocks?case_id=" + overdue, as_="auditor").json
    by_clock = {c["clock"]: c for c in clocks["items"]}
    assert set(by_clock) == {"ticket.acceptance", "ticket.first_response", "ticket.resolution"}
    late = by_clock["ticket.first_response"]
    assert (late["breached"], late["rung"], late["escalations"], late["status"], late["clause"]) == (
        True, "team_lead", 1, "running", "003 §2.2.2")
    assert late["deadline"] == "2025-09-01T01:15:00.000000Z" and late["case_kind"] == "ticket"
    overdue_at = client.get("/compliance/sla-clocks?overdue=true&as_of=2025-09-02T10:00:00%2B08:00", as_="auditor")
    assert {c["clock"] for c in overdue_at.json["items"]} == {"ticket.acceptance", "ticket.first_response"}
    breached = client.get("/compliance/sla-clocks?breached=true", as_="auditor").json["items"]
    assert [c["clock"] for c in breached] == ["ticket.first_response"]
    summary = client.get("/compliance/sla-clocks/summary?as_of=2025-09-01T09:30:00%2B08:00", as_="auditor").json
    assert {s["clock"]: (s["running"], s["overdue"], s["breached"]) for s in summary["items"]} == {
        "ticket.acceptance": (1, 0, 0), "ticket.first_response": (1, 1, 1), "ticket.resolution": (1, 0, 0)}
    assert client.get("/compliance/sla-clocks?cursor=nope", as_="auditor").status_code == 400
    assert client.get("/compliance/sla-clocks", as_="agent").status_code == 403
    # every response field is graded by the access policy, none as personal data
    schemas = client.client.get("/openapi.json").json["components"]["schemas"]
    fields = {f for name in ("SlaClock", "SlaClockSummary", "Finding", "JobRun") for f in schemas[name]["properties"]}
    grades = AccessPolicy.load().grades
    assert {f: grades.get(f) for f in fields if grades.get(f) not in ("general", "important")} == {}
    assert {grades[f] for names in compliance.DATA_GRADES.values() for f in names} <= {"general", "important"}


def test_findings_are_listed_and_acknowledged_over_http(client, overdue, clock):
    page = client.get("/compliance/findings?status=open", as_="auditor").json
    (item,) = page["items"]
    assert (item["rule"], item["subject_id"], item["clause"], item["facts"]["clock"]) == (
        "sla_breach", overdue, "003 §2.2.2", "ticket.first_response")
    path = f"/compliance/findings/{item['id']}"
    one = client.get(path, as_="auditor")
    assert one.status_code == 200 and one.headers["ETag"] == '"1"'
    clock.advance(hours=1)  # business time goes on: acknowledging comes after the finding
    ack = path + "/acknowledge"
    assert client.post(ack, as_="auditor", json={"reason": "x"}).status_code == 403  # auditors change nothing
    assert client.post(ack, as_="compliance", json={}).status_code == 422  # a reason is required
    stale = client.post(ack, as_="compliance", json={"reason": "known"}, headers={"If-Match": '"7"'})
    assert stale.status_code == 412
    done = client.post(ack, as_="compliance", json={"reason": "known outage"}, headers={"If-Match": '"1"'})
    assert done.status_code == 200, done.json
    assert (done.json["status"], done.json["acknowledged_by"], done.json["reason"]) == (
        "acknowledged", "compliance-xu", "known outage")
    again = client.post(ack, as_="compliance", json={"reason": "again"})
    assert again.status_code == 409 and again.json["rule"] == "finding.acknowledge_once"
    assert client.get("/compliance/findings?status=acknowledged", as_="auditor").json["items"][0]["id"] == item["id"]
    assert client.get("/compliance/findings/00000000-0000-0000-0000-000000000000", as_="auditor").status_code == 404
    runs = client.get("/compliance/job-runs?job=sla_clocks", as_="auditor").json["items"]
    assert [(r["job"], r["status"], r["counts"]["breaches"]) for r in runs] == [("sla_clocks", "finished", 1)]
