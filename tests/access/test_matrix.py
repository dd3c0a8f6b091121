"""Every endpoint × every role: allowed or 403 as the permission matrix says, 401 without a token,
and personal data masked everywhere unless a permitted caller states a reason.

Endpoints are enumerated from the app's URL map, so a new endpoint is covered (and must have an
action in api/permissions.py and a grant in domain/permissions.toml) without touching this test.
"""

from __future__ import annotations

import json
import uuid

import pytest

from api.auth import PUBLIC_PATHS
from api.permissions import SCOPED_LISTS, action_for
from domain.permissions import UNMASK, AccessPolicy
from services.tokens import system_context

POLICY = AccessPolicy.load()
#: Values only ever stored as personal data (see the ``records`` fixture): never shown masked.
PERSONAL_VALUES = ("13811112222", "赵六", "宽带断了", "换了光猫", "多扣费", "很好", "希望有夜间客服")
#: Which records each test caller owns: agent-li registered the contact, handles the ticket and
#: accepted the complaint; agent-zhao owns nothing. Everything is in team hotline or has no team.
OWNS = {"agent": {"ticket", "complaint", "interaction"}}
REASON = {"X-Access-Reason": "matrix test"}


def routes(app) -> list[tuple[str, str, str]]:
    """(endpoint, method, rule) of every non-public route."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule in PUBLIC_PATHS:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, rule.rule))
    return sorted(found)


def url(app, endpoint: str, records: dict[str, str]) -> str:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    kind = "ticket" if "kind" in rule.arguments else _kind(endpoint)  # replay: replay a ticket
    values = {}
    for argument in rule.arguments:
        if argument == "kind":
            values["kind"] = kind
        elif argument == "aggregate_id":
            values[argument] = records[kind]
        else:
            values[argument] = uuid.uuid4()  # holds, dispositions: granted at scope "all", checked before lookup
    with app.test_request_context():
        return app.url_map.bind("localhost").build(endpoint, values)


def _kind(endpoint: str) -> str | None:
    action = action_for(endpoint) or ""
    kind = action.split(".")[0]
    return kind if kind in ("customer", "interaction", "ticket", "complaint", "feedback", "survey") else None


def expected_allowed(role: str, name: str, endpoint: str, rule: str) -> bool:
    scope = POLICY.scope(role, action_for(endpoint))
    if scope is None:
        return False
    if scope == "all":
        return True
    if endpoint in SCOPED_LISTS:  # scoped callers must filter lists to themselves (tested below),
        return scope == "team" and not SCOPED_LISTS[endpoint]  # except team scope on rows without a team
    kind = "ticket" if "<kind>" in rule else _kind(endpoint)
    if "aggregate_id" not in rule:
        return True  # creation and other actions that name no record
    return scope == "team" or kind in OWNS.get(name, set())


def call(api, method: str, path: str, name: str | None, headers=None):
    if method == "GET":
        return api.get(path, as_=name, headers=headers)
    return api.post(path, as_=name, headers=headers, json={})


def test_every_endpoint_has_an_action_some_role_holds(app, roles):
    missing = [e for e, _, _ in routes(app) if action_for(e) is None]
    assert not missing, f"endpoints without an action in api/permissions.py: {missing}"
    ungranted = sorted({action_for(e) for e, _, _ in routes(app)
                        if not any(POLICY.scope(role, action_for(e)) for role in POLICY.roles)})
    assert not ungranted, f"actions no role holds (dead endpoints): {ungranted}"
    assert set(POLICY.roles) == {role for _, role in roles.values()}  # every role is exercised below


def test_role_by_endpoint_matrix(app, api, records, roles):
    wrong = []
    for endpoint, method, rule in routes(app):
        path = url(app, endpoint, records)
        for name, (_, role) in roles.items():
            response = call(api, method, path, name)
            allowed = response.status_code not in (401, 403)
            if allowed != expected_allowed(role, name, endpoint, rule):
                wrong.append(f"{name:10} {method} {path} -> {response.status_code}")
            if response.status_code < 300 and response.is_json:
                shown = json.dumps(response.json, ensure_ascii=False)
                leaked = [v for v in PERSONAL_VALUES if v in shown]
                if leaked:
                    wrong.append(f"{name:10} {method} {path} shows personal data unmasked: {leaked}")
            if response.status_code == 403:
                assert response.mimetype == "application/problem+json"
    assert not wrong, "\n".join(wrong)


def test_nothing_is_reachable_without_a_valid_token(app, api, records, tokens):
    service, secrets = tokens
    revoked = secrets["service"]
    service.revoke(service.caller(revoked).token_id, system_context("test", reason="matrix"))
    for endpoint, method, _ in routes(app):
        path = url(app, endpoint, records)
        for headers in (None, {"Authorization": "Bearer cl_unknown"}, {"Authorization": f"Bearer {revoked}"}):
            response = call(api, method, path, None, headers)
            assert response.status_code == 401, (method, path, headers, response.status_code)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    for public in ("/healthz", "/openapi.json"):
        assert api.get(public, as_=None).status_code == 200


@pytest.mark.parametrize("endpoint", ["customers.get", "tickets.events", "events.list"])
def test_unmasked_reading_needs_the_permission_and_is_recorded(app, api, records, roles, endpoint):
    path = url(app, endpoint, records)
    rule = next(r.rule for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    for name, (actor, role) in roles.items():
        if not expected_allowed(role, name, endpoint, rule):
            continue
        response = api.get(path, as_=name, headers=REASON)
        if POLICY.scope(role, UNMASK) is None:
            assert response.status_code == 403 and "unmasked" in response.json["detail"], (name, response.json)
            continue
        assert response.status_code == 200, (name, response.json)
        shown = json.dumps(response.json, ensure_ascii=False)
        if POLICY.scope(role, UNMASK) == "own" and name not in OWNS:
            # Need-to-know (003 §6.3): a reason alone does not unmask a customer of someone else's
            # cases; the values stay masked and nothing is disclosed, so nothing is logged.
            assert not any(v in shown for v in PERSONAL_VALUES), (name, endpoint)
            logged = api.get(f"/access-events?actor={actor}", as_="auditor").json["items"]
            assert response.headers["X-Request-Id"] not in {e["request_id"] for e in logged}, (name, logged)
            continue
        assert any(v in shown for v in PERSONAL_VALUES), (name, endpoint)
        logged = api.get(f"/access-events?actor={actor}", as_="auditor").json["items"]
        assert logged and logged[-1]["reason"] == "matrix test" and logged[-1]["request_id"] == \
            response.headers["X-Request-Id"], (name, logged)
        assert logged[-1]["subject"] == records["customer"] and logged[-1]["actor_role"] == role


def test_scoped_callers_reach_only_their_records(api, records):
    ticket = f"/tickets/{records['ticket']}"
    assert api.get(ticket, as_="agent").status_code == 200
    body = api.get(ticket, as_="agent2").json
    assert body["status"] == 403 and "own scope" in body["detail"]
    assert api.post(f"{ticket}/resolve", as_="agent2", json={}).status_code == 403
    assert api.get(f"/complaints/{records['complaint']}", as_="agent2").status_code == 403
    # lists: filtered to oneself, or refused
    assert api.get("/views/tickets", as_="agent").status_code == 403
    mine = api.get("/views/tickets?handler=agent-li", as_="agent")
    assert mine.status_code == 200 and [r["ticket_id"] for r in mine.json["items"]] == [records["ticket"]]
    assert api.get("/views/tickets?handler=agent-li", as_="agent2").status_code == 403
    assert api.get("/views/tickets?team=hotline", as_="lead").status_code == 200
    assert api.get("/views/tickets?team=broadband", as_="lead").status_code == 403
    assert api.get("/views/complaints", as_="lead").status_code == 200  # complaints have no team


def test_a_team_lead_loses_a_ticket_handed_to_another_team(api, records):
    ticket = f"/tickets/{records['ticket']}"
    created = api.post("/tickets", as_="agent", json={"customer_id": records["customer"], "channel": "web"}).json
    other = f"/tickets/{created['id']}"
    classify, assign = {"priority": "normal", "complexity": "general"}, {"handler": "agent-sun", "team": "broadband"}
    assert api.post(f"{other}/classify", as_="lead", json=classify).status_code == 200
    assert api.post(f"{other}/assign", as_="lead", json=assign).status_code == 200
    assert api.get(other, as_="lead").status_code == 403
    assert api.get(ticket, as_="lead").status_code == 200
    assert api.get(other, as_="agent").status_code == 200  # still its first-contact owner (首问负责制)
