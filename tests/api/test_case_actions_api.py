"""The case actions added by issue 19 over HTTP: a ticket's progress updates, a complaint's first response
and the reassignment of its handler. Who may (domain/permissions.toml) and who may not (403), and every
bad input an RFC 9457 problem that names what is wrong, with nothing written. SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

PROBLEM = "application/problem+json"


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.json
    assert body["status"] == status and body["title"] and body["type"].startswith("https://")
    return body


def types(api, path: str) -> list[str]:
    return [e["type"] for e in api.get(f"{path}/events", as_="auditor").json["items"]]


def test_progress_updates_by_the_tickets_owner_only_with_a_channel_of_the_policy(api, customer_id):
    created = api.post("/tickets", json={"customer_id": customer_id, "channel": "phone", "summary": "宽带断了"})
    assert created.status_code == 201 and created.json["first_contact_owner"] == "agent-li"
    t = f"/tickets/{created.json['id']}"

    for caller in ("agent2", "auditor", "records"):  # another agent, and roles without the grant
        body = problem(api.post(f"{t}/update-progress", as_=caller, json={"channel": "sms", "message": "处理中"}), 403)
        assert body["detail"]
    problem(api.post(f"{t}/update-progress", as_=None, json={"channel": "sms"}), 401)
    missing = problem(api.post(f"{t}/update-progress", json={"message": "处理中"}), 422)
    assert "channel" in str(missing)
    outside = problem(api.post(f"{t}/update-progress", json={"channel": "pigeon"}), 422)
    assert outside["rule"] == "vocabulary.channel" and outside["clause"]
    problem(api.post(f"{t}/update-progress", json={"channel": "sms", "colour": "red"}), 422)  # unknown field
    problem(api.post(f"/tickets/{uuid.uuid4()}/update-progress", json={"channel": "sms"}), 404)
    assert types(api, t) == ["Received"]  # none of the refusals wrote anything

    done = api.post(f"{t}/update-progress", json={"channel": "sms", "message": "处理中"})
    assert done.status_code == 200, done.json
    again = api.post(f"{t}/update-progress", json={"channel": "phone"})  # progress may be told more than once
    assert again.status_code == 200 and again.json["version"] == done.json["version"] + 1
    assert types(api, t) == ["Received", "ProgressUpdated", "ProgressUpdated"]


def test_a_complaints_first_response_by_its_handler_once(api, customer_id, ledger):
    created = api.post("/complaints", json={"customer_id": customer_id, "channel": "phone", "description": "多扣费"})
    assert created.status_code == 201
    c = f"/complaints/{created.json['id']}"
    assert ledger.get("complaint", created.json["id"]).handler == "agent-li"  # who accepted it handles it

    for caller in ("agent2", "records", "auditor"):
        problem(api.post(f"{c}/respond-first", as_=caller, json={"message": "已受理"}), 403)
    problem(api.post(f"{c}/respond-first", json={"message": 42}), 422)
    problem(api.post(f"{c}/respond-first", json={"message": "已受理", "level": 1}), 422)
    assert types(api, c) == ["Accepted"]

    assert api.post(f"{c}/respond-first", json={"message": "已受理"}).status_code == 200
    twice = problem(api.post(f"{c}/respond-first", as_="cm", json={}), 409)
    assert twice["rule"] == "complaint.first_response_once"
    assert types(api, c) == ["Accepted", "FirstResponded"]


def test_reassigning_a_complaint_needs_the_grant_a_new_handler_and_a_reason(api, customer_id, ledger):
    created = api.post("/complaints", json={"customer_id": customer_id, "channel": "phone", "description": "多扣费"})
    complaint_id = created.json["id"]
    c = f"/complaints/{complaint_id}"

    for caller in ("agent", "agent2", "records", "auditor"):  # even the handler cannot hand the complaint on
        problem(api.post(f"{c}/reassign", as_=caller, json={"handler": "agent-zhao", "reason": "交接"}), 403)
    problem(api.post(f"{c}/reassign", as_="cm", json={"reason": "交接"}), 422)  # no handler
    problem(api.post(f"{c}/reassign", as_="cm", json={"handler": "", "reason": "交接"}), 422)
    no_reason = problem(api.post(f"{c}/reassign", as_="cm", json={"handler": "cm-zhou"}), 409)
    assert no_reason["rule"] == "complaint.reassign_reason"
    same = problem(api.post(f"{c}/reassign", as_="cm", json={"handler": "agent-li", "reason": "交接"}), 409)
    assert same["rule"] == "complaint.reassign_same"
    assert types(api, c) == ["Accepted"] and ledger.get("complaint", complaint_id).handler == "agent-li"

    moved = api.post(f"{c}/reassign", as_="cm", json={"handler": "cm-zhou", "reason": "升级到投诉专员"})
    assert moved.status_code == 200, moved.json
    assert ledger.get("complaint", complaint_id).handler == "cm-zhou"
    history = api.get(f"{c}/events", as_="auditor").json["items"]
    assert [e["type"] for e in history] == ["Accepted", "HandlerReassigned"]
    assert (history[-1]["meta"]["actor_id"], history[-1]["meta"]["reason"]) == ("cm-zhou", "升级到投诉专员")
    # the former handler no longer owns it: their first response is refused
    problem(api.post(f"{c}/respond-first", as_="agent", json={"message": "已受理"}), 403)
