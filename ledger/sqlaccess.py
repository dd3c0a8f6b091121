"""Plain SQL on the ledger's own database, on either backend, through eventsourcing's datastore.

Small tables that live beside the event store (data keys, tombstones) are read and written with
this, so they share the recorder's connection settings, schema and pool. Statements use ``?``
placeholders and ``{name}`` table placeholders; table names are qualified with the PostgreSQL
schema when there is one.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteCursor, SQLiteTransaction

#: Taken (for the transaction) by everything that creates tables in a PostgreSQL schema of ours.
SCHEMA_LOCK = "SELECT pg_advisory_xact_lock(hashtext('caseledger-create-tables'))"


class SqlAccess:
    """``tables``: placeholder → table name (qualified with the schema on PostgreSQL);
    ``names``: placeholder → anything else to fill in as given (e.g. a column name)."""

    def __init__(self, recorder: Any, tables: dict[str, str], *, names: dict[str, str] | None = None):
        self.recorder = recorder
        self.pg = isinstance(recorder, PostgresApplicationRecorder)
        if self.pg:
            schema = recorder.datastore.schema
            prefix = f'"{schema}".' if schema else ""
            self.tables = {key: f"{prefix}{name}" for key, name in tables.items()}
        else:
            self.tables = dict(tables)
        self.tables.update(names or {})

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor whose statements commit together (or not at all).

        On SQLite it takes the write lock at ``BEGIN`` (``IMMEDIATE``). With a plain ``BEGIN``, a
        transaction that reads and then writes (a data key looked for, then made) holds a snapshot;
        if another connection commits before its first write, SQLite cannot upgrade that snapshot
        and answers "database is locked" at once, without waiting (SQLITE_BUSY_SNAPSHOT): a 500 for
        a request that only had to wait its turn. Taking the lock first, it waits like any writer."""
        if self.pg:
            with self.recorder.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as cursor:
                yield _Cursor(cursor, self)
        else:
            with self.recorder.datastore.get_connection(commit=True) as conn, \
                    _ImmediateTransaction(conn, commit=True) as cursor, cursor:
                yield _Cursor(cursor, self)

    @contextmanager
    def _statement(self) -> Iterator[Any]:
        """A cursor for one statement: on SQLite a plain ``BEGIN`` (one statement, reading or writing
        first, never upgrades a snapshot; a read does not wait for writers)."""
        if self.pg:
            with self.transaction() as cursor:
                yield cursor
        else:
            with self.recorder.datastore.transaction(commit=True) as cursor:
                yield _Cursor(cursor, self)

    @contextmanager
    def schema_transaction(self) -> Iterator[Any]:
        """A transaction that creates tables: on PostgreSQL it first takes the lock the ledger's
        recorder takes to create its own (:data:`SCHEMA_LOCK`), so processes starting at once on a
        new database (gunicorn workers, the scheduler) do not race: two concurrent ``CREATE TABLE IF
        NOT EXISTS`` of one table can fail on PostgreSQL's catalog."""
        with self.transaction() as cursor:
            if self.pg:
                cursor.execute(SCHEMA_LOCK)
            yield cursor

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self._statement() as cursor:
            return cursor.rows(sql, params)

    def execute(self, sql: str, params: tuple = ()) -> None:
        with self._statement() as cursor:
            cursor.execute(sql, params)

    def render(self, sql: str) -> str:
        sql = sql.format(**self.tables)
        return sql.replace("?", "%s") if self.pg else sql


class _Cursor:
    def __init__(self, cursor: Any, access: SqlAccess):
        self._cursor, self._access = cursor, access

    def execute(self, sql: str, params: tuple = ()) -> None:
        self._cursor.execute(self._access.render(sql), params)

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        self.execute(sql, params)
        return as_tuples(self._cursor.fetchall())


def as_tuples(rows: list[Any]) -> list[tuple]:
    """Rows as plain tuples (eventsourcing's PostgreSQL cursors return dicts)."""
    return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows]


class _ImmediateTransaction(SQLiteTransaction):
    """eventsourcing's SQLite transaction (the same rollback, commit and error mapping), begun
    ``IMMEDIATE``: see :meth:`SqlAccess.transaction`."""

    def __enter__(self) -> SQLiteCursor:
        cursor = self.connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        return cursor
