"""Read-model endpoints: caught up in-process, ETag / If-None-Match, problem+json errors."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


def test_ticket_list_is_caught_up_in_process_and_supports_304(api, scenario):
    first = api.get("/views/tickets?status=closed&limit=10", as_="auditor")
    assert first.status_code == 200, first.json
    assert [r["ticket_id"] for r in first.json["items"]] == [scenario["t1"]]
    etag = first.headers["ETag"]
    fixed = "/views/tickets?status=closed&as_of=2025-09-10T00:00:00%2B08:00"
    tagged = api.get(fixed, as_="auditor")
    again = api.get(fixed, headers={"If-None-Match": tagged.headers["ETag"]}, as_="auditor")
    assert again.status_code == 304 and again.headers["ETag"] == tagged.headers["ETag"] and not again.data
    assert etag.startswith('"')


def test_new_events_show_up_and_change_the_etag(api, scenario):
    url = "/views/tickets?channel=app&as_of=2025-09-10T00:00:00%2B08:00"
    before = api.get(url, as_="auditor")
    assert before.json["items"] == []
    created = api.post("/tickets", as_="cm", json={"customer_id": scenario["c1"], "channel": "app"})
    assert created.status_code == 201
    after = api.get(url, headers={"If-None-Match": before.headers["ETag"]}, as_="auditor")
    assert after.status_code == 200 and len(after.json["items"]) == 1
    assert after.json["position"] > before.json["position"]


def test_pagination_and_overdue_over_http(api, scenario):
    page = api.get("/views/tickets?limit=1", as_="auditor")
    assert page.status_code == 200 and page.json["next_cursor"]
    nxt = api.get(f"/views/tickets?limit=1&cursor={page.json['next_cursor']}", as_="auditor")
    assert [r["ticket_id"] for r in nxt.json["items"]] == [scenario["t2"]]
    late = api.get("/views/tickets?overdue=true&as_of=2025-09-30T00:00:00%2B08:00", as_="auditor")
    assert [r["ticket_id"] for r in late.json["items"]] == [scenario["t2"]] and late.json["items"][0]["overdue"]
    complaints = api.get("/views/complaints?rung=team_lead", as_="auditor")
    assert [r["complaint_id"] for r in complaints.json["items"]] == [scenario["k1"]]


def test_kpi_dashboard(api, scenario):
    response = api.get("/dashboards/kpis?from=2025-09-01&to=2025-09-03&group_by=channel", as_="lead")
    assert response.status_code == 200, response.json
    groups = {g["group"]: {k["key"]: k for k in g["kpis"]} for g in response.json["groups"]}
    assert groups["web"]["intake_completeness"]["value"] == 0.0
    assert groups["phone"]["csat"]["target"]["clause"].startswith("000 §1.4")
    assert response.json["from"] == "2025-09-01"
    cached = api.get("/dashboards/kpis?from=2025-09-01&to=2025-09-03&group_by=channel", as_="lead",
                     headers={"If-None-Match": response.headers["ETag"]})
    assert cached.status_code == 304


def test_replay_endpoints(api, scenario):
    t1 = scenario["t1"]
    timeline = api.get(f"/replay/ticket/{t1}/timeline", as_="auditor")
    assert timeline.status_code == 200 and len(timeline.json["items"]) == 9
    classified = timeline.json["items"][1]["position"]
    state = api.get(f"/replay/ticket/{t1}/state?position={classified}", as_="auditor")
    assert state.json["state"]["status"] == "classified" and state.json["point"] == f"position {classified}"
    by_time = api.get(f"/replay/ticket/{t1}/state?as_of=2025-09-01T09:50:00%2B08:00", as_="auditor")
    assert by_time.json["state"]["status"] == "in_progress"
    diff = api.get(f"/replay/ticket/{t1}/diff?from={classified}&to=2025-09-01T10:30:00%2B08:00", as_="auditor")
    assert diff.status_code == 200 and diff.json["changed"]["status"] == {"from": "classified", "to": "closed"}
    assert api.get(f"/replay/ticket/{t1}/timeline", headers={"If-None-Match": timeline.headers["ETag"]},
                   as_="auditor").status_code == 304


@pytest.mark.parametrize("path, status", [
    ("/views/tickets?cursor=garbage", 400),
    ("/views/tickets?limit=0", 422),
    ("/dashboards/kpis?group_by=fortnight", 422),
    ("/dashboards/kpis?from=2025-09-05&to=2025-09-01", 422),
    ("/replay/ticket/not-a-uuid/timeline", 404),
    ("/replay/spaceship/00000000-0000-0000-0000-000000000000/timeline", 404),
    ("/replay/ticket/{t1}/state", 422),
    ("/replay/ticket/{t1}/state?position=1", 404),
    ("/replay/ticket/{t1}/diff?from=soon&to=1", 422),
])
def test_errors_are_problem_json(api, scenario, path, status):
    response = api.get(path.format(t1=scenario["t1"]), as_="auditor")
    assert response.status_code == status, response.json
    assert response.mimetype == "application/problem+json"


def test_read_models_need_a_token(api):
    assert api.get("/views/tickets", as_=None).status_code == 401


@pytest.mark.parametrize("path", ["/views/tickets?stauts=closed", "/views/complaints?limit=5&levle=2",
                                  "/dashboards/kpis?group=team", "/replay/ticket/{t1}/timeline?as_of=2025-09-01",
                                  "/replay/ticket/{t1}/state?position=3&verbose=1",
                                  "/replay/ticket/{t1}/diff?from=1&to=2&x=y"])
def test_unknown_query_parameters_are_refused_not_ignored(api, scenario, path):
    """A misspelt filter must not silently widen the result."""
    response = api.get(path.format(**scenario), as_="auditor")
    assert response.status_code == 422 and response.mimetype == "application/problem+json", response.json
    assert "Unknown field" in json.dumps(response.json)
