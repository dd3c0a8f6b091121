"""/webhooks over HTTP: administrators only; the secret shown once; deliveries, dead letters and replay."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from services.webhook_delivery import RetryPolicy, WebhookDelivery

pytestmark = pytest.mark.integration
_spec = importlib.util.spec_from_file_location("api_test_fixtures_webhooks", Path(__file__).parents[1] / "api" / "conftest.py")
_api_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_api_fixtures)
tokens, app, api, customer_id = _api_fixtures.tokens, _api_fixtures.app, _api_fixtures.api, _api_fixtures.customer_id


def test_subscriptions_are_managed_by_administrators_only(api):
    body = {"url": "https://ops.example.com/hooks", "event_types": ["Ticket.*"], "role": "team_lead"}
    assert api.post("/webhooks/subscriptions", as_="lead", json=body).status_code == 403
    assert api.get("/webhooks/subscriptions", as_="agent").status_code == 403
    assert api.get("/webhooks/dead-letters", as_="auditor").status_code == 403

    created = api.post("/webhooks/subscriptions", as_="admin", json=body)
    assert created.status_code == 201 and created.json["secret"].startswith("whsec_")
    sid = created.json["id"]
    assert created.headers["Location"] == f"/webhooks/subscriptions/{sid}"
    read = api.get(f"/webhooks/subscriptions/{sid}", as_="admin")
    assert read.status_code == 200 and "secret" not in read.json and read.headers["ETag"] == '"1"'
    assert created.json["secret"] not in api.get("/events?limit=100", as_="admin").get_data(as_text=True)

    stale = api.post(f"/webhooks/subscriptions/{sid}/change", as_="admin", json={"role": "auditor"},
                     headers={"If-Match": '"7"'})
    assert stale.status_code == 412
    changed = api.post(f"/webhooks/subscriptions/{sid}/change", as_="admin", json={"role": "auditor"},
                       headers={"If-Match": '"1"'})
    assert changed.status_code == 200 and changed.json["role"] == "auditor" and changed.json["version"] == 2
    listed = api.get("/webhooks/subscriptions", as_="admin").json["items"]
    assert [s["id"] for s in listed] == [sid]

    removed = api.post(f"/webhooks/subscriptions/{sid}/remove", as_="admin", json={})
    assert removed.status_code == 200 and removed.json["status"] == "removed"
    assert api.get("/webhooks/subscriptions", as_="admin").json["items"] == []


@pytest.mark.parametrize("body, rule", [
    ({"url": "ftp://ops.example.com/x", "event_types": ["*"], "role": "team_lead"}, None),
    ({"url": "https://ops.example.com/x", "event_types": ["Nothing.*"], "role": "team_lead"}, "webhook.event_types"),
    ({"url": "https://ops.example.com/x", "event_types": ["*"], "role": "king"}, "webhook.role"),
    ({"url": "https://user:pw@ops.example.com/x", "event_types": ["*"], "role": "team_lead"}, "webhook.url_credentials"),
])
def test_bad_subscriptions_are_refused_with_a_problem(api, body, rule):
    response = api.post("/webhooks/subscriptions", as_="admin", json=body)
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    if rule:
        assert response.json["rule"] == rule


def test_a_create_with_an_idempotency_key_is_refused_so_the_secret_is_never_stored(api):
    response = api.post("/webhooks/subscriptions", as_="admin", headers={"Idempotency-Key": "k-1"},
                        json={"url": "https://ops.example.com/hooks", "event_types": ["*"], "role": "auditor"})
    assert response.status_code == 400 and "secret" in response.json["detail"]
    assert api.get("/webhooks/subscriptions", as_="admin").json["items"] == []


def test_dead_letters_are_listed_and_replayed_over_http(api, app, customer_id):
    # Nothing listens on port 9 of 127.0.0.1 (discard): every attempt is refused.
    created = api.post("/webhooks/subscriptions", as_="admin",
                       json={"url": "http://127.0.0.1:9/hooks", "event_types": ["Customer.*"], "role": "team_lead"})
    assert created.status_code == 201
    for tier in ("important", "general"):
        assert api.post(f"/customers/{customer_id}/change-tier", as_="lead", json={"tier": tier}).status_code == 200
    worker = WebhookDelivery(app.extensions["caseledger"], app.extensions["caseledger.access"],
                             retry=RetryPolicy(max_attempts=1, timeout=1.0))
    try:
        assert worker.run_once()["dead"] == 2
    finally:
        worker.close()
    first = api.get("/webhooks/dead-letters?limit=1", as_="admin")
    assert first.status_code == 200 and len(first.json["items"]) == 1 and first.json["next_cursor"]
    assert 'rel="next"' in first.headers.get("Link", "")
    second = api.get(f"/webhooks/dead-letters?limit=1&cursor={first.json['next_cursor']}", as_="admin").json
    rows = first.json["items"] + second["items"]
    assert [r["event_type"] for r in rows] == ["Customer.TierChanged"] * 2 and second["next_cursor"] is None
    assert rows[0]["position"] < rows[1]["position"] and all(r["status"] == "dead" for r in rows)

    replayed = api.post(f"/webhooks/deliveries/{rows[0]['delivery_id']}/replay", as_="admin")
    assert replayed.status_code == 200 and replayed.json["status"] == "pending" and replayed.json["next_attempt_at"]
    again = api.post(f"/webhooks/deliveries/{rows[0]['delivery_id']}/replay", as_="admin")
    assert again.status_code == 400  # pending now: nothing to replay
    assert api.post("/webhooks/deliveries/00000000-0000-4000-8000-000000000000/replay", as_="admin").status_code == 404
    pending = api.get("/webhooks/deliveries?status=pending", as_="admin").json["items"]
    assert [r["delivery_id"] for r in pending] == [rows[0]["delivery_id"]]


def test_every_webhook_endpoint_is_for_administrators_only(app, api):
    """What tests/access/test_matrix.py checks for every endpoint, for these: 403 unless webhooks.manage."""
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("webhooks.")]
    assert len(rules) == 8
    for rule in rules:
        path = rule.rule.replace("<uuid:subscription_id>", "00000000-0000-4000-8000-000000000001").replace(
            "<uuid:delivery_id>", "00000000-0000-4000-8000-000000000002")
        method = "POST" if "POST" in rule.methods else "GET"
        for name in _api_fixtures.ROLES:
            response = api.get(path, as_=name) if method == "GET" else api.post(path, as_=name, json={})
            if name == "admin":
                assert response.status_code not in (401, 403), (path, response.status_code)
            else:
                assert response.status_code == 403 and response.mimetype == "application/problem+json", (name, path)
        assert (api.get(path, as_=None) if method == "GET" else api.post(path, as_=None, json={})).status_code == 401


def test_a_retried_change_with_an_idempotency_key_changes_once(api):
    created = api.post("/webhooks/subscriptions", as_="admin",
                       json={"url": "https://ops.example.com/hooks", "event_types": ["*"], "role": "auditor"}).json
    path = f"/webhooks/subscriptions/{created['id']}/change"
    first = api.post(path, as_="admin", headers={"Idempotency-Key": "change-1"}, json={"url": "https://ops.example.com/v2"})
    again = api.post(path, as_="admin", headers={"Idempotency-Key": "change-1"}, json={"url": "https://ops.example.com/v2"})
    assert first.status_code == again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert first.json == again.json and first.json["version"] == 2
    assert api.get(f"/webhooks/subscriptions/{created['id']}", as_="admin").json["version"] == 2
