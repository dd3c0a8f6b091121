"""A PostgreSQL restart under a running app (issue 18): while the server is down every request is
answered within CASELEDGER_DB_TIMEOUT_SECONDS (2 s) — writes, reads and read models 503
``application/problem+json`` with ``Retry-After``, ``/readyz`` 503, ``/metrics`` reporting the
database down — and once it is back the same app (not rebuilt) answers again by itself, an
Idempotency-Key used during the outage included. The scheduler's leader lock comes back too.

A cluster of its own (``pg_ctl stop -m fast`` / start on the same port): the session's is shared."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import pytest

from api import create_app
from cli.throwaway_pg import ThrowawayPostgres
from ledger.bootstrap import build
from ledger.settings import Settings
from scheduler.leader import leader_lock
from services.tokens import TokenService, system_context

pytestmark = pytest.mark.integration

LIMIT = Settings().db_timeout_seconds  # the default: 2 s
RECOVERY_LIMIT = 10.0  # seconds from the server's restart to the first request answered again


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[ThrowawayPostgres]:
    with ThrowawayPostgres(Settings.from_environ().pg_bindir) as pg:
        yield pg


@pytest.fixture
def served(own_postgres, tmp_path) -> Iterator[dict[str, Any]]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    env = {"CASELEDGER_DATABASE_URL": f"{own_postgres.dsn}?schema={schema}", "CASELEDGER_HOME": str(tmp_path)}
    import psycopg

    with psycopg.connect(own_postgres.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    ledger = build(env)
    service = TokenService(ledger)
    tokens = {name: service.issue(actor, role, "hotline", ctx=system_context("test-setup"))[0]
              for name, actor, role in (("agent", "agent-li", "agent"), ("lead", "lead-wang", "team_lead"))}
    app = create_app(env, ledger, tokens=service)
    try:
        yield {"app": app, "ledger": ledger, "tokens": tokens, "pg": own_postgres}
    finally:
        ledger.close()


def _timed(client: Any, method: str, path: str, token: str | None = None, **kwargs: Any) -> tuple[Any, float]:
    headers = kwargs.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    started = time.monotonic()
    response = client.open(path, method=method, headers=headers, **kwargs)
    return response, time.monotonic() - started


def test_requests_in_a_database_restart_fail_fast_then_succeed_without_a_new_app(served, parse_metrics):
    app, tokens, pg = served["app"], served["tokens"], served["pg"]
    client = app.test_client()
    new_customer = {"kind": "individual", "tier": "vip", "contact": {"name": "赵六", "phone": "13811112222"}}
    created, _ = _timed(client, "POST", "/customers", tokens["agent"], json=new_customer)
    assert created.status_code == 201
    customer = created.json["id"]
    key = {"Idempotency-Key": f"outage-{uuid.uuid4().hex}"}

    pg.halt("fast")
    try:
        calls = {  # at once, as a worker's threads would be asked
            "write": ("POST", "/customers", tokens["agent"], {"json": new_customer, "headers": dict(key)}),
            "read": ("GET", f"/customers/{customer}", tokens["agent"], {}),
            "read model": ("GET", "/views/tickets?owner=lead-wang", tokens["lead"], {}),
            "events": ("GET", f"/customers/{customer}/events", tokens["lead"], {}),
            "readyz": ("GET", "/readyz", None, {}),
            "metrics": ("GET", "/metrics", None, {}),
        }
        with ThreadPoolExecutor(len(calls)) as pool:
            futures = {name: pool.submit(_timed, app.test_client(), method, path, token, **kw)
                       for name, (method, path, token, kw) in calls.items()}
            answers = {name: future.result() for name, future in futures.items()}
        slow = {name: round(seconds, 2) for name, (_, seconds) in answers.items() if seconds >= LIMIT}
        assert not slow, f"answered after the {LIMIT} s limit: {slow}"
        for name in ("write", "read", "read model", "events", "readyz"):
            response = answers[name][0]
            assert response.status_code == 503, (name, response.get_data(as_text=True))
            assert response.mimetype == "application/problem+json", name
            assert int(response.headers["Retry-After"]) > 0, name
        for name in ("write", "read", "events"):
            assert answers[name][0].json["cause"] == "database-unreachable", name
        found = parse_metrics(answers["metrics"][0].get_data(as_text=True))
        assert found[("caseledger_database_up", frozenset())] == 0  # a scrape reports it, it does not fail
    finally:
        pg.resume()
    restarted = time.monotonic()

    # The same app: the pool reconnects by itself.
    while True:
        response, _ = _timed(client, "GET", f"/customers/{customer}", tokens["agent"])
        if response.status_code == 200:
            break
        assert response.status_code == 503 and time.monotonic() - restarted < RECOVERY_LIMIT
        time.sleep(0.05)
    retried, _ = _timed(client, "POST", "/customers", tokens["agent"], json=new_customer, headers=dict(key))
    assert retried.status_code == 201, retried.json  # the key used in the outage was never taken
    replayed, _ = _timed(client, "POST", "/customers", tokens["agent"], json=new_customer, headers=dict(key))
    assert replayed.headers.get("Idempotent-Replayed") == "true" and replayed.json["id"] == retried.json["id"]
    for path, token in ((f"/customers/{customer}", "agent"), ("/views/tickets?owner=lead-wang", "lead"), ("/readyz", None)):
        response, seconds = _timed(client, "GET", path, tokens.get(token or ""))
        assert response.status_code == 200, (path, response.get_data(as_text=True))
    found = parse_metrics(client.get("/metrics").get_data(as_text=True))
    assert found[("caseledger_database_up", frozenset())] == 1


def test_the_scheduler_leader_lock_is_given_up_in_a_restart_and_taken_again(served):
    lock, pg = leader_lock(served["ledger"]), served["pg"]
    try:
        assert lock.try_acquire() and lock.still_held()
        pg.halt("fast")
        try:
            started = time.monotonic()
            assert not lock.still_held()  # the session is gone: so is the lock, and the leader steps down
            assert not lock.try_acquire()
            assert time.monotonic() - started < 2 * LIMIT
        finally:
            pg.resume()
        assert lock.try_acquire() and lock.still_held()
    finally:
        lock.release()


def test_the_ledgers_pool_waits_briefly_and_reconnects_often(served):
    from ledger.outage import RECONNECT_SECONDS, ResilientDatastore

    datastore = served["ledger"].recorder.datastore
    assert type(datastore) is ResilientDatastore
    pool = datastore.pool
    assert (pool.timeout, pool.reconnect_timeout, pool.kwargs["connect_timeout"]) == (LIMIT, RECONNECT_SECONDS, 2)
