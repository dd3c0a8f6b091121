"""Every bad request gets an RFC 9457 problem with the right status — never a 500, never a partial write."""

from __future__ import annotations

import threading
import uuid

import pytest

PROBLEM = "application/problem+json"


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.json
    assert body["status"] == status and body["title"] and body["type"].startswith("https://")
    return body


@pytest.fixture
def ticket_id(api, customer_id) -> str:
    response = api.post("/tickets", json={"customer_id": customer_id, "channel": "web"})
    assert response.status_code == 201
    return response.json["id"]


def event_count(api, path: str) -> int:
    return len(api.get(f"{path}/events", as_="auditor").json["items"])


def test_malformed_json_is_400(api, ticket_id):
    response = api.post(f"/tickets/{ticket_id}/classify", as_="lead", data='{"priority": "urgent",',
                        content_type="application/json")
    assert_problem(response, 400)
    assert event_count(api, f"/tickets/{ticket_id}") == 1


def test_missing_unknown_or_revoked_token_is_401(api, ticket_id):
    assert_problem(api.get(f"/tickets/{ticket_id}", as_=None), 401)
    response = api.get(f"/tickets/{ticket_id}", as_=None, headers={"Authorization": "Bearer cl_not-a-real-token"})
    body = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "not known" in body["detail"]
    assert_problem(api.get(f"/tickets/{ticket_id}", as_=None, headers={"Authorization": "Basic abc"}), 401)


def test_health_and_openapi_need_no_token(api):
    assert api.get("/healthz", as_=None).status_code == 200
    spec = api.get("/openapi.json", as_=None)
    assert spec.status_code == 200 and "/tickets/{aggregate_id}/classify" in spec.json["paths"]


def test_auditor_reads_but_cannot_write(api, ticket_id):
    assert api.get(f"/tickets/{ticket_id}", as_="auditor").status_code == 200
    body = assert_problem(api.post(f"/tickets/{ticket_id}/start-work", as_="auditor", json={}), 403)
    assert "auditor" in body["detail"]


def test_unknown_ids_are_404(api, customer_id):
    missing = uuid.uuid4()
    assert_problem(api.get(f"/tickets/{missing}"), 404)
    assert_problem(api.get("/tickets/not-a-uuid"), 404)
    assert_problem(api.get(f"/tickets/{customer_id}"), 404)  # right id, wrong kind
    assert_problem(api.post(f"/tickets/{missing}/classify", as_="lead",
                            json={"priority": "urgent", "complexity": "general"}), 404)
    body = assert_problem(api.post("/tickets", json={"customer_id": str(missing), "channel": "web"}), 404)
    assert str(missing) in body["detail"]


def test_schema_errors_are_422_with_field_details(api, ticket_id):
    body = assert_problem(api.post(f"/tickets/{ticket_id}/classify", as_="lead",
                                   json={"priority": 5, "surprise": True}), 422)
    assert set(body["errors"]) == {"priority", "complexity", "surprise"}
    body = assert_problem(api.post("/customers", json={"kind": "individual", "tier": "vip",
                                                        "contact": {"email": "not-an-email"}}), 422)
    assert "email" in body["errors"]["contact"]
    body = assert_problem(api.get(f"/tickets/{ticket_id}/events?limit=100000"), 422)
    assert "limit" in body["errors"]


def test_values_outside_policy_are_422_citing_the_source(api, ticket_id):
    body = assert_problem(api.post(f"/tickets/{ticket_id}/classify", as_="lead",
                                   json={"priority": "whenever", "complexity": "general"}), 422)
    assert body["rule"] == "vocabulary.priority" and body["clause"]
    assert event_count(api, f"/tickets/{ticket_id}") == 1


def test_forbidden_transition_is_409_naming_the_rule(api, ticket_id):
    body = assert_problem(api.post(f"/tickets/{ticket_id}/close", json={}), 409)
    assert body["rule"] == "ticket.close_requires_acceptance"
    assert "customer acceptance" in body["detail"] and body["clause"] in body["detail"]
    assert event_count(api, f"/tickets/{ticket_id}") == 1


def test_stale_if_match_is_412_and_writes_nothing(api, ticket_id):
    path = f"/tickets/{ticket_id}"
    first = api.post(f"{path}/classify", as_="lead", headers={"If-Match": '"1"'},
                     json={"priority": "normal", "complexity": "general"})
    assert first.status_code == 200 and first.headers["ETag"] == '"2"'
    body = assert_problem(api.post(f"{path}/classify", as_="lead", headers={"If-Match": '"1"'},
                                   json={"priority": "urgent", "complexity": "general"}), 412)
    assert body["current_version"] == 2
    assert api.get(path).json["priority"] == "normal"
    assert_problem(api.post(f"{path}/classify", as_="lead", headers={"If-Match": "yesterday"},
                            json={"priority": "urgent", "complexity": "general"}), 400)


def test_wrong_content_type_and_unknown_routes(api, ticket_id):
    assert_problem(api.post("/interactions/import", data="{}", content_type="text/plain"), 415)
    assert_problem(api.get("/no-such-thing"), 404)
    assert_problem(api.client.delete(f"/tickets/{ticket_id}", headers={"Authorization": f"Bearer {api.tokens['agent']}"}), 405)


def test_body_too_large_is_413(app, api):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    assert_problem(api.post("/interactions/import", data="x" * 4096, content_type="application/x-ndjson"), 413)


def test_concurrent_writes_to_one_ticket_one_wins(app, api, ticket_id):
    path = f"/tickets/{ticket_id}"
    api.post(f"{path}/classify", as_="lead", json={"priority": "normal", "complexity": "general"})
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def assign(n: int) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(f"{path}/assign", json={"handler": f"agent-{n}"},
                               headers={"Authorization": f"Bearer {api.tokens['lead']}", "If-Match": '"2"'})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=assign, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count(200) == 1 and all(s in (200, 409, 412) for s in statuses), statuses
    events = api.get(f"{path}/events").json["items"]
    assert [e["type"] for e in events] == ["Received", "Classified", "Assigned"]
    assert api.get(path).json["handler"] == events[-1]["data"]["handler"]


def test_bulk_import_validates_everything_first(api):
    good = '{"channel": "email", "external_ref": "m-1", "occurred_at": "2025-09-01T08:00:00+08:00"}'
    bad = '{"channel": "email", "direction": 3}'
    body = assert_problem(api.post("/interactions/import", data="\n".join([good, bad, "{oops"]),
                                   content_type="application/x-ndjson"), 422)
    assert set(body["errors"]) == {"line 2", "line 3"}
    ok = api.post("/interactions/import", data="\n".join([good, good.replace("m-1", "m-2")]),
                  content_type="application/x-ndjson")
    assert ok.status_code == 200 and ok.json == {"imported": 2, "skipped": 0, "lines": 2}
    again = api.post("/interactions/import", data=good, content_type="application/x-ndjson")
    assert again.json == {"imported": 0, "skipped": 1, "lines": 1}
    body = assert_problem(api.post("/interactions/import", data='{"channel": "carrier-pigeon"}',
                                   content_type="application/x-ndjson"), 422)
    assert body["rule"] == "vocabulary.channel"


def test_survey_twice_is_409(api, customer_id, ticket_id):
    path = f"/tickets/{ticket_id}"
    for action, body, caller in [("classify", {"priority": "normal", "complexity": "general"}, "lead"),
                                 ("assign", {"handler": "agent-li"}, "lead"), ("start-work", {}, "agent"),
                                 ("resolve", {}, "agent"), ("feed-back-result", {"channel": "sms"}, "agent")]:
        assert api.post(f"{path}/{action}", as_=caller, json=body).status_code == 200
    # Keyed in by an agent who did not handle the ticket (rules.survey_independence, issue 19).
    assert api.post("/surveys", as_="agent2", json={"ticket_id": ticket_id, "csat": 5}).status_code == 201
    assert_problem(api.post("/surveys", as_="agent2", json={"ticket_id": ticket_id, "csat": 1}), 409)
    assert_problem(api.post("/surveys", as_="agent2", json={"ticket_id": ticket_id, "csat": 9}), 422)
