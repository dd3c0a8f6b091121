"""Security headers on every response, problem+json without internals, one JSON log line per request."""

from __future__ import annotations

import json
import logging
import uuid

from api.app import SECURITY_HEADERS


def test_security_headers_on_success_error_and_public_responses(api, customer_id):
    for response in (api.get(f"/customers/{customer_id}"), api.get("/customers/nope"), api.get("/events", as_=None),
                     api.post("/tickets", as_="auditor", json={}), api.get("/openapi.json", as_=None)):
        for header, value in SECURITY_HEADERS.items():
            assert response.headers[header] == value, (response.status_code, header)
        assert response.headers["Cache-Control"] in ("no-store", "private, no-cache")
        assert response.headers["X-Request-Id"]


def test_body_limit_is_413_problem(app, api):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = api.post("/tickets", data=json.dumps({"summary": "x" * 4096}), content_type="application/json",
                        headers={"Idempotency-Key": "big-1"})
    assert response.status_code == 413 and response.mimetype == "application/problem+json"


def test_an_unexpected_error_is_a_500_problem_without_internals(app, api, customer_id, monkeypatch):
    ledger = app.extensions["caseledger"]

    def broken(*args, **kwargs):
        raise RuntimeError("connection string postgresql://secret@db")

    monkeypatch.setattr(ledger, "history", broken)
    response = api.get(f"/customers/{customer_id}/events")
    text = response.get_data(as_text=True)
    assert response.status_code == 500 and response.mimetype == "application/problem+json"
    assert "secret" not in text and "Traceback" not in text and "RuntimeError" not in text
    assert response.json["request_id"] == response.headers["X-Request-Id"]


def test_one_json_log_line_per_request(api, customer_id, caplog):
    caplog.set_level(logging.INFO, logger="caseledger.requests")
    response = api.get(f"/customers/{customer_id}", headers={"X-Request-Id": "req-42"})
    api.get("/events", as_=None)
    lines = [r.msg for r in caplog.records if r.name == "caseledger.requests"]
    assert len(lines) == 2
    first, second = lines
    assert first == {"event": "request", "request_id": response.headers["X-Request-Id"], "client_request_id": "req-42",
                     "caller": "agent-li", "role": "agent", "method": "GET", "path": f"/customers/{customer_id}",
                     "endpoint": "customers.get", "status": response.status_code,
                     "duration_ms": first["duration_ms"]}
    assert first["duration_ms"] >= 0 and second["status"] == 401 and second["caller"] is None
    from api.requestlog import JsonLines

    parsed = json.loads(JsonLines().format(caplog.records[-1]))
    assert parsed["level"] == "info" and parsed["path"] == "/events"



def test_the_server_makes_every_request_id_and_keeps_the_clients_apart(api, customer_id):
    """A client cannot give its event the request id of someone else's: it only names its own."""
    events = api.get(f"/customers/{customer_id}/events", as_="auditor").json["items"]
    existing = events[0]["meta"]["request_id"]
    response = api.post(f"/customers/{customer_id}/change-tier", as_="lead", json={"tier": "important"},
                        headers={"X-Request-Id": existing})
    assert response.status_code == 200, response.json
    ours = response.headers["X-Request-Id"]
    assert ours != existing and uuid.UUID(ours).version == 4
    newest = api.get(f"/customers/{customer_id}/events", as_="auditor").json["items"][-1]
    assert newest["type"] == "TierChanged"
    assert newest["meta"]["request_id"] == ours and newest["meta"]["client_request_id"] == existing
    assert [e["meta"]["request_id"] for e in events].count(existing) == 1

    # Too long, a control character, not ASCII: ignored, never stored.
    for tier, unusable in (("general", "x" * 129), ("vip", "tab\there"), ("important", "caf\u00e9")):
        response = api.post(f"/customers/{customer_id}/change-tier", as_="lead", json={"tier": tier},
                            headers={"X-Request-Id": unusable})
        assert response.status_code == 200, response.json
        newest = api.get(f"/customers/{customer_id}/events", as_="auditor").json["items"][-1]
        assert newest["meta"]["request_id"] == response.headers["X-Request-Id"]
        assert "client_request_id" not in newest["meta"]
