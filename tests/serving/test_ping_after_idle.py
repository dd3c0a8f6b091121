"""The ledger's PostgreSQL pool pings a connection only after it sat idle (issue 22): a connection used a
moment ago is handed out as it is (no extra round trip per checkout), one idle longer than
``PING_AFTER_IDLE_SECONDS`` is pinged and, if dead, replaced before anyone sees it. Real server-side
kills (``pg_terminate_backend``) of the pool's only connection, on the session's PostgreSQL."""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import Iterator

import psycopg
import pytest
from eventsourcing import persistence

from ledger import outage
from ledger.bootstrap import build

pytestmark = pytest.mark.integration


@pytest.fixture
def datastore(pg_url: str, tmp_path) -> Iterator[outage.ResilientDatastore]:
    ledger = build({"CASELEDGER_DATABASE_URL": f"{pg_url}&pool_size=1", "CASELEDGER_HOME": str(tmp_path)})
    try:
        assert type(ledger.recorder.datastore) is outage.ResilientDatastore
        yield ledger.recorder.datastore
    finally:
        ledger.close()


def _terminate(pg_dsn: str, pid: int) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        deadline = time.monotonic() + 10
        while admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]:
            assert time.monotonic() < deadline, "the backend did not go away"
            time.sleep(0.02)


def _backend_pid(datastore: outage.ResilientDatastore) -> int:
    with datastore.get_connection() as conn:
        conn.execute("SELECT 1")  # the session answers
        return conn.info.backend_pid


def _use_and_kill_every_idle_connection(datastore: outage.ResilientDatastore, pg_dsn: str) -> set[int]:
    """Check out every connection the pool holds at once (the ledger's start-up may have grown it past
    one), give them all back — stamped as just used — and kill their sessions on the server."""
    available = max(1, datastore.pool.get_stats().get("pool_available", 1))
    with ExitStack() as held:
        pids = {held.enter_context(datastore.get_connection()).info.backend_pid for _ in range(available)}
    for pid in pids:
        _terminate(pg_dsn, pid)
    return pids


def test_a_connection_used_a_moment_ago_is_not_pinged(datastore, pg_dsn):
    killed = _use_and_kill_every_idle_connection(datastore, pg_dsn)
    # Given back well within the threshold: handed out without a ping, so it is a dead connection
    # itself, and its own first statement is what finds out — as a connection failure, translated.
    with pytest.raises(persistence.OperationalError):
        with datastore.get_connection() as conn:
            assert conn.info.backend_pid in killed
            conn.execute("SELECT 1")
    # The failure dropped it and drained the pool: the next checkout gets a new session that works.
    assert _backend_pid(datastore) not in killed


def test_a_connection_idle_longer_than_the_threshold_is_pinged_and_replaced(datastore, pg_dsn, monkeypatch):
    monkeypatch.setattr(outage, "PING_AFTER_IDLE_SECONDS", 0.2)
    killed = _use_and_kill_every_idle_connection(datastore, pg_dsn)
    time.sleep(0.3)  # idle longer than the (shortened) threshold
    # The ping at checkout finds it dead: the caller gets a working connection, no error at all.
    assert _backend_pid(datastore) not in killed
