"""A database that refuses every write (read-only, disk full) or cannot be reached is a 503 naming the
cause, with Retry-After — not a generic 500 — on both backends; nothing is half written. (A real
outage, a PostgreSQL restart under the app: tests/serving/test_database_outage.py.)"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from typing import Iterator

import psycopg
import psycopg.errors
import pytest
from eventsourcing.persistence import OperationalError
from psycopg_pool import PoolTimeout

from ledger.sqlite_store import StatementCachingPool
from ledger.unavailable import DISK_FULL, READ_ONLY, UNREACHABLE, DatabaseUnreachable, storage_unavailable

PROBLEM = "application/problem+json"


def unavailable(response, cause: str) -> dict:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    assert int(response.headers["Retry-After"]) > 0
    body = response.json
    assert body["type"].endswith("/storage-unavailable") and body["cause"] == cause
    assert "secret" not in response.get_data(as_text=True)
    return body


class ReadOnlyPool(StatementCachingPool):
    """SQLite connections that may not write: ``PRAGMA query_only`` fails writes with SQLITE_READONLY,
    exactly as a read-only file does (which the tests cannot use: as root, file modes are ignored)."""

    def _create_connection(self):  # noqa: ANN202
        connection = super()._create_connection()
        connection._sqlite_conn.execute("PRAGMA query_only = ON")  # noqa: SLF001
        return connection


@contextmanager
def read_only(app, request) -> Iterator[None]:
    datastore = app.extensions["caseledger"].recorder.datastore
    if isinstance(datastore.pool, StatementCachingPool):
        writable = datastore.pool
        datastore.pool = ReadOnlyPool(db_name=writable.db_name, lock_timeout=writable.lock_timeout)
        try:
            yield
        finally:
            datastore.pool.close()
            datastore.pool = writable
        return
    # PostgreSQL: every new session read-only, as on a standby or after an operator's ALTER.
    dsn = request.getfixturevalue("pg_dsn")
    with psycopg.connect(dsn, autocommit=True) as admin:
        database = admin.info.dbname
        admin.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
        try:
            datastore.pool.drain()  # the pool's sessions are replaced by read-only ones
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
            datastore.pool.drain()


def test_a_read_only_database_is_503_naming_the_cause(app, api, customer_id, request):
    with read_only(app, request):
        assert api.get(f"/customers/{customer_id}").status_code == 200  # reading still works
        body = unavailable(api.post("/customers", json={"kind": "individual", "tier": "vip"}), "read-only")
        assert "read-only" in body["detail"]
        unavailable(api.post(f"/customers/{customer_id}/change-tier", as_="lead", json={"tier": "general"}),
                    "read-only")
    assert api.get(f"/customers/{customer_id}").json["tier"] == "vip"
    assert api.post("/customers", json={"kind": "individual", "tier": "vip"}).status_code == 201


def test_a_full_disk_is_503_naming_the_cause(app, api, customer_id, monkeypatch):
    ledger = app.extensions["caseledger"]
    backend_error = (psycopg.errors.DiskFull("could not extend file: No space left on device")
                     if type(ledger.recorder).__name__.startswith("LedgerPostgres")
                     else sqlite3.OperationalError("database or disk is full"))

    def full(*args, **kwargs):
        try:
            raise backend_error
        except Exception as e:  # as eventsourcing wraps the driver's error
            raise OperationalError(str(e)) from e

    monkeypatch.setattr(ledger, "save", full)
    body = unavailable(api.post("/customers", json={"kind": "individual", "tier": "vip"}), "disk-full")
    assert "disk is full" in body["detail"]


@pytest.mark.parametrize("error, expected", [
    (sqlite3.OperationalError("attempt to write a readonly database"), READ_ONLY),
    (sqlite3.OperationalError("database or disk is full"), DISK_FULL),
    (psycopg.errors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction"), READ_ONLY),
    (psycopg.errors.DiskFull("could not extend file"), DISK_FULL),
    (sqlite3.OperationalError("database is locked"), None),
    (RuntimeError("connection string postgresql://secret@db"), None),
    # the database out of reach (ledger.outage): libpq's own failures, the pool's timeout, a server going away
    (psycopg.OperationalError("connection failed: Connection refused"), UNREACHABLE),
    (psycopg.InterfaceError("the connection is closed"), UNREACHABLE),
    (PoolTimeout("couldn't get a connection after 1.80 sec"), UNREACHABLE),
    (psycopg.errors.AdminShutdown("terminating connection due to administrator command"), UNREACHABLE),
    (psycopg.errors.CannotConnectNow("the database system is starting up"), UNREACHABLE),
    (DatabaseUnreachable("no answer from the database within 1.8 s"), UNREACHABLE),
    (psycopg.errors.LockNotAvailable("could not obtain lock"), None),  # a refusal, not an outage
])
def test_storage_errors_are_recognised_through_their_wrappers(error, expected):
    try:
        try:
            raise error
        except Exception as e:
            raise OperationalError(str(e)) from e
    except OperationalError as wrapped:
        assert storage_unavailable(wrapped) == expected
    assert storage_unavailable(error) == expected
