"""Clean refusals at the boundary (issue #18): input that used to cause a 500, or was silently
accepted, is refused as problem+json naming the field, the parameter or the line — on both backends
(the NUL and the cursor cases differ between them), and nothing is written."""

from __future__ import annotations

import base64
import json
import re
import uuid

import pytest

from api.permissions import action_for
from domain.permissions import AccessPolicy

PROBLEM = "application/problem+json"
NDJSON = "application/x-ndjson"
#: Test caller (tests/api/conftest.py) → role.
ROLES = {"agent": "agent", "lead": "team_lead", "cm": "complaint_manager", "records": "records_manager",
         "compliance": "compliance_officer", "auditor": "auditor", "admin": "administrator", "service": "service"}


def refused(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.json
    assert body["status"] == status and body["type"].startswith("https://caseledger.dev/problems/")
    return body


def raw(api, path: str, body: str | bytes, as_: str = "agent", content_type: str = "application/json", **kw):
    return api.post(path, as_=as_, data=body, content_type=content_type, **kw)


def log_size(api) -> int:
    items, after = [], 0
    while page := api.get(f"/events?after={after}&limit=500", as_="auditor").json["items"]:
        items += page
        after = page[-1]["position"]
    return len(items)


@pytest.fixture
def ticket(api, customer_id) -> str:
    response = api.post("/tickets", json={"customer_id": customer_id, "channel": "web"})
    assert response.status_code == 201
    return response.json["id"]


@pytest.fixture
def working_ticket(api, ticket) -> str:
    for action, body, caller in [("classify", {"priority": "normal", "complexity": "general"}, "lead"),
                                 ("assign", {"handler": "agent-li"}, "lead"), ("start-work", {}, "agent")]:
        assert api.post(f"/tickets/{ticket}/{action}", as_=caller, json=body).status_code == 200
    return ticket


# -- was a 500 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [33, 1000, 100_000])
def test_json_nested_too_deeply_is_400(api, working_ticket, depth):
    before = log_size(api)
    body = refused(raw(api, f"/tickets/{working_ticket}/resolve",
                       '{"resolution": ' + "[" * depth + "]" * depth + "}"), 400)
    assert body["errors"] == {"body": ["not valid JSON: nested deeper than 32 levels"]}
    deep_line = '{"channel": "email", "content": ' + "[" * depth + "]" * depth + "}"
    body = refused(raw(api, "/interactions/import", deep_line, content_type=NDJSON), 422)
    assert "nested deeper than 32 levels" in body["errors"]["line 1"][0]
    assert log_size(api) == before


def test_a_number_of_more_digits_than_python_converts_is_422_naming_the_field(api, ticket):
    before = log_size(api)
    body = refused(raw(api, "/surveys", f'{{"ticket_id": "{ticket}", "csat": {"9" * 5000}}}'), 422)
    assert list(body["errors"]) == ["csat"] and "5000 digits" in body["errors"]["csat"][0]
    body = refused(raw(api, "/surveys", f'{{"ticket_id": "{ticket}", "nps": {"9" * 25}}}'), 422)
    assert list(body["errors"]) == ["nps"]  # parsed, but no BIGINT
    refused(api.post(f"/tickets/{ticket}/classify", as_="lead", headers={"If-Match": '"' + "9" * 5000 + '"'},
                     json={"priority": "normal", "complexity": "general"}), 400)
    assert log_size(api) == before


@pytest.mark.parametrize("path, body, field", [
    ("/customers", {"kind": "individual", "tier": "vip", "contact": {"name": "\ud800"}}, ("contact", "name")),
    ("/customers", {"kind": "individual\udfff", "tier": "vip"}, ("kind",)),
    ("/interactions", {"channel": "phone", "content": "断了\ud800"}, ("content",)),
    ("/tickets", {"customer_id": "{customer}", "channel": "web", "summary": "x\udc00y"}, ("summary",)),
    ("/customers", {"kind": "individual", "tier": "vip", "\ud800": 1}, ("\\ud800",)),
])
def test_a_lone_surrogate_in_any_text_is_422_naming_the_field(api, customer_id, path, body, field):
    before = log_size(api)
    text = json.dumps(body).replace("{customer}", customer_id)  # ensure_ascii: "\ud800" stays an escape
    errors = refused(raw(api, path, text), 422)["errors"]
    for step in field:
        errors = errors[step]
    assert "surrogate" in errors[0]
    assert log_size(api) == before


def test_a_lone_surrogate_in_an_action_and_an_import_line(api, working_ticket):
    body = refused(raw(api, f"/tickets/{working_ticket}/resolve", '{"resolution": "fixed \\ud800"}'), 422)
    assert "surrogate" in body["errors"]["resolution"][0]
    body = refused(raw(api, "/interactions/import", '{"channel": "email", "content": "\\udbff"}',
                       content_type=NDJSON), 422)
    assert "surrogate" in body["errors"]["line 1"]["content"][0]


@pytest.mark.parametrize("when", ["9999-12-31T23:00:00+00:00", "0001-01-01T00:00:00+14:00", "1899-12-31T23:59:59Z"])
def test_an_import_time_outside_the_years_the_ledger_computes_with_is_422(api, when):
    before = log_size(api)
    lines = '{"channel": "email", "external_ref": "ok-1"}\n' + json.dumps({"channel": "email", "occurred_at": when})
    body = refused(raw(api, "/interactions/import", lines, content_type=NDJSON), 422)
    assert body["errors"] == {"line 2": {"occurred_at": ["must be in the years 1900 to 2200"]}}
    assert log_size(api) == before


@pytest.mark.parametrize("path", ["/views/tickets", "/views/complaints", "/compliance/findings",
                                  "/compliance/sla-clocks", "/compliance/job-runs"])
def test_a_forged_cursor_with_a_huge_position_is_400_naming_the_cursor(api, path):
    kind = {"/views/tickets": "ticket", "/views/complaints": "complaint"}.get(path, "finding")
    for after in (10**30, -1, 2**63):
        cursor = base64.urlsafe_b64encode(json.dumps({"k": kind, "after": after}).encode()).decode().rstrip("=")
        body = refused(api.get(f"{path}?cursor={cursor}", as_="auditor"), 400)
        assert list(body["errors"]) == ["cursor"]
    issued = base64.urlsafe_b64encode(json.dumps({"k": kind, "after": 3}).encode()).decode().rstrip("=")
    assert api.get(f"{path}?cursor={issued}", as_="auditor").status_code in (200, 400)  # the list's own check


@pytest.mark.parametrize("query", ["subject_id=%00", "subject_id=a%00b", "rule=%07", "status=%C2%85"])
def test_control_characters_in_query_parameters_are_422(api, query):
    name = query.split("=")[0]
    body = refused(api.get(f"/compliance/findings?{query}", as_="auditor"), 422)
    assert list(body["errors"]) == [name]
    assert refused(api.get(f"/views/tickets?owner=%00", as_="auditor"), 422)["errors"].keys() == {"owner"}
    assert refused(api.get("/compliance/findings?subject_id=%FF", as_="auditor"), 400)["errors"].keys() == {"subject_id"}


@pytest.mark.parametrize("query", ["as_of=9999-12-31T23:59:59%2B00:00", "as_of=0001-01-01T00:00:00%2B14:00"])
def test_query_times_outside_the_years_are_422(api, query):
    for path in ("/views/tickets", "/compliance/sla-clocks", "/compliance/sla-clocks/summary"):
        assert refused(api.get(f"{path}?{query}", as_="auditor"), 422)["errors"].keys() == {"as_of"}


# -- was accepted silently ------------------------------------------------------------------------
def test_a_json_endpoint_refuses_another_content_type_with_415(api, working_ticket):
    before = log_size(api)
    body = refused(raw(api, f"/tickets/{working_ticket}/resolve", '{"resolution": "换了光猫"}',
                       content_type="text/plain"), 415)
    assert "application/json" in body["detail"]
    refused(api.post(f"/tickets/{working_ticket}/resolve", data='{"resolution": "x"}'), 415)  # no Content-Type
    assert log_size(api) == before
    assert api.get(f"/tickets/{working_ticket}").json["status"] == "in_progress"


def test_every_endpoint_with_a_json_body_answers_415_for_another_type(app, api):
    policy = AccessPolicy.load()
    checked = 0
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.endpoint == "interactions.import":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(uuid.uuid4()), rule.rule)
        action = action_for(rule.endpoint)
        caller = next((name for name, role in ROLES.items() if policy.scope(role, action) == "all"), None)
        if caller is None:
            continue
        response = api.post(path, as_=caller, data="resolution=x", content_type="application/x-www-form-urlencoded")
        assert response.status_code == 415 and response.mimetype == PROBLEM, (rule.rule, response.status_code)
        checked += 1
    assert checked > 30


@pytest.mark.parametrize("path, caller", [
    ("/tickets/{ticket}?verbose=1", "agent"), ("/tickets/{ticket}/events?afterr=3", "agent"),
    ("/events?limit=5&page=2", "auditor"), ("/views/tickets?ownr=agent-li", "auditor"),
    ("/compliance/findings?subject=x", "auditor"), ("/compliance/findings/{ticket}?x=1", "auditor"),
    ("/retention/records?subjects=x", "records"), ("/holds?all=1", "records"), ("/access-events?who=x", "auditor"),
    ("/log/proof/consistency?old=0&neww=1", None), ("/log/checkpoint?format=json", None),
])
def test_unknown_query_parameters_are_422_naming_them(api, ticket, path, caller):
    path = path.replace("{ticket}", ticket)
    unknown = path.rsplit("&", 1)[-1].split("?")[-1].split("=")[0]
    body = refused(api.get(path, as_=caller), 422)
    assert body["errors"] == {unknown: ["Unknown field."]}


def test_unknown_query_parameters_on_a_write_are_refused_and_nothing_is_written(api, working_ticket):
    before = log_size(api)
    body = refused(api.post(f"/tickets/{working_ticket}/resolve?notify=yes", json={"resolution": "x"}), 422)
    assert body["errors"] == {"notify": ["Unknown field."]}
    assert log_size(api) == before


def test_invalid_utf8_in_an_import_is_refused_naming_the_line(api):
    before = log_size(api)
    lines = b'{"channel": "email", "external_ref": "u-1", "content": "ok"}\n{"channel": "email", "content": "caf\xe9"}'
    body = refused(raw(api, "/interactions/import", lines, content_type=NDJSON), 422)
    assert list(body["errors"]) == ["line 2"] and "UTF-8" in body["errors"]["line 2"][0]
    assert log_size(api) == before
    # U+2028 inside a JSON string is text, not a line break.
    ok = raw(api, "/interactions/import", '{"channel": "email", "content": "a\u2028b"}'.encode(), content_type=NDJSON)
    assert ok.status_code == 200 and ok.json["lines"] == 1


def test_405_names_the_allowed_methods(api, ticket):
    headers = {"Authorization": f"Bearer {api.tokens['agent']}"}
    response = api.client.delete(f"/tickets/{ticket}", headers=headers)
    refused(response, 405)
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    response = api.post("/events", as_="auditor", json={})
    refused(response, 405)
    assert "GET" in response.headers["Allow"] and "POST" not in response.headers["Allow"]


def test_the_first_contact_agent_is_always_the_caller(api):
    before = log_size(api)
    body = refused(api.post("/interactions", json={"channel": "phone", "agent_id": "agent-zhao"}), 422)
    assert list(body["errors"]) == ["agent_id"] and "agent-li" in body["errors"]["agent_id"][0]
    body = refused(raw(api, "/interactions/import", '{"channel": "email", "agent_id": "agent-zhao"}',
                       content_type=NDJSON), 422)
    assert list(body["errors"]["line 1"]) == ["agent_id"]
    assert log_size(api) == before

    contact = api.post("/interactions", json={"channel": "phone"}).json["id"]
    refused(api.post(f"/interactions/{contact}/register", json={"agent_id": "agent-zhao"}), 422)
    refused(api.post(f"/interactions/{contact}/register", as_="lead", json={"agent_id": "agent-li"}), 422)
    registered = api.post(f"/interactions/{contact}/register", json={})
    assert registered.status_code == 200 and registered.json["first_contact_agent"] == "agent-li"

    own = api.post("/interactions", json={"channel": "phone", "agent_id": "agent-li", "queue": "broadband"})
    assert own.status_code == 201 and own.json["first_contact_agent"] == "agent-li"
    other = api.post("/interactions", as_="agent2", json={"channel": "phone"}).json["id"]
    led = api.post(f"/interactions/{other}/register", as_="lead", json={})
    assert led.status_code == 200 and led.json["first_contact_agent"] == "lead-wang"

