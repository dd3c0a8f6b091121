"""Rectification and audits over HTTP: the permission matrix decides who takes each step, the domain
refuses the owner's own closing (problem naming rule and clause)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("api_test_fixtures_rectification",
                                               Path(__file__).parents[1] / "api" / "conftest.py")
_api = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_api)
tokens, app, client = _api.tokens, _api.app, _api.api


def test_a_finding_is_rectified_and_closed_over_http(client, ledger, jobs, at, customer, clock):
    ledger.open_ticket(at(0), customer_id=customer, channel="phone")
    jobs.run("sla_clocks", 20)
    jobs.run("compliance_audit", 20)
    clock.advance(hours=1)
    (item,) = client.get("/compliance/findings?status=open", as_="auditor").json["items"]
    path = f"/compliance/findings/{item['id']}"
    assign = {"owner": "lead-wang", "severity": "minor", "team": "hotline"}
    assert client.post(path + "/assign", as_="lead", json=assign).status_code == 403  # not in the matrix
    assigned = client.post(path + "/assign", as_="compliance", json=assign)
    assert assigned.status_code == 200 and assigned.json["status"] == "assigned"
    assert client.post(path + "/rectify", as_="lead", json={"corrective_action": "x", "evidence": []}).status_code == 422
    rectified = client.post(path + "/rectify", as_="lead", json={"corrective_action": "coached", "evidence": ["memo"]})
    assert rectified.json["status"] == "rectified"
    own = client.post(path + "/close", as_="lead", json={})
    assert own.status_code == 403  # the matrix: team leads do not close
    closed = client.post(path + "/close", as_="compliance", json={"reason": "checked the memo"})
    assert closed.status_code == 200 and closed.json["status"] == "closed"
    kpis = client.get("/compliance/findings/kpis?by=team", as_="auditor").json["items"]
    assert kpis == [{"team": "hotline", "open": 0, "overdue": 0, "closed": 1}]


def test_the_owner_cannot_close_their_own_rectification(client, ledger, jobs, at, customer, clock):
    ledger.open_ticket(at(0), customer_id=customer, channel="phone")
    jobs.run("sla_clocks", 20)
    jobs.run("compliance_audit", 20)
    clock.advance(hours=1)
    (item,) = client.get("/compliance/findings?status=open", as_="auditor").json["items"]
    path = f"/compliance/findings/{item['id']}"
    client.post(path + "/assign", as_="compliance", json={"owner": "compliance-xu", "severity": "minor"})
    client.post(path + "/rectify", as_="compliance", json={"corrective_action": "fixed", "evidence": ["e1"]})
    refused = client.post(path + "/close", as_="compliance", json={})
    assert refused.status_code == 409 and refused.json["rule"] == "finding.close_four_eyes"
    assert "000 §6.2 item 5" in refused.json["detail"]


def test_samples_and_audits_over_http(client, ledger, at, customer, clock):
    ledger.open_ticket(at(0), customer_id=customer, channel="phone")
    clock.advance(hours=1)
    drawn = client.post("/audits/samples", as_="auditor", json={"criteria": {"type": ["ticket"]}, "size": 1, "seed": 42})
    assert drawn.status_code == 200 and drawn.json["seed"] == 42 and len(drawn.json["case_ids"]) == 1
    assert client.post("/audits/samples", as_="agent", json={"size": 1}).status_code == 403
    again = client.post("/audits/samples", as_="auditor", json={"criteria": {"type": ["ticket"]}, "size": 1, "seed": 42})
    assert again.json["case_ids"] == drawn.json["case_ids"]
    inspected = client.post(f"/audits/samples/{drawn.json['id']}/inspect", as_="auditor",
                            json={"case_id": drawn.json["case_ids"][0], "result": "conforming"})
    assert inspected.status_code == 200 and inspected.json["status"] == "inspected"
    opened = client.post("/audits", as_="auditor", json={"title": "Q3", "scope": "tickets", "auditor": "auditor-he",
                                                         "period_from": "2025-09-01T00:00:00+08:00",
                                                         "period_to": "2025-10-01T00:00:00+08:00"})
    assert opened.status_code == 200, opened.json
    audit = f"/audits/{opened.json['id']}"
    observed = client.post(audit + "/observe", as_="auditor", json={"text": "fine", "sample_ids": [drawn.json["id"]]})
    assert observed.json["observations"][0]["sample_ids"] == [drawn.json["id"]]
    done = client.post(audit + "/conclude", as_="auditor", json={"conclusion": "satisfactory", "summary": "ok"})
    assert (done.json["status"], done.json["conclusion"]) == ("concluded", "satisfactory")
