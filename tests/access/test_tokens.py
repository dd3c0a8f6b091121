"""API tokens as events: issued, expired, revoked; stored hashed; lookups cached but revocable."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from domain.errors import InvalidValue, TransitionForbidden
from services.tokens import TokenService, system_context, token_id


class Ticking:
    """A controllable clock (wall time for expiry, monotonic seconds for the cache)."""

    def __init__(self, start: datetime):
        self.now, self.seconds = start, 0.0

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.seconds


@pytest.fixture
def clocks() -> Ticking:
    return Ticking(datetime.now(timezone.utc))


def test_a_token_speaks_for_its_actor_until_it_expires(ledger, clocks):
    service = TokenService(ledger, now=clocks.wall)
    secret, record = service.issue("agent-li", "agent", "hotline", expires_at=clocks.now + timedelta(hours=1),
                                   ctx=system_context("admin-ma"))
    caller = service.caller(secret)
    assert (caller.actor_id, caller.role, caller.team, caller.token_id) == ("agent-li", "agent", "hotline", record.id)
    assert record.id == token_id(secret) and service.caller(secret + "x") is None
    clocks.now += timedelta(hours=1)
    assert service.caller(secret) is None  # expiry is checked on every lookup, cached or not
    events = [type(e).__name__ for e in ledger.events.get(record.id)]
    assert events == ["Issued"]


def test_revocation_is_an_event_and_takes_effect(ledger, clocks):
    issuing = TokenService(ledger, cache_timer=clocks.monotonic)
    elsewhere = TokenService(ledger, cache_timer=clocks.monotonic)  # another process's cache
    secret, record = issuing.issue("lead-wang", "team_lead", "hotline", ctx=system_context("admin-ma"))
    assert issuing.caller(secret) and elsewhere.caller(secret)
    issuing.revoke(record.id, system_context("admin-ma", reason="left the team"))
    assert issuing.caller(secret) is None  # at once where it was revoked
    assert elsewhere.caller(secret) is not None  # cached elsewhere ...
    clocks.seconds += 5.0
    assert elsewhere.caller(secret) is None  # ... for at most the cache time
    revoked = [e for e in ledger.events.get(record.id)][-1]
    assert type(revoked).__name__ == "Revoked" and revoked.meta["reason"] == "left the team"
    with pytest.raises(TransitionForbidden) as refused:
        issuing.revoke(record.id, system_context("admin-ma"))
    assert refused.value.rule == "token.revoke_once"


def test_the_secret_is_stored_nowhere(ledger):
    service = TokenService(ledger)
    secret, record = service.issue("auditor-he", "auditor", ctx=system_context("admin-ma"))
    stored = b"".join(n.state for n in ledger.recorder.select_notifications(start=1, limit=100))
    assert secret.encode() not in stored and secret[3:].encode() not in stored
    assert [t.holder for t in service.tokens()] == ["auditor-he"]


def test_tokens_are_checked_by_the_domain(ledger, clocks):
    service = TokenService(ledger)
    with pytest.raises(InvalidValue) as bad_role:
        service.issue("x", "superuser", ctx=system_context("admin-ma"))
    assert bad_role.value.rule == "token.role"
    with pytest.raises(InvalidValue) as past:
        service.issue("x", "agent", expires_at=clocks.now - timedelta(seconds=1), ctx=system_context("admin-ma"))
    assert past.value.rule == "token.expiry"
    with pytest.raises(ValueError):
        service.issue("not a name", "agent", ctx=system_context("admin-ma"))
    assert list(service.tokens()) == []


def test_expired_and_revoked_tokens_get_401(app, api, tokens, clocks):
    service, _ = tokens
    expiring, _ = service.issue("agent-qian", "agent", expires_at=datetime.now(timezone.utc) + timedelta(seconds=30),
                                ctx=system_context("admin-ma"))
    headers = {"Authorization": f"Bearer {expiring}"}
    assert api.get("/views/tickets?owner=agent-qian", as_=None, headers=headers).status_code == 200
    service.now = lambda: datetime.now(timezone.utc) + timedelta(minutes=1)
    response = api.get("/views/tickets?owner=agent-qian", as_=None, headers=headers)
    assert response.status_code == 401 and "expired" in response.json["detail"]
