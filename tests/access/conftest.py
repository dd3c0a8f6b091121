"""Fixtures for the access-control tests: the API fixtures of tests/api (loaded by path: the test
folders are not packages), and a small set of records owned by known callers."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_server import serving

_spec = importlib.util.spec_from_file_location("api_test_fixtures_access",
                                               Path(__file__).parents[1] / "api" / "conftest.py")
_api_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_api_fixtures)
tokens, app, api, customer_id, Api, ROLES = (_api_fixtures.tokens, _api_fixtures.app, _api_fixtures.api,
                                             _api_fixtures.customer_id, _api_fixtures.Api, _api_fixtures.ROLES)

#: The contact details the ``customer_id`` fixture registers (personal data).
PHONE, NAME = "13811112222", "赵六"


@pytest.fixture
def roles() -> dict[str, tuple[str, str]]:
    """Test caller name → (actor, role), as issued by the ``tokens`` fixture."""
    return dict(ROLES)


@pytest.fixture
def contact() -> tuple[str, str]:
    return PHONE, NAME


def ok(response, status: int = 200):
    assert response.status_code == status, response.get_data(as_text=True)
    return response.json


@pytest.fixture
def records(api, customer_id) -> dict[str, str]:
    """One record of every kind, owned by agent-li (agent) and, once assigned, team hotline."""
    interaction = ok(api.post("/interactions", json={"channel": "phone", "customer_id": customer_id,
                                                     "content": "宽带断了", "agent_id": "agent-li",
                                                     "queue": "broadband"}), 201)
    ticket = ok(api.post("/tickets", json={"customer_id": customer_id, "channel": "phone", "summary": "宽带断了",
                                           "interaction_id": interaction["id"]}), 201)
    t = f"/tickets/{ticket['id']}"
    ok(api.post(f"{t}/classify", as_="lead", json={"priority": "normal", "complexity": "general"}))
    ok(api.post(f"{t}/assign", as_="lead", json={"handler": "agent-li", "team": "hotline"}))
    ok(api.post(f"{t}/start-work", json={}))
    ok(api.post(f"{t}/resolve", json={"resolution": "换了光猫"}))
    ok(api.post(f"{t}/feed-back-result", json={"channel": "sms"}))
    # Keyed in by an agent who did not handle the ticket (rules.survey_independence, issue 19).
    survey = ok(api.post("/surveys", as_="agent2", json={"ticket_id": ticket["id"], "csat": 5, "comment": "很好"}),
                201)
    complaint = ok(api.post("/complaints", json={"customer_id": customer_id, "channel": "phone",
                                                 "description": "多扣费", "ticket_id": ticket["id"]}), 201)
    feedback = ok(api.post("/feedback", json={"kind": "suggestion", "customer_id": customer_id, "channel": "app",
                                              "content": "希望有夜间客服"}), 201)
    return {"customer": customer_id, "interaction": interaction["id"], "ticket": ticket["id"],
            "complaint": complaint["id"], "feedback": feedback["id"], "survey": survey["id"]}


@pytest.fixture
def server(app) -> Iterator[str]:
    """The app served over HTTP on 127.0.0.1 (a port of its own), for tests that need real requests."""
    with serving(app) as url:
        yield url
