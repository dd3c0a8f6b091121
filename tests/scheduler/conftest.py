"""Fixtures for the scheduled jobs (helpers in sched_support.py; tests/compliance loads both)."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest

from domain.context import Context
from sched_support import Jobs, moment


@pytest.fixture
def at():
    """``at(minutes)`` or ``at(when=datetime)``: a command context at that business time."""

    def make(minutes: float = 0, actor: str = "agent-li", role: str = "agent", reason: str | None = None, *,
             when: datetime | None = None) -> Context:
        return Context(actor_id=actor, actor_role=role, occurred_at=moment(minutes, when=when),
                       request_id=uuid.uuid4().hex, reason=reason)

    return make


@pytest.fixture
def jobs(ledger, env) -> Jobs:
    return Jobs(ledger, env)


@pytest.fixture
def customer(ledger, at) -> str:
    return str(ledger.register_customer(at(-30), kind="individual", tier="vip", contact={"name": "孙八"}).id)
