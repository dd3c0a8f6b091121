from __future__ import annotations

from typing import Any

import pytest

from api import create_app
from services.tokens import TokenService, system_context

ROLES = {"agent": ("agent-li", "agent"), "agent2": ("agent-zhao", "agent"), "lead": ("lead-wang", "team_lead"),
         "cm": ("cm-zhou", "complaint_manager"), "records": ("records-chen", "records_manager"),
         "compliance": ("compliance-xu", "compliance_officer"), "auditor": ("auditor-he", "auditor"),
         "admin": ("admin-ma", "administrator"), "service": ("crm-sync", "service")}


class Api:
    """A test client that speaks as one of the callers: ``api.post("/tickets", as_="lead", json=...)``."""

    def __init__(self, client: Any, tokens: dict[str, str]):
        self.client, self.tokens = client, tokens

    def _headers(self, as_: str | None, headers: dict[str, str] | None) -> dict[str, str]:
        h = dict(headers or {})
        if as_:
            h.setdefault("Authorization", f"Bearer {self.tokens[as_]}")
        return h

    def get(self, path: str, as_: str | None = "agent", headers: dict[str, str] | None = None, **kw: Any):
        return self.client.get(path, headers=self._headers(as_, headers), **kw)

    def post(self, path: str, as_: str | None = "agent", headers: dict[str, str] | None = None, **kw: Any):
        return self.client.post(path, headers=self._headers(as_, headers), **kw)


@pytest.fixture
def tokens(ledger) -> tuple[TokenService, dict[str, str]]:
    """One token per caller of ROLES, all in team "hotline"; the service, and the secrets by caller name."""
    service = TokenService(ledger)
    issued = {name: service.issue(actor, role, "hotline", ctx=system_context("test-setup"))[0]
              for name, (actor, role) in ROLES.items()}
    return service, issued


@pytest.fixture
def app(ledger, tokens, clock, env):
    return create_app(env, ledger, tokens=tokens[0], clock=clock)


@pytest.fixture
def api(app, tokens) -> Api:
    return Api(app.test_client(), tokens[1])


@pytest.fixture
def customer_id(api: Api) -> str:
    response = api.post("/customers", json={"kind": "individual", "tier": "vip",
                                            "contact": {"name": "赵六", "phone": "13811112222"}})
    assert response.status_code == 201, response.json
    return response.json["id"]
