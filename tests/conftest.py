"""Test harness: one suite, two backends.

Every test that asks for ``ledger`` (or ``client``) runs once on SQLite and once on PostgreSQL.
PostgreSQL comes from ``CASELEDGER_TEST_PG_DSN`` when set, otherwise from a throwaway cluster
started for the session. If neither works the PostgreSQL tests *fail* — they are never skipped.
"""

from __future__ import annotations

from contextlib import contextmanager

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import psycopg
import pytest
from eventsourcing.domain import CanCreateTimestamp

from cli.throwaway_pg import postgres_dsn
from domain.context import Context
from domain.policy import PolicyBook
from ledger.application import CaseLedger, wall_clock as real_wall_clock
from ledger.bootstrap import build
from ledger.settings import Settings

BACKENDS = ("sqlite", "postgres")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--chaos", choices=("short", "full"), default="short",
                     help="size of the chaos drills in tests/chaos: short (make test) or full (make chaos)")
T0 = datetime(2025, 9, 1, 9, 0, tzinfo=timezone(timedelta(hours=8)))


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    with postgres_dsn(Settings.from_environ()) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def policies() -> PolicyBook:
    return PolicyBook.load()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database per test: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    with fresh_schema(request.getfixturevalue("pg_dsn")) as url:
        yield url


@pytest.fixture
def pg_url(pg_dsn: str) -> Iterator[str]:
    """A database URL naming a fresh, empty PostgreSQL schema (only PostgreSQL: for what SQLite lacks)."""
    with fresh_schema(pg_dsn) as url:
        yield url


@contextmanager
def fresh_schema(dsn: str) -> Iterator[str]:
    """A database URL naming a new, empty PostgreSQL schema, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in dsn else "?"
    try:
        yield f"{dsn}{sep}schema={schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    return {"CASELEDGER_DATABASE_URL": database_url, "CASELEDGER_HOME": str(tmp_path / "home")}


@pytest.fixture
def ledger(env: dict[str, str]) -> Iterator[CaseLedger]:
    app = build(env)
    yield app
    app.close()


class Clock:
    """Business time under test control: every call advances a minute, so events keep order."""

    def __init__(self, start: datetime = T0):
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class WallClock:
    """A wall clock under test control: the real one until ``now`` is set, then ``now``."""

    def __init__(self, now: datetime | None = None):
        self.now = now

    def __call__(self) -> datetime:
        return real_wall_clock() if self.now is None else self.now


@pytest.fixture
def wall_clock(ledger: CaseLedger, monkeypatch: pytest.MonkeyPatch) -> WallClock:
    """The ``ledger``'s wall clock, for tests whose business times are later than today: set
    ``wall_clock.now``. The ledger refuses business times ahead of it (plus the skew), retention
    steps judge due dates by it, and events are recorded at it (their ``timestamp``), as on a
    machine whose clock reads that time."""
    fake = WallClock()
    ledger.clock = fake
    monkeypatch.setattr(CanCreateTimestamp, "create_timestamp", staticmethod(fake))
    return fake


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ctx(clock: Clock):
    """Make a command context for an actor: ``ctx("agent-li")``, ``ctx("lead-wang", "team_lead")``."""

    def make(actor: str = "agent-li", role: str = "agent", reason: str | None = None) -> Context:
        return Context(actor_id=actor, actor_role=role, occurred_at=clock(), request_id=uuid.uuid4().hex,
                       reason=reason)

    return make


@pytest.fixture
def token_env(env: dict[str, str]):
    """The environment of a command-line user acting in a role: ``token_env("records_manager")``.

    The token is issued straight into the ledger (creating the ledger if there is none), as an
    administrator would with ``caseledger tokens create``; commands then act as its holder."""
    from ledger.bootstrap import create_ledger
    from services.tokens import TokenService, system_context

    def make(role: str = "administrator", actor: str | None = None, team: str | None = None,
             base: dict[str, str] | None = None) -> dict[str, str]:
        base = env if base is None else base
        ledger, _ = create_ledger(base)
        try:
            secret, _ = TokenService(ledger).issue(actor or f"{role}-1", role, team,
                                                   ctx=system_context("test-setup", reason="test token"))
        finally:
            ledger.close()
        return {**base, "CASELEDGER_TOKEN": secret}

    return make
